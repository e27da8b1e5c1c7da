"""Every diagram in workflows/, driven along its paths, survives saving and loading its state at each step; a
request returned and resubmitted many times is pruned as it is stored, and still ends every way, as unpruned."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition, TimeDateEventDefinition
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState

from engine.diagrams import serialization
from engine.diagrams.cache import cached_spec
from engine.diagrams.loading import workflow_files
from engine.mail import outbox
from engine.settings import REPO_ROOT
from engine.time import clock, deadlines, timer_mirror

DIAGRAMS = workflow_files(REPO_ROOT / "workflows")
# SpiffWorkflow's own serializer (spec included), taught civicflow's clocked timers, to compare sizes with.
_DEFAULT_CONFIG = dict(SPIFF_CONFIG)
_DEFAULT_CONFIG[deadlines.ClockTimeDate] = SPIFF_CONFIG[TimeDateEventDefinition]
_DEFAULT_CONFIG[deadlines.ClockDuration] = SPIFF_CONFIG[DurationTimerEventDefinition]
DEFAULT_SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_DEFAULT_CONFIG))
# Far beyond any due date: every waiting timer fires.
LONG_AFTER = datetime(2100, 1, 4, 9, 0, tzinfo=UTC)
# When the long requests are filed and decided: a Monday morning in the City (its due dates the same each run).
MONDAY = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Path:
    """One way through a diagram: the start data, each user task completed with its data, the outcome."""

    name: str
    start: dict
    steps: tuple[tuple[str, dict], ...]
    outcome: str


APPROVE, REJECT = {"decision": "approve"}, {"decision": "reject", "comment": "No."}
RETURN = {"decision": "return", "comment": "Please change it."}
REQUEST = {
    "platform": "facebook",
    "account_name": "WSP Parks",
    "department": "parks",
    "purpose": "News.",
    "audience": "Residents.",
    "proposed_managers": ["requester"],
    "investigative": False,
    "notice_and_link_plan": "Pinned post.",
}
POLICE = {**REQUEST, "department": "police", "investigative": True}
SETUP = {
    "account_url": "https://facebook.com/wspparks",
    "marked_as_city": True,
    "links_official_site": True,
    "public_notice_linked": True,
}
SECRET_SETUP = {
    "account_url": None,
    "credentials_token": "gAAAA-opaque",
    "username_fingerprint": "u" * 64,
    "password_fingerprint": "p" * 64,
}
HEAD, COMMS, LIEUTENANT = "department_head_review", "communications_review", "lieutenant_review"
CHANGE = {"account_id": 1, "action": "add", "manager": "pat", "reason": "Help.", "investigative": False}
ACCESS = {"access_changed": True, "credentials_rotated": False}
REMOVAL = {"account_id": 1, "stage": "published", "categories": ["spam"], "rationale": "Spam."}
APPEAL = {
    "appellant_name": "Jo",
    "appellant_email": "jo@example.net",
    "account": 1,
    "explanation": "Why.",
    "reply_by": "email",
}
DISPUTE = {
    "disputant_name": "Sam",
    "disputant_email": "sam@example.net",
    "policy_section": "Rules of Use",
    "reply_by": "email",
}
MAILED = {"mailed": True}

# Every diagram of workflows/ needs its paths here; together they must reach every user task and end event.
PATHS = {
    "new_account_request": [
        Path("approved", REQUEST, ((HEAD, APPROVE), (COMMS, APPROVE), ("confirm_setup", SETUP)), "approved"),
        Path("rejected by the head", REQUEST, ((HEAD, REJECT),), "rejected"),
        Path("rejected by communications", REQUEST, ((HEAD, APPROVE), (COMMS, REJECT)), "rejected"),
        Path(
            "returned, resubmitted, approved",
            REQUEST,
            (
                (HEAD, RETURN),
                ("revise_request", {"action": "resubmit", **REQUEST, "account_name": "WSP Rec"}),
                (HEAD, APPROVE),
                (COMMS, APPROVE),
                ("confirm_setup", SETUP),
            ),
            "approved",
        ),
        Path(
            "returned by communications, withdrawn",
            REQUEST,
            ((HEAD, APPROVE), (COMMS, RETURN), ("revise_request", {"action": "withdraw"})),
            "withdrawn",
        ),
        Path(
            "investigative, approved",
            POLICE,
            ((HEAD, APPROVE), (LIEUTENANT, APPROVE), ("confirm_setup", SECRET_SETUP)),
            "approved",
        ),
        Path("investigative, rejected by the lieutenant", POLICE, ((HEAD, APPROVE), (LIEUTENANT, REJECT)), "rejected"),
        Path(
            "investigative, returned by the lieutenant, withdrawn",
            POLICE,
            ((HEAD, APPROVE), (LIEUTENANT, RETURN), ("revise_request", {"action": "withdraw"})),
            "withdrawn",
        ),
    ],
    "manager_change": [
        Path("added", CHANGE, ((HEAD, APPROVE), (COMMS, APPROVE), ("confirm_access_change", ACCESS)), "approved"),
        Path("rejected by the head", CHANGE, ((HEAD, REJECT),), "rejected"),
        Path("rejected by communications", CHANGE, ((HEAD, APPROVE), (COMMS, REJECT)), "rejected"),
        Path(
            "investigative, approved",
            {**CHANGE, "investigative": True},
            ((HEAD, APPROVE), (LIEUTENANT, APPROVE), ("confirm_access_change", ACCESS)),
            "approved",
        ),
        Path(
            "investigative, rejected",
            {**CHANGE, "investigative": True},
            ((HEAD, APPROVE), (LIEUTENANT, REJECT)),
            "rejected",
        ),
    ],
    "content_removal": [
        Path("removed", REMOVAL, (("confirm_deletion", {"deleted": True}),), "removed"),
        Path("denied", {**REMOVAL, "stage": "pre_publication"}, (("confirm_deletion", {"deleted": True}),), "denied"),
        Path("kept", REMOVAL, (("confirm_deletion", {"deleted": False}),), "not_removed"),
    ],
    "removal_appeal": [
        Path("upheld", APPEAL, (("appeal_review", {"decision": "uphold", "response_text": "No."}),), "upheld"),
        Path(
            "reinstated",
            APPEAL,
            (
                ("appeal_review", {"decision": "reinstate", "response_text": "Yes."}),
                ("restore_content", {"restored": True}),
            ),
            "reinstated",
        ),
        Path(
            "upheld, by post",
            {**APPEAL, "reply_by": "post"},
            (("appeal_review", {"decision": "uphold", "response_text": "No."}), ("mail_response", MAILED)),
            "upheld",
        ),
    ],
    "legality_dispute": [
        Path(
            "no change",
            DISPUTE,
            (
                ("attorney_consultation", {"advice": "A.", "recommendation": "no_change"}),
                ("dispute_response", {"response_text": "R."}),
            ),
            "responded",
        ),
        Path(
            "amend",
            DISPUTE,
            (
                ("attorney_consultation", {"advice": "A.", "recommendation": "amend"}),
                ("dispute_response", {"response_text": "R."}),
                ("policy_amendment", {"amendment_summary": "S."}),
            ),
            "responded",
        ),
        Path(
            "by post",
            {**DISPUTE, "reply_by": "post"},
            (
                ("mail_acknowledgement", MAILED),
                ("attorney_consultation", {"advice": "A.", "recommendation": "no_change"}),
                ("dispute_response", {"response_text": "R."}),
                ("mail_response", MAILED),
            ),
            "responded",
        ),
    ],
}


def _ready_user_tasks(workflow):
    return [
        (t.task_spec.bpmn_id, t.task_spec.bpmn_name, t.id)
        for t in workflow.get_tasks(state=TaskState.READY, manual=True)
    ]


def _observable(workflow):
    """What a reader of the state depends on: ready user tasks, each task's state and data, workflow data."""
    tasks = {t.id: (t.task_spec.name, t.state, t.data) for t in workflow.get_tasks()}
    return _ready_user_tasks(workflow), tasks, workflow.data, workflow.completed


