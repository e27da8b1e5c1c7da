"""Moving running requests to another version of their procedure: why one cannot move, and the move itself.

An administrator who published a fixed diagram moves the requests of the old version to it, one
(`migrate_instance`) or all that can move (`migrate_all`), then retries a held one. A request moves whole or
not at all. It cannot move, and a Problem names each step that stops it, when it waits (or is held) at a step
the new version removed, at a user task whose lane, form or kind changed there (the person working it would
see a different task), at a step the new version attaches timers or events to that it had none of, or when it
has passed a step the new version removed that the steps where it waits still hang from.

The alignment of old steps with new ones is SpiffWorkflow 3.2's own (`SpiffWorkflow.bpmn.util.diff`); what
happens to each task once aligned is decided here (see `migrate_instance`).
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin, BoundaryEventSplit, EventSplit, _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition, TimeDateEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.db.models import ProcessInstance, ProcessVersion, Task, Timer
from engine.db.statuses import InstanceStatus, TaskStatus
from engine.diagrams import serialization
from engine.diagrams.loading import LoadedSpec
from engine.diagrams.problems import Problem
from engine.diagrams.task_specs import form_key_of
from engine.errors import Conflict, MigrationRefused, NotFound
from engine.people.users import Actor
from engine.records import audit
from engine.requests.authz import require_admin
from engine.settings import settings_of
from engine.time import clock, deadlines, timer_mirror
from engine.time.deadlines import ClockDuration, ClockTimeDate
from engine.versions import stored
from engine.versions.stored import spec_of, spec_of_instance

MOVE_REQUESTS = "move requests to another version"
MOVABLE = (InstanceStatus.RUNNING, InstanceStatus.ERROR)

# Where a request is: a step it waits at, runs, or is held at.
_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
# What SpiffWorkflow only predicts: steps the request has not reached.
_UNREACHED = TaskState.PREDICTED_MASK | TaskState.FUTURE
# A step's attributes whose change leaves a waiting step as it is: its names, its lane, the arrows around it.
_CARRIED = frozenset(
    {
        "name",
        "bpmn_id",
        "bpmn_name",
        "description",
        "documentation",
        "lane",
        "inputs",
        "outputs",
        "cond_task_specs",
        "default_task_spec",
    }
)

# The spec converters of the state serializer (engine/diagrams/serialization.py), taught civicflow's clocked
# timers: without them a timer's definition is compared as an object whose equality ignores its value, and a
# changed reminder time would not count as a change.
_SPEC_REGISTRY = BpmnWorkflowSerializer.configure(
    {
        **SPIFF_CONFIG,
        ClockTimeDate: SPIFF_CONFIG[TimeDateEventDefinition],
        ClockDuration: SPIFF_CONFIG[DurationTimerEventDefinition],
    }
)


@lru_cache(maxsize=32)
def _spec_diff(original: Any, new: Any) -> SpecDiff:
    """SpiffWorkflow's alignment of two process specs (parsed specs are cached, so a batch compares them once)."""
    return SpecDiff(_SPEC_REGISTRY, original, new)


@dataclass
class _Part:
    """One workflow of a request (the top one or a sub-process) against its process in the target version."""

    workflow: Any
    spec_diff: SpecDiff
    diff: WorkflowDiff
    new_spec: Any

    def new(self, task) -> Any:
        """The target version's spec of a task, or None where the new version removed its step."""
        return self.diff.alignment.get(task)

    def changes(self, task) -> set[str]:
        """The attributes of a task's step that differ in the target version."""
        return set(self.spec_diff.comparisons.get(task.task_spec) or [])


@dataclass
class _Plan:
    """What the move does to a request's tasks, or the problems that stop it."""

    number: int
    parts: list[_Part] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    drop: list = field(default_factory=list)  # steps the new version removed, not reached or done with
    reset: list = field(default_factory=list)  # waiting steps the new version changed: started again
    keep: list = field(default_factory=list)  # where the request is: kept as they are, what follows predicted again
    attach: list = field(default_factory=list)  # (boundary split, event spec) new on a step the request waits at

    def refuse(self, message: str, spec) -> None:
        """Note a problem at a step, named as a person sees it in the drawing."""
        element, name = _element_of(spec)
        self.problems.append(Problem(message, element, name))


