"""Rate limits per client on the public pages and endpoints (Flask-Limiter), counted in civicflow's database.

The counters live in the database every web worker shares (the table rate_limit), not in one worker's
memory: docs/architecture.md's web workers are stateless, on one host or many, and a limit must hold across them.
"""

from __future__ import annotations

import hashlib
import time

from flask import Flask, g, request
from flask_limiter import Limiter
from limits.storage import Storage
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine.db.connection import WRITE_OPTION
from engine.db.models import RateLimit
from engine.procedures.fields import is_storable_text
from engine.settings import Settings

# One statement counts a hit atomically on SQLite and PostgreSQL alike: a new window starts when the
# stored one has expired.
_HIT = text("""
    INSERT INTO rate_limit (key, hits, expires_at) VALUES (:key, :amount, :expires)
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN rate_limit.expires_at <= :now THEN :amount ELSE rate_limit.hits + :amount END,
        expires_at = CASE WHEN rate_limit.expires_at <= :now THEN :expires ELSE rate_limit.expires_at END
    RETURNING hits
""")


def _key(key: str) -> str:
    """The key as stored: itself when it fits and can be stored, else its sha256 (a key may hold what a client
    typed, a username with a NUL that PostgreSQL cannot store)."""
    if len(key) <= 255 and is_storable_text(key):
        return key
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class DatabaseStorage(Storage):
    """A fixed-window counter store for the `limits` library on civicflow's own database."""

    STORAGE_SCHEME = ["civicflow+sql"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, engine: Engine | None = None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.engine = engine

    @property
    def base_exceptions(self):
        """What a failing database raises."""
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count `amount` hits in the key's window (a new window of `expiry` seconds if it expired)."""
        now = time.time()
        with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
            hits = connection.execute(
                _HIT, {"key": _key(key), "amount": amount, "expires": now + expiry, "now": now}
            ).scalar_one()
            connection.execute(delete(RateLimit).where(RateLimit.expires_at <= now))  # forget old windows
        return hits

    def get(self, key: str) -> int:
        """The hits in the key's current window."""
        with self.engine.connect() as connection:
            hits = connection.scalar(
                select(RateLimit.hits).where(RateLimit.key == _key(key), RateLimit.expires_at > time.time())
            )
        return hits or 0

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (seconds since the epoch)."""
        with self.engine.connect() as connection:
            expires = connection.scalar(select(RateLimit.expires_at).where(RateLimit.key == _key(key)))
        return max(expires or 0.0, time.time())

    def check(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        """Forget every counter."""
        with self.engine.begin() as connection:
            return connection.execute(delete(RateLimit)).rowcount

    def clear(self, key: str) -> None:
        """Forget one key's counter."""
        with self.engine.begin() as connection:
            connection.execute(delete(RateLimit).where(RateLimit.key == _key(key)))


def client_address() -> str:
    """Who a client is, for the limits: their address (ProxyFix has taken it from trusted proxies' headers)."""
    return request.remote_addr or "unknown"


def retry_after_as_answered(response):
    """Retry-After as the answer means it. The limiter puts its window's end on every answer of a limited view: on
    a 429 that is when to try again, but a Busy 503 keeps the app's own (web/errors.py), and other answers none."""
    if "X-RateLimit-Limit" not in response.headers:
        return response  # a view without limits: the limiter added nothing
    if g.get("retry_after") is not None:
        response.headers["Retry-After"] = str(g.retry_after)
    elif response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response


def init_app(app: Flask, settings: Settings, engine: Engine, *, submissions: list[str], lookups: list[str]) -> Limiter:
    """Limit the public views: submissions (forms and API together) and status lookups, each per client."""
    # Registered before the limiter's own: Flask runs the later-registered first, so this sees its headers.
    app.after_request(retry_after_as_answered)
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri="civicflow+sql://",
        storage_options={"engine": engine},
        strategy="fixed-window",
        headers_enabled=True,
        key_prefix="civicflow",
    )
    submit = limiter.shared_limit(settings.public_submission_limit, scope="public-submissions", methods=["POST"])
    lookup = limiter.shared_limit(settings.public_lookup_limit, scope="public-lookups")
    for endpoints, limit in ((submissions, submit), (lookups, lookup)):
        for endpoint in endpoints:
            app.view_functions[endpoint] = limit(app.view_functions[endpoint])
    app.extensions["civicflow.limiter"] = limiter
    return limiter