def _save_restore(workflow, loaded):
    """Save and load the state, assert nothing was lost and the stored form is lean; return the reload."""
    stored = serialization.dumps(workflow)
    reloaded = serialization.loads(stored, loaded)
    assert serialization.dumps(reloaded) == stored
    assert _observable(reloaded) == _observable(workflow)
    top = json.loads(stored)
    assert "spec" not in top and "subprocess_specs" not in top
    assert len(stored) < len(DEFAULT_SERIALIZER.serialize_json(workflow))
    return reloaded


def _fire_timers(workflow, loaded):
    """Move the clock past every due date, fire the waiting timers (reminders, escalations), save and load."""
    with (
        clock.frozen_at(LONG_AFTER),
        deadlines.running(deadlines.default(), LONG_AFTER) as notices,
        outbox.collecting(),
    ):
        workflow.refresh_timers()
        workflow.do_engine_steps()
    ready = {str(t.id) for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
    assert {n.task_id for n in notices} <= ready, "a reminder or escalation about a task that is not open"
    return _save_restore(workflow, loaded)


def _drive(loaded, path, fire_timers=False):
    """Run a path on a fresh workflow, saving and reloading around every step; return the final workflow.

    With fire_timers, every task's reminder and escalation fire (the clock moved far ahead) before it is done.
    """
    workflow = serialization.new_workflow(loaded)
    workflow.get_next_task(state=TaskState.READY).data.update(path.start)
    with outbox.collecting():  # send_letter steps only note their letter; services queue it
        workflow.do_engine_steps()
    workflow = _save_restore(workflow, loaded)
    for number, (task_name, data) in enumerate(path.steps, 1):
        ready = _ready_user_tasks(workflow)
        assert [name for name, _, _ in ready] == [task_name], f"{path.name}, step {number}: ready {ready}"
        if fire_timers:
            workflow = _fire_timers(workflow, loaded)
            assert _ready_user_tasks(workflow) == ready, f"{path.name}, step {number}: a timer interrupted the task"
        task = workflow.get_task_from_id(ready[0][2])
        task.data.update(data)
        with outbox.collecting():
            task.run()
            workflow.do_engine_steps()
        workflow = _save_restore(workflow, loaded)
    assert workflow.completed, f"{path.name}: still waiting at {_ready_user_tasks(workflow)}"
    assert workflow.data.get("outcome") == path.outcome, path.name
    return workflow


def _spec_names(loaded, kind):
    return {
        t.bpmn_id
        for process in (loaded.spec, *loaded.subprocess_specs.values())
        for t in process.task_specs.values()
        if isinstance(t, kind)
    }


def test_workflows_folder_ships_the_new_account_request():
    assert "new_account_request" in [d.stem for d in DIAGRAMS]


@pytest.mark.parametrize("diagram", DIAGRAMS, ids=lambda d: d.stem)
def test_every_path_of_the_diagram_survives_save_and_load_at_every_step(diagram):
    assert diagram.stem in PATHS, f"Add the paths of {diagram.name} to PATHS in this test."
    loaded = cached_spec(diagram.stem, diagram.read_bytes())
    completed_user_tasks, reached_ends = set(), set()
    for path in PATHS[diagram.stem]:
        for fire_timers in (False, True):
            workflow = _drive(loaded, path, fire_timers)
            assert serialization.pruned_elements(workflow) == set(), f"{path.name}: an ordinary request was pruned"
            completed_user_tasks |= {name for name, _ in path.steps}
            reached_ends |= {
                t.task_spec.bpmn_id
                for t in workflow.get_tasks(state=TaskState.COMPLETED)
                if isinstance(t.task_spec, EndEvent)
            }

    assert completed_user_tasks == _spec_names(loaded, UserTask), "some user task is on no path"
    assert reached_ends == _spec_names(loaded, EndEvent), "some end event is on no path"


# ---- a long history: returned and resubmitted many times ------------------------------------------------------

ROUNDS = 30
# Each round the requester renames the account, so that the record at the end shows which round's data it kept.
LONG_ROUNDS = tuple(
    step
    for number in range(1, ROUNDS + 1)
    for step in (
        (HEAD, RETURN),
        ("revise_request", {"action": "resubmit", **REQUEST, "account_name": f"WSP Parks {number}"}),
    )
)
# How a request returned ROUNDS times may end: (the steps after the rounds, the outcome).
ENDINGS = {
    "approved": (((HEAD, APPROVE), (COMMS, APPROVE), ("confirm_setup", SETUP)), "approved"),
    "rejected by the head": (((HEAD, REJECT),), "rejected"),
    "rejected by communications": (((HEAD, APPROVE), (COMMS, REJECT)), "rejected"),
    "returned again, withdrawn": (((HEAD, RETURN), ("revise_request", {"action": "withdraw"})), "withdrawn"),
    "returned by communications, resubmitted, approved": (
        (
            (HEAD, APPROVE),
            (COMMS, RETURN),
            ("revise_request", {"action": "resubmit", **REQUEST, "account_name": "WSP Rec"}),
            (HEAD, APPROVE),
            (COMMS, APPROVE),
            ("confirm_setup", SETUP),
        ),
        "approved",
    ),
}


def _seen(workflow):
    """What people and the scheduler see of a request: its open tasks, its waiting reminders and escalations
    (the timer mirror's rows), its data, whether it ended; and the elements it passed (its diagram)."""
    open_tasks = [(name, label) for name, label, _ in _ready_user_tasks(workflow)]
    timers = sorted(
        (t.task_spec.bpmn_id, t.internal_data.get("event_value")) for t in timer_mirror.waiting_timers(workflow)
    )
    passed = {t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.COMPLETED)}
    passed |= serialization.pruned_elements(workflow)
    return open_tasks, timers, workflow.data, workflow.completed, passed


