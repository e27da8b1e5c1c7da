"""Mail: the transactional outbox and the daily digest."""
