"""Administrators move running and held requests to a newer version of their procedure, or are told why not.

A move keeps what the people on the request see: the task they are working, its due date, the reminders and
escalations already counting. What the new version adds after the waiting step is taken; a step it removed
that a request waits at stops that request from moving, and then nothing of it changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine.db.models import AuditEvent, OutboxMail, ProcessInstance, Task, Timer
from engine.diagrams import serialization
from engine.diagrams.cache import cached_spec
from engine.diagrams.problems import Problem
from engine.errors import Conflict, MigrationRefused, NotAllowed, NotFound
from engine.records import audit
from engine.requests import services
from engine.time import clock, timers
from engine.versions import drafts, migration, publishing, stored
from engine.versions.stored import spec_of_instance
from tests.editing import BPMN, SPIFF, add_step_before, set_text, shipped
from tests.helpers import SETUP, START, publish_unchecked
from tests.procedures import act

KEY = "new_account_request"
CITY = ZoneInfo("America/Chicago")
HEAD_TIMERS = ("department_head_review_reminder", "department_head_review_overdue")
REMINDER = (
    "department_head_review_reminder",
    "department_head_review_send_reminder",
    "department_head_review_reminded",
)
ESCALATION = ("department_head_review_overdue", "department_head_review_escalate", "department_head_review_escalated")


def at(*args) -> datetime:
    """A moment in the City's time."""
    return datetime(*args, tzinfo=CITY)


def utc(moment: datetime) -> datetime:
    """A moment as the database keeps it: naive UTC."""
    as_utc = clock.as_utc(moment)
    assert as_utc is not None
    return as_utc.replace(tzinfo=None)


# ---- versions an administrator publishes ------------------------------------------------------------


def _b(name: str) -> str:
    return f"{{{BPMN}}}{name}"