def _element_of(spec) -> tuple[str | None, str | None]:
    """The BPMN element a person sees for a task spec: a boundary split is its attached task."""
    if isinstance(spec, EventSplit):
        spec = next((s for s in spec.outputs if not isinstance(s, BoundaryEvent)), spec)
    element = getattr(spec, "bpmn_id", None) or spec.name
    return element, getattr(spec, "bpmn_name", None) or element


def _named(spec) -> str:
    return _element_of(spec)[1] or spec.name


def _frontier(task) -> bool:
    """Whether the request is at this task: it waits, runs or is held there, or it was reached but not updated."""
    if task.has_state(_LIVE):
        return True
    return task.state == TaskState.FUTURE and task.parent is not None and task.parent.state == TaskState.COMPLETED


def _merely_joining(task) -> bool:
    """A join that waits for the main path in a branch that is done (a reminder that went out): not a step.

    `_EndJoin` is SpiffWorkflow's join before a process's end; it has no public name.
    """
    return task.state == TaskState.WAITING and isinstance(task.task_spec, (BoundaryEventJoin, _EndJoin))


def _unreached(task) -> bool:
    return task.has_state(_UNREACHED) and not _frontier(task)


def _main_task(split_task):
    """The task a boundary split's events are attached to."""
    return next((t for t in split_task.children if not isinstance(t.task_spec, BoundaryEvent)), None)


# ---- the plan ----------------------------------------------------------------------------------------


def _parts(workflow, target: LoadedSpec, plan: _Plan) -> None:
    """Align the request's workflow and each of its sub-processes with the target version's processes."""
    spec_diff = _spec_diff(workflow.spec, target.spec)
    plan.parts.append(_Part(workflow, spec_diff, WorkflowDiff(workflow, spec_diff), target.spec))
    for sp_id, subprocess in workflow.subprocesses.items():
        new_spec = target.subprocess_specs.get(subprocess.spec.name)
        if new_spec is None:
            parent = workflow.get_task_from_id(sp_id)
            plan.refuse(
                f'The request is inside "{_named(parent.task_spec)}", whose process version {plan.number} '
                "no longer has.",
                parent.task_spec,
            )
            continue
        sub_diff = _spec_diff(subprocess.spec, new_spec)
        plan.parts.append(_Part(subprocess, sub_diff, WorkflowDiff(subprocess, sub_diff), new_spec))


def _plan_removed(plan: _Plan, part: _Part, task) -> None:
    """A task whose step the new version removed: dropped if the request has not reached it or is done with it."""
    spec = task.task_spec
    if _unreached(task):
        plan.drop.append(task)
    elif _frontier(task):
        if task.state == TaskState.WAITING and isinstance(spec, BoundaryEvent):
            plan.drop.append(task)  # a timer or event on a step that stays: it is simply no longer attached
        else:
            where = "is held at" if task.state == TaskState.ERROR else "waits at"
            plan.refuse(f'The request {where} "{_named(spec)}", which version {plan.number} no longer has.', spec)
    else:
        waiting = [d for d in list(task)[1:] if _frontier(d) and not _merely_joining(d)]
        if not waiting:
            plan.drop.append(task)
        elif any(part.new(d) is not None for d in waiting):
            if isinstance(spec, EventSplit):
                message = (
                    f'Version {plan.number} takes every timer and event off "{_named(spec)}", where the request '
                    "waits: a waiting step keeps the ones it started with."
                )
            else:
                message = (
                    f'The request has passed "{_named(spec)}", which version {plan.number} no longer has, and '
                    "the steps where it is now cannot be carried over without it."
                )
            plan.refuse(message, spec)
        # else every step where it waits was removed too, and each of those is named


