"""Who may act on a task and who may see an instance: the policy's rules, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session, object_session

from engine.db.models import ProcessInstance, Task
from engine.db.statuses import TaskStatus
from engine.errors import NotAllowed
from engine.people.roles import (
    ADMIN,
    CITY_ADMINISTRATOR,
    CITY_ATTORNEY,
    COMMUNICATIONS_MANAGER,
    DEPARTMENT_HEAD,
    RECORDS_OFFICER,
    REQUESTER,
    SOCIAL_MEDIA_MANAGER,
)
from engine.people.users import Actor


def require_admin(actor: Actor, what: str = "do this") -> None:
    """Raise NotAllowed unless the actor is an administrator: "Only administrators can {what}."."""
    if ADMIN not in actor.roles:
        raise NotAllowed(f"Only administrators can {what}.")


def may_act(actor: Actor, task: Task, instance: ProcessInstance) -> bool:
    """Whether the actor holds the task's lane: the requester, the head of that department, or the role."""
    if task.role == REQUESTER:
        return actor.id is not None and instance.started_by_id == actor.id
    if task.role == DEPARTMENT_HEAD:
        return task.department_id is not None and task.department_id in actor.headed_department_ids
    if task.role == SOCIAL_MEDIA_MANAGER:
        # The registry says who manages an account: the policy's "administrative access to" it.
        return task.account_id is not None and task.account_id in actor.managed_account_ids
    return task.role in actor.roles


def require_may_act(actor: Actor, task: Task, instance: ProcessInstance) -> None:
    """Raise NotAllowed, saying whose task it is, unless the actor may act on it."""
    if may_act(actor, task, instance):
        return
    if task.role == REQUESTER:
        raise NotAllowed("Only the person who made this request can do this task.")
    if task.role == DEPARTMENT_HEAD:
        code = task.department.code if task.department else "the department concerned"
        raise NotAllowed(f"Only the head of {code} can do this task.")
    if task.role == SOCIAL_MEDIA_MANAGER:
        raise NotAllowed("Only a social media manager of this account can do this task.")
    raise NotAllowed(f"This task needs the role {task.role}.")


def _eligible_task_clause(actor: Actor) -> ColumnElement[bool]:
    """SQL: a task row the actor may act on (by role or headship), whatever the instance."""
    roles = sorted(actor.roles - {SOCIAL_MEDIA_MANAGER})
    clauses: list[ColumnElement[bool]] = [Task.role.in_(roles)] if roles else []
    if actor.headed_department_ids:
        clauses.append(and_(Task.role == DEPARTMENT_HEAD, Task.department_id.in_(sorted(actor.headed_department_ids))))
    if actor.managed_account_ids:
        clauses.append(and_(Task.role == SOCIAL_MEDIA_MANAGER, Task.account_id.in_(sorted(actor.managed_account_ids))))
    return or_(*clauses) if clauses else false()


def visible_instances_clause(actor: Actor) -> ColumnElement[bool]:
    """SQL: the instances the actor may see.

    Their own requests; those where they hold (or held) a task's lane or completed one;
    all unrestricted ones for the Communications Manager, the Records Officer and the City Administrator
    (who hears of the Communications Manager's overdue tasks);
    restricted (investigative) ones only for police roles among those.
    """
    if actor.id is None:
        return false()  # a member of the public: "== actor.id" would read IS NULL; they see by tracking code only
    involved = exists(
        select(Task.id).where(
            Task.instance_id == ProcessInstance.id,
            or_(_eligible_task_clause(actor), Task.completed_by_id == actor.id),
        )
    )
    overseer = bool(actor.roles & {COMMUNICATIONS_MANAGER, RECORDS_OFFICER, CITY_ADMINISTRATOR})
    unrestricted = true() if overseer else involved
    restricted_ok = involved if actor.is_police else false()
    return or_(
        ProcessInstance.started_by_id == actor.id,
        and_(ProcessInstance.restricted.is_(False), unrestricted),
        and_(ProcessInstance.restricted.is_(True), restricted_ok),
    )


