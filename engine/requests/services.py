"""The engine's services: start, list, claim, release, complete, read. They flush; the caller commits."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, false, func, or_, select, update
from sqlalchemy.orm import Session, defer, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from engine import procedures
from engine.db.models import Account, AuditEvent, Department, ProcessInstance, ProcessVersion, Task, Timer, User
from engine.diagrams import serialization, specs
from engine.errors import Conflict, ExpressionError, Invalid, NotAllowed, NotFound
from engine.mail import outbox
from engine.people.roles import LANE_ROLES, REQUESTER
from engine.people.users import Actor
from engine.records import audit
from engine.records.crypto import decrypt_credentials
from engine.requests import authz
from engine.time import clock, deadlines
from engine.time import reminders as notices
from engine.versions import editor

MAX_PER_PAGE = 100


# ---- process models ------------------------------------------------------------------------------


def sync_workflows(session: Session) -> list[ProcessVersion]:
    """Store each diagram of workflows/ whose content is new as the procedure's next version.

    A new shipped diagram is published for new requests unless an administrator has published a version of
    their own: the City's edit stays in use, and the shipped one waits in the version list.
    """
    settings = session.info["settings"]
    changed = []
    for path in specs.workflow_files(settings.workflows_dir):
        key = path.stem
        data = path.read_bytes()
        digest = specs.version_hash(data)
        if session.scalar(
            select(ProcessVersion.id).where(ProcessVersion.key == key, ProcessVersion.version_hash == digest)
        ):
            continue
        procedure = procedures.get(key)
        loaded = specs.load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
        model = editor.store_version(session, key, data, loaded, source="shipped", created_by_id=None)
        current = editor.version_in_use(session, key)
        if current is None or current.source == "shipped":
            editor.publish_shipped(session, model)
        changed.append(model)
    session.flush()
    return changed


def published_models(session: Session) -> list[ProcessVersion]:
    """The published version of every procedure."""
    return list(
        session.scalars(select(ProcessVersion).where(ProcessVersion.published.is_(True)).order_by(ProcessVersion.key))
    )


def startable_models(session: Session, actor: Actor) -> list[ProcessVersion]:
    """The published procedures the actor may file a request of."""
    return [model for model in published_models(session) if procedures.get(model.key).may_start(actor)]


def startable_procedure(actor: Actor, key: str) -> procedures.Procedure:
    """A procedure the actor may file a request of (NotFound, NotAllowed otherwise)."""
    procedure = procedures.get(key)
    if not procedure.may_start(actor):
        raise NotAllowed(procedure.start_refusal())
    return procedure


def published_model(session: Session, key: str) -> ProcessVersion:
    """The version new requests of a procedure use."""
    model = session.scalar(
        select(ProcessVersion)
        .options(defer(ProcessVersion.bpmn_xml))
        .where(ProcessVersion.key == key, ProcessVersion.published.is_(True))
    )
    if model is None:
        raise NotFound(f'No published procedure "{key}".')
    return model


def _loaded(model: ProcessVersion) -> specs.LoadedSpec:
    # By version hash first: the diagram's XML is read (and hashed) only on a cold cache.
    return specs.cached_version(model.version_hash) or specs.cached_spec(model.key, model.bpmn_xml)


def _instance_spec(instance: ProcessInstance) -> specs.LoadedSpec:
    # By the instance's version hash: the model row is read only on a cold cache.
    return specs.cached_version(instance.version_hash) or _loaded(instance.model)


# ---- running the workflow ------------------------------------------------------------------------


def _run(step) -> None:
    """Run SpiffWorkflow; a failing diagram expression becomes an ExpressionError."""
    try:
        step()
    except ExpressionError:
        raise
    except SpiffWorkflowException as exc:
        raise ExpressionError(f"The procedure's diagram failed: {exc}")


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
    session: Session, instance: ProcessInstance, workflow, loaded: specs.LoadedSpec, mirrored: set[str]
) -> None:
    """Mirror the workflow's ready user tasks (with their due dates) and waiting timers into their tables.

    `mirrored` is the set of task ids whose rows are open: the workflow's ready user tasks
    before this step (the mirror's invariant), less any the step itself closed.
    """
    ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
    moment = deadlines.moment()
    now = moment.replace(tzinfo=None)
    calendar = deadlines.of(session.info["settings"])
    gone = sorted(mirrored - ready.keys())
    if gone:
        session.execute(
            update(Task)
            .where(Task.id.in_(gone), Task.status == "open")
            .values(status="cancelled", completed_at=now)
            .execution_options(synchronize_session="fetch")
        )
    procedure = procedures.get(instance.process_key)
    for task_id, spiff_task in ready.items():
        if task_id in mirrored:
            continue
        spec = spiff_task.task_spec
        role = LANE_ROLES[spec.lane]
        form_key = specs.form_key_of(spec)
        target = procedure.task_target(session, instance, form_key, role)
        deadline = specs.deadline_of(spec)
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
    if not loaded.has_timers:
        return
    waiting = {
        str(t.id): t
        for t in workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
    }
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
            session.add(
                Timer(
                    id=timer_id,
                    instance_id=instance.id,
                    element_id=spiff_task.task_spec.bpmn_id,
                    due_at=clock.as_utc(datetime.fromisoformat(due)).replace(tzinfo=None),
                )
            )


def _queue_letters(
    session: Session, procedure: procedures.Procedure, instance: ProcessInstance, letters: list[str]
) -> None:
    """Queue the letters the diagram's send_letter steps asked for, from the record as it now stands."""
    kinds = procedure.letter_deadlines
    for name in letters:
        for letter in procedure.compose_letter(session, instance, name):
            mail = outbox.queue(session, letter, name=name, instance_id=instance.id)
            if name in kinds:
                calendar = deadlines.of(session.info["settings"])
                mail.deliver_by = calendar.due_at(kinds[name], deadlines.moment()).replace(tzinfo=None)
            audit.append(
                session,
                None,
                "mail_queued",
                instance_id=instance.id,
                detail={"letter": name, "subject": letter.subject, "recipients": len(letter.recipients)},
            )


def _running(session: Session) -> deadlines.running:
    """Run engine steps as of now, on the City's calendar; yields the reminders and escalations they ask for."""
    return deadlines.running(deadlines.of(session.info["settings"]), clock.now())


def _save(
    session: Session,
    instance: ProcessInstance,
    workflow,
    loaded: specs.LoadedSpec,
    *,
    mirrored: set[str],
    record_updates: dict | None = None,
    letters: list[str] = (),
    noted: list[deadlines.Notice] = (),
) -> None:
    """Update the record, queue the letters, mirror the tasks, close the instance if it ended, store the state,
    then write the reminders and escalations the step asked for.

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
        _sync_tasks(session, instance, workflow, loaded, mirrored)
        if workflow.completed and instance.status == "running":
            instance.status = "completed"
            instance.outcome = workflow.data.get("outcome")
            instance.ended_at = clock.utcnow()
            procedure.on_end(session, instance, dict(workflow.data))
        instance.workflow_state = serialization.dumps(workflow)
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("The request was changed by someone else at the same moment; reload and try again.")
    notices.queue(session, instance, noted)


def start_instance(session: Session, actor: Actor, key: str, data, *, role: str | None = None) -> ProcessInstance:
    """Start a request of a procedure with its start data (validated), as the actor.

    `role` is the lane the history names the filer by, when it is not the procedure's (the public's).
    """
    procedure = startable_procedure(actor, key)
    model = published_model(session, key)
    clean = procedure.validate_start(session, actor, data)
    described = procedure.describe(clean)
    loaded = _loaded(model)
    workflow = serialization.new_workflow(loaded)
    workflow.get_next_task(state=TaskState.READY).data.update(clean)
    with outbox.collecting() as letters, _running(session) as noted:
        _run(workflow.do_engine_steps)
        instance = ProcessInstance(
            process_key=key,
            model_id=model.id,
            version_hash=model.version_hash,
            title=clip_title(described.title),
            status="running",
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
        _save(session, instance, workflow, loaded, mirrored=set(), letters=letters, noted=noted)
    return instance


def _open_task(session: Session, task_id: str) -> Task:
    try:
        UUID(str(task_id))
    except ValueError:
        raise NotFound(f'No task "{task_id}".')
    task = session.get(Task, str(task_id), options=[joinedload(Task.instance)])
    if task is None:
        raise NotFound(f'No task "{task_id}".')
    return task


def _require_open(task: Task) -> None:
    if task.status != "open":
        raise Conflict(f"This task is no longer open (it was {task.status}).")


def _guarded_update(session: Session, task: Task, conditions: list, **values) -> bool:
    """Update a task row only if it still meets the conditions; keep the loaded object in step.

    The WHERE clause is what makes two simultaneous claims or completions resolve to one winner.
    """
    result = session.execute(
        update(Task)
        .where(Task.id == task.id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    for name, value in values.items():
        set_committed_value(task, name, value)
    return True


def claim_task(session: Session, actor: Actor, task_id: str) -> Task:
    """Take a task so others see it is being worked on."""
    task = _open_task(session, task_id)
    authz.require_may_act(actor, task, task.instance)
    _require_open(task)
    if task.assignee_id == actor.id:
        return task
    if not _guarded_update(session, task, [Task.status == "open", Task.assignee_id.is_(None)], assignee_id=actor.id):
        session.refresh(task)
        holder = task.assignee.display_name if task.assignee else "someone else"
        raise Conflict(f"This task was already claimed by {holder}.")
    audit.append(
        session, actor, "claimed", instance_id=task.instance_id, role=task.role, task_id=task.id, task=task.name
    )
    return task


def release_task(session: Session, actor: Actor, task_id: str) -> Task:
    """Give a claimed task back to everyone who holds its lane."""
    task = _open_task(session, task_id)
    authz.require_may_act(actor, task, task.instance)
    _require_open(task)
    if task.role == REQUESTER:
        raise Conflict("A requester's task stays with the requester.")
    if task.assignee_id != actor.id:
        raise Conflict("Only the person who claimed this task can release it.")
    if not _guarded_update(session, task, [Task.status == "open", Task.assignee_id == actor.id], assignee_id=None):
        raise Conflict("This task changed at the same moment; reload and try again.")
    audit.append(
        session, actor, "released", instance_id=task.instance_id, role=task.role, task_id=task.id, task=task.name
    )
    return task


def complete_task(session: Session, actor: Actor, task_id: str, data) -> ProcessInstance:
    """Complete a task with its written decision; exactly one of two simultaneous completions wins."""
    task = _open_task(session, task_id)
    instance = task.instance
    authz.require_may_act(actor, task, instance)
    _require_open(task)
    if task.assignee_id not in (None, actor.id):
        raise Conflict(f"This task is claimed by {task.assignee.display_name}.")
    procedure = procedures.get(instance.process_key)
    submission = procedure.submission_for(session, actor, instance, task, data)
    loaded = _instance_spec(instance)
    workflow = serialization.loads(instance.workflow_state, loaded)
    spiff_task = workflow.get_task_from_id(UUID(task.id))
    mirrored = _ready_user_task_ids(workflow) - {task.id}
    if spiff_task is None or spiff_task.state != TaskState.READY:
        # Task.run() does not check READY itself.
        raise Conflict("This task is no longer open.")
    if not _guarded_update(
        session,
        task,
        [Task.status == "open"],
        status="completed",
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
    with outbox.collecting() as letters, _running(session) as noted:
        _run(spiff_task.run)
        _run(workflow.do_engine_steps)
        _save(
            session,
            instance,
            workflow,
            loaded,
            mirrored=mirrored,
            record_updates=submission.record_updates,
            letters=letters,
            noted=noted,
        )
    return instance


# ---- reading -------------------------------------------------------------------------------------


def get_task(session: Session, actor: Actor, task_id: str) -> Task:
    """A task the actor may act on, or whose request they may see."""
    task = _open_task(session, task_id)
    if not authz.may_act(actor, task, task.instance) and not authz.may_view(session, actor, task.instance):
        raise NotAllowed("This task belongs to someone else's lane or department.")
    return task


def task_form(session: Session, task: Task) -> list[dict]:
    """The fields of a task's form, as the API describes them."""
    procedure = procedures.get(task.instance.process_key)
    return [f.describe() for f in procedure.fields_for(session, task.form_key, task.instance.data)]


