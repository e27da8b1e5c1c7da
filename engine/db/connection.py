"""Database engines and sessions: a SQLite file by default, PostgreSQL when the URL says so."""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and write-serialising transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed written decision survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # A write transaction takes the write lock up front (IMMEDIATE): two writers queue instead of
        # one failing half-way. Reads stay deferred so an idle reader never blocks a writer.
        immediate = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "civicflow_write"


def begin_write(session: Session) -> None:
    """Start the session's transaction as a write transaction (on SQLite: BEGIN IMMEDIATE).

    Call it before the first query of a unit of work that will write. Without it SQLite
    still keeps data safe (a writer whose snapshot went stale gets "database is locked",
    which the web layer turns into 409), but queues less politely.
    """
    if not session.in_transaction():
        session.connection(execution_options={WRITE_OPTION: True})


def write_after_reading(session: Session) -> None:
    """Turn the session's read-only unit of work into a write transaction (on SQLite: BEGIN IMMEDIATE).

    For work that computes for a while from what it has read (a public filing's first engine steps) before
    it writes: the write lock is then held for the writing only, and a staff member's decision does not
    wait behind the computing. A transaction that is already a write transaction goes on as it is; one
    with changes not yet written refuses, since ending it would commit them half-way.
    """
    if not session.in_transaction():
        begin_write(session)
        return
    if session.connection().get_execution_options().get(WRITE_OPTION):
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("This unit of work has changes pending; it must have begun as a write transaction.")
    session.commit()  # a read-only transaction: ending it writes nothing
    begin_write(session)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(session: Session) -> bool:
    """Whether the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"
