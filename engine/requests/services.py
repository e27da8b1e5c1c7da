"""The services on requests: start, claim, release, complete, fire timers, read. They flush; the caller commits.

The inbox queries are in engine/requests/inbox.py, the account registry in engine/records/registry.py, the
versions of the procedures in engine/versions/ and the timer mirror in engine/time/timer_mirror.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from engine import procedures
from engine.db.connection import write_after_reading
from engine.db.models import AuditEvent, Department, Incident, ProcessInstance, ProcessVersion, Task
from engine.db.statuses import InstanceStatus, TaskStatus
from engine.diagrams import budget, serialization
from engine.diagrams.loading import LoadedSpec
from engine.diagrams.task_specs import deadline_of, form_key_of, is_timer
from engine.errors import Conflict, Invalid, NotAllowed, NotFound
from engine.mail import outbox
from engine.people.roles import LANE_ROLES, REQUESTER
from engine.people.users import Actor
from engine.records import audit
from engine.requests import authz, incidents
from engine.requests.incidents import Failure
from engine.settings import settings_of
from engine.time import clock, deadlines, reminders, timer_mirror
from engine.versions.stored import published_model, published_models, spec_of, spec_of_instance

MAX_PER_PAGE = 100


# ---- which procedures a person may start -----------------------------------------------------------


def startable_models(session: Session, actor: Actor) -> list[ProcessVersion]:
    """The published procedures the actor may file a request of."""
    return [model for model in published_models(session) if procedures.get(model.key).may_start(actor)]


def startable_procedure(actor: Actor, key: str) -> procedures.Procedure:
    """A procedure the actor may file a request of (NotFound, NotAllowed otherwise)."""
    procedure = procedures.get(key)
    if not procedure.may_start(actor):
        raise NotAllowed(procedure.start_refusal())
    return procedure


# ---- running the workflow ------------------------------------------------------------------------


def _run(workflow, *steps) -> Failure | None:
    """Run SpiffWorkflow's steps in order; whatever a step of the diagram raises is the request's failure.

    Every exception counts, not only SpiffWorkflow's own: a diagram can make Python fail in any way (a
    TypeError in a multi-instance, an exception whose text cannot be formatted), and none of it may cost the
    person whose filing or decision started the step their work (engine/requests/incidents.py).
    """
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - a failing diagram holds its request; it never loses the action
            return incidents.failure_of(workflow, exc)
    return None


TITLE_LENGTH = 300  # ProcessInstance.title


def clip_title(title: str) -> str:
    """A request's title as stored: a long name or policy section is cut with an ellipsis (the record is whole)."""
    return title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1].rstrip() + "…"


def _department_id(session: Session, code: str | None) -> int | None:
    if code is None:
        return None
    return session.scalar(select(Department.id).where(Department.code == code))


def _ready_user_task_ids(workflow) -> set[str]:
    return {str(t.id) for t in workflow.get_tasks(state=TaskState.READY, manual=True)}


