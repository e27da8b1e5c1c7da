"""The daily digest: each morning the City is open, everyone with open tasks gets one mail listing them.

Written once per person and day (the `digest` table's key), in the same transaction as its outbox
row, so a scheduler that restarts, or a second one, never sends a second digest for the day.

The day's digests are written from the digest time (CIVICFLOW_DIGEST_TIME) until the City closes (the end of
CIVICFLOW_BUSINESS_HOURS). A scheduler that was down at the digest time writes them when it starts, while the
City is still open; one that starts after closing time leaves the day out: the next business morning's digest
is a few hours away, and staff would otherwise get two in one evening and morning.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.db.connection import begin_write
from engine.db.models import Digest, Task, User
from engine.mail import letters, outbox
from engine.people.users import actor_for
from engine.requests import inbox
from engine.settings import Settings
from engine.time import clock, deadlines, reminders

DIGEST_LETTER = "digest"
MOST_LISTED = 50
# When the day's digests are due, or why not (`timing`).
DUE, NOT_A_BUSINESS_DAY, TOO_EARLY, AFTER_CLOSING = "due", "not a business day", "too early", "after closing"


def closing_time(settings: Settings) -> time:
    """Until when the day's digests are written: the City's closing time (midnight if the digest time is later)."""
    return settings.day_ends if settings.day_ends > settings.digest_time else time.max


def timing(settings: Settings, moment: datetime) -> tuple[str, date]:
    """Whether the digests of the City's day at `moment` are due now (DUE), or why not; with that day."""
    calendar = deadlines.of(settings)
    local = calendar.local(moment)
    today = local.date()
    if not calendar.calendar.is_business_day(today):
        return NOT_A_BUSINESS_DAY, today
    if local.time() < settings.digest_time:
        return TOO_EARLY, today
    if local.time() >= closing_time(settings):
        return AFTER_CLOSING, today
    return DUE, today


def why_not_due(settings: Settings, moment: datetime) -> str | None:
    """Why no digest is written at `moment`, in words (None when they are due)."""
    when, day = timing(settings, moment)
    if when == NOT_A_BUSINESS_DAY:
        return f"{day:%A %Y-%m-%d} is not a business day"
    if when == TOO_EARLY:
        return f"they are written from {settings.digest_time:%H:%M} ({settings.timezone})"
    if when == AFTER_CLOSING:
        return (
            f"they are written until closing time, {closing_time(settings):%H:%M} ({settings.timezone}); "
            "the next ones on the next business morning"
        )
    return None


def _line(session: Session, task: Task) -> str:
    settings = session.info["settings"]
    if task.due_at is None:
        due = "no due date"
    else:
        local = deadlines.of(settings).local(task.due_at)
        due = f"due {local:%a} {local:%b} {local.day}"
    return f"- {task.name} ({reminders.about(task.instance)}), {due}\n  {letters.base_url(settings)}/tasks/{task.id}"


def compose(session: Session, user: User) -> tuple[outbox.Letter | None, int, int]:
    """A person's digest of their open tasks (overdue first), with the counts; no letter if they have none."""
    actor = actor_for(session, user)
    mine, _ = inbox.list_tasks(session, actor, "mine", per_page=MOST_LISTED)
    available, _ = inbox.list_tasks(session, actor, "available", per_page=MOST_LISTED)
    tasks = list({t.id: t for t in [*mine, *available]}.values())
    if not tasks or not user.email:  # send_due_digests picks only people with an address
        return None, 0, 0
    now = clock.utcnow()
    overdue = [t for t in tasks if t.due_at is not None and t.due_at < now]
    others = sorted((t for t in tasks if t not in overdue), key=lambda t: (t.due_at is None, t.due_at or now))
    settings = session.info["settings"]
    today = deadlines.of(settings).local(clock.now())
    parts = [f"Good morning {user.display_name},\n\nYour civicflow tasks on {today:%A}, {today:%B} {today.day}:\n"]
    if overdue:
        parts.append(f"\nOverdue ({len(overdue)}):\n" + "\n".join(_line(session, t) for t in overdue) + "\n")
    if others:
        parts.append(f"\nOpen ({len(others)}):\n" + "\n".join(_line(session, t) for t in others) + "\n")
    parts.append(f"\nYour inbox: {letters.base_url(settings)}/inbox\n")
    subject = f"civicflow: {len(tasks)} open task{'s' if len(tasks) != 1 else ''}"
    if overdue:
        subject += f", {len(overdue)} overdue"
    letter = outbox.Letter(recipients=(user.email,), subject=subject, body="".join(parts))
    return letter, len(tasks), len(overdue)


def send_due_digests(sessions: Callable[[], Session]) -> int:
    """Write today's digests if they are due now (a business day, from the digest time to closing); how many."""
    queued = 0
    with sessions() as session:
        when, today = timing(session.info["settings"], clock.now())
        if when != DUE:
            return 0
        pending = list(
            session.scalars(
                select(User.id)
                .where(
                    User.active.is_(True),
                    User.email.is_not(None),
                    User.email != "",
                    ~exists().where(Digest.user_id == User.id, Digest.day == today),
                )
                .order_by(User.id)
            )
        )
    for user_id in pending:
        with sessions() as session:
            begin_write(session)
            if session.get(Digest, (user_id, today)) is not None:
                continue  # another scheduler wrote it meanwhile
            user = session.get_one(User, user_id)
            letter, open_count, overdue_count = compose(session, user)
            if letter is not None:
                outbox.queue(session, letter, name=DIGEST_LETTER, instance_id=None)
                queued += 1
            session.add(
                Digest(
                    user_id=user_id,
                    day=today,
                    sent_at=clock.utcnow(),
                    open_tasks=open_count,
                    overdue_tasks=overdue_count,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                queued -= letter is not None
    return queued
