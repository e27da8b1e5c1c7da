"""Every diagram in workflows/, driven along its paths, survives saving and loading its state at each step."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.defaults import EndEvent
from SpiffWorkflow.bpmn.specs.event_definitions.timer import DurationTimerEventDefinition, TimeDateEventDefinition
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState

from engine.diagrams import serialization
from engine.diagrams.cache import cached_spec
from engine.diagrams.loading import workflow_files
from engine.mail import outbox
from engine.settings import REPO_ROOT
from engine.time import clock, deadlines

DIAGRAMS = workflow_files(REPO_ROOT / "workflows")
# SpiffWorkflow's own serializer (spec included), taught civicflow's clocked timers, to compare sizes with.
_DEFAULT_CONFIG = dict(SPIFF_CONFIG)
_DEFAULT_CONFIG[deadlines.ClockTimeDate] = SPIFF_CONFIG[TimeDateEventDefinition]
_DEFAULT_CONFIG[deadlines.ClockDuration] = SPIFF_CONFIG[DurationTimerEventDefinition]
DEFAULT_SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_DEFAULT_CONFIG))
# Far beyond any due date: every waiting timer fires.
LONG_AFTER = datetime(2100, 1, 4, 9, 0, tzinfo=UTC)


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
APPEAL = {"appellant_name": "Jo", "appellant_email": "jo@example.net", "account": 1, "explanation": "Why."}
DISPUTE = {"disputant_name": "Sam", "disputant_email": "sam@example.net", "policy_section": "Rules of Use"}

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
            completed_user_tasks |= {name for name, _ in path.steps}
            reached_ends |= {
                t.task_spec.bpmn_id
                for t in workflow.get_tasks(state=TaskState.COMPLETED)
                if isinstance(t.task_spec, EndEvent)
            }

    assert completed_user_tasks == _spec_names(loaded, UserTask), "some user task is on no path"
    assert reached_ends == _spec_names(loaded, EndEvent), "some end event is on no path"
