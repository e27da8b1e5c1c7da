"""The migrations build exactly the schema the models describe, and the inbox's queries use its indexes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from engine.db.models import Base, Task
from engine.requests import authz


def test_the_migrated_database_matches_the_models(db_engine):
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_available_view_searches_the_pool_index_on_sqlite(db_engine, people):
    if db_engine.dialect.name == "postgresql":
        return  # PostgreSQL's planner chooses by statistics; bench/inbox.py measures it at 100,000 requests
    query = select(Task.id).where(authz.available_tasks_clause(people.comms))
    compiled = query.compile(db_engine, compile_kwargs={"literal_binds": True})
    with db_engine.connect() as connection:
        plan = " | ".join(row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_task_pool" in plan and "SCAN task" not in plan, plan