def _sync_tasks(
    session: Session, instance: ProcessInstance, workflow, loaded: LoadedSpec, mirrored: set[str]
) -> Failure | None:
    """Mirror the workflow's ready user tasks (with their due dates) and waiting timers into their tables.

    `mirrored` is the set of task ids whose rows are open: the workflow's ready user tasks
    before this step (the mirror's invariant), less any the step itself closed. A user task without a form
    (a stored version may have one) cannot be worked: it is not mirrored, and it is the request's failure.
    """
    failure = None
    ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
    moment = deadlines.moment()
    now = moment.replace(tzinfo=None)
    calendar = deadlines.of(settings_of(session))
    gone = sorted(mirrored - ready.keys())
    if gone:
        session.execute(
            update(Task)
            .where(Task.id.in_(gone), Task.status == TaskStatus.OPEN)
            .values(status=TaskStatus.CANCELLED, completed_at=now)
            .execution_options(synchronize_session="fetch")
        )
    procedure = procedures.get(instance.process_key)
    for task_id, spiff_task in ready.items():
        if task_id in mirrored:
            continue
        spec = spiff_task.task_spec
        role = LANE_ROLES[spec.lane]
        form_key = form_key_of(spec)
        if form_key is None:  # a stored version loads without the rule that a user task has a form
            name = spec.bpmn_name or spec.bpmn_id
            failure = failure or Failure(
                task_id, spec.bpmn_id, name, f'The step "{name}" has no form, so nobody can complete it.'
            )
            continue
        target = procedure.task_target(session, instance, form_key, role)
        deadline = deadline_of(spec)
        due_at = calendar.due_at(deadline, moment).replace(tzinfo=None) if deadline else None
        session.add(
            Task(
                id=task_id,
                instance_id=instance.id,
                element_id=spec.bpmn_id,
                name=spec.bpmn_name or spec.bpmn_id,
                form_key=form_key,
                role=role,
                department_id=target.department_id,
                account_id=target.account_id,
                assignee_id=target.assignee_id,
                created_at=now,
                due_at=due_at,
            )
        )
    if loaded.has_timers:
        timer_mirror.mirror_timers(session, instance, workflow, now)
    return failure


def _queue_letters(
    session: Session, procedure: procedures.Procedure, instance: ProcessInstance, letters: Sequence[str]
) -> None:
    """Queue the letters the diagram's send_letter steps asked for, from the record as it now stands."""
    kinds = procedure.letter_deadlines
    for name in letters:
        for letter in procedure.compose_letter(session, instance, name):
            mail = outbox.queue_and_record(session, letter, name=name, instance_id=instance.id)
            if name in kinds:
                calendar = deadlines.of(settings_of(session))
                mail.deliver_by = calendar.due_at(kinds[name], deadlines.moment()).replace(tzinfo=None)


@contextmanager
def _running(session: Session) -> Iterator[list[deadlines.ReminderOrEscalation]]:
    """Run engine steps as of now, on the City's calendar, within the step's budget (engine/diagrams/budget.py);
    yields the reminders and escalations they ask for."""
    settings = settings_of(session)
    with (
        deadlines.running(deadlines.of(settings), clock.now()) as requested,
        budget.metered(budget.Budget(cpu_seconds=settings.step_cpu_seconds)),
    ):
        yield requested


def _save(
    session: Session,
    instance: ProcessInstance,
    workflow,
    loaded: LoadedSpec,
    *,
    mirrored: set[str],
    record_updates: dict | None = None,
    letters: Sequence[str] = (),
    requested: Sequence[deadlines.ReminderOrEscalation] = (),
    failure: Failure | None = None,
    during: str = incidents.COMPLETED,
) -> None:
    """Update the record, queue the letters, mirror the tasks, close the instance if it ended, store the state,
    then write the reminders and escalations the step asked for.

    With a failure (a step of the diagram failed, or a task cannot be mirrored) everything the step did up to
    the failing element is kept, the request is held in status `error`, and the incident is recorded.
    Autoflush is off until the end so the instance row is written once per transaction.
    """
    procedure = procedures.get(instance.process_key)
    with session.no_autoflush:
        if record_updates:
            before = procedure.describe(instance.data)
            instance.data = {**instance.data, **record_updates}
            described = procedure.describe(instance.data)
            instance.title, instance.restricted = clip_title(described.title), described.restricted
            if described.department_code != before.department_code:
                instance.department_id = _department_id(session, described.department_code)
        _queue_letters(session, procedure, instance, letters)
        failure = _sync_tasks(session, instance, workflow, loaded, mirrored) or failure
        if failure is not None:
            instance.status = InstanceStatus.ERROR
        elif workflow.completed and instance.status == InstanceStatus.RUNNING:
            instance.status = InstanceStatus.COMPLETED
            instance.outcome = workflow.data.get("outcome")
            instance.ended_at = clock.utcnow()
            procedure.on_end(session, instance, dict(workflow.data))
        instance.workflow_state = serialization.dumps(workflow)
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("The request was changed by someone else at the same moment; reload and try again.")
    reminders.queue(session, instance, requested)
    if failure is not None:
        incidents.hold(session, instance, failure, during)