def may_view(session: Session, actor: Actor, instance: ProcessInstance) -> bool:
    """Whether the actor may see this instance."""
    return (
        session.scalar(
            select(ProcessInstance.id).where(ProcessInstance.id == instance.id, visible_instances_clause(actor))
        )
        is not None
    )


def require_may_view(session: Session, actor: Actor, instance: ProcessInstance) -> None:
    """Raise NotAllowed unless the actor may see this instance."""
    if not may_view(session, actor, instance):
        raise NotAllowed("You may not see this request.")


def available_tasks_clause(actor: Actor):
    """SQL: open, unclaimed tasks the actor may claim (requester tasks are assigned, never pooled).

    The pool's conditions sit inside each branch of the OR, so each branch is a search of ix_task_pool
    (SQLite uses a partial index inside an OR only when the branch itself implies the index's WHERE).
    """
    pool = (Task.status == TaskStatus.OPEN, Task.assignee_id.is_(None))
    roles = sorted(actor.roles - {SOCIAL_MEDIA_MANAGER})
    branches = [and_(*pool, Task.role.in_(roles))] if roles else []
    if actor.headed_department_ids:
        branches.append(
            and_(*pool, Task.role == DEPARTMENT_HEAD, Task.department_id.in_(sorted(actor.headed_department_ids)))
        )
    if actor.managed_account_ids:
        branches.append(
            and_(*pool, Task.role == SOCIAL_MEDIA_MANAGER, Task.account_id.in_(sorted(actor.managed_account_ids)))
        )
    return or_(*branches) if branches else false()


PRIVILEGED_READERS = frozenset({CITY_ATTORNEY, COMMUNICATIONS_MANAGER})


def may_read_privileged(actor: Actor) -> bool:
    """Whether the actor may read attorney-client privileged advice: the City Attorney and the Communications
    Manager only (not the Records Officer, not the person who entered the dispute)."""
    return bool(actor.roles & PRIVILEGED_READERS)


@dataclass(frozen=True)
class Privileged:
    """What attorney-client privilege (Minn. Stat. 13.393) withholds of one request: every field of a form that
    holds privileged advice (the advice and the recommendation given with it) and the decisions taken on it."""

    fields: frozenset[str] = frozenset()
    forms: frozenset[str] = frozenset()

    def hides(self, event) -> bool:
        """Whether a history event is a decision taken on a privileged consultation."""
        return bool(self.forms) and (event.detail or {}).get("form_key") in self.forms


NOTHING_PRIVILEGED = Privileged()


def privileged_of(instance: ProcessInstance, session: Session | None = None) -> Privileged:
    """The privileged consultation of a request: each form holding a privileged field is privileged as a whole."""
    from engine import procedures  # a procedure (removal_appeal) imports this module

    procedure = procedures.get(instance.process_key)
    if not procedure.privileged_fields:
        return NOTHING_PRIVILEGED
    reading = session or object_session(instance)
    if reading is None:
        raise ValueError(f"Request {instance.id} is read for privilege outside any session.")
    # Worked out once per unit of work: a page reads it for the record, the rows and the history.
    known = reading.info.setdefault("civicflow_privileged", {})
    if instance.id not in known:
        fields, forms = set(procedure.privileged_fields), set()
        for form_key in sorted(procedure.form_keys()):
            names = {spec.name for spec in procedure.task_fields(reading, form_key, dict(instance.data or {}))}
            if names & procedure.privileged_fields:
                forms.add(form_key)
                fields |= names
        known[instance.id] = Privileged(frozenset(fields), frozenset(forms))
    return known[instance.id]


def withheld_from(actor: Actor, instance: ProcessInstance, session: Session | None = None) -> Privileged:
    """What this actor may not read of the request: its privileged consultation, unless they may read privilege."""
    return NOTHING_PRIVILEGED if may_read_privileged(actor) else privileged_of(instance, session)