def _task_scope_clause(actor: Actor, scope: str):
    if actor.id is None:
        return false()  # a member of the public has no tasks ("assignee_id == None" would be every unclaimed one)
    if scope == "mine":
        return and_(Task.status == "open", Task.assignee_id == actor.id)
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
    return rows, session.scalar(select(func.count()).select_from(query.subquery()))


def count_open_tasks(session: Session, actor: Actor) -> tuple[int, int]:
    """How many open tasks are assigned to the actor and how many they may claim, in one indexed query."""
    mine = _task_scope_clause(actor, "mine")
    available = _task_scope_clause(actor, "available")
    row = session.execute(
        select(func.count().filter(mine), func.count().filter(available)).where(or_(mine, available))
    ).one()
    return row[0], row[1]


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
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(ProcessInstance.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(rows), total


def record_for(actor: Actor, instance: ProcessInstance) -> dict:
    """The request's record as this actor may read it: privileged advice only for those who may read it."""
    hidden = procedures.get(instance.process_key).privileged_fields
    if not hidden or authz.may_read_privileged(actor):
        return dict(instance.data)
    return {name: value for name, value in instance.data.items() if name not in hidden}


def open_tasks_of(session: Session, instance: ProcessInstance) -> list[Task]:
    """The instance's open tasks."""
    return list(
        session.scalars(
            select(Task).where(Task.instance_id == instance.id, Task.status == "open").order_by(Task.created_at)
        )
    )


def progress_of(instance: ProcessInstance) -> tuple[list[str], list[str]]:
    """The diagram elements a request has passed through, and those it waits at now (their BPMN ids).

    Timers still waiting on a task are neither: the request waits at the task, not at its reminder.
    """
    workflow = serialization.loads(instance.workflow_state, _instance_spec(instance))
    done, current = set(), set()
    for spiff_task in workflow.get_tasks():
        bpmn_id = getattr(spiff_task.task_spec, "bpmn_id", None)
        if bpmn_id is None:
            continue
        if spiff_task.state == TaskState.COMPLETED:
            done.add(bpmn_id)
        elif spiff_task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED) and not _is_timer(spiff_task):
            current.add(bpmn_id)  # a waiting reminder or escalation is not where the request is
    return sorted(done - current), sorted(current)