def start_instance(
    session: Session, actor: Actor, key: str, data, *, role: str | None = None, write_after_steps: bool = False
) -> ProcessInstance:
    """Start a request of a procedure with its start data (validated), as the actor.

    `role` is the lane the history names the filer by, when it is not the procedure's (the public's).
    `write_after_steps`: the unit of work began reading, and takes the write lock only once the first
    engine steps have run (engine/db/connection.write_after_reading), as a public filing does.
    """
    procedure = startable_procedure(actor, key)
    model = published_model(session, key)
    clean = procedure.validate_start(session, actor, data)
    described = procedure.describe(clean)
    loaded = spec_of(model)
    workflow = serialization.new_workflow(loaded)
    workflow.get_next_task(state=TaskState.READY).data.update(clean)
    with outbox.collecting() as letters, _running(session) as requested:
        failure = _run(workflow, workflow.do_engine_steps)
        if write_after_steps:
            write_after_reading(session)
        instance = ProcessInstance(
            process_key=key,
            model_id=model.id,
            version_hash=model.version_hash,
            title=clip_title(described.title),
            status=InstanceStatus.RUNNING,
            restricted=described.restricted,
            department_id=_department_id(session, described.department_code),
            started_by_id=actor.id,
            started_at=deadlines.moment().replace(tzinfo=None),
            data=clean,
            workflow_state=serialization.dumps(workflow),
        )
        session.add(instance)
        session.flush()
        audit.append(
            session,
            actor,
            "started",
            instance_id=instance.id,
            role=role or procedure.starter_role,
            detail={"process": key},
        )
        procedure.on_start(session, actor, instance)
        _save(
            session,
            instance,
            workflow,
            loaded,
            mirrored=set(),
            letters=letters,
            requested=requested,
            failure=failure,
            during=incidents.STARTED,
        )
    return instance


def _task_by_id(session: Session, task_id: str) -> Task:
    try:
        UUID(str(task_id))
    except ValueError:
        raise NotFound(f'No task "{task_id}".')
    task = session.get(Task, str(task_id), options=[joinedload(Task.instance)])
    if task is None:
        raise NotFound(f'No task "{task_id}".')
    return task


def _task_to_act_on(session: Session, actor: Actor, task_id: str) -> Task:
    """A task the actor holds the lane of and that is still open (NotFound, NotAllowed, Conflict otherwise)."""
    task = _task_by_id(session, task_id)
    authz.require_may_act(actor, task, task.instance)
    if task.status != TaskStatus.OPEN:
        raise Conflict(f"This task is no longer open (it was {task.status}).")
    return task


