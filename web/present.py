"""How engine records read on a page: labels, the city's local time, record rows, the decisions so far."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import procedures
from engine.db.models import Department, ProcessInstance
from engine.db.statuses import InstanceStatus, MailStatus, PublicStatus, TaskStatus
from engine.people import staff
from engine.people.roles import role_name
from engine.people.users import Actor
from engine.procedures.common import PLATFORM_NAMES
from engine.procedures.fields import IMAGE, SECRET, URL
from engine.requests import authz, services
from engine.time import clock
from forms import choice_label

FORM_INSTRUCTION = re.compile(r"\s*\([^()]*\)\s*$")
ACTION_NAMES = {
    "started": "Submitted the request",
    "claimed": "Took the task",
    "released": "Gave the task back",
    "completed": "Completed",
    "credentials_revealed": "Viewed the credentials",
    "mail_queued": "E-mail queued for sending",
    "attachment_uploaded": "Uploaded an image",
    "timer": "Timer",
    "escalated": "Escalated",
    "cancelled": "Cancelled",
    "incident": "A step of the diagram failed: the request is held",
    "retried": "Retried the failed step",
    "migrated": "Moved to another version of the procedure",
    "letter_printed": "Opened the letter to print it",
    "removal_linked": "Linked the removal record",
}
DECISION_NAMES = {
    "approve": "Approved",
    "reject": "Rejected",
    "return": "Returned for changes",
    "resubmit": "Resubmitted",
    "withdraw": "Withdrew the request",
    "confirmed": "Confirmed",
    "deleted": "Deleted the content",
    "not_deleted": "Did not delete the content",
    "uphold": "Upheld the removal",
    "reinstate": "Reinstated the comment",
    "restored": "Restored the comment",
    "no_change": "Advised: no change to the policy",
    "amend": "Advised: amend the policy",
    "responded": "Sent the written response",
    "amendment_proposed": "Proposed an amendment",
    "mailed": "Mailed the letter",
}


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.extensions["civicflow.settings"].timezone)


def city_time(moment: datetime | None, with_time: bool = True) -> str:
    """A stored UTC time in the city's time zone, e.g. "Nov 21, 2026 2:05 PM"."""
    if moment is None:
        return ""
    local = clock.as_utc(moment).astimezone(_zone())
    text = f"{local:%b} {local.day}, {local.year}"
    return f"{text} {local:%I:%M %p}".replace(" 0", " ") if with_time else text


def is_overdue(due: datetime | None) -> bool:
    """Whether a due date has passed."""
    return due is not None and due < clock.utcnow()


def due_words(due: datetime, capital: bool = False) -> str:
    """How a due date reads in a list: "overdue since Thu Dec 3", "due today by 4:30 PM", "due Thu Dec 3"."""
    words = _due_words(due)
    return words[0].upper() + words[1:] if capital else words


def _due_words(due: datetime) -> str:
    zone = _zone()
    local = clock.as_utc(due).astimezone(zone)
    today = clock.now().astimezone(zone).date()
    day = f"{local:%a} {local:%b} {local.day}"
    if is_overdue(due):
        return f"overdue since {day}"
    hour = f"{local:%I:%M %p}".lstrip("0")
    if local.date() == today:
        return f"due today by {hour}"
    if (local.date() - today).days == 1:
        return f"due tomorrow by {hour}"
    return f"due {day}"


def _value(value, field, departments: dict[str, str]) -> str | list[str]:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        # Chosen categories read in the policy's order, whatever order they were ticked or sent in.
        order = {choice: index for index, choice in enumerate(field.choices)}
        return [_value(item, field, departments) for item in sorted(value, key=lambda v: order.get(v, len(order)))]
    if value is None:
        return ""
    if field.name == "department":
        return departments.get(value, value)
    if field.label_of(value):
        return field.label_of(value)
    return choice_label(value) if field.choices else str(value)


def _link(spec, shown) -> str | None:
    """The address a web address field's value links to, if it is an http or https address."""
    if spec.type != URL or not isinstance(shown, str):
        return None
    parts = urlsplit(shown)
    return shown if parts.scheme in ("http", "https") and parts.netloc else None


def _people(session: Session, value) -> str | list[str]:
    """People a record names by username, read by their names (a username nobody holds reads as typed)."""
    usernames = value if isinstance(value, list) else [value]
    names = staff.names_of(session, [name for name in usernames if isinstance(name, str)])
    shown = [names.get(name, str(name)) for name in usernames]
    return shown if isinstance(value, list) else shown[0]