def _check_user_task(plan: _Plan, task, new) -> None:
    """A waiting user task carries over only as the same task for the person working it."""
    old, name = task.task_spec, _named(task.task_spec)
    if type(old) is not type(new):
        plan.refuse(f'The request waits at "{name}", which is a different kind of step in version {plan.number}.', old)
    elif old.lane != new.lane:
        plan.refuse(
            f'The request waits at "{name}", which version {plan.number} gives to another lane '
            f"({new.lane} instead of {old.lane}): the person working it would see a different task.",
            old,
        )
    elif form_key_of(old) != form_key_of(new):
        plan.refuse(
            f'The request waits at "{name}", whose form is different in version {plan.number} '
            f"({form_key_of(new)} instead of {form_key_of(old)}): the person working it would see a different task.",
            old,
        )


def _plan_frontier(plan: _Plan, part: _Part, task, new) -> None:
    """A step the request is at, kept in the new version: checked, then carried over or started again."""
    if task.state == TaskState.READY and task.task_spec.manual:
        _check_user_task(plan, task, new)
    splits = [s for s in new.inputs if isinstance(s, EventSplit)]
    parent = part.new(task.parent) if task.parent is not None else None
    if splits and parent not in splits:
        plan.refuse(
            f'Version {plan.number} attaches timers or events to "{_named(task.task_spec)}", where the request '
            "already waits: they can only start with the step.",
            task.task_spec,
        )
    automatic = task.has_state(TaskState.READY | TaskState.WAITING) and not task.task_spec.manual
    if automatic and part.changes(task) - _CARRIED:
        plan.reset.append(task)
    else:
        plan.keep.append(task)


def _plan_split(plan: _Plan, part: _Part, task, new) -> None:
    """Events the new version attaches to a step the request waits at start now (e.g. a new reminder)."""
    main = _main_task(task)
    if main is None or not _frontier(main):
        return
    present = {part.new(child) for child in task.children}
    plan.attach.extend((task, spec) for spec in new.outputs if spec not in present and isinstance(spec, BoundaryEvent))


def _plan(workflow, target: LoadedSpec, number: int) -> _Plan:
    """Decide, task by task, what the move to the target version does, or why it cannot."""
    plan = _Plan(number)
    _parts(workflow, target, plan)
    for part in plan.parts:
        for task in part.workflow.get_tasks(skip_subprocesses=True):
            new = part.new(task)
            if new is None:
                _plan_removed(plan, part, task)
            elif _frontier(task):
                _plan_frontier(plan, part, task, new)
            elif task.state == TaskState.COMPLETED and isinstance(new, BoundaryEventSplit):
                _plan_split(plan, part, task, new)
    return plan


# ---- the move ----------------------------------------------------------------------------------------


def _drop(task) -> None:
    """Take a task and what follows it out of the tree (and out of the events its workflow waits for)."""
    workflow = task.workflow
    if task.id not in workflow.tasks:
        return  # dropped with an ancestor
    for gone in list(task):
        workflow.top_workflow.event_manager.remove_task(gone)
    workflow._remove_task(task.id)


def _predict_again(task) -> None:
    """Predict what follows a task from its new step, keeping the task itself (state, data, due date) as it is.

    Its unreached children go, and are predicted again as SpiffWorkflow's reset_branch predicts them: from
    the task as if about to run.
    """
    if task.id not in task.workflow.tasks:
        return
    for child in list(task.children):
        if child.has_state(_UNREACHED):
            _drop(child)
    state = task.state
    task._state = TaskState.FUTURE
    try:
        task.task_spec._predict(task, mask=_UNREACHED)
    finally:
        task._state = state


def _attach(split_task, spec) -> None:
    """Start an event the new version attaches to a waiting step, as the boundary split starts its events."""
    child = split_task._add_child(spec, TaskState.MAYBE)
    spec._predict(child)
    child._set_state(TaskState.WAITING)
    spec._update(child)


