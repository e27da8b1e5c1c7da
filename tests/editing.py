"""Diagram edits the editor tests make, as an administrator would in the modeler, on the shipped XML."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def shipped(key: str) -> bytes:
    """The diagram of workflows/ for a procedure."""
    return (WORKFLOWS / f"{key}.bpmn").read_bytes()


def _b(name: str) -> str:
    return f"{{{BPMN}}}{name}"


def add_step_before(
    xml: bytes,
    target: str,
    *,
    step_id: str = "records_check",
    name: str = "Records check",
    lane: str = "Records Officer",
    form_key: str = "communications_review",
) -> bytes:
    """A new user task in `lane` (a new lane if there is none of that name) on every flow into `target`."""
    root = etree.fromstring(xml)
    process = root.find(_b("process"))
    lanes = process.find(_b("laneSet"))
    lane_element = next((e for e in lanes.iter(_b("lane")) if e.get("name") == lane), None)
    if lane_element is None:
        lane_element = etree.SubElement(lanes, _b("lane"), id=f"Lane_{step_id}", name=lane)
    etree.SubElement(lane_element, _b("flowNodeRef")).text = step_id
    task = etree.SubElement(process, _b("userTask"), id=step_id, name=name)
    extensions = etree.SubElement(task, _b("extensionElements"))
    properties = etree.SubElement(extensions, f"{{{SPIFF}}}properties")
    etree.SubElement(properties, f"{{{SPIFF}}}property", name="formKey", value=form_key)
    for flow in process.iter(_b("sequenceFlow")):
        if flow.get("targetRef") == target:
            flow.set("targetRef", step_id)
    etree.SubElement(process, _b("sequenceFlow"), id=f"Flow_{step_id}", sourceRef=step_id, targetRef=target)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def set_attribute(xml: bytes, element_id: str, name: str, value: str) -> bytes:
    """One attribute of one element changed (a lane renamed, a flow redirected)."""
    root = etree.fromstring(xml)
    [element] = root.xpath("//*[@id=$id]", id=element_id)
    element.set(name, value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def set_text(xml: bytes, element_id: str, child: str, text: str) -> bytes:
    """The text of a child of an element (a condition, a timer value, a script) replaced."""
    root = etree.fromstring(xml)
    [element] = root.xpath("//*[@id=$id]", id=element_id)
    node = next(element.iter(_b(child)))
    node.text = text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def insert_step(xml: bytes, flow_id: str, step: str, *, condition: str | None = None) -> bytes:
    """A step put on a flow, as BPMN XML with the bpmn: prefix: the flow ends at it, a new flow leaves it.

    With a `condition` the step is a gateway, and two flows leave it for the same place: one taken when the
    condition holds, the default one otherwise.
    """
    root = etree.fromstring(xml)
    process = root.find(_b("process"))
    element = etree.fromstring(f'<wrapper xmlns:bpmn="{BPMN}" xmlns:spiffworkflow="{SPIFF}">{step}</wrapper>')[0]
    step_id = element.get("id")
    process.append(element)
    [flow] = root.xpath("//*[@id=$id]", id=flow_id)
    target = flow.get("targetRef")
    flow.set("targetRef", step_id)
    leaving = etree.SubElement(process, _b("sequenceFlow"), id=f"Flow_{step_id}", sourceRef=step_id, targetRef=target)
    if condition is not None:
        etree.SubElement(leaving, _b("conditionExpression")).text = condition
        etree.SubElement(
            process, _b("sequenceFlow"), id=f"Flow_{step_id}_otherwise", sourceRef=step_id, targetRef=target
        )
        element.set("default", f"Flow_{step_id}_otherwise")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


DI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DD_DI = "http://www.omg.org/spec/DD/20100524/DI"


def draw_step(
    xml: bytes,
    step_id: str,
    bounds: tuple[int, int, int, int],
    flows: dict[str, list[tuple[int, int]]],
    **shape_attributes: str,
) -> bytes:
    """A step added by insert_step drawn as the modeler would: its shape at bounds (x, y, width, height), and each
    flow's edge (re)drawn through its waypoints, so that bpmn-js shows it and lets a person select it."""
    root = etree.fromstring(xml)
    plane = next(root.iter(f"{{{DI}}}BPMNPlane"))
    shape = etree.SubElement(plane, f"{{{DI}}}BPMNShape", id=f"{step_id}_di", bpmnElement=step_id, **shape_attributes)
    x, y, width, height = bounds
    etree.SubElement(shape, f"{{{DC}}}Bounds", x=str(x), y=str(y), width=str(width), height=str(height))
    for flow, points in flows.items():
        for old in [e for e in plane if e.get("bpmnElement") == flow]:
            plane.remove(old)
        edge = etree.SubElement(plane, f"{{{DI}}}BPMNEdge", id=f"{flow}_di", bpmnElement=flow)
        for px, py in points:
            etree.SubElement(edge, f"{{{DD_DI}}}waypoint", x=str(px), y=str(py))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
