"""The `timer` table mirrors each request's waiting timers, so that the scheduler asks the database what is due.

The rows are rewritten in the transaction that changes the request (engine/requests/services.py); the scheduler
(engine/time/timers.py) claims the due ones.
"""

from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.db.models import ProcessInstance, Task, Timer
from engine.db.statuses import TaskStatus
from engine.diagrams.task_specs import boundary_events_of, is_timer
from engine.time import clock
from engine.versions.stored import spec_of_instance


def waiting_timers(workflow) -> list:
    """The workflow's timers that wait for their time (SpiffWorkflow tasks)."""
    return [t for t in workflow.get_tasks(state=TaskState.WAITING) if is_timer(t.task_spec)]


def mirror_timers(session: Session, instance: ProcessInstance, workflow, now: datetime) -> None:
    """Rewrite the request's timer rows: a timer no longer waiting has fired (or was cancelled), a new one is due."""
    waiting = {str(t.id): t for t in waiting_timers(workflow)}
    timers = {
        row.id: row
        for row in session.scalars(select(Timer).where(Timer.instance_id == instance.id, Timer.fired_at.is_(None)))
    }
    for timer_id, row in timers.items():
        if timer_id not in waiting:
            row.fired_at = now
    for timer_id, spiff_task in waiting.items():
        due = spiff_task.internal_data.get("event_value")
        if timer_id not in timers and isinstance(due, str):
            due_at = clock.as_utc(datetime.fromisoformat(due))
            assert due_at is not None  # as_utc gives None only for None
            session.add(
                Timer(
                    id=timer_id,
                    instance_id=instance.id,
                    element_id=spiff_task.task_spec.bpmn_id,
                    due_at=due_at.replace(tzinfo=None),
                )
            )


def close_timers(session: Session, instance: ProcessInstance) -> None:
    """Mark every waiting timer of a request that no longer runs as done: nothing fires on it any more."""
    session.execute(
        update(Timer).where(Timer.instance_id == instance.id, Timer.fired_at.is_(None)).values(fired_at=clock.utcnow())
    )


def task_timers(session: Session, task: Task) -> list[tuple[str, datetime]]:
    """The timers still waiting on an open task (its reminder, its escalation): (name, due_at), soonest first."""
    if task.status != TaskStatus.OPEN:
        return []
    loaded = spec_of_instance(task.instance)
    names = {}
    for spec in boundary_events_of(loaded, task.element_id):
        names[spec.bpmn_id] = spec.bpmn_name or spec.bpmn_id
    if not names:
        return []
    rows = session.execute(
        select(Timer.element_id, Timer.due_at)
        .where(Timer.instance_id == task.instance_id, Timer.fired_at.is_(None), Timer.element_id.in_(sorted(names)))
        .order_by(Timer.due_at)
    ).all()
    return [(names[row.element_id], row.due_at) for row in rows]
