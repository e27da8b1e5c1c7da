"""Firing due timers: the scheduler's job, and `civicflow timers fire --now`.

The `timer` table mirrors every waiting timer (instance, due_at), so a pass asks the database for
what is due through a partial index and never reads the instances that are only waiting: its
cost follows what is due, not what waits (bench/timers.py). Each due instance is fired in its
own short transaction that claims the timer and its instance with FOR UPDATE SKIP LOCKED on
PostgreSQL (BEGIN IMMEDIATE on SQLite), so two schedulers never fire the same timer, and a
scheduler killed half-way leaves every unfinished timer due for the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db.connection import begin_write
from engine.db.models import OutboxMail, ProcessInstance, Timer
from engine.db.statuses import InstanceStatus, MailStatus
from engine.errors import CivicflowError
from engine.requests import incidents, services
from engine.settings import settings_of
from engine.time import clock, deadlines, reminders

log = logging.getLogger("civicflow.timers")


@dataclass(frozen=True)
class Fired:
    """What firing one request's due timers did (or why it could not)."""

    instance_id: int
    title: str
    timers: tuple[str, ...] = ()
    error: str | None = None


def _claim(session: Session, as_of, passed: set[str]) -> tuple[str, int] | None:
    """The earliest due timer not yet tried in this pass, locked with its instance (skipping locked ones)."""
    query = (
        select(Timer.id, Timer.instance_id)
        .join(ProcessInstance, ProcessInstance.id == Timer.instance_id)
        .where(Timer.fired_at.is_(None), Timer.due_at <= as_of, ProcessInstance.status != InstanceStatus.ERROR)
    )
    if passed:
        query = query.where(Timer.id.not_in(sorted(passed)))
    row = session.execute(query.order_by(Timer.due_at, Timer.id).limit(1).with_for_update(skip_locked=True)).first()
    return (row[0], row[1]) if row else None


def fire_due(sessions: Callable[[], Session], *, limit: int | None = None) -> list[Fired]:
    """Fire every timer due by the clock's now, one request per transaction; what was fired, in order."""
    as_of = clock.utcnow()
    done: list[Fired] = []
    passed: set[str] = set()
    while limit is None or len(done) < limit:
        with sessions() as session:
            begin_write(session)
            claim = _claim(session, as_of, passed)
            if claim is None:
                break
            timer_id, instance_id = claim
            # Claimed with its timer, so it exists.
            instance = session.get_one(ProcessInstance, instance_id, populate_existing=True)
            title = instance.title
            try:
                names = services.fire_timers(session, instance)
                held = services.held_words(session, instance) if instance.status == InstanceStatus.ERROR else None
                session.commit()
            except Exception as exc:  # noqa: BLE001 - one request's failure never stops the others' timers
                session.rollback()
                message = exc.message if isinstance(exc, CivicflowError) else incidents.text_of(exc)
                log.exception("timers: request %s: %s", instance_id, message)
                done.append(Fired(instance_id, title, error=message))
                passed.add(timer_id)  # it stays due: the next pass tries again
                continue
            if held is not None:
                # A step after the timer failed: the request is held with an incident, and the pass goes on.
                done.append(Fired(instance_id, title, tuple(names), error=held))
                passed.add(timer_id)
            elif names:
                done.append(Fired(instance_id, title, tuple(names)))
            else:
                passed.add(timer_id)  # due by its row but not by the workflow: not again in this pass
    return done


def escalate_late_letters(sessions: Callable[[], Session]) -> list[Fired]:
    """Escalate each promised letter (a dispute's acknowledgement) not sent by its deadline, once."""
    as_of = clock.utcnow()
    done: list[Fired] = []
    while True:
        with sessions() as session:
            begin_write(session)
            mail = session.scalars(
                select(OutboxMail)
                .where(
                    OutboxMail.deliver_by.is_not(None),
                    OutboxMail.escalated_at.is_(None),
                    OutboxMail.status != MailStatus.SENT,
                    OutboxMail.deliver_by <= as_of,
                )
                .order_by(OutboxMail.deliver_by, OutboxMail.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if mail is None:
                break
            settings = settings_of(session)
            with deadlines.running(deadlines.of(settings), clock.now()):
                instance = reminders.escalate_late_letter(session, settings, mail)
            instance_id, title = instance.id, instance.title
            session.commit()
            done.append(Fired(instance_id, title, (f"late letter: {mail.subject}",)))
    return done


def due_count(session: Session) -> int:
    """How many waiting timers are due by the clock's now."""
    return session.execute(
        select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None), Timer.due_at <= clock.utcnow())
    ).scalar_one()
