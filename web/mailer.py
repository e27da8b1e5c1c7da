"""The mail sender inside `civicflow serve`: one background job that delivers the outbox every few seconds.

The embedded single-process mode only; a dedicated scheduler process will take this over (DESIGN.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session

from engine import outbox
from engine.settings import Settings

EVERY_SECONDS = 15.0

log = logging.getLogger("civicflow.mail")
# APScheduler logs every run at INFO; the sender logs what it did itself, so keep only its warnings.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


def send_pending(sessions: Callable[[], Session], settings: Settings) -> outbox.Delivery:
    """One pass of the sender, logged when it did something or could not reach the mail server."""
    delivery = outbox.deliver_due(sessions, settings)
    if delivery.unreachable:
        log.warning("mail: %s; sent %d, retrying %d, failed %d", delivery.unreachable, delivery.sent,
                    delivery.retrying, delivery.failed)
    elif delivery.sent or delivery.retrying or delivery.failed:
        log.info("mail: sent %d, retrying %d, failed %d", delivery.sent, delivery.retrying, delivery.failed)
    return delivery


def start_mail_sender(sessions: Callable[[], Session], settings: Settings, *,
                      every_seconds: float = EVERY_SECONDS) -> BackgroundScheduler:
    """Start a background scheduler that sends due mail now and every `every_seconds`; call .shutdown() to stop."""
    scheduler = BackgroundScheduler(timezone=UTC)
    # One pass at a time (a slow server must not pile up passes); missed runs collapse into one.
    scheduler.add_job(send_pending, "interval", args=(sessions, settings), seconds=every_seconds, id="mail_sender",
                      max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    scheduler.start()
    return scheduler


def wake(scheduler: BackgroundScheduler) -> None:
    """Run the sender now rather than at its next interval (a request just committed a letter)."""
    try:
        scheduler.modify_job("mail_sender", next_run_time=datetime.now(UTC))
    except (JobLookupError, SchedulerNotRunningError):
        log.warning("mail: the sender is not running; the letter waits in the outbox")
