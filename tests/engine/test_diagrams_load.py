"""The four procedure diagrams after the new account request: each loads, has the policy's forms in the right
lanes and sends the procedure's letters. All five diagrams draw every element they run, with no shape on top of
another or outside its lane, and give each review a deadline with a reminder and an overdue timer."""

import pytest
from lxml import etree
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask

from engine.diagrams.loading import load_diagram, workflow_files
from engine.diagrams.task_specs import form_key_of
from engine.people.roles import LANE_ROLES
from engine.settings import REPO_ROOT

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DI = "{http://www.omg.org/spec/DD/20100524/DI}"
DC = "{http://www.omg.org/spec/DD/20100524/DC}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"

# The BPMN elements a process runs; each must be drawn (bpmn-js shows nothing for an element without DI).
FLOW_NODES = ("startEvent", "endEvent", "exclusiveGateway", "userTask", "scriptTask", "serviceTask", "boundaryEvent")

# process key -> {user task form key: the lane (role) that completes it}
USER_TASK_LANES = {
    "manager_change": {
        "department_head_review": "Department Head",
        "communications_review": "Communications Manager",
        "lieutenant_review": "Administrative Lieutenant",
        "confirm_access_change": "Requester",
    },
    "content_removal": {"confirm_deletion": "Social Media Manager"},
    "removal_appeal": {
        "appeal_review": "Communications Manager",
        "restore_content": "Social Media Manager",
        # A letter to a postal address: printed, then mailed by whoever sends the City's letters.
        "mail_letter": "Communications Manager",
    },
    "legality_dispute": {
        "attorney_consultation": "City Attorney",
        "dispute_response": "Communications Manager",
        "policy_amendment": "Communications Manager",
        "mail_letter": "Communications Manager",
    },
}

# process key -> the letters its send_letter steps send
LETTERS = {
    "manager_change": set(),
    "content_removal": {"screenshot_to_communications"},
    "removal_appeal": {"response_to_appellant"},
    "legality_dispute": {"acknowledgement_to_disputant", "response_to_disputant"},
}

# process key -> {review user task id: the deadline kind its timers count}; every other user task has no deadline.
REVIEW_DEADLINES = {
    "new_account_request": {
        "department_head_review": "department_head_review",
        "communications_review": "communications_review",
        # The Lieutenant's approval replaces the Communications Manager's for investigative profiles.
        "lieutenant_review": "communications_review",
    },
    "manager_change": {
        "department_head_review": "department_head_review",
        "communications_review": "communications_review",
        "lieutenant_review": "communications_review",
    },
    "content_removal": {},
    "removal_appeal": {"appeal_review": "appeal_response"},
    "legality_dispute": {"attorney_consultation": "attorney_consultation", "dispute_response": "dispute_response"},
}

KEYS = sorted(USER_TASK_LANES)
ALL_KEYS = sorted(path.stem for path in workflow_files(REPO_ROOT / "workflows"))


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
        if isinstance(spec, ServiceTask) and spec.operation_name == "send_letter"
    }
    assert letters == LETTERS[key]


@pytest.mark.parametrize("key", KEYS)
def test_each_user_task_is_in_the_lane_of_the_role_that_completes_it(key):
    loaded = load_diagram(_data(key), key)

    lanes = {form_key_of(spec): spec.lane for spec in _user_tasks(loaded)}

    assert lanes == USER_TASK_LANES[key]
    assert set(lanes.values()) <= set(LANE_ROLES)


@pytest.mark.parametrize("key", ALL_KEYS)
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


def _bounds(root) -> dict[str, tuple[float, float, float, float]]:
    """Each drawn element's shape as (x, y, width, height)."""
    shapes = {}
    for shape in root.iter(f"{BPMNDI}BPMNShape"):
        bounds = shape.find(f"{DC}Bounds")
        shapes[shape.get("bpmnElement")] = tuple(float(bounds.get(k)) for k in ("x", "y", "width", "height"))
    return shapes


def _lane_of(process) -> dict[str, str]:
    """Each flow node's lane id."""
    return {
        ref.text: lane.get("id") for lane in process.iter(f"{BPMN}lane") for ref in lane.findall(f"{BPMN}flowNodeRef")
    }