def history_of(session: Session, instance: ProcessInstance):
    """The instance's audit events in order: its written record."""
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id).order_by(AuditEvent.id))
    )


# ---- the account registry ------------------------------------------------------------------------


def list_accounts(session: Session, actor: Actor) -> list[Account]:
    """The registry; investigative profiles only for police roles."""
    query = select(Account).order_by(Account.id)
    if not actor.is_police:
        query = query.where(Account.investigative.is_(False))
    return list(session.scalars(query))


def reveal_credentials(session: Session, actor: Actor, account_id: int) -> dict:
    """An investigative profile's credentials, for police roles only; every reveal is logged."""
    account = session.get(Account, account_id)
    if account is None or (account.investigative and not actor.is_police):
        raise NotFound(f"No account {account_id}.")
    if not actor.is_police:
        raise NotAllowed("Only police roles may see investigative profiles' credentials.")
    if account.credentials is None:
        raise NotFound("This account has no stored credentials.")
    audit.append(session, actor, "credentials_revealed", detail={"account_id": account.id})
    return decrypt_credentials(session.info["settings"].secret_key, account.credentials)


# ---- timers --------------------------------------------------------------------------------------


def _is_timer(spiff_task) -> bool:
    return isinstance(getattr(spiff_task.task_spec, "event_definition", None), TimerEventDefinition)


