"""The mail sender alone, in a background thread: the scheduler's mail_sender job (engine/time/scheduler.py).

`civicflow serve` runs all the scheduler's jobs (timers, mail, digest) through
`engine.time.scheduler.start_embedded`; this starts only the sender, for an app that wants nothing else
in-process (the tests of the mail pages and of the browser).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from engine.settings import Settings
from engine.time import scheduler

EVERY_SECONDS = scheduler.EVERY[scheduler.MAIL_SENDER]


def start_mail_sender(
    sessions: Callable[[], Session], settings: Settings, *, every_seconds: float = EVERY_SECONDS
) -> scheduler.EmbeddedScheduler:
    """Send due mail now and every `every_seconds` in a background scheduler; call .shutdown() to stop."""
    return scheduler.start_embedded(
        sessions, settings, every={scheduler.MAIL_SENDER: every_seconds}, only=(scheduler.MAIL_SENDER,)
    )


def wake(sender: scheduler.EmbeddedScheduler) -> None:
    """Run the sender now rather than at its next interval (a request just committed a letter)."""
    scheduler.wake(sender)