def _fire_and_note(workflow):
    """Fire every waiting timer (the clock far ahead); the reminders and escalations the steps asked for."""
    with (
        clock.frozen_at(LONG_AFTER),
        deadlines.running(deadlines.default(), LONG_AFTER) as notices,
        outbox.collecting(),
    ):
        workflow.refresh_timers()
        workflow.do_engine_steps()
    return [(notice.operator, notice.step) for notice in notices]


def _complete(workflow, task_name, data):
    [(name, _, task_id)] = _ready_user_tasks(workflow)
    assert name == task_name
    task = workflow.get_task_from_id(task_id)
    task.data.update(data)
    with outbox.collecting():
        task.run()
        workflow.do_engine_steps()


def _side_by_side(loaded, steps, fire_timers):
    """Drive a new account request along the steps twice: in memory as SpiffWorkflow leaves it, and stored, pruned
    and loaded at every step; both must show the same at every step. The two, and the stored sizes by step."""
    whole, stored = serialization.new_workflow(loaded), serialization.new_workflow(loaded)
    for workflow in (whole, stored):
        workflow.get_next_task(state=TaskState.READY).data.update(REQUEST)
        with outbox.collecting():
            workflow.do_engine_steps()
    stored = _save_restore(stored, loaded)
    sizes = []
    for number, (task_name, data) in enumerate(steps, 1):
        if fire_timers:
            assert _fire_and_note(stored) == _fire_and_note(whole), f"step {number}: other reminders or escalations"
            stored = _save_restore(stored, loaded)
        _complete(whole, task_name, data)
        _complete(stored, task_name, data)
        stored = _save_restore(stored, loaded)
        sizes.append(len(serialization.dumps(stored)))
        assert _seen(stored) == _seen(whole), f"step {number} ({task_name}): the pruned request differs"
    return whole, stored, sizes