@dataclass(frozen=True)
class Row:
    """One line of a record: its label, its value (a list for several choices), or a note that it is withheld;
    privileged lines are marked so that nobody copies them into a letter by mistake."""

    label: str
    value: str | list[str]
    withheld: bool = False
    privileged: bool = False
    # A web address that opens (only http and https: never a javascript: or data: link someone typed).
    link: str | None = None


WHO_READS_PRIVILEGED = "only the City Attorney and the Communications Manager"


def record_rows(session: Session, actor: Actor, instance: ProcessInstance, fields: dict | None = None) -> list[Row]:
    """The request's record as its forms label it and as the actor may read it.

    Choices and departments read by name; keys no form names (ids the engine keeps for itself) are left out.
    Privileged advice is shown only to the City Attorney and the Communications Manager; others read that it
    exists and is withheld, never what it says.
    """
    procedure = procedures.get(instance.process_key)
    fields = fields if fields is not None else _fields_of(session, procedure, instance.data)
    departments = dict(session.execute(select(Department.code, Department.name)).all())
    readable = services.record_for(actor, instance)
    privileged_fields = authz.privileged_of(instance, session).fields
    rows = []
    for name in instance.data:
        spec = fields.get(name)
        if spec is None or spec.type in (SECRET, IMAGE):
            continue
        label = record_label(spec)
        if name not in readable:
            rows.append(
                Row(label, f"Withheld: attorney-client privileged; {WHO_READS_PRIVILEGED} may read it.", withheld=True)
            )
            continue
        shown = _people(session, readable[name]) if spec.people else _value(readable[name], spec, departments)
        privileged = name in privileged_fields
        if privileged:
            label = f"{label} (privileged: {WHO_READS_PRIVILEGED} see this)"
        rows.append(Row(label, shown, privileged=privileged, link=_link(spec, shown)))
    return rows


def record_label(spec) -> str:
    """A field's label as a record reads it, without the form's instructions in brackets ("(one or more)",
    "(e-mailed as written)")."""
    return FORM_INSTRUCTION.sub("", spec.label) or spec.label


def _fields_of(session: Session, procedure, record: dict) -> dict:
    """Every field of a procedure's forms by name (start form first), for labelling its record."""
    fields = {spec.name: spec for spec in procedure.start_fields(session)}
    for form_key in sorted(procedure.form_keys()):
        for spec in procedure.task_fields(session, form_key, record):
            fields.setdefault(spec.name, spec)
    return fields


@dataclass
class RecordView:
    """A request's record as a page shows it: labelled rows, its images, and the records it is linked to."""

    instance: ProcessInstance
    rows: list[Row]
    images: list[tuple[str, str]]
    linked: list[RecordView] = field(default_factory=list)


def record_view(session: Session, actor: Actor, instance: ProcessInstance, *, with_linked: bool = True) -> RecordView:
    """The record, its images (label, attachment id) and, for a reviewer, linked records they may see."""
    procedure = procedures.get(instance.process_key)
    fields = _fields_of(session, procedure, instance.data)
    images = [
        (fields[name].label, value)
        for name, value in instance.data.items()
        if name in fields and fields[name].type == IMAGE and value
    ]
    linked = []
    if with_linked:
        linked = [
            record_view(session, actor, other, with_linked=False)
            for other in procedure.linked_records(session, instance)
            if authz.may_view(session, actor, other)
        ]
    return RecordView(instance, record_rows(session, actor, instance, fields), images, linked)


# Where the same decision reads differently in one procedure than in the others.
PROCEDURE_DECISION_NAMES = {
    "new_account_request": {"confirmed": "Confirmed the set-up"},
    "manager_change": {"confirmed": "Confirmed the access change"},
}


def decision_words(decision: str | None, instance: ProcessInstance) -> str:
    """A written decision in plain words; a comment denied before publication was never deleted."""
    words = {**DECISION_NAMES, **PROCEDURE_DECISION_NAMES.get(instance.process_key, {})}
    if instance.process_key == "content_removal" and (instance.data or {}).get("stage") == "pre_publication":
        words.update(deleted="Denied the content before publication", not_deleted="Did not deny the content")
    return words.get(decision, decision or "")


WITHHELD_DECISION = f"Withheld: attorney-client privileged; {WHO_READS_PRIVILEGED} may read it"


