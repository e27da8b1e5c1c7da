"""The one clock: every "now" in the engine comes from here, so tests and operators can move it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_frozen: datetime | None = None


def now() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def utcnow() -> datetime:
    """The current time as naive UTC, the form stored in the database."""
    return now().replace(tzinfo=None)


def wall_utcnow() -> datetime:
    """The machine's time as naive UTC, whatever the clock is pinned to (only for "as soon as possible")."""
    return datetime.now(UTC).replace(tzinfo=None)


def set_now(moment: datetime | None) -> None:
    """Pin the clock to a moment (aware, or naive taken as UTC); None lets it run again."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    _frozen = moment.astimezone(UTC) if moment is not None else None


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Run a block with the clock pinned, then restore whatever was there."""
    previous = _frozen
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored naive-UTC datetime as an aware one (for output)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
