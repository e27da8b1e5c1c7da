"""A broken step never loses work: the request is held with an incident, the administrators are told, and a fixed
version, a migration and a retry move it on.

Each kind of failure a published diagram can still have (a condition naming a field the form never sets, a script
that raises, a multi-instance without its collection, a timer value that cannot be read, an exception whose own
text cannot be formatted) is put on the new account request at three moments: as the request is filed, after the
Department Head's decision, and after the reminder timer fires. Everything goes through the API and the scheduler's
own pass, on SQLite and on PostgreSQL, with the administrators' mail delivered to a real SMTP server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.db.models import Incident, Timer
from engine.mail import outbox
from engine.records import audit
from engine.requests import services
from engine.time import clock, timers
from engine.versions import drafts, publishing
from tests.editing import insert_step, shipped
from tests.engine.test_request_migration import without_head_review
from tests.helpers import SETUP, START, publish_unchecked

KEY = "new_account_request"
STEP = 'id="check" name="Check the budget"'
SCRIPT = f"<bpmn:scriptTask {STEP}><bpmn:script>{{}}</bpmn:script></bpmn:scriptTask>"
MULTI = (
    f"<bpmn:scriptTask {STEP}><bpmn:multiInstanceLoopCharacteristics>"
    '<bpmn:loopDataInputRef>{}</bpmn:loopDataInputRef><bpmn:inputDataItem id="manager" />'
    "</bpmn:multiInstanceLoopCharacteristics><bpmn:script>checked = True</bpmn:script></bpmn:scriptTask>"
)
TIMER = (
    f"<bpmn:intermediateCatchEvent {STEP}><bpmn:timerEventDefinition>"
    "<bpmn:timeDate>{}</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
)
GATEWAY = f"<bpmn:exclusiveGateway {STEP} />"

# Each kind: (the broken step, its condition), then (the fixed step, its condition).
KINDS = {
    "undefined name in a condition": ((GATEWAY, 'budget_code == "A"'), (GATEWAY, 'platform == "x"')),
    "a raising script": (
        (SCRIPT.format('raise ValueError("The budget code is missing.")'), None),
        (SCRIPT.format("checked = True"), None),
    ),
    # Fixed by a plain step: a multi-instance over the managers would fail the dry run on a resubmitted request
    # (SpiffWorkflow refuses an input item left in the data by the first round).
    "a multi-instance with no collection": ((MULTI.format("reviewers"), None), (SCRIPT.format("checked = True"), None)),
    "a failing timer expression": (
        (TIMER.format("budget_review_at"), None),
        (TIMER.format('"2026-01-05T09:00:00-06:00"'), None),
    ),
    "an exception whose message cannot be formatted": (
        (SCRIPT.format("raise ValueError(10 ** 5000)"), None),
        (SCRIPT.format("checked = True"), None),
    ),
}
# Where the step goes: as the request is filed, after the Department Head decides, after the reminder is sent.
MOMENTS = {
    "start": "Flow_submitted",
    "completion": "Flow_head_decided",
    "timer": "Flow_department_head_review_reminded",
}


def publish(session, admin, xml: bytes) -> int:
    """Publish as an administrator does, dry run and all (the broken versions go in with publish_unchecked)."""
    session.commit()  # a fresh transaction: on SQLite a read snapshot older than another writer cannot write
    drafts.save_draft(session, admin, KEY, xml)
    session.commit()
    number = publishing.publish(session, admin, KEY).number
    session.commit()
    return number


def with_step(kind: str, moment: str, *, fixed: bool) -> bytes:
    step, condition = KINDS[kind][1 if fixed else 0]
    return insert_step(shipped(KEY), MOMENTS[moment], step, condition=condition)


def open_task(api, who: str, instance_id: int, form_key: str) -> str:
    """The task as its person finds it in their inbox (theirs, or one they may take)."""
    tasks = [
        t for scope in ("mine", "available") for t in api(who).get(f"/api/v1/tasks?scope={scope}").get_json()["items"]
    ]
    [task] = [t for t in tasks if (t["instance_id"], t["form_key"]) == (instance_id, form_key)]
    return task["id"]


def complete(api, who: str, instance_id: int, form_key: str, data: dict):
    task_id = open_task(api, who, instance_id, form_key)
    return api(who).post(f"/api/v1/tasks/{task_id}/complete", json={"data": data})


def fire_the_reminder(session, sessions, instance_id: int) -> list[timers.Fired]:
    session.commit()
    first = session.scalar(
        select(Timer.due_at).where(Timer.instance_id == instance_id, Timer.fired_at.is_(None)).order_by(Timer.due_at)
    )
    with clock.frozen_at(clock.as_utc(first) + timedelta(minutes=1)):
        return timers.fire_due(sessions)


def held_answer(session, sessions, api, moment: str) -> dict:
    """Do what the moment is, as its people would; the instance JSON they got back."""
    started = api("requester").post(f"/api/v1/processes/{KEY}/instances", json={"data": START})
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    if moment == "start":
        return body
    assert body["status"] == "running"
    if moment == "completion":
        decided = complete(api, "parks_head", body["id"], "department_head_review", {"decision": "approve"})
        assert decided.status_code == 200, decided.get_json()
        return decided.get_json()
    [fired] = fire_the_reminder(session, sessions, body["id"])
    assert fired.instance_id == body["id"] and "held" in (fired.error or "")
    return api("requester").get(f"/api/v1/instances/{body['id']}").get_json()


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_step_holds_the_request_keeps_the_work_tells_the_administrators_and_a_fix_moves_it_on(
    kind, moment, session, sessions, people, api, smtp_server, mail_settings
):
    broken = publish_unchecked(session, people.admin, KEY, with_step(kind, moment, fixed=False))

    answer = held_answer(session, sessions, api, moment)

    instance_id = answer["id"]
    assert answer["status"] == "error"
    assert answer["incident"]["element_id"] == "check"
    assert answer["incident"]["element_name"] == "Check the budget"
    assert answer["incident"]["message"].startswith('The step "Check the budget" failed')
    # The filing, and the decision where there was one, are in the history and the audit trail.
    actions = [(e["action"], e["decision"]) for e in answer["history"]]
    assert ("started", None) in actions and ("incident", None) in actions
    if moment == "completion":
        assert ("completed", "approve") in actions
    if moment == "timer":
        assert "timer" in [e["action"] for e in answer["history"]]
    assert answer["data"]["account_name"] == START["account_name"]
    session.commit()
    assert audit.verify(session).ok

    # The administrators hear of it at a real mail server, with the link to the incident.
    [incident] = session.scalars(select(Incident).where(Incident.instance_id == instance_id)).all()
    assert outbox.deliver_due(sessions, mail_settings).sent >= 1
    [mail] = [m for m in smtp_server.to("admin@example.org") if "Held at a failed step" in m["Subject"]]
    assert f"/admin/incidents/{incident.id}" in mail.get_content()
    assert "Check the budget" in mail.get_content()
    listed = api("admin").get("/api/v1/incidents?status=open").get_json()["items"]
    assert [(i["instance_id"], i["element_id"], i["version"]) for i in listed] == [(instance_id, "check", broken)]

    # Nobody can act on the held request meanwhile (after the reminder, the Department Head's task is still
    # open); it says why in plain words.
    if moment == "timer":
        refused = complete(api, "parks_head", instance_id, "department_head_review", {"decision": "approve"})
        assert refused.status_code == 409
        assert "held" in refused.get_json()["error"]["message"]

    # Fix, migrate, retry: the request moves on, on the new version, and finishes.
    fixed = publish(session, people.admin, with_step(kind, moment, fixed=True))
    moved = api("admin").post(f"/api/v1/instances/{instance_id}/migrate", json={"version": fixed})
    assert moved.status_code == 200, moved.get_json()
    assert (moved.get_json()["version_number"], moved.get_json()["status"]) == (fixed, "error")
    retried = api("admin").post(f"/api/v1/instances/{instance_id}/retry")
    assert retried.status_code == 200, retried.get_json()
    assert (retried.get_json()["status"], retried.get_json()["incident"]) == ("running", None)

    if moment != "completion":
        decided = complete(api, "parks_head", instance_id, "department_head_review", {"decision": "approve"})
        assert decided.status_code == 200 and decided.get_json()["status"] == "running", decided.get_json()
    assert complete(api, "comms", instance_id, "communications_review", {"decision": "approve"}).status_code == 200
    done = complete(api, "requester", instance_id, "confirm_setup", SETUP).get_json()
    assert (done["status"], done["outcome"], done["version_number"]) == ("completed", "approved", fixed)
    assert [i["status"] for i in api("admin").get("/api/v1/incidents").get_json()["items"]] == ["resolved"]
    session.commit()
    assert audit.verify(session).ok


def test_a_timer_whose_step_fails_holds_only_its_own_request_and_the_pass_reminds_and_escalates_the_others(
    session, sessions, people, smtp_server, mail_settings
):
    publish_unchecked(session, people.admin, KEY, with_step("a raising script", "timer", fixed=False))
    broken = services.start_instance(session, people.requester, KEY, START)
    session.commit()
    publishing.republish(session, people.admin, KEY, 1)
    session.commit()
    sound = services.start_instance(session, people.colleague, KEY, {**START, "account_name": "Parks Events"})
    session.commit()
    due = dict(
        session.execute(
            select(Timer.element_id, Timer.due_at).where(Timer.instance_id == sound.id, Timer.fired_at.is_(None))
        ).all()
    )

    with clock.frozen_at(clock.as_utc(due["department_head_review_reminder"]) + timedelta(minutes=1)):
        reminded = timers.fire_due(sessions)
    assert {(f.instance_id, f.error is None) for f in reminded} == {(broken.id, False), (sound.id, True)}
    session.commit()  # a fresh snapshot: the passes wrote in their own transactions
    session.expire_all()
    assert (session.get(type(broken), broken.id).status, session.get(type(sound), sound.id).status) == (
        "error",
        "running",
    )

    # The held request is not tried again in a loop: the next passes leave it alone, the other is escalated.
    with clock.frozen_at(clock.as_utc(due["department_head_review_overdue"]) + timedelta(minutes=1)):
        escalated = timers.fire_due(sessions)
        assert timers.fire_due(sessions) == []
    assert [(f.instance_id, f.error) for f in escalated] == [(sound.id, None)]
    session.commit()  # a fresh snapshot: the passes wrote in their own transactions
    session.expire_all()
    [incident] = session.scalars(select(Incident)).all()
    assert (incident.instance_id, incident.attempts, incident.during) == (broken.id, 1, "timer")

    outbox.deliver_due(sessions, mail_settings)
    subjects = sorted(m["Subject"] for m in smtp_server.to("parks_head@example.org"))
    # The broken request's reminder step ran before the step that failed, so its reminder went too.
    assert [s.split(" is due")[0] for s in subjects if s.startswith("Reminder")] == [
        "Reminder: Department Head approval"
    ] * 2
    overdue = [m["Subject"] for m in smtp_server.messages if m["Subject"].startswith("Overdue")]
    assert set(overdue) == {f"Overdue: Department Head approval (request {sound.id})"}
    assert [m["Subject"] for m in smtp_server.to("admin@example.org")] == [
        f"Held at a failed step: request {broken.id}"
    ]


def test_a_move_refused_through_the_api_is_a_409_naming_the_waiting_task_and_changes_nothing(session, people, api):
    started = api("requester").post(f"/api/v1/processes/{KEY}/instances", json={"data": START}).get_json()
    before = api("requester").get(f"/api/v1/instances/{started['id']}").get_json()
    removed = publish(session, people.admin, without_head_review())

    refused = api("admin").post(f"/api/v1/instances/{started['id']}/migrate", json={"version": removed})

    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "migration_refused"
    assert [(p["element"], p["message"]) for p in error["problems"]] == [
        (
            "department_head_review",
            f'The request waits at "Department Head approval", which version {removed} no longer has.',
        )
    ]
    assert api("requester").get(f"/api/v1/instances/{started['id']}").get_json() == before
    assert api("admin").post(f"/api/v1/instances/{started['id']}/migrate", json={"version": "2"}).status_code == 400
