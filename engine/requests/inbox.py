"""The inbox: the open tasks assigned to a person or that they may claim, as one indexed query on the task mirror."""

from __future__ import annotations

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session, defer, joinedload

from engine.db.models import ProcessInstance, Task, User
from engine.db.statuses import TaskStatus
from engine.errors import Invalid
from engine.people.users import Actor
from engine.requests import authz
from engine.time import clock


def _task_scope_clause(actor: Actor, scope: str):
    if actor.id is None:
        return false()  # a member of the public has no tasks ("assignee_id == None" would be every unclaimed one)
    if scope == "mine":
        return and_(Task.status == TaskStatus.OPEN, Task.assignee_id == actor.id)
    if scope == "available":
        return authz.available_tasks_clause(actor)
    raise Invalid("Unknown scope.", {"scope": ['Use "mine" or "available".']})


def list_tasks(
    session: Session,
    actor: Actor,
    scope: str,
    *,
    key: str | None = None,
    overdue: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Task], int]:
    """Open tasks assigned to the actor ('mine') or that they may claim ('available'), oldest first.

    One indexed query with its request and requester joined in; a count only when there is more than a page.
    """
    query = select(Task).where(_task_scope_clause(actor, scope))
    if key:
        query = query.join(ProcessInstance).where(ProcessInstance.process_key == key)
    if overdue:
        query = query.where(Task.due_at < clock.utcnow())
    # The page shows the request's title and who asked: not its workflow state (kilobytes a row), nor the
    # users' roles.
    instance = joinedload(Task.instance).options(defer(ProcessInstance.workflow_state))
    rows = list(
        session.scalars(
            query.options(
                instance.joinedload(ProcessInstance.started_by).lazyload(User.role_rows),
                joinedload(Task.department),
                joinedload(Task.assignee).lazyload(User.role_rows),
            )
            .order_by(Task.created_at, Task.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    if len(rows) < per_page and (rows or page == 1):
        return rows, (page - 1) * per_page + len(rows)  # the last page: its length gives the total
    return rows, session.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def count_open_tasks(session: Session, actor: Actor) -> tuple[int, int]:
    """How many open tasks are assigned to the actor and how many they may claim, in one indexed query."""
    mine = _task_scope_clause(actor, "mine")
    available = _task_scope_clause(actor, "available")
    row = session.execute(
        select(func.count().filter(mine), func.count().filter(available)).where(or_(mine, available))
    ).one()
    return row[0], row[1]
