"""Requests (process instances): starting, the inbox, claiming, completing, reading, who may do what."""
