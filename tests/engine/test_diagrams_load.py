"""The four procedure diagrams after the new account request: each loads, has the policy's forms in the right
lanes, sends the procedure's letters, and draws every element it runs."""

import pytest
from lxml import etree
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask

from engine.roles import LANE_ROLES
from engine.settings import REPO_ROOT
from engine.specs import form_key_of, load_diagram

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DI = "{http://www.omg.org/spec/DD/20100524/DI}"

# The BPMN elements a process runs; each must be drawn (bpmn-js shows nothing for an element without DI).
FLOW_NODES = ("startEvent", "endEvent", "exclusiveGateway", "userTask", "scriptTask", "serviceTask")

# process key -> {user task form key: the lane (role) that completes it}
USER_TASK_LANES = {
    "manager_change": {
        "department_head_review": "Department Head",
        "communications_review": "Communications Manager",
        "lieutenant_review": "Administrative Lieutenant",
        "confirm_access_change": "Requester",
    },
    "content_removal": {"confirm_deletion": "Social Media Manager"},
    "removal_appeal": {"appeal_review": "Communications Manager", "restore_content": "Social Media Manager"},
    "legality_dispute": {
        "attorney_consultation": "City Attorney",
        "dispute_response": "Communications Manager",
        "policy_amendment": "Communications Manager",
    },
}

# process key -> the letters its send_letter steps send
LETTERS = {
    "manager_change": set(),
    "content_removal": {"screenshot_to_communications"},
    "removal_appeal": {"response_to_appellant"},
    "legality_dispute": {"acknowledgement_to_disputant", "response_to_disputant"},
}

KEYS = sorted(USER_TASK_LANES)


def _data(key: str) -> bytes:
    return (REPO_ROOT / "workflows" / f"{key}.bpmn").read_bytes()


def _user_tasks(loaded) -> list:
    return [spec for spec in loaded.spec.task_specs.values() if isinstance(spec, UserTask)]


@pytest.mark.parametrize("key", KEYS)
def test_diagram_loads_with_exactly_the_procedures_forms_and_letters(key):
    # Naming the known forms and letters makes load_diagram refuse any other one, so a typo fails here.
    loaded = load_diagram(
        _data(key), key, known_form_keys=frozenset(USER_TASK_LANES[key]), known_letters=frozenset(LETTERS[key])
    )

    assert loaded.key == key
    assert loaded.form_keys == frozenset(USER_TASK_LANES[key])
    letters = {
        spec.operation_params["letter"]["value"].strip('"')
        for spec in loaded.spec.task_specs.values()
        if isinstance(spec, ServiceTask)
    }
    assert letters == LETTERS[key]


@pytest.mark.parametrize("key", KEYS)
def test_each_user_task_is_in_the_lane_of_the_role_that_completes_it(key):
    loaded = load_diagram(_data(key), key)

    lanes = {form_key_of(spec): spec.lane for spec in _user_tasks(loaded)}

    assert lanes == USER_TASK_LANES[key]
    assert set(lanes.values()) <= set(LANE_ROLES)


@pytest.mark.parametrize("key", KEYS)
def test_every_element_of_the_process_is_drawn(key):
    root = etree.fromstring(_data(key))
    process = root.find(f"{BPMN}process[@id='{key}']")
    node_ids = {node.get("id") for name in FLOW_NODES for node in process.iter(f"{BPMN}{name}")}
    flow_ids = {flow.get("id") for flow in process.iter(f"{BPMN}sequenceFlow")}
    lane_ids = {lane.get("id") for lane in process.iter(f"{BPMN}lane")}
    participant_ids = {p.get("id") for p in root.iter(f"{BPMN}participant")}
    shapes = {shape.get("bpmnElement") for shape in root.iter(f"{BPMNDI}BPMNShape")}
    edges = {edge.get("bpmnElement"): edge for edge in root.iter(f"{BPMNDI}BPMNEdge")}

    assert node_ids and flow_ids
    assert node_ids | lane_ids | participant_ids == shapes
    assert flow_ids == set(edges)
    assert all(len(edge.findall(f"{DI}waypoint")) >= 2 for edge in edges.values())
