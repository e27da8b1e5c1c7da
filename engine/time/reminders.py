"""Reminders and escalations: who hears of a task that is nearly due or overdue, and what they read.

A diagram's timer leads to a `send_reminder` or `escalate` step; the engine notes which task it is
about (engine/time/deadlines.py) and the service saving the request calls `queue` in the same
transaction, so the mail and the history event are written together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import AccountManager, Department, OutboxMail, ProcessInstance, Task, User, UserRole
from engine.mail import outbox
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
from engine.time import deadlines

REMINDER_LETTER = "reminder"
ESCALATION_LETTER = "escalation"


@dataclass(frozen=True)
class Audience:
    """Who a notice goes to: described in the policy's words, and the people themselves."""

    description: str
    people: tuple[User, ...]


def _active(users) -> tuple[User, ...]:
    return tuple(sorted({u for u in users if u is not None and u.active}, key=lambda u: u.username))


def _with_role(session: Session, role: str) -> tuple[User, ...]:
    return _active(session.scalars(select(User).join(UserRole).where(UserRole.role == role)))


def _department_head(session: Session, code: str) -> User | None:
    return session.scalar(select(User).join(Department, Department.head_id == User.id).where(Department.code == code))


def holders(session: Session, task: Task) -> Audience:
    """Who holds a task now: the person who took it, or everyone who may take it."""
    instance = task.instance
    if task.assignee_id is not None:
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


def escalation_audience(session: Session, task: Task) -> tuple[str, Audience]:
    """Who an overdue task is escalated to (a role code, and its people).

    The Communications Manager oversees the policy; their own overdue task goes to the role the
    settings name (the City Administrator). A restricted (police investigative) request stays in
    the police: the Administrative Lieutenant, or for the Lieutenant's own task the head of police.
    """
    settings = session.info["settings"]
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


def _when(session: Session, moment) -> str:
    local = deadlines.of(session.info["settings"]).local(moment)
    return f"{local:%A}, {local:%B} {local.day}, {local.year} at {local:%I:%M %p}".replace(" 0", " ")


def about(instance: ProcessInstance) -> str:
    """How mail names a request: its number and title, or only its number when it is restricted."""
    # A restricted request's title can name an undercover profile: mail says only its number.
    return f"request {instance.id}" if instance.restricted else f"request {instance.id}: {instance.title}"


def _reminder(session: Session, task: Task, audience: Audience) -> outbox.Letter:
    settings = session.info["settings"]
    due = _when(session, task.due_at) if task.due_at else "soon"
    body = (
        f"Hello,\n\nA task in civicflow is due {due}.\n\n"
        f"Task: {task.name}\nAbout: {about(task.instance)}\nWith: {audience.description}\n\n"
        f"Open it: {settings.base_url}/tasks/{task.id}\n\n"
        "You receive this because the task is yours or your role's. "
        "Once it is done you will hear no more about it.\n"
    )
    return outbox.Letter(
        recipients=tuple(u.email for u in audience.people if u.email),
        subject=f"Reminder: {task.name} is due {due}",
        body=body,
    )


def _escalation(session: Session, task: Task, holder: Audience, audience: Audience) -> outbox.Letter:
    settings = session.info["settings"]
    due = _when(session, task.due_at) if task.due_at else "earlier"
    body = (
        f"Hello,\n\nA task in civicflow is overdue: it was due {due} and is still open.\n\n"
        f"Task: {task.name}\nAbout: {about(task.instance)}\nWith: {holder.description}\n\n"
        f"Open the request: {settings.base_url}/instances/{task.instance_id}\n\n"
        f"You receive this as {audience.description}, to whom overdue tasks of this kind are escalated.\n"
    )
    return outbox.Letter(
        recipients=tuple(u.email for u in audience.people if u.email),
        subject=f"Overdue: {task.name} (request {task.instance_id})",
        body=body,
    )


def queue(session: Session, instance: ProcessInstance, notices: list[deadlines.Notice]) -> None:
    """Write the reminders and escalations a run asked for to the outbox and the history."""
    for notice in notices:
        task = session.get(Task, notice.task_id)
        if task is None or task.status != "open":
            continue  # the task was completed in the same step: nothing to remind of
        holder = holders(session, task)
        if notice.operator == deadlines.SEND_REMINDER:
            name, letter, to = REMINDER_LETTER, _reminder(session, task, holder), holder
        else:
            role, to = escalation_audience(session, task)
            name, letter = ESCALATION_LETTER, _escalation(session, task, holder, to)
            # No role on the event: civicflow escalates; whom it told is in the words and the detail.
            audit.append(
                session,
                None,
                "escalated",
                instance_id=instance.id,
                task_id=task.id,
                task=task.name,
                comment=f"Overdue; escalated to {to.description}.",
                detail={
                    "to_role": role,
                    "to": [u.username for u in to.people],
                    "due_at": task.due_at.isoformat() if task.due_at else None,
                },
            )
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
        outbox.queue(session, letter, name=name, instance_id=instance.id)
        audit.append(
            session,
            None,
            "mail_queued",
            instance_id=instance.id,
            task_id=task.id,
            task=task.name,
            detail={"letter": name, "subject": letter.subject, "recipients": len(letter.recipients)},
        )


def escalate_late_letter(session: Session, mail: OutboxMail) -> None:
    """A promised letter was not sent by its deadline: tell the Communications Manager, and the history."""
    settings = session.info["settings"]
    instance = session.get(ProcessInstance, mail.instance_id)
    role = COMMUNICATIONS_MANAGER
    to = Audience("the Communications Manager", _with_role(session, role))
    why = (
        f"the mail server refused it: {mail.last_error}"
        if mail.status == "failed"
        else f"it could not be delivered yet ({mail.attempts} attempts)"
        if mail.attempts
        else "it is still waiting"
    )
    comment = f'"{mail.subject}" was not sent by {_when(session, mail.deliver_by)}: {why}.'
    audit.append(
        session,
        None,
        "escalated",
        instance_id=instance.id,
        task=mail.subject,
        comment=comment,
        detail={
            "letter": mail.letter,
            "to_role": role,
            "to": [u.username for u in to.people],
            "deliver_by": mail.deliver_by.isoformat(),
        },
    )
    mail.escalated_at = deadlines.moment().replace(tzinfo=None)
    letter = outbox.Letter(
        recipients=tuple(u.email for u in to.people if u.email),
        subject=f"Not sent in time: {mail.subject} (request {instance.id})",
        body=(
            f"Hello,\n\nThe City promised this letter by {_when(session, mail.deliver_by)}, and {why}.\n\n"
            f"Letter: {mail.subject}\nAbout: {about(instance)}\n\n"
            f"Please reach the person another way (telephone or post) and see the request: "
            f"{settings.base_url}/instances/{instance.id}\n"
        ),
    )
    if letter.recipients:
        outbox.queue(session, letter, name=ESCALATION_LETTER, instance_id=instance.id)
        audit.append(
            session,
            None,
            "mail_queued",
            instance_id=instance.id,
            task=mail.subject,
            detail={"letter": ESCALATION_LETTER, "subject": letter.subject, "recipients": len(letter.recipients)},
        )