def without(xml: bytes, *ids: str, redirect: dict[str, str] | None = None) -> bytes:
    """Elements deleted with every flow into or out of them, their lane entries and drawing; flows into a deleted
    element named in `redirect` go to its replacement instead."""
    root = etree.fromstring(xml)
    gone = set(ids)
    for flow in list(root.iter(_b("sequenceFlow"))):
        if redirect and flow.get("sourceRef") not in gone and flow.get("targetRef") in redirect:
            flow.set("targetRef", redirect[flow.get("targetRef")])
        elif flow.get("sourceRef") in gone or flow.get("targetRef") in gone:
            gone.add(flow.get("id"))
    references = (_b("flowNodeRef"), _b("incoming"), _b("outgoing"))
    for element in list(root.iter()):
        if (
            element.get("id") in gone
            or element.get("bpmnElement") in gone
            or (element.tag in references and element.text in gone)
        ):
            element.getparent().remove(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def in_lane(xml: bytes, element_id: str, lane_id: str) -> bytes:
    """An element moved to another lane (another role works it)."""
    root = etree.fromstring(xml)
    for ref in list(root.iter(_b("flowNodeRef"))):
        if ref.text == element_id:
            ref.getparent().remove(ref)
    [lane] = root.xpath("//*[@id=$id]", id=lane_id)
    etree.SubElement(lane, _b("flowNodeRef")).text = element_id
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def with_timer(xml: bytes, task_id: str, timer_id: str, expression: str) -> bytes:
    """A further non-interrupting timer on a task (its timeDate expression as written), leading to an end event."""
    root = etree.fromstring(xml)
    process = root.find(_b("process"))
    event = etree.SubElement(
        process, _b("boundaryEvent"), id=timer_id, name="Note for the file", cancelActivity="false"
    )
    event.set("attachedToRef", task_id)
    definition = etree.SubElement(event, _b("timerEventDefinition"), id=f"{timer_id}_definition")
    etree.SubElement(definition, _b("timeDate")).text = expression
    etree.SubElement(process, _b("endEvent"), id=f"{timer_id}_noted", name="Noted")
    etree.SubElement(
        process, _b("sequenceFlow"), id=f"Flow_{timer_id}", sourceRef=timer_id, targetRef=f"{timer_id}_noted"
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def with_subprocess(xml: bytes, step_name: str = "Records check") -> bytes:
    """A sub-process in the Communications Manager's lane before their approval, holding one user task."""
    root = etree.fromstring(xml)
    process = root.find(_b("process"))
    [lane] = root.xpath("//*[@id='Lane_communications_manager']")
    sub = etree.SubElement(process, _b("subProcess"), id="records_review", name="Records review")
    etree.SubElement(sub, _b("startEvent"), id="records_review_start")
    task = etree.SubElement(sub, _b("userTask"), id="records_check", name=step_name)
    properties = etree.SubElement(etree.SubElement(task, _b("extensionElements")), f"{{{SPIFF}}}properties")
    etree.SubElement(properties, f"{{{SPIFF}}}property", name="formKey", value="communications_review")
    etree.SubElement(sub, _b("endEvent"), id="records_review_end")
    for flow_id, source, target in (
        ("Flow_rr_1", "records_review_start", "records_check"),
        ("Flow_rr_2", "records_check", "records_review_end"),
    ):
        etree.SubElement(sub, _b("sequenceFlow"), id=flow_id, sourceRef=source, targetRef=target)
    for element_id in ("records_review", "records_review_start", "records_check", "records_review_end"):
        etree.SubElement(lane, _b("flowNodeRef")).text = element_id
    for flow in process.iter(_b("sequenceFlow")):
        if flow.get("targetRef") == "communications_review":
            flow.set("targetRef", "records_review")
    etree.SubElement(
        process,
        _b("sequenceFlow"),
        id="Flow_records_review",
        sourceRef="records_review",
        targetRef="communications_review",
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def as_script(xml: bytes, task_id: str, script: str) -> bytes:
    """A user task made into a script task (same id, same place)."""
    root = etree.fromstring(xml)
    [task] = root.xpath("//*[@id=$id]", id=task_id)
    task.tag = _b("scriptTask")
    task.remove(task.find(_b("extensionElements")))
    etree.SubElement(task, _b("script")).text = script
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def with_records_check() -> bytes:
    """A Records Officer check added after the Department Head, before the Communications Manager."""
    return add_step_before(shipped(KEY), "communications_review")


def without_head_review() -> bytes:
    """The Department Head's approval removed: a request goes straight to the profile question."""
    removed = ("department_head_review", *REMINDER, *ESCALATION)
    return without(shipped(KEY), *removed, redirect={"department_head_review": "investigative_profile"})


def publish(session, admin, xml: bytes) -> int:
    """Save the diagram as the draft and publish it, as an administrator does in the editor; its number."""
    drafts.save_draft(session, admin, KEY, xml)
    number = publishing.publish(session, admin, KEY).number
    session.commit()
    return number


# ---- what a person sees of a request ----------------------------------------------------------------


def start(session, who, moment: datetime) -> ProcessInstance:
    with clock.frozen_at(moment):
        instance = services.start_instance(session, who, KEY, START)
    session.commit()
    return instance


def moved_events(session, instance) -> list[AuditEvent]:
    return [e for e in services.history_of(session, instance) if e.action == "migrated"]


def open_timers(session, instance) -> list[tuple[str, str, datetime]]:
    return [
        tuple(row)
        for row in session.execute(
            select(Timer.id, Timer.element_id, Timer.due_at)
            .where(Timer.instance_id == instance.id, Timer.fired_at.is_(None))
            .order_by(Timer.element_id)
        )
    ]


def fire(sessions, due_at: datetime) -> list[timers.Fired]:
    """Run the scheduler's timer pass at a due time the database holds."""
    with clock.frozen_at(clock.as_utc(due_at)):
        return timers.fire_due(sessions)


def everything_of(session, instance_id: int) -> dict:
    """All that is stored of a request: its state, version, task and timer rows, history."""
    session.expire_all()
    row = session.get_one(ProcessInstance, instance_id)
    return {
        "instance": (row.workflow_state, row.model_id, row.version_hash, row.version, row.status),
        "tasks": session.execute(
            select(Task.id, Task.status, Task.name, Task.element_id, Task.assignee_id, Task.due_at)
            .where(Task.instance_id == instance_id)
            .order_by(Task.id)
        ).all(),
        "timers": session.execute(
            select(Timer.id, Timer.element_id, Timer.due_at, Timer.fired_at)
            .where(Timer.instance_id == instance_id)
            .order_by(Timer.id)
        ).all(),
        "history": [(e.id, e.action) for e in services.history_of(session, row)],
    }


# ---- moving one request ---------------------------------------------------------------------------


def test_a_request_waiting_at_the_department_head_moves_to_a_version_with_a_later_step_and_finishes_on_it(
    session, people, make_user
):
    records = make_user("records", department="administration", roles=["records_officer"])
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    [waiting] = services.open_tasks_of(session, instance)
    new = publish(session, people.admin, with_records_check())
    assert migration.movable_count(session, KEY, 1) == 1 and migration.movable_count(session, KEY, new) == 0

    moment = at(2026, 12, 7, 10, 15)
    with clock.frozen_at(moment):
        moved = migration.migrate_instance(session, people.admin, instance.id, new)
    session.commit()

    assert (moved.id, moved.model.number, moved.version_hash) == (instance.id, 2, moved.model.version_hash)
    assert migration.movable_count(session, KEY, 1) == 0 and migration.movable_count(session, KEY, new) == 1
    [event] = moved_events(session, instance)
    assert (event.actor, event.actor_name, event.at, event.detail) == (
        "admin",
        "Admin",
        utc(moment),
        {"from_version": 1, "to_version": 2},
    )
    # The Department Head's task is the same task: same row, same due date, still open to them.
    [still] = services.open_tasks_of(session, instance)
    assert (still.id, still.name, still.due_at, still.status) == (waiting.id, waiting.name, waiting.due_at, "open")

    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    [check] = services.open_tasks_of(session, instance)
    assert (check.name, check.role) == ("Records check", "records_officer")
    act(session, records, instance, "communications_review", {"decision": "approve"})
    act(session, people.comms, instance, "communications_review", {"decision": "approve"})
    act(session, people.requester, instance, "confirm_setup", SETUP)
    session.refresh(instance)
    assert (instance.status, instance.outcome, instance.model.number) == ("completed", "approved", 2)
    assert audit.verify(session).ok


def test_a_request_waiting_at_a_step_the_new_version_removed_cannot_move_and_nothing_of_it_changes(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    new = publish(session, people.admin, without_head_review())
    before = everything_of(session, instance.id)
    target = stored.version(session, people.admin, KEY, new)

    expected = [
        Problem(
            'The request waits at "Department Head approval", which version 2 no longer has.',
            "department_head_review",
            "Department Head approval",
        )
    ]
    assert migration.migration_problems(session, instance, target) == expected
    with pytest.raises(MigrationRefused) as refused:
        migration.migrate_instance(session, people.admin, instance.id, new)
    assert refused.value.problems == expected
    assert refused.value.message == f"Request {instance.id} cannot move to version 2 (1 problem); nothing was changed."
    assert isinstance(refused.value, Conflict) and refused.value.code == "migration_refused"
    session.commit()  # even a caller that commits after the refusal stores nothing of it
    assert everything_of(session, instance.id) == before


def test_a_finished_step_the_new_version_removed_stops_a_move_when_the_waiting_step_hangs_from_it(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    new = publish(
        session,
        people.admin,
        without(shipped(KEY), "to_department_head", redirect={"to_department_head": "department_head_review"}),
    )
    before = everything_of(session, instance.id)
    with pytest.raises(MigrationRefused) as refused:
        migration.migrate_instance(session, people.admin, instance.id, new)
    assert [(p.element, p.name) for p in refused.value.problems] == [("to_department_head", "To the Department Head")]
    assert refused.value.problems[0].message.startswith('The request has passed "To the Department Head"')
    session.rollback()
    assert everything_of(session, instance.id) == before


def test_a_waiting_user_task_given_to_another_lane_or_form_cannot_move(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    to_lieutenant = publish(
        session, people.admin, in_lane(shipped(KEY), "department_head_review", "Lane_administrative_lieutenant")
    )
    [lane] = migration.migration_problems(session, instance, stored.version(session, people.admin, KEY, to_lieutenant))
    assert lane.element == "department_head_review"
    assert "(Administrative Lieutenant instead of Department Head)" in lane.message

    other_form = shipped(KEY).replace(
        b'name="formKey" value="department_head_review"', b'name="formKey" value="communications_review"'
    )
    new_form = publish(session, people.admin, other_form)
    [form] = migration.migration_problems(session, instance, stored.version(session, people.admin, KEY, new_form))
    assert "(communications_review instead of department_head_review)" in form.message
    with pytest.raises(MigrationRefused):
        migration.migrate_instance(session, people.admin, instance.id, new_form)


def test_a_waiting_step_keeps_its_timers_and_gains_none_from_nothing(session, people):
    at_head = start(session, people.requester, at(2026, 12, 7, 9, 0))
    no_timers = publish(session, people.admin, without(shipped(KEY), *REMINDER, *ESCALATION))
    [problem] = migration.migration_problems(session, at_head, stored.version(session, people.admin, KEY, no_timers))
    assert (problem.element, problem.name) == ("department_head_review", "Department Head approval")
    assert problem.message.startswith('Version 2 takes every timer and event off "Department Head approval"')

    at_setup = start(session, people.requester, at(2026, 12, 7, 9, 5))
    act(session, people.parks_head, at_setup, "department_head_review", {"decision": "approve"})
    act(session, people.comms, at_setup, "communications_review", {"decision": "approve"})
    timed = publish(
        session, people.admin, with_timer(shipped(KEY), "confirm_setup", "setup_note", '"2026-12-09T15:00:00Z"')
    )
    [problem] = migration.migration_problems(session, at_setup, stored.version(session, people.admin, KEY, timed))
    assert (problem.element, problem.message) == (
        "confirm_setup",
        'Version 3 attaches timers or events to "Set up the account and confirm", where the request already '
        "waits: they can only start with the step.",
    )


def test_a_waiting_user_task_that_became_another_kind_of_step_cannot_move(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    act(session, people.comms, instance, "communications_review", {"decision": "approve"})
    scripted = publish(session, people.admin, as_script(shipped(KEY), "confirm_setup", "account_url = None"))
    [problem] = migration.migration_problems(session, instance, stored.version(session, people.admin, KEY, scripted))
    assert problem.message == (
        'The request waits at "Set up the account and confirm", which is a different kind of step in version 2.'
    )


def test_an_inbox_row_whose_task_the_request_no_longer_has_is_closed_by_the_move(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    [waiting] = services.open_tasks_of(session, instance)
    left_behind = Task(
        id=str(uuid.uuid4()),
        instance_id=instance.id,
        element_id="department_head_review",
        name="Department Head approval",
        form_key="department_head_review",
        role=waiting.role,
        department_id=waiting.department_id,
        created_at=waiting.created_at,
    )
    session.add(left_behind)
    session.commit()
    new = publish(session, people.admin, with_records_check())
    with clock.frozen_at(at(2026, 12, 7, 10, 0)):
        migration.migrate_instance(session, people.admin, instance.id, new)
    session.commit()
    assert [t.id for t in services.open_tasks_of(session, instance)] == [waiting.id]
    assert (left_behind.status, left_behind.completed_at) == ("cancelled", utc(at(2026, 12, 7, 10, 0)))


# ---- timers ------------------------------------------------------------------------------------------


def test_waiting_reminders_and_escalations_keep_their_due_dates_across_a_move_and_still_fire(session, sessions, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    counting = open_timers(session, instance)
    assert [element for _, element, _ in counting] == sorted(HEAD_TIMERS)
    new = publish(session, people.admin, with_records_check())
    with clock.frozen_at(at(2026, 12, 8, 7, 0)):  # a day later: a restarted timer would be due a day later
        migration.migrate_instance(session, people.admin, instance.id, new)
    session.commit()
    assert open_timers(session, instance) == counting

    (_, _, escalation_due), (_, _, reminder_due) = counting
    [reminded] = fire(sessions, reminder_due)
    assert reminded.timers == ("Reminder before the due date",)
    [escalated] = fire(sessions, escalation_due)
    assert escalated.timers == ("Overdue",)
    session.commit()  # a fresh snapshot: the passes committed in their own sessions
    history = [(e.action, e.task) for e in services.history_of(session, instance)]
    assert ("timer", "Reminder before the due date") in history and ("timer", "Overdue") in history
    assert ("escalated", "Department Head approval") in history
    letters = session.scalars(select(OutboxMail.letter).where(OutboxMail.instance_id == instance.id)).all()
    assert {"reminder", "escalation"} <= set(letters)
    assert open_timers(session, instance) == []


def test_a_changed_timer_starts_again_from_the_move_and_a_removed_one_is_closed(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    (overdue_id, _, overdue_due), (reminder_id, _, _) = open_timers(session, instance)
    changed = set_text(shipped(KEY), "department_head_review_reminder", "timeDate", '"2026-12-09T15:00:00+00:00"')
    new = publish(session, people.admin, changed)
    migration.migrate_instance(session, people.admin, instance.id, new)
    session.commit()
    assert open_timers(session, instance) == [
        (overdue_id, "department_head_review_overdue", overdue_due),
        (reminder_id, "department_head_review_reminder", datetime(2026, 12, 9, 15, 0)),
    ]

    newer = publish(session, people.admin, without(changed, *REMINDER))
    with clock.frozen_at(at(2026, 12, 7, 11, 0)):
        migration.migrate_instance(session, people.admin, instance.id, newer)
    session.commit()
    assert open_timers(session, instance) == [(overdue_id, "department_head_review_overdue", overdue_due)]
    closed = session.get_one(Timer, reminder_id)
    assert closed.fired_at == utc(at(2026, 12, 7, 11, 0))


def test_a_timer_the_new_version_adds_to_the_waiting_step_starts_with_the_move(session, sessions, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    new = publish(
        session, people.admin, with_timer(shipped(KEY), "department_head_review", "head_note", '"2026-12-07T20:00:00Z"')
    )
    migration.migrate_instance(session, people.admin, instance.id, new)
    session.commit()
    due = {element: due_at for _, element, due_at in open_timers(session, instance)}
    assert list(due) == [*sorted(HEAD_TIMERS), "head_note"] and due["head_note"] == datetime(2026, 12, 7, 20, 0)
    [noted] = fire(sessions, datetime(2026, 12, 7, 20, 0))
    assert noted.timers == ("Note for the file",)
    session.expire_all()  # the pass changed the request in its own session
    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["communications_review"]


def test_a_reminder_that_already_went_out_and_is_gone_from_the_new_version_does_not_stop_a_move(
    session, sessions, people
):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    (overdue_id, _, overdue_due), (_, _, reminder_due) = open_timers(session, instance)
    [reminded] = fire(sessions, reminder_due)
    assert reminded.timers == ("Reminder before the due date",)
    session.commit()  # on SQLite a snapshot older than the pass's commit could not write
    session.expire_all()  # the pass changed the request in its own session
    new = publish(session, people.admin, without(shipped(KEY), *REMINDER))
    migration.migrate_instance(session, people.admin, instance.id, new)
    session.commit()
    assert open_timers(session, instance) == [(overdue_id, "department_head_review_overdue", overdue_due)]
    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["communications_review"]
    assert open_timers(session, instance)[0][1] == "communications_review_overdue"


def test_a_timer_of_a_stored_version_that_cannot_start_stops_the_move_and_changes_nothing(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    # Stored under older rules (shipped, or uploaded before the timer check): loads, but fails when it starts.
    data = with_timer(shipped(KEY), "department_head_review", "head_note", '"not a time"')
    broken = stored.store_version(session, KEY, data, cached_spec(KEY, data), source="upload", created_by_id=None)
    session.commit()
    before = everything_of(session, instance.id)
    with pytest.raises(MigrationRefused) as refused:
        migration.migrate_instance(session, people.admin, instance.id, broken.number)
    [problem] = refused.value.problems
    assert problem.message.startswith("A step of version 2 could not start for this request:")
    session.rollback()
    assert everything_of(session, instance.id) == before


# ---- moving many -------------------------------------------------------------------------------------


def test_moving_all_requests_of_a_version_moves_those_that_can_and_names_the_others(session, people):
    at_head = start(session, people.requester, at(2026, 12, 7, 9, 0))
    at_comms = start(session, people.requester, at(2026, 12, 7, 9, 5))
    act(session, people.parks_head, at_comms, "department_head_review", {"decision": "approve"})
    finished = start(session, people.requester, at(2026, 12, 7, 9, 10))
    act(session, people.parks_head, finished, "department_head_review", {"decision": "reject", "comment": "No."})
    new = publish(
        session, people.admin, in_lane(shipped(KEY), "communications_review", "Lane_administrative_lieutenant")
    )
    assert migration.movable_count(session, KEY, 1) == 2
    left_alone = {i: everything_of(session, i) for i in (at_comms.id, finished.id)}

    moved, refused = migration.migrate_all(session, people.admin, KEY, 1, new)
    session.commit()

    assert moved == [at_head.id]
    assert list(refused) == [at_comms.id]
    [problem] = refused[at_comms.id]
    assert (problem.element, problem.name) == ("communications_review", "Communications Manager written approval")
    assert {i: everything_of(session, i) for i in left_alone} == left_alone
    assert (migration.movable_count(session, KEY, 1), migration.movable_count(session, KEY, new)) == (1, 1)
    assert [e.detail for e in moved_events(session, at_head)] == [{"from_version": 1, "to_version": 2}]
    # The moved request now goes to the lieutenant for the communications approval.
    act(session, people.parks_head, at_head, "department_head_review", {"decision": "approve"})
    assert [t.role for t in services.open_tasks_of(session, at_head)] == ["administrative_lieutenant"]


def test_a_request_changed_by_someone_else_meanwhile_is_refused_whole_and_moves_on_a_second_try(
    session, sessions, people
):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    new = publish(session, people.admin, with_records_check())

    def meanwhile(who, form_key: str) -> None:
        """Someone completes the request's task in their own session, after this one read the request."""
        session.get_one(ProcessInstance, instance.id)
        with sessions() as other:
            act(other, who, other.get_one(ProcessInstance, instance.id), form_key, {"decision": "approve"})
        session.commit()  # a fresh snapshot (SQLite), the request as read before

    meanwhile(people.parks_head, "department_head_review")
    with pytest.raises(Conflict, match="changed by someone else"):
        migration.migrate_instance(session, people.admin, instance.id, new)
    session.rollback()

    meanwhile(people.comms, "communications_review")
    changed = [Problem("The request was changed by someone else at the same moment; reload and try again.")]
    assert migration.migrate_all(session, people.admin, KEY, 1, new) == ([], {instance.id: changed})
    assert migration.migrate_all(session, people.admin, KEY, 1, new) == ([instance.id], {})
    session.commit()
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["confirm_setup"]


# ---- who may, which requests, which versions -----------------------------------------------------------


def test_only_administrators_move_requests(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    new = publish(session, people.admin, with_records_check())
    before = everything_of(session, instance.id)
    for attempt in (
        lambda: migration.migrate_instance(session, people.comms, instance.id, new),
        lambda: migration.migrate_all(session, people.comms, KEY, 1, new),
    ):
        with pytest.raises(NotAllowed, match="Only administrators"):
            attempt()
    assert everything_of(session, instance.id) == before


def test_unknown_requests_and_versions_are_not_found_and_a_finished_request_stays_where_it_is(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    new = publish(session, people.admin, with_records_check())
    with pytest.raises(NotFound):
        migration.migrate_instance(session, people.admin, instance.id + 100, new)
    with pytest.raises(NotFound):
        migration.migrate_instance(session, people.admin, instance.id, 9)
    with pytest.raises(NotFound):
        migration.migrate_all(session, people.admin, KEY, 1, 9)
    with pytest.raises(Conflict, match="already follows version 1"):
        migration.migrate_instance(session, people.admin, instance.id, 1)
    with pytest.raises(Conflict, match="already follow it"):
        migration.migrate_all(session, people.admin, KEY, 2, 2)

    act(session, people.parks_head, instance, "department_head_review", {"decision": "reject", "comment": "No."})
    with pytest.raises(MigrationRefused) as refused:
        migration.migrate_instance(session, people.admin, instance.id, new)
    assert [p.message for p in refused.value.problems] == [
        f"Request {instance.id} is completed: only a running or held request can move."
    ]
    target = stored.version(session, people.admin, KEY, new)
    assert migration.migration_problems(session, instance, target) == refused.value.problems


def test_a_version_of_another_procedure_is_named_as_such(session, people):
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    other = stored.version(session, people.admin, "manager_change", 1)
    [problem] = migration.migration_problems(session, instance, other)
    assert problem.message == 'Version 1 is a version of "manager_change", not of "new_account_request".'


# ---- a request held at a failed step ------------------------------------------------------------------


def test_a_request_held_at_a_failed_step_moves_to_the_fixed_version_keeps_the_failed_step_and_a_retry_finishes_it(
    session, people
):
    broken = publish_unchecked(
        session,
        people.admin,
        KEY,
        set_text(shipped(KEY), "Flow_head_approved", "conditionExpression", 'decision == "approve" and unknown_name'),
    )
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    session.refresh(instance)
    assert (instance.status, instance.model.number) == ("error", broken)

    fixed = publish(
        session,
        people.admin,
        set_text(shipped(KEY), "Flow_head_approved", "conditionExpression", 'decision == "approve" and True'),
    )
    migration.migrate_instance(session, people.admin, instance.id, fixed)
    session.commit()
    session.refresh(instance)
    assert (instance.status, instance.model.number) == ("error", fixed)
    workflow = serialization.loads(instance.workflow_state, spec_of_instance(instance))
    [held] = workflow.get_tasks(state=TaskState.ERROR)
    assert held.task_spec.bpmn_id == "department_head_decision"
    assert held.task_spec is spec_of_instance(instance).spec.task_specs["department_head_decision"]

    services.retry_instance(session, people.admin, instance.id)
    session.commit()
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["communications_review"]
    actions = [e.action for e in services.history_of(session, instance)]
    assert actions.index("incident") < actions.index("migrated") < actions.index("retried")


# ---- inside a sub-process ---------------------------------------------------------------------------


def test_a_request_waiting_inside_a_sub_process_moves_with_the_step_s_new_name_or_is_told_the_sub_process_is_gone(
    session, people
):
    with_review = publish(session, people.admin, with_subprocess(shipped(KEY)))
    instance = start(session, people.requester, at(2026, 12, 7, 9, 0))
    assert instance.model.number == with_review
    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    [waiting] = services.open_tasks_of(session, instance)
    assert (waiting.element_id, waiting.name) == ("records_check", "Records check")

    gone = publish(session, people.admin, with_records_check())
    [problem] = migration.migration_problems(session, instance, stored.version(session, people.admin, KEY, gone))
    assert (problem.element, problem.message) == (
        "records_review",
        'The request is inside "Records review", whose process version 3 no longer has.',
    )

    renamed = publish(session, people.admin, with_subprocess(shipped(KEY), step_name="Records officer check"))
    migration.migrate_instance(session, people.admin, instance.id, renamed)
    session.commit()
    [still] = services.open_tasks_of(session, instance)
    assert (still.id, still.name, still.role) == (waiting.id, "Records officer check", "communications_manager")
    act(session, people.comms, instance, "communications_review", {"decision": "approve"})
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["communications_review"]
