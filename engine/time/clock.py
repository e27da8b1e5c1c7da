"""The one clock: every "now" in the engine comes from here, so tests and operators can move it.

`CIVICFLOW_NOW` (an ISO 8601 time with its offset, e.g. `2026-12-07T06:59-06:00`) pins the clock of a
`civicflow` process to that moment (`pin_from_environment`, called by the command): the scheduler, the
server and every command then act as if it were that moment, and time does not move on. It is for tests
and for an operator's dry runs, never for a live City.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from engine.errors import Invalid

NOW_SETTING = "CIVICFLOW_NOW"

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


def pinned() -> datetime | None:
    """The moment the clock is pinned to (aware UTC), or None while it runs."""
    return _frozen


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


def moment_from_setting(value: str, name: str = NOW_SETTING) -> datetime:
    """An ISO 8601 time with its offset (or Z), as aware UTC; Invalid naming the setting otherwise."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        example = "like 2026-12-07T06:59-06:00 or 2026-12-07T12:59Z"
        raise Invalid(
            "A setting is not valid.", {name: [f'"{text}" is not an ISO 8601 time with its offset, {example}.']}
        )
    return moment.astimezone(UTC)


def pin_from_environment(environ: Mapping[str, str] = os.environ) -> datetime | None:
    """Pin the clock to CIVICFLOW_NOW if it is set (and not empty); the moment, or None."""
    value = environ.get(NOW_SETTING, "").strip()
    if not value:
        return None
    moment = moment_from_setting(value)
    set_now(moment)
    return moment


def as_utc(value: datetime | None) -> datetime | None:
    """A stored naive-UTC datetime as an aware one (for output)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
