"""The database: engines and sessions, the models, and the Alembic migrations."""
