"""Incidents: a step of a diagram failed, and the request is held there until an administrator acts.

Whatever SpiffWorkflow raises while it runs a request's steps (an expression, a script, a gateway, a
multi-instance, a service task, a timer value), the action that led to it is kept: the services save the
filing or the decision, the workflow at the failing element (SpiffWorkflow's ERROR state) and the request in
status `error`, and this module records the incident and tells the administrators. The request page, the
Admin → Incidents page and `GET /api/v1/incidents` read it back. An administrator moves the request to a fixed
version (engine/versions/migration.py, which leaves the incident open) and retries it (services.retry_instance):
a retry that gets past the step resolves the incident; so does a cancellation with a written reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import TracebackType

from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from engine.db.models import Incident, ProcessInstance, User, UserRole
from engine.db.statuses import IncidentStatus
from engine.errors import Invalid, NotFound
from engine.mail import letters, outbox
from engine.people.roles import ADMIN
from engine.people.users import Actor
from engine.records import audit
from engine.requests import authz
from engine.settings import settings_of
from engine.time import clock

INCIDENT_LETTER = "incident"
# What the request's history says, to everyone who may read it; the incident itself holds the technical message.
HELD_COMMENT = (
    "A step of the procedure's diagram failed; the request is held there and the administrators have been told."
)
MESSAGE_LENGTH = 2000
# What triggered the failing step.
STARTED, COMPLETED, TIMER, RETRIED = "started", "completed", "timer", "retried"


@dataclass(frozen=True)
class Failure:
    """A failed step, in plain words: where, what it said, which data names it had."""

    task_id: str | None
    element_id: str | None
    element_name: str | None
    message: str
    data_names: tuple[str, ...] = ()


def text_of(exc: BaseException) -> str:
    """The exception's own words; its type alone when its text cannot be formatted (or is empty)."""
    try:
        text = str(exc).strip()
    except Exception:  # noqa: BLE001 - an exception whose own __str__ fails is one of the failures we report
        text = ""
    name = type(exc).__name__
    if not text:
        return f"{name} (its message could not be shown)"
    if isinstance(exc, SpiffWorkflowException):  # SpiffWorkflow's wrapper names the error inside: "ValueError:..."
        text = re.sub(r"^(\w+):(?=\S)", r"\1: ", text)
    elif name not in text:
        text = f"{name}: {text}"
    return re.sub(r"\.{2,}$", ".", text)  # SpiffWorkflow ends its text with ". " after the error's own full stop


def _innermost_task(traceback: TracebackType | None) -> SpiffTask | None:
    """The task SpiffWorkflow was working on deepest in the traceback (an update or a run of a task spec)."""
    found = None
    while traceback is not None:
        names = traceback.tb_frame.f_locals
        for name in ("my_task", "task", "self"):
            value = names.get(name)
            if isinstance(value, SpiffTask):
                found = value
                break
        traceback = traceback.tb_next
    return found


def _failing_task(workflow, exc: BaseException) -> SpiffTask | None:
    task = getattr(exc, "task", None)
    if isinstance(task, SpiffTask):
        return task
    in_error = workflow.get_tasks(state=TaskState.ERROR)
    if in_error:
        return in_error[0]
    return _innermost_task(exc.__traceback__)


def _name_of(workflow, element_id: str) -> str | None:
    """The element's name from any spec of it (a multi-instance's own spec carries none; its child's does)."""
    for spec in workflow.spec.task_specs.values():
        if getattr(spec, "bpmn_id", None) == element_id and getattr(spec, "bpmn_name", None):
            return spec.bpmn_name
    return None


def failure_of(workflow, exc: BaseException) -> Failure:
    """Describe what failed: the element (from the exception, the task in ERROR, or the traceback) and why."""
    task = _failing_task(workflow, exc)
    text = text_of(exc)
    line = getattr(exc, "line_number", None)
    if line:
        text = f"{text} (line {line})"
    if task is None:
        return Failure(None, None, None, f"The procedure's diagram failed: {text}"[:MESSAGE_LENGTH])
    spec = task.task_spec
    element_id = getattr(spec, "bpmn_id", None) or spec.name
    element_name = getattr(spec, "bpmn_name", None) or _name_of(workflow, element_id) or element_id
    names = tuple(sorted(name for name in task.data if not name.startswith("_")))
    message = f'The step "{element_name}" failed: {text}'[:MESSAGE_LENGTH]
    return Failure(str(task.id), element_id, element_name, message, names)


def describe(incident: Incident) -> dict:
    """The incident as the instance JSON carries it."""
    return {
        "id": incident.id,
        "element_id": incident.element_id,
        "element_name": incident.element_name,
        "message": incident.message,
        "at": incident.at.isoformat(),
    }


