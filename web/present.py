"""How engine records read on a page: labels, the city's local time, record rows, the decisions so far."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock, procedures, services
from engine.fields import SECRET
from engine.models import Department, ProcessInstance
from engine.roles import role_name
from forms import choice_label

CITY_TIME = ZoneInfo("America/Chicago")
ACTION_NAMES = {"started": "Submitted the request", "claimed": "Took the task", "released": "Gave the task back",
                "completed": "Completed", "credentials_revealed": "Viewed the credentials"}
DECISION_NAMES = {"approve": "Approved", "reject": "Rejected", "return": "Returned for changes",
                  "resubmit": "Resubmitted", "withdraw": "Withdrew the request", "confirmed": "Confirmed the set-up"}


def city_time(moment: datetime | None, with_time: bool = True) -> str:
    """A stored UTC time in the city's time zone, e.g. "Nov 21, 2026 2:05 PM"."""
    if moment is None:
        return ""
    local = clock.as_utc(moment).astimezone(CITY_TIME)
    text = f"{local:%b} {local.day}, {local.year}"
    return f"{text} {local:%I:%M %p}".replace(" 0", " ") if with_time else text


def is_overdue(due: datetime | None) -> bool:
    """Whether a due date has passed."""
    return due is not None and due < clock.utcnow()


def _value(value, field, departments: dict[str, str]) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_value(item, field, departments) for item in value)
    if value is None:
        return ""
    if field.name == "department":
        return departments.get(value, value)
    return choice_label(value) if field.choices else str(value)


def record_rows(session: Session, instance: ProcessInstance) -> list[tuple[str, str]]:
    """The request's record as its forms label it: (label, value) rows, choices and departments by name.

    Keys no form names (ids the engine keeps for itself) are left out.
    """
    procedure = procedures.get(instance.process_key)
    fields = {field.name: field for field in procedure.start_fields(session)}
    for form_key in sorted(procedure.form_keys()):
        for field in procedure.task_fields(session, form_key, instance.data):
            fields.setdefault(field.name, field)
    departments = dict(session.execute(select(Department.code, Department.name)).all())
    return [(fields[name].label, _value(value, fields[name], departments))
            for name, value in instance.data.items() if name in fields and fields[name].type != SECRET]


def decisions_of(session: Session, instance: ProcessInstance) -> list:
    """The written decisions taken on the request so far, oldest first."""
    return [event for event in services.history_of(session, instance) if event.decision]


def next_step_message(session: Session, instance: ProcessInstance) -> str:
    """What happens now: who the request waits for, or how it ended."""
    if instance.status != "running":
        return f"The request is {instance.status}: {(instance.outcome or instance.status).replace('_', ' ')}."
    waiting = [f"{task.name} ({role_name(task.role)})" for task in services.open_tasks_of(session, instance)]
    return f"It now waits for: {', '.join(waiting)}." if waiting else "It is being processed."


def init_app(app) -> None:
    """Make the helpers available to every template."""
    app.jinja_env.filters.update(role_name=role_name, city_time=city_time)
    app.jinja_env.globals.update(is_overdue=is_overdue, action_names=ACTION_NAMES, decision_names=DECISION_NAMES)