def _apply(plan: _Plan, workflow, target: LoadedSpec) -> None:
    """Move the workflow's tasks onto the target version's steps, as planned."""
    for part in plan.parts:
        part.workflow.spec = part.new_spec
        for task in part.workflow.tasks.values():
            new = part.new(task)
            if new is not None:
                task.task_spec = new
    workflow.subprocess_specs = target.subprocess_specs
    for task in plan.drop:
        _drop(task)
    for split_task, spec in plan.attach:
        _attach(split_task, spec)
    for task in plan.reset:
        if task.id in task.workflow.tasks:
            task.reset_branch(deepcopy(task.data))
    for task in plan.keep:
        _predict_again(task)
    for part in plan.parts:
        if part.workflow.last_task is not None and part.workflow.last_task.id not in part.workflow.tasks:
            part.workflow.last_task = None


# ---- the mirrors -------------------------------------------------------------------------------------


def _task_of(workflow, task_id: str):
    """The workflow's task with this id (in a sub-process too), or None."""
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except TaskNotFoundException:
        return None  # a row written meanwhile by someone else: the request's version check refuses the move


def _mirror_tasks(session: Session, instance: ProcessInstance, workflow, now: datetime) -> None:
    """Open task rows follow their tasks' new steps; a row whose task the move closed is cancelled.

    No user task becomes ready in a move (waiting user tasks are kept, never started again), so no row is new.
    """
    rows = session.scalars(select(Task).where(Task.instance_id == instance.id, Task.status == TaskStatus.OPEN))
    for row in rows:
        spiff_task = _task_of(workflow, row.id)
        if spiff_task is None or spiff_task.state != TaskState.READY or not spiff_task.task_spec.manual:
            row.status, row.completed_at = TaskStatus.CANCELLED, now
            continue
        spec = spiff_task.task_spec
        row.element_id, row.name = spec.bpmn_id, spec.bpmn_name or spec.bpmn_id


def _mirror_timers(session: Session, instance: ProcessInstance, workflow, now: datetime) -> None:
    """Timer rows follow the waiting timers: closed, new, or moved to the due time a restarted timer now has."""
    timer_mirror.mirror_timers(session, instance, workflow, now)
    for spiff_task in timer_mirror.waiting_timers(workflow):
        row = session.get(Timer, str(spiff_task.id))
        if row is None:
            continue  # a timer without a due time has no row (timer_mirror)
        due_at = clock.as_utc(datetime.fromisoformat(spiff_task.internal_data["event_value"]))
        assert due_at is not None  # as_utc gives None only for None
        row.due_at, row.element_id = due_at.replace(tzinfo=None), spiff_task.task_spec.bpmn_id


# ---- the services ------------------------------------------------------------------------------------


def _refusal(instance: ProcessInstance, number: int, problems: list[Problem]) -> MigrationRefused:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return MigrationRefused(
        f"Request {instance.id} cannot move to version {number} ({count}); nothing was changed.", problems
    )


def _status_problem(instance: ProcessInstance) -> Problem | None:
    if instance.status in MOVABLE:
        return None
    return Problem(f"Request {instance.id} is {instance.status}: only a running or held request can move.")


def _planned(instance: ProcessInstance, target: ProcessVersion) -> tuple[Any, LoadedSpec, _Plan]:
    """The request's workflow, the target's spec, and the plan of the move (its problems if it cannot)."""
    loaded = spec_of(target)
    workflow = serialization.loads(instance.workflow_state, spec_of_instance(instance))
    return workflow, loaded, _plan(workflow, loaded, target.number)


def migration_problems(session: Session, instance: ProcessInstance, target: ProcessVersion) -> list[Problem]:
    """Why this request cannot move to the target version, each problem at its step (empty: it can)."""
    if target.key != instance.process_key:
        return [Problem(f'Version {target.number} is a version of "{target.key}", not of "{instance.process_key}".')]
    refused = _status_problem(instance)
    if refused is not None:
        return [refused]
    return _planned(instance, target)[2].problems