def listed(incident: Incident) -> dict:
    """The incident as `GET /api/v1/incidents` lists it."""
    return {
        **describe(incident),
        "instance_id": incident.instance_id,
        "process_key": incident.instance.process_key,
        "version": incident.model.number,
        "during": incident.during,
        "data_names": list(incident.data_names or []),
        "attempts": incident.attempts,
        "status": incident.status,
        "resolution": incident.resolution,
        "reason": incident.reason,
    }


def open_incident(session: Session, instance: ProcessInstance) -> Incident | None:
    """The request's open incident, if it is held."""
    return session.scalar(
        select(Incident)
        .where(Incident.instance_id == instance.id, Incident.status == IncidentStatus.OPEN)
        .order_by(Incident.id.desc())
        .limit(1)
    )


def _administrators(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User).join(UserRole).where(UserRole.role == ADMIN, User.active.is_(True)).order_by(User.id)
        )
    )


def _tell_administrators(session: Session, instance: ProcessInstance, incident: Incident) -> None:
    """Mail every administrator, through the outbox, with the link to the incident."""
    addresses = tuple(u.email for u in _administrators(session) if u.email)
    if not addresses:
        return
    base = letters.base_url(settings_of(session))
    about = f"request {instance.id}" if instance.restricted else f"request {instance.id}: {instance.title}"
    letter = outbox.Letter(
        recipients=addresses,
        subject=f"Held at a failed step: request {instance.id}",
        body=(
            "Hello,\n\nA step of a procedure's diagram failed, and civicflow is holding the request there. "
            "Nothing anyone wrote was lost.\n\n"
            f"About: {about}\n"
            f"Procedure: {instance.process_key}, version {incident.model.number}\n"
            f"Step: {incident.element_name or 'unknown'} ({incident.element_id or 'no element'})\n"
            f"What happened: {incident.message}\n\n"
            f"See the incident, fix the diagram, move the request and retry: {base}/admin/incidents/{incident.id}\n\n"
            "You receive this because you are an administrator of civicflow.\n"
        ),
    )
    # Not one of the request's letters (its requester's page lists those): the history has the incident itself.
    outbox.queue(session, letter, name=INCIDENT_LETTER, instance_id=None)


def hold(session: Session, instance: ProcessInstance, failure: Failure, during: str) -> Incident:
    """Record the failure as the request's incident (a new one tells the administrators); the caller flushed."""
    incident = open_incident(session, instance)
    now = clock.utcnow()
    if incident is None:
        incident = Incident(
            instance_id=instance.id,
            model_id=instance.model_id,
            during=during,
            at=now,
            attempts=1,
            status=IncidentStatus.OPEN,
        )
        session.add(incident)
        fresh = True
    else:
        incident.attempts += 1
        incident.at = now
        fresh = False
    incident.model_id = instance.model_id
    incident.task_id = failure.task_id
    incident.element_id = failure.element_id
    incident.element_name = failure.element_name
    incident.message = failure.message
    incident.data_names = list(failure.data_names)
    session.flush()
    audit.append(
        session,
        None,
        "incident",
        instance_id=instance.id,
        task=failure.element_name,
        comment=HELD_COMMENT,
        detail={"incident": incident.id, "element_id": failure.element_id, "during": during},
    )
    if fresh:
        _tell_administrators(session, instance, incident)
    return incident


def resolve(session: Session, actor: Actor, incident: Incident, resolution: str, reason: str | None = None) -> None:
    """Close the incident: the request moved on (`retried`) or was cancelled (with the reason)."""
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = clock.utcnow()
    incident.resolved_by_id = actor.id
    incident.resolution = resolution
    incident.reason = reason


STATUSES = tuple(status.value for status in IncidentStatus)


def list_incidents(session: Session, actor: Actor, status: str | None = None) -> list[Incident]:
    """The incidents, newest first (administrators only); `status` is open or resolved."""
    authz.require_admin(actor, "see incidents")
    query = select(Incident).options(joinedload(Incident.instance), joinedload(Incident.model))
    if status:
        if status not in STATUSES:
            raise Invalid("Unknown incident status.", {"status": [f"Use one of: {', '.join(STATUSES)}."]})
        query = query.where(Incident.status == status)
    return list(session.scalars(query.order_by(Incident.id.desc()).limit(500)))


def get_incident(session: Session, actor: Actor, incident_id: int) -> Incident:
    """One incident (administrators only)."""
    authz.require_admin(actor, "see incidents")
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"No incident {incident_id}.")
    return incident