def _guarded_update(session: Session, task: Task, conditions: list, **values) -> bool:
    """Update a task row only if it still meets the conditions; keep the loaded object in step.

    The WHERE clause is what makes two simultaneous claims or completions resolve to one winner.
    """
    result = cast(
        CursorResult[Any],
        session.execute(
            update(Task)
            .where(Task.id == task.id, *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        return False
    for name, value in values.items():
        set_committed_value(task, name, value)
    return True


def claim_task(session: Session, actor: Actor, task_id: str) -> Task:
    """Take a task so others see it is being worked on."""
    task = _task_to_act_on(session, actor, task_id)
    if task.assignee_id == actor.id:
        return task
    if not _guarded_update(
        session, task, [Task.status == TaskStatus.OPEN, Task.assignee_id.is_(None)], assignee_id=actor.id
    ):
        session.refresh(task)
        holder = task.assignee.display_name if task.assignee else "someone else"
        raise Conflict(f"This task was already claimed by {holder}.")
    audit.append(
        session, actor, "claimed", instance_id=task.instance_id, role=task.role, task_id=task.id, task=task.name
    )
    return task


def release_task(session: Session, actor: Actor, task_id: str) -> Task:
    """Give a claimed task back to everyone who holds its lane."""
    task = _task_to_act_on(session, actor, task_id)
    if task.role == REQUESTER:
        raise Conflict("A requester's task stays with the requester.")
    if task.assignee_id != actor.id:
        raise Conflict("Only the person who claimed this task can release it.")
    if not _guarded_update(
        session, task, [Task.status == TaskStatus.OPEN, Task.assignee_id == actor.id], assignee_id=None
    ):
        raise Conflict("This task changed at the same moment; reload and try again.")
    audit.append(
        session, actor, "released", instance_id=task.instance_id, role=task.role, task_id=task.id, task=task.name
    )
    return task


def complete_task(session: Session, actor: Actor, task_id: str, data) -> ProcessInstance:
    """Complete a task with its written decision; exactly one of two simultaneous completions wins."""
    task = _task_to_act_on(session, actor, task_id)
    instance = task.instance
    if task.assignee_id not in (None, actor.id):
        holder = task.assignee.display_name if task.assignee else "someone else"
        raise Conflict(f"This task is claimed by {holder}.")
    if instance.status == InstanceStatus.ERROR:
        raise Conflict(held_words(session, instance))
    procedure = procedures.get(instance.process_key)
    submission = procedure.submission_for(session, actor, instance, task, data)
    loaded = spec_of_instance(instance)
    workflow = serialization.loads(instance.workflow_state, loaded)
    spiff_task = workflow.get_task_from_id(UUID(task.id))
    mirrored = _ready_user_task_ids(workflow) - {task.id}
    if spiff_task is None or spiff_task.state != TaskState.READY:
        # Task.run() does not check READY itself.
        raise Conflict("This task is no longer open.")
    if not _guarded_update(
        session,
        task,
        [Task.status == TaskStatus.OPEN],
        status=TaskStatus.COMPLETED,
        completed_at=clock.utcnow(),
        completed_by_id=actor.id,
        assignee_id=actor.id,
    ):
        raise Conflict("This task was completed by someone else at the same moment.")
    audit.append(
        session,
        actor,
        "completed",
        instance_id=instance.id,
        role=task.role,
        task_id=task.id,
        task=task.name,
        decision=submission.decision,
        comment=submission.comment,
        detail={"form_key": task.form_key},
    )
    spiff_task.data.update(submission.task_data)
    with outbox.collecting() as letters, _running(session) as requested:
        failure = _run(workflow, spiff_task.run, workflow.do_engine_steps)
        if spiff_task.state == TaskState.READY:
            mirrored.add(task.id)  # its own step failed: the decision is recorded, its row stays completed
        _save(
            session,
            instance,
            workflow,
            loaded,
            mirrored=mirrored,
            record_updates=submission.record_updates,
            letters=letters,
            requested=requested,
            failure=failure,
        )
    return instance


# ---- reading -------------------------------------------------------------------------------------


def get_task(session: Session, actor: Actor, task_id: str) -> Task:
    """A task the actor may act on, or whose request they may see."""
    task = _task_by_id(session, task_id)
    if not authz.may_act(actor, task, task.instance) and not authz.may_view(session, actor, task.instance):
        raise NotAllowed("This task belongs to someone else's lane or department.")
    return task


def task_form(session: Session, task: Task) -> list[dict]:
    """The fields of a task's form, as the API describes them."""
    procedure = procedures.get(task.instance.process_key)
    return [f.describe() for f in procedure.fields_for(session, task.form_key, task.instance.data)]


def get_instance(session: Session, actor: Actor, instance_id: int) -> ProcessInstance:
    """An instance the actor may see."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"No request {instance_id}.")
    authz.require_may_view(session, actor, instance)
    return instance


def list_instances(
    session: Session,
    actor: Actor,
    *,
    key: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[ProcessInstance], int]:
    """The instances the actor may see, newest first."""
    query = select(ProcessInstance).where(authz.visible_instances_clause(actor))
    if key:
        query = query.where(ProcessInstance.process_key == key)
    if status:
        query = query.where(ProcessInstance.status == status)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.scalars(
        query.order_by(ProcessInstance.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(rows), total


def record_for(actor: Actor, instance: ProcessInstance) -> dict:
    """The request's record as this actor may read it: the privileged consultation (the attorney's advice and
    recommendation) only for those who may read it."""
    hidden = authz.withheld_from(actor, instance).fields
    return {name: value for name, value in instance.data.items() if name not in hidden}


def open_tasks_of(session: Session, instance: ProcessInstance) -> list[Task]:
    """The instance's open tasks."""
    return list(
        session.scalars(
            select(Task)
            .where(Task.instance_id == instance.id, Task.status == TaskStatus.OPEN)
            .order_by(Task.created_at)
        )
    )


def progress_of(instance: ProcessInstance) -> tuple[list[str], list[str]]:
    """The diagram elements a request has passed through, and those it waits at now (their BPMN ids).

    Timers still waiting on a task are neither: the request waits at the task, not at its reminder.
    Elements passed by tasks since pruned from the stored state count as passed (engine/diagrams/pruning.py).
    """
    workflow = serialization.loads(instance.workflow_state, spec_of_instance(instance))
    done, current = serialization.pruned_elements(workflow), set()
    for spiff_task in workflow.get_tasks():
        bpmn_id = getattr(spiff_task.task_spec, "bpmn_id", None)
        if bpmn_id is None:
            continue
        if spiff_task.state == TaskState.COMPLETED:
            done.add(bpmn_id)
        elif spiff_task.state in (
            TaskState.READY,
            TaskState.WAITING,
            TaskState.STARTED,
            TaskState.ERROR,  # where a held request stopped
        ) and not is_timer(spiff_task.task_spec):
            current.add(bpmn_id)  # a waiting reminder or escalation is not where the request is
    return sorted(done - current), sorted(current)


def history_of(session: Session, instance: ProcessInstance):
    """The instance's audit events in order: its written record."""
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id).order_by(AuditEvent.id))
    )