@pytest.mark.parametrize("fire_timers", [False, True], ids=["on time", "reminded and escalated"])
@pytest.mark.parametrize("ending", ENDINGS)
def test_a_request_returned_many_times_is_pruned_and_still_ends_as_it_would_unpruned(ending, fire_timers):
    loaded = cached_spec("new_account_request", (REPO_ROOT / "workflows" / "new_account_request.bpmn").read_bytes())
    steps, outcome = ENDINGS[ending]
    with clock.frozen_at(MONDAY):
        whole, stored, sizes = _side_by_side(loaded, LONG_ROUNDS + steps, fire_timers)

    assert stored.completed and stored.data["outcome"] == outcome
    assert _ready_user_tasks(stored) == [] and timer_mirror.waiting_timers(stored) == []
    if ending != "returned by communications, resubmitted, approved":
        assert stored.data["account_name"] == f"WSP Parks {ROUNDS}"
    # Pruned: the stored tasks are a fraction of SpiffWorkflow's, and the loop's elements are still passed.
    assert len(stored.tasks) * 4 < len(whole.tasks)
    assert {HEAD, "revise_request", "to_department_head"} <= serialization.pruned_elements(stored)


@pytest.mark.parametrize("fire_timers", [False, True], ids=["on time", "reminded and escalated"])
def test_the_stored_state_of_a_request_returned_many_times_stays_as_small_as_after_three_rounds(fire_timers):
    loaded = cached_spec("new_account_request", (REPO_ROOT / "workflows" / "new_account_request.bpmn").read_bytes())
    with clock.frozen_at(MONDAY):
        whole, _stored, sizes = _side_by_side(loaded, LONG_ROUNDS, fire_timers)
    after_round = sizes[1::2]  # after each resubmission
    assert max(after_round) < 1.25 * max(after_round[:3]), after_round
    unpruned = len(json.dumps(serialization.SERIALIZER.to_dict(whole)))
    assert after_round[-1] * 5 < unpruned


