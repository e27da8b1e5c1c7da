"""One database session per request; the request commits once, at the end, or rolls back."""

from __future__ import annotations

import functools

from flask import Flask, current_app, g, request
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.db.connection import begin_write, make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.errors import Conflict
from engine.mail import outbox
from engine.settings import Settings
from engine.versions import shipped


def init_app(app: Flask, settings: Settings) -> None:
    """Create the engine, migrate, load the shipped diagrams, and close sessions after each request."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    app.extensions["civicflow.engine"] = engine
    app.extensions["civicflow.sessions"] = factory
    with factory(info={"settings": settings}) as session:
        shipped.sync_workflows(session)
        session.commit()
    app.teardown_appcontext(close_session)


def get_session() -> Session:
    """The request's session, created on first use."""
    if "db" not in g:
        factory = current_app.extensions["civicflow.sessions"]
        g.db = factory(info={"settings": current_app.extensions["civicflow.settings"]})
    return g.db


def close_session(_exc=None) -> None:
    """Roll back whatever was not committed and give the connection back."""
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def transactional(view):
    """Commit once after the view succeeds; a concurrent change at commit time is a conflict, not a 500."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        session = get_session()
        # A page that only shows its form takes no write lock; a public filing takes it itself, once its
        # first steps have run (web/public.one_filing_at_a_time).
        if request.method not in ("GET", "HEAD") and not g.get("write_after_reading"):
            begin_write(session)
        try:
            response = view(*args, **kwargs)
            session.commit()
        except (StaleDataError, IntegrityError) as exc:
            session.rollback()
            raise Conflict("The request was changed by someone else at the same moment; reload and try again.") from exc
        except OperationalError as exc:
            session.rollback()
            if "locked" in str(exc).lower() or "could not serialize" in str(exc).lower():
                raise Conflict("The database was busy with the same record; try again.") from exc
            raise
        except Exception:
            session.rollback()
            raise
        if outbox.take_mail_queued(session) and "civicflow.mail_wake" in current_app.extensions:
            current_app.extensions["civicflow.mail_wake"]()  # a letter is committed: send it now, not in 15 s
        return response

    return wrapper