# ---- timers --------------------------------------------------------------------------------------


def fire_timers(session: Session, instance: ProcessInstance) -> list[str]:
    """Fire the instance's timers that are due by the clock and run what follows them; their names.

    The caller holds the instance (the scheduler claims it with FOR UPDATE SKIP LOCKED) and commits.
    Each fired timer is a `timer` event in the history; the reminders and escalations its steps ask
    for are written to the outbox and the history in the same transaction.
    """
    if instance.status == InstanceStatus.ERROR:
        return []  # held: its timers wait for the retry
    if instance.status != InstanceStatus.RUNNING:
        timer_mirror.close_timers(session, instance)
        return []
    loaded = spec_of_instance(instance)
    workflow = serialization.loads(instance.workflow_state, loaded)
    waiting = timer_mirror.waiting_timers(workflow)
    mirrored = _ready_user_task_ids(workflow)
    with outbox.collecting() as letters, _running(session) as requested:
        failure = _run(workflow, workflow.refresh_timers, workflow.do_engine_steps)
        fired = [t for t in waiting if t.state != TaskState.WAITING]
        for spiff_task in fired:
            spec = spiff_task.task_spec
            audit.append(
                session,
                None,
                "timer",
                instance_id=instance.id,
                task=spec.bpmn_name or spec.bpmn_id,
                detail={"timer": spec.bpmn_id, "due_at": spiff_task.internal_data.get("event_value")},
            )
        _save(
            session,
            instance,
            workflow,
            loaded,
            mirrored=mirrored,
            letters=letters,
            requested=requested,
            failure=failure,
            during=incidents.TIMER,
        )
    return [t.task_spec.bpmn_name or t.task_spec.bpmn_id for t in fired]


# ---- a request held at a failed step -------------------------------------------------------------