# A diagram's loop may run through a subprocess: each round's subprocess goes with its round.
LOOPED_SUBPROCESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Definitions_looped"
                  targetNamespace="http://civicflow.example/bpmn">
  <bpmn:process id="looped" isExecutable="true">
    <bpmn:startEvent id="begin" />
    <bpmn:sequenceFlow id="Flow_begun" sourceRef="begin" targetRef="first_or_again" />
    <bpmn:exclusiveGateway id="first_or_again" />
    <bpmn:sequenceFlow id="Flow_to_check" sourceRef="first_or_again" targetRef="check" />
    <bpmn:subProcess id="check">
      <bpmn:startEvent id="check_begin" />
      <bpmn:sequenceFlow id="Flow_to_inspect" sourceRef="check_begin" targetRef="inspect" />
      <bpmn:userTask id="inspect" />
      <bpmn:sequenceFlow id="Flow_inspected" sourceRef="inspect" targetRef="check_end" />
      <bpmn:endEvent id="check_end" />
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="Flow_checked" sourceRef="check" targetRef="decide" />
    <bpmn:userTask id="decide" />
    <bpmn:sequenceFlow id="Flow_decided" sourceRef="decide" targetRef="repeat" />
    <bpmn:exclusiveGateway id="repeat" />
    <bpmn:sequenceFlow id="Flow_again" sourceRef="repeat" targetRef="first_or_again">
      <bpmn:conditionExpression>again</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_done" sourceRef="repeat" targetRef="finish">
      <bpmn:conditionExpression>not again</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="finish" />
  </bpmn:process>
</bpmn:definitions>"""


def test_a_loop_through_a_subprocess_is_pruned_with_its_subprocesses_and_still_ends():
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(LOOPED_SUBPROCESS)
    loaded = SimpleNamespace(spec=parser.get_spec("looped"), subprocess_specs=parser.get_subprocess_specs("looped"))
    whole, stored = serialization.new_workflow(loaded), serialization.new_workflow(loaded)
    steps = [
        step
        for number in range(ROUNDS)
        for step in (("inspect", {"seen": number}), ("decide", {"again": number < ROUNDS - 1}))
    ]
    for workflow in (whole, stored):
        workflow.do_engine_steps()
    for number, (task_name, data) in enumerate(steps, 1):
        _complete(whole, task_name, data)
        _complete(stored, task_name, data)
        stored = _save_restore(stored, loaded)
        assert _seen(stored) == _seen(whole), f"step {number} ({task_name}): the pruned workflow differs"
        if data.get("again"):  # the next round's subprocess runs, and is kept
            assert [t.task_spec.bpmn_id for t in stored.get_active_subprocesses()[0].get_tasks()]

    assert stored.completed and stored.data["seen"] == ROUNDS - 1
    assert len(whole.subprocesses) == ROUNDS and len(stored.subprocesses) < 5
    assert {"inspect", "decide", "check"} <= serialization.pruned_elements(stored)
