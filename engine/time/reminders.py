"""Reminders and escalations: who hears of a task that is nearly due or overdue, and what they read.

A diagram's timer leads to a `send_reminder` or `escalate` step; the engine notes which task it is
about (engine/time/deadlines.py) and the service saving the request calls `queue` in the same
transaction, so the mail and the history event are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import AccountManager, Department, OutboxMail, ProcessInstance, Task, User, UserRole
from engine.db.statuses import MailStatus, TaskStatus
from engine.mail import letters, outbox
from engine.people.roles import (
    ADMINISTRATIVE_LIEUTENANT,
    COMMUNICATIONS_MANAGER,
    DEPARTMENT_HEAD,
    POLICE_DEPARTMENT,
    REQUESTER,
    SOCIAL_MEDIA_MANAGER,
    role_name,
)
from engine.records import audit
from engine.settings import Settings, settings_of
from engine.time import deadlines

REMINDER_LETTER = "reminder"
ESCALATION_LETTER = "escalation"


@dataclass(frozen=True)
class Audience:
    """Who a reminder or escalation goes to: described in the policy's words, and the people themselves."""

    description: str
    people: tuple[User, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        """Their e-mail addresses (someone without one is not written to)."""
        return tuple(u.email for u in self.people if u.email)


def _active(users) -> tuple[User, ...]:
    return tuple(sorted({u for u in users if u is not None and u.active}, key=lambda u: u.username))


def _with_role(session: Session, role: str) -> tuple[User, ...]:
    return _active(session.scalars(select(User).join(UserRole).where(UserRole.role == role)))


def _department_head(session: Session, code: str) -> User | None:
    return session.scalar(select(User).join(Department, Department.head_id == User.id).where(Department.code == code))


def holders(session: Session, task: Task) -> Audience:
    """Who holds a task now: the person who took it, or everyone who may take it."""
    instance = task.instance
    if task.assignee is not None:
        return Audience(task.assignee.display_name, _active([task.assignee]))
    if task.role == REQUESTER:
        return Audience("the requester", _active([instance.started_by] if instance.started_by else []))
    if task.role == DEPARTMENT_HEAD:
        department = task.department
        head = department.head if department is not None else None
        name = department.name if department is not None else "the department"
        return Audience(f"the Department Head of {name}", _active([head]))
    if task.role == SOCIAL_MEDIA_MANAGER:
        managers = session.scalars(
            select(User)
            .join(AccountManager, AccountManager.user_id == User.id)
            .where(AccountManager.account_id == task.account_id, AccountManager.removed_at.is_(None))
        )
        return Audience("the account's social media managers", _active(managers))
    return Audience(f"the {role_name(task.role)}", _with_role(session, task.role))


def escalation_audience(session: Session, settings: Settings, task: Task) -> tuple[str, Audience]:
    """Who an overdue task is escalated to (a role code, and its people).

    The Communications Manager oversees the policy; their own overdue task goes to the role the
    settings name (the City Administrator). A restricted (police investigative) request stays in
    the police: the Administrative Lieutenant, or for the Lieutenant's own task the head of police.
    """
    if task.instance.restricted:
        if task.role != ADMINISTRATIVE_LIEUTENANT:
            return ADMINISTRATIVE_LIEUTENANT, Audience(
                "the Administrative Lieutenant", _with_role(session, ADMINISTRATIVE_LIEUTENANT)
            )
        return DEPARTMENT_HEAD, Audience(
            "the head of the Police Department", _active([_department_head(session, POLICE_DEPARTMENT)])
        )
    role = settings.communications_escalation_role if task.role == COMMUNICATIONS_MANAGER else COMMUNICATIONS_MANAGER
    return role, Audience(f"the {role_name(role)}", _with_role(session, role))


def _local_time_words(settings: Settings, moment) -> str:
    """A stored time as a letter says it, in the City's time: "Tuesday, November 3, 2026 at 4:30 PM"."""
    local = deadlines.of(settings).local(moment)
    return f"{local:%A}, {local:%B} {local.day}, {local.year} at {local:%I:%M %p}".replace(" 0", " ")


def about(instance: ProcessInstance) -> str:
    """How mail names a request: its number and title, or only its number when it is restricted."""
    # A restricted request's title can name an undercover profile: mail says only its number.
    return f"request {instance.id}" if instance.restricted else f"request {instance.id}: {instance.title}"


def _reminder_letter(settings: Settings, task: Task, audience: Audience) -> outbox.Letter:
    due = _local_time_words(settings, task.due_at) if task.due_at else "soon"
    body = (
        f"Hello,\n\nA task in civicflow is due {due}.\n\n"
        f"Task: {task.name}\nAbout: {about(task.instance)}\nWith: {audience.description}\n\n"
        f"Open it: {letters.base_url(settings)}/tasks/{task.id}\n\n"
        "You receive this because the task is yours or your role's. "
        "Once it is done you will hear no more about it.\n"
    )
    return outbox.Letter(recipients=audience.addresses, subject=f"Reminder: {task.name} is due {due}", body=body)


def _escalation_letter(settings: Settings, task: Task, holder: Audience, audience: Audience) -> outbox.Letter:
    due = _local_time_words(settings, task.due_at) if task.due_at else "earlier"
    body = (
        f"Hello,\n\nA task in civicflow is overdue: it was due {due} and is still open.\n\n"
        f"Task: {task.name}\nAbout: {about(task.instance)}\nWith: {holder.description}\n\n"
        f"Open the request: {letters.base_url(settings)}/instances/{task.instance_id}\n\n"
        f"You receive this as {audience.description}, to whom overdue tasks of this kind are escalated.\n"
    )
    return outbox.Letter(
        recipients=audience.addresses, subject=f"Overdue: {task.name} (request {task.instance_id})", body=body
    )


def _record_escalation(session: Session, task: Task, role: str, to: Audience) -> None:
    """The history's `escalated` event of an overdue task; no role on it: civicflow escalates, and whom it told is
    in the words and the detail."""
    audit.append(
        session,
        None,
        "escalated",
        instance_id=task.instance_id,
        task_id=task.id,
        task=task.name,
        comment=f"Overdue; escalated to {to.description}.",
        detail={
            "to_role": role,
            "to": [u.username for u in to.people],
            "due_at": task.due_at.isoformat() if task.due_at else None,
        },
    )


def queue(session: Session, instance: ProcessInstance, requested: Sequence[deadlines.ReminderOrEscalation]) -> None:
    """Write the reminders and escalations a run asked for to the outbox and the history."""
    settings = settings_of(session)
    for asked in requested:
        task = session.get(Task, asked.task_id)
        if task is None or task.status != TaskStatus.OPEN:
            continue  # the task was completed in the same step: nothing to remind of
        holder = holders(session, task)
        if asked.operator == deadlines.SEND_REMINDER:
            name, letter, to = REMINDER_LETTER, _reminder_letter(settings, task, holder), holder
        else:
            role, to = escalation_audience(session, settings, task)
            name, letter = ESCALATION_LETTER, _escalation_letter(settings, task, holder, to)
            _record_escalation(session, task, role, to)
        if not letter.recipients:
            audit.append(
                session,
                None,
                "mail_queued",
                instance_id=instance.id,
                task_id=task.id,
                task=task.name,
                comment=f"Not sent: no one who is {to.description} has an e-mail address.",
                detail={"letter": name, "recipients": 0},
            )
            continue
        outbox.queue_and_record(session, letter, name=name, instance_id=instance.id, task_id=task.id, task=task.name)


def _why_not_sent(mail: OutboxMail) -> str:
    if mail.status == MailStatus.FAILED:
        return f"the mail server refused it: {mail.last_error}"
    if mail.attempts:
        return f"it could not be delivered yet ({mail.attempts} attempts)"
    return "it is still waiting"


def escalate_late_letter(session: Session, settings: Settings, mail: OutboxMail) -> ProcessInstance:
    """A promised letter was not sent by its deadline: tell the Communications Manager and the history; its request."""
    # Only a request's letters carry a promise (services._queue_letters sets deliver_by), and only those are late.
    assert mail.instance_id is not None and mail.deliver_by is not None
    instance = session.get_one(ProcessInstance, mail.instance_id)
    role = COMMUNICATIONS_MANAGER
    to = Audience("the Communications Manager", _with_role(session, role))
    why = _why_not_sent(mail)
    promised_by = _local_time_words(settings, mail.deliver_by)
    audit.append(
        session,
        None,
        "escalated",
        instance_id=instance.id,
        task=mail.subject,
        comment=f'"{mail.subject}" was not sent by {promised_by}: {why}.',
        detail={
            "letter": mail.letter,
            "to_role": role,
            "to": [u.username for u in to.people],
            "deliver_by": mail.deliver_by.isoformat(),
        },
    )
    mail.escalated_at = deadlines.moment().replace(tzinfo=None)
    letter = outbox.Letter(
        recipients=to.addresses,
        subject=f"Not sent in time: {mail.subject} (request {instance.id})",
        body=(
            f"Hello,\n\nThe City promised this letter by {promised_by}, and {why}.\n\n"
            f"Letter: {mail.subject}\nAbout: {about(instance)}\n\n"
            f"Please reach the person another way (telephone or post) and see the request: "
            f"{letters.base_url(settings)}/instances/{instance.id}\n"
        ),
    )
    if letter.recipients:
        outbox.queue_and_record(session, letter, name=ESCALATION_LETTER, instance_id=instance.id, task=mail.subject)
    return instance