def fire_timers(session: Session, instance: ProcessInstance) -> list[str]:
    """Fire the instance's timers that are due by the clock and run what follows them; their names.

    The caller holds the instance (the scheduler claims it with FOR UPDATE SKIP LOCKED) and commits.
    Each fired timer is a `timer` event in the history; the reminders and escalations its steps ask
    for are written to the outbox and the history in the same transaction.
    """
    if instance.status != "running":
        session.execute(
            update(Timer)
            .where(Timer.instance_id == instance.id, Timer.fired_at.is_(None))
            .values(fired_at=clock.utcnow())
        )
        return []
    loaded = _instance_spec(instance)
    workflow = serialization.loads(instance.workflow_state, loaded)
    waiting = [t for t in workflow.get_tasks(state=TaskState.WAITING) if _is_timer(t)]
    mirrored = _ready_user_task_ids(workflow)
    with outbox.collecting() as letters, _running(session) as noted:
        _run(workflow.refresh_timers)
        _run(workflow.do_engine_steps)
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
        _save(session, instance, workflow, loaded, mirrored=mirrored, letters=letters, noted=noted)
    return [t.task_spec.bpmn_name or t.task_spec.bpmn_id for t in fired]


def task_timers(session: Session, task: Task) -> list[tuple[str, datetime]]:
    """The timers still waiting on an open task (its reminder, its escalation): (name, due_at), soonest first."""
    if task.status != "open":
        return []
    loaded = _instance_spec(task.instance)
    names = {}
    for spec in specs.boundary_events_of(loaded, task.element_id):
        names[spec.bpmn_id] = spec.bpmn_name or spec.bpmn_id
    if not names:
        return []
    rows = session.execute(
        select(Timer.element_id, Timer.due_at)
        .where(Timer.instance_id == task.instance_id, Timer.fired_at.is_(None), Timer.element_id.in_(sorted(names)))
        .order_by(Timer.due_at)
    ).all()
    return [(names[row.element_id], row.due_at) for row in rows]
