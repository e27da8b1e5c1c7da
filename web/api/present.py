"""How engine records look in the API's JSON (names fixed by docs/api.md)."""

from __future__ import annotations

from engine.db.models import Account, AuditEvent, ProcessInstance, ProcessVersion, Task
from engine.db.statuses import InstanceStatus
from engine.people.users import Actor
from engine.requests import authz, incidents, services
from engine.time.clock import as_utc

STATUSES = tuple(InstanceStatus)


def _time(value):
    moment = as_utc(value)
    return moment.isoformat() if moment else None


def _username(user) -> str | None:
    """Who filed a request; null for one a member of the public filed through the public pages."""
    return user.username if user is not None else None


def me(actor: Actor) -> dict:
    """The caller."""
    return {
        "username": actor.username,
        "display_name": actor.display_name,
        "department": actor.department_code,
        "roles": actor.all_roles,
        "heads": sorted(actor.headed_department_codes),
    }


def process(version: ProcessVersion) -> dict:
    """A published procedure: the version of it in use."""
    return {"key": version.key, "name": version.name, "version": version.version_hash, "number": version.number}


def task(row: Task, form: list[dict] | None = None) -> dict:
    """A task, with its form when asked for."""
    out = {
        "id": row.id,
        "instance_id": row.instance_id,
        "process_key": row.instance.process_key,
        "name": row.name,
        "form_key": row.form_key,
        "role": row.role,
        "department": row.department.code if row.department else None,
        "assignee": row.assignee.username if row.assignee else None,
        "state": row.status,
        "title": row.instance.title,
        "requested_by": _username(row.instance.started_by),
        "created_at": _time(row.created_at),
        "due_at": _time(row.due_at),
    }
    if form is not None:
        out["form"] = {"fields": form}
    return out


def event(row: AuditEvent, withheld: bool = False) -> dict:
    """A history event: who, in which role, did what, with which written words (none of a privileged one)."""
    return {
        "at": _time(row.at),
        "actor": row.actor,
        "actor_name": row.actor_name,
        "role": row.role,
        "action": row.action,
        "task": row.task,
        "task_id": row.task_id,
        "decision": None if withheld else row.decision,
        "comment": None if withheld else row.comment,
    }


def instance_summary(row: ProcessInstance) -> dict:
    """An instance in a list."""
    return {
        "id": row.id,
        "key": row.process_key,
        "version": row.version_hash,
        "title": row.title,
        "status": row.status,
        "outcome": row.outcome,
        "started_by": _username(row.started_by),
        "started_at": _time(row.started_at),
        "ended_at": _time(row.ended_at),
    }


def instance(session, actor: Actor, row: ProcessInstance) -> dict:
    """An instance with its record, open tasks and history."""
    out = instance_summary(row)
    out["data"] = services.record_for(actor, row)
    out["tasks"] = [task(t) for t in services.open_tasks_of(session, row)]
    hidden = authz.withheld_from(actor, row, session)
    out["history"] = [event(e, hidden.hides(e)) for e in services.history_of(session, row)]
    out["version_number"] = row.model.number
    held = incidents.open_incident(session, row) if row.status == InstanceStatus.ERROR else None
    out["incident"] = incidents.describe(held) if held else None
    return out


def account(row: Account) -> dict:
    """A registry account with its managers (never its credentials)."""
    return {
        "id": row.id,
        "platform": row.platform,
        "name": row.name,
        "url": row.url,
        "department": row.department.code,
        "status": row.status,
        "investigative": row.investigative,
        "marked_as_city": row.marked_as_city,
        "links_official_site": row.links_official_site,
        "public_notice_linked": row.public_notice_linked,
        "has_credentials": row.credentials is not None,
        "managers": [
            {
                "username": m.user.username,
                "display_name": m.user.display_name,
                "approved_by": m.approved_by,
                "approved_at": _time(m.approved_at),
            }
            for m in row.managers
            if m.removed_at is None
        ],
    }