def _move(session: Session, actor: Actor, instance: ProcessInstance, target: ProcessVersion) -> None:
    """Move one request, or raise MigrationRefused having changed nothing."""
    source = instance.model
    if target.id == source.id:
        raise Conflict(f"Request {instance.id} already follows version {target.number}.")
    refused = _status_problem(instance)
    if refused is not None:
        raise _refusal(instance, target.number, [refused])
    workflow, loaded, plan = _planned(instance, target)
    if plan.problems:
        raise _refusal(instance, target.number, plan.problems)
    try:
        with deadlines.running(deadlines.of(settings_of(session)), clock.now()):
            _apply(plan, workflow, loaded)
    except Exception as exc:  # a stored version's timer may fail in any way when it starts; nothing is stored yet
        problem = Problem(f"A step of version {target.number} could not start for this request: {exc}")
        raise _refusal(instance, target.number, [problem])
    instance.model = target
    instance.version_hash = target.version_hash
    instance.workflow_state = serialization.dumps(workflow)
    try:
        session.flush()  # first the request's own row: the version check finds a change made meanwhile
    except StaleDataError:
        raise Conflict("The request was changed by someone else at the same moment; reload and try again.")
    now = clock.utcnow()
    _mirror_tasks(session, instance, workflow, now)
    _mirror_timers(session, instance, workflow, now)
    audit.append(
        session,
        actor,
        "migrated",
        instance_id=instance.id,
        detail={"from_version": source.number, "to_version": target.number},
    )
    session.flush()


def migrate_instance(session: Session, actor: Actor, instance_id: int, version: int) -> ProcessInstance:
    """Move a running or held request to another version of its procedure (administrators); the caller commits.

    What carries over. SpiffWorkflow's `migrate_workflow` aligns the tasks with the new steps and then resets
    every READY and WAITING task (`reset_branch`): a waiting reminder or escalation would be evaluated again
    from now, losing the due date it was given when the task arrived, and a waiting user task would run its
    prescript again. So the alignment is SpiffWorkflow's (`SpecDiff`, `WorkflowDiff`) and the rest is done here:

    - a step the request is at whose step is unchanged, or changed only in its names, lane or arrows, stays as
      it is (state, data, due date); what follows it is predicted again from the new version, so a step added
      after it is taken;
    - a waiting timer or other automatic step the new version changed otherwise (a new reminder time) is
      started again by `reset_branch`: its due date counts from the move;
    - a task held in ERROR stays in ERROR with its data, on its new step: the retry runs it again;
    - a timer the new version removed from a waiting step is dropped (its timer row closed); a timer it adds to
      a waiting step starts now;
    - steps not reached yet whose step is gone are dropped, as are finished ones nothing waiting hangs from.
    """
    require_admin(actor, MOVE_REQUESTS)
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"No request {instance_id}.")
    target = stored.version(session, actor, instance.process_key, version)
    _move(session, actor, instance, target)
    return instance


def migrate_all(
    session: Session, actor: Actor, key: str, from_version: int, to_version: int
) -> tuple[list[int], dict[int, list[Problem]]]:
    """Move every running or held request of one version that can move to another; the moved ids and the refused.

    Each request moves whole or not at all (a savepoint each); the caller commits the lot.
    """
    require_admin(actor, MOVE_REQUESTS)
    source = stored.version(session, actor, key, from_version)
    target = stored.version(session, actor, key, to_version)
    if source.id == target.id:
        raise Conflict(f"The requests of version {from_version} already follow it.")
    instances = session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.model_id == source.id, ProcessInstance.status.in_(MOVABLE))
        .order_by(ProcessInstance.id)
    ).all()
    moved: list[int] = []
    refused: dict[int, list[Problem]] = {}
    for instance in instances:
        try:
            with session.begin_nested():
                _move(session, actor, instance, target)
        except MigrationRefused as exc:
            refused[instance.id] = exc.problems
        except Conflict as exc:
            refused[instance.id] = [Problem(exc.message)]
        else:
            moved.append(instance.id)
    return moved, refused


def movable_count(session: Session, key: str, version: int) -> int:
    """How many requests of a version are running or held: those a move of the version's requests would try."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ProcessInstance)
            .join(ProcessVersion, ProcessVersion.id == ProcessInstance.model_id)
            .where(ProcessVersion.key == key, ProcessVersion.number == version, ProcessInstance.status.in_(MOVABLE))
        )
        or 0
    )