def _withheld(instance: ProcessInstance) -> authz.Privileged:
    """What the logged-in person may not read of the request (authz works it out once per request)."""
    from web.auth import current_actor  # web.auth's pages import this module

    return authz.withheld_from(current_actor(), instance)


def event_heading(event, instance: ProcessInstance) -> str:
    """What a history event says happened: the decision in words, or the action; a decision on the privileged
    consultation (the attorney's recommendation) only to those who may read it."""
    if event.decision and _withheld(instance).hides(event):
        return WITHHELD_DECISION
    if event.decision:
        return decision_words(event.decision, instance)
    if event.action == "mail_queued" and (event.detail or {}).get("by") == "post":
        return "Letter ready to print and mail"
    return ACTION_NAMES.get(event.action, event.action)


def event_comment(event, instance: ProcessInstance) -> str | None:
    """The written words of a history event, unless they belong to the privileged consultation."""
    return None if _withheld(instance).hides(event) else event.comment


def decisions_of(session: Session, instance: ProcessInstance) -> list:
    """The written decisions taken on the request so far, and the letters it sent, oldest first."""
    return [
        event for event in services.history_of(session, instance) if event.decision or event.action == "mail_queued"
    ]


def next_step_message(session: Session, instance: ProcessInstance) -> str:
    """What happens now: who the request waits for, how it ended, or that it is held at a failed step."""
    if instance.status == InstanceStatus.ERROR:
        return services.held_words(session, instance)
    if instance.status != InstanceStatus.RUNNING:
        return f"The request is {instance.status}: {(instance.outcome or instance.status).replace('_', ' ')}."
    waiting = [f"{task.name} ({role_name(task.role)})" for task in services.open_tasks_of(session, instance)]
    return f"It now waits for: {', '.join(waiting)}." if waiting else "It is being processed."


def outcome_category(instance: ProcessInstance) -> str:
    """How a message about what an action led to is shown: a held request is a warning, not a success."""
    return "warning" if instance.status == InstanceStatus.ERROR else "success"


def asked_by(instance: ProcessInstance) -> str:
    """Who filed a request: the staff member, or the member of the public by the name they wrote (a letter staff
    entered names its writer, and who entered it)."""
    name_field = procedures.get(instance.process_key).filer_name_field
    writer = (instance.data or {}).get(name_field) if name_field else None
    if instance.started_by is not None:
        staff = instance.started_by.display_name
        return f"{writer} (entered by {staff})" if writer else staff
    return f"{writer or 'Someone'} (member of the public)"


def via_web(instance: ProcessInstance) -> bool:
    """Whether the request came in through the public web form (marked so in the inbox and on its page)."""
    return (instance.data or {}).get("received_via") == "web"


def task_count(count: int) -> str:
    """ "1 task", "3 tasks", "no tasks"."""
    return f"{count or 'no'} task{'' if count == 1 else 's'}"


def inbox_words(mine: int, available: int) -> str:
    """The inbox's counts in words: "2 assigned to you · 1 you may take", or "nothing waiting"."""
    if not mine and not available:
        return "nothing waiting"
    return f"{mine} assigned to you · {available} you may take"


def platform_name(code: str) -> str:
    """A platform as it spells itself: youtube -> YouTube, linkedin -> LinkedIn, x -> X (Twitter)."""
    return PLATFORM_NAMES.get(code, code)


def form_heading(form) -> str:
    """What heads a task's form: a decision where there is a choice to make, a confirmation where the task only
    asks to confirm something was done, or the task's own work (writing a response) otherwise."""
    kinds = {field.type for field in form}
    if kinds & {"RadioField", "SelectField"}:
        return "Your decision"
    if "BooleanField" in kinds:
        return "Confirm"
    return "Complete this task"


def init_app(app) -> None:
    """Make the helpers available to every template."""
    app.jinja_env.filters.update(
        platform_name=platform_name, role_name=role_name, city_time=city_time, due_words=due_words, asked_by=asked_by
    )
    app.jinja_env.globals.update(
        TaskStatus=TaskStatus,
        MailStatus=MailStatus,
        PublicStatus=PublicStatus,
        is_overdue=is_overdue,
        via_web=via_web,
        action_names=ACTION_NAMES,
        decision_names=DECISION_NAMES,
        decision_words=decision_words,
        event_heading=event_heading,
        event_comment=event_comment,
        form_heading=form_heading,
        task_count=task_count,
        inbox_words=inbox_words,
    )