def _overlap(a, b) -> bool:
    """Whether two shapes share some area (touching edges do not count)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(inner, outer) -> bool:
    """Whether shape `inner` lies within shape `outer`."""
    x, y, width, height = inner
    return outer[0] <= x and outer[1] <= y and x + width <= outer[0] + outer[2] and y + height <= outer[1] + outer[3]


def test_every_diagram_is_checked():
    assert set(ALL_KEYS) == set(REVIEW_DEADLINES) == set(KEYS) | {"new_account_request"}


@pytest.mark.parametrize("key", ALL_KEYS)
def test_no_shape_is_drawn_over_another_and_each_stays_in_its_lane(key):
    root = etree.fromstring(_data(key))
    process = root.find(f"{BPMN}process[@id='{key}']")
    shapes = _bounds(root)
    attached_to = {event.get("id"): event.get("attachedToRef") for event in process.iter(f"{BPMN}boundaryEvent")}
    lanes = {
        lane.get("id"): [ref.text for ref in lane.findall(f"{BPMN}flowNodeRef")] for lane in process.iter(f"{BPMN}lane")
    }
    participants = {p.get("id") for p in root.iter(f"{BPMN}participant")}
    lane_of = _lane_of(process)
    nodes = sorted(set(shapes) - set(lanes) - participants)

    overlapping = [
        (a, b)
        for i, a in enumerate(nodes)
        for b in nodes[i + 1 :]
        if _overlap(shapes[a], shapes[b]) and attached_to.get(a) != b and attached_to.get(b) != a
    ]
    lane_names = sorted(lanes)
    lanes_overlapping = [
        (a, b) for i, a in enumerate(lane_names) for b in lane_names[i + 1 :] if _overlap(shapes[a], shapes[b])
    ]
    outside_lane = [node for node in nodes if not _inside(shapes[node], shapes[lane_of[node]])]
    (participant,) = participants
    outside_pool = [lane for lane in lanes if not _inside(shapes[lane], shapes[participant])]

    assert set(nodes) == set(lane_of)
    assert overlapping == []
    assert lanes_overlapping == []
    assert outside_lane == []
    assert outside_pool == []


@pytest.mark.parametrize("key", ALL_KEYS)
def test_a_flow_between_two_steps_of_one_lane_is_drawn_inside_that_lane(key):
    root = etree.fromstring(_data(key))
    process = root.find(f"{BPMN}process[@id='{key}']")
    shapes = _bounds(root)
    lane_of = _lane_of(process)
    edges = {edge.get("bpmnElement"): edge for edge in root.iter(f"{BPMNDI}BPMNEdge")}

    leaving = []
    for flow in process.iter(f"{BPMN}sequenceFlow"):
        lane = lane_of[flow.get("sourceRef")]
        if lane != lane_of[flow.get("targetRef")]:
            continue
        points = [(float(p.get("x")), float(p.get("y"))) for p in edges[flow.get("id")].findall(f"{DI}waypoint")]
        if not all(_inside((x, y, 0, 0), shapes[lane]) for x, y in points):
            leaving.append(flow.get("id"))

    assert leaving == []


@pytest.mark.parametrize("key", ALL_KEYS)
def test_each_review_has_a_deadline_a_reminder_and_an_escalation_drawn_below_it(key):
    root = etree.fromstring(_data(key))
    process = root.find(f"{BPMN}process[@id='{key}']")
    shapes = _bounds(root)
    by_id = {element.get("id"): element for element in process.iter() if element.get("id")}
    lane_of = _lane_of(process)
    deadlines = {
        task.get("id"): prop.get("value")
        for task in process.iter(f"{BPMN}userTask")
        for prop in task.iter(f"{SPIFF}property")
        if prop.get("name") == "deadline"
    }

    assert deadlines == REVIEW_DEADLINES[key]
    timers = list(process.iter(f"{BPMN}boundaryEvent"))
    assert len(timers) == 2 * len(deadlines)
    for task, kind in deadlines.items():
        x, y, width, height = shapes[task]
        for step, helper, operator, name, end_name in (
            ("reminder", "reminder_time", "send_reminder", "E-mail a reminder", "Reminded"),
            ("overdue", "escalation_time", "escalate", "Escalate: overdue", "Escalated"),
        ):
            timer = by_id[f"{task}_{step}"]
            assert (timer.get("attachedToRef"), timer.get("cancelActivity")) == (task, "false")
            assert timer.findtext(f"{BPMN}timerEventDefinition/{BPMN}timeDate").strip() == f'{helper}("{kind}")'
            (flow,) = [f for f in process.iter(f"{BPMN}sequenceFlow") if f.get("sourceRef") == timer.get("id")]
            service = by_id[flow.get("targetRef")]
            assert etree.QName(service).localname == "serviceTask" and service.get("name") == name
            assert service.find(f".//{SPIFF}serviceTaskOperator").get("id") == operator
            (onward,) = [f for f in process.iter(f"{BPMN}sequenceFlow") if f.get("sourceRef") == service.get("id")]
            end = by_id[onward.get("targetRef")]
            assert etree.QName(end).localname == "endEvent" and end.get("name") == end_name
            assert {lane_of[timer.get("id")], lane_of[service.get("id")], lane_of[end.get("id")]} == {lane_of[task]}
            # The timer sits on the task's bottom edge; its steps are drawn below the task.
            tx, ty, tw, th = shapes[timer.get("id")]
            assert (tw, th) == (36, 36) and ty + th / 2 == y + height and x < tx + tw / 2 < x + width
            assert shapes[service.get("id")][1] > y + height and shapes[end.get("id")][1] > y + height