def held_words(session: Session, instance: ProcessInstance) -> str:
    """What a person is told about a request held at a failed step."""
    incident = incidents.open_incident(session, instance)
    step = f' at the step "{incident.element_name}"' if incident and incident.element_name else ""
    return (
        f"This request is held{step}: a step of the procedure's diagram failed, and the administrators have been "
        "told. Nothing written on it is lost; it moves again once they have fixed the step."
    )


def _held(session: Session, actor: Actor, instance_id: int, what: str) -> tuple[ProcessInstance, Incident]:
    authz.require_admin(actor, what)
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"No request {instance_id}.")
    incident = incidents.open_incident(session, instance)
    if instance.status != InstanceStatus.ERROR or incident is None:
        raise Conflict(f"Request {instance_id} is not held at a failed step (it is {instance.status}).")
    return instance, incident


def _open_row_ids(session: Session, instance: ProcessInstance) -> set[str]:
    return set(session.scalars(select(Task.id).where(Task.instance_id == instance.id, Task.status == TaskStatus.OPEN)))


def _rerun(session: Session, workflow, task_id: str | None) -> None:
    """Make the failed element runnable again (SpiffWorkflow's reset_branch, keeping its data): an engine step
    runs in do_engine_steps; a user task whose decision was recorded (its row completed) runs here."""
    task = workflow.get_task_from_id(UUID(task_id)) if task_id else None
    if task is None or task.has_state(TaskState.COMPLETED | TaskState.CANCELLED):
        return
    task.reset_branch(dict(task.data))
    if task.state == TaskState.READY and task.task_spec.manual:
        status = session.scalar(select(Task.status).where(Task.id == str(task.id)))
        if status == TaskStatus.COMPLETED:
            task.run()


def retry_instance(session: Session, actor: Actor, instance_id: int) -> ProcessInstance:
    """Run the failed element of a held request again (administrators); if it fails again it stays held."""
    instance, incident = _held(session, actor, instance_id, "retry a held request")
    loaded = spec_of_instance(instance)
    workflow = serialization.loads(instance.workflow_state, loaded)
    mirrored = _open_row_ids(session, instance)
    audit.append(
        session,
        actor,
        "retried",
        instance_id=instance.id,
        task=incident.element_name,
        detail={"incident": incident.id, "element_id": incident.element_id, "version": instance.model.number},
    )
    with outbox.collecting() as letters, _running(session) as requested:
        failure = _run(workflow, lambda: _rerun(session, workflow, incident.task_id), workflow.do_engine_steps)
        if failure is None:
            instance.status = InstanceStatus.RUNNING
            incidents.resolve(session, actor, incident, "retried")
        _save(
            session,
            instance,
            workflow,
            loaded,
            mirrored=mirrored,
            letters=letters,
            requested=requested,
            failure=failure,
            during=incidents.RETRIED,
        )
    return instance


def cancel_instance(session: Session, actor: Actor, instance_id: int, reason) -> ProcessInstance:
    """End a held request with a written reason (administrators): its open tasks and timers close."""
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("Say why the request is cancelled.", {"reason": ["Write the reason; it goes in the record."]})
    instance, incident = _held(session, actor, instance_id, "cancel a held request")
    reason = reason.strip()
    now = clock.utcnow()
    session.execute(
        update(Task)
        .where(Task.instance_id == instance.id, Task.status == TaskStatus.OPEN)
        .values(status=TaskStatus.CANCELLED, completed_at=now)
        .execution_options(synchronize_session="fetch")
    )
    timer_mirror.close_timers(session, instance)
    instance.status = InstanceStatus.CANCELLED
    instance.ended_at = now
    incidents.resolve(session, actor, incident, "cancelled", reason)
    audit.append(
        session,
        actor,
        "cancelled",
        instance_id=instance.id,
        task=incident.element_name,
        comment=reason,
        detail={"incident": incident.id},
    )
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("The request was changed by someone else at the same moment; reload and try again.")
    return instance
