"""The migrations build exactly the schema the models describe and keep the data, and the inbox's queries use its
indexes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Boolean, DateTime, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from engine.db.connection import make_engine
from engine.db.migrate import alembic_config, upgrade
from engine.db.models import Base, ProcessPublication, ProcessVersion, Task
from engine.requests import authz

PG_URL = os.environ.get("CIVICFLOW_TEST_POSTGRES_URL")


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


# ---- 0007: the publications, not columns of process_model, say which version is in use ----------------------

KEY = "new_account_request"
T = [datetime(2026, 1, day, 9, 0) for day in range(1, 6)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request, tmp_path) -> Iterator[Engine]:
    """A database of its own, with no schema yet: a SQLite file, or a new PostgreSQL database dropped after."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'legacy.sqlite3'}")
        yield engine
        engine.dispose()
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests are off: set CIVICFLOW_TEST_POSTGRES_URL")
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"civicflow_migration_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(engine: Engine, target: str, *, down: bool = False) -> None:
    """Migrate to a revision as engine.db.migrate.upgrade does (on SQLite, foreign keys off while tables rebuild)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with connection.begin():
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, target)
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def legacy_versions(connection) -> None:
    """Versions as 0006 left them: version 1 superseded before 0006 (its publication only in its columns),
    version 2 published then (0006 gave it a row), version 3 published by an administrator after, and
    version 2 published again; another procedure with one shipped version."""
    connection.execute(
        text(
            "INSERT INTO user_account (id, username, display_name, password_hash, active, failed_logins, created_at) "
            "VALUES (1, 'admin', 'Admin', 'x', true, 0, :at)"
        ),
        {"at": T[0]},
    )
    versions = [
        (1, KEY, 1, False, T[0], None),
        (2, KEY, 2, True, T[3], 1),
        (3, KEY, 3, False, T[2], 1),
        (4, "content_removal", 1, True, T[0], None),
    ]
    for id_, key, number, published, published_at, published_by_id in versions:
        connection.execute(
            text(
                "INSERT INTO process_model (id, key, number, name, version_hash, bpmn_xml, source, published, "
                "created_at, published_at, published_by_id) VALUES (:id, :key, :number, 'A procedure', :hash, "
                "'<xml/>', 'shipped', :published, :created_at, :published_at, :published_by_id)"
            ),
            {
                "id": id_,
                "key": key,
                "number": number,
                "hash": f"{id_:064d}",
                "published": published,
                "created_at": T[0],
                "published_at": published_at,
                "published_by_id": published_by_id,
            },
        )
    # 0006 gave version 2 a row at the time its column held then (T[1]); the column has moved on to T[3] since.
    publications = [(KEY, 2, None, T[1]), ("content_removal", 4, None, T[0]), (KEY, 3, 1, T[2]), (KEY, 2, 1, T[3])]
    for key, model_id, published_by_id, published_at in publications:
        connection.execute(
            text(
                "INSERT INTO process_publication (key, model_id, published_by_id, published_at) "
                "VALUES (:key, :model_id, :by, :at)"
            ),
            {"key": key, "model_id": model_id, "by": published_by_id, "at": published_at},
        )


def test_every_publication_the_dropped_columns_held_is_kept_and_the_version_in_use_stays(empty_database):
    migrate(empty_database, "0006")
    with empty_database.begin() as connection:
        legacy_versions(connection)
    upgrade(empty_database)

    with Session(empty_database) as session:
        history = session.scalars(
            select(ProcessPublication).where(ProcessPublication.key == KEY).order_by(ProcessPublication.id)
        ).all()
        assert [(p.model.number, p.published_by_id, p.published_at) for p in history] == [
            (1, None, T[0]),  # kept from version 1's columns, before the publications 0006 recorded
            (2, None, T[1]),
            (3, 1, T[2]),
            (2, 1, T[3]),
        ]
        listed = session.scalars(select(ProcessVersion).order_by(ProcessVersion.id)).all()
        assert [(v.key, v.number, v.published, v.last_publication.published_at) for v in listed] == [
            (KEY, 1, False, T[0]),
            (KEY, 2, True, T[3]),
            (KEY, 3, False, T[2]),
            ("content_removal", 1, True, T[0]),
        ]
        [other] = session.scalars(select(ProcessPublication).where(ProcessPublication.key == "content_removal"))
        assert other.id == 2  # a procedure whose history was whole keeps its rows as they were

    migrate(empty_database, "0006", down=True)
    with empty_database.connect() as connection:
        columns = connection.execute(
            text("SELECT id, published, published_at, published_by_id FROM process_model ORDER BY id").columns(
                published=Boolean, published_at=DateTime
            )
        ).all()
    assert [tuple(row) for row in columns] == [
        (1, False, T[0], None),
        (2, True, T[3], 1),
        (3, False, T[2], 1),
        (4, True, T[0], None),
    ]
