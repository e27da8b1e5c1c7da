"""What changed between two versions of a procedure's diagram, element by element, in the editor's terms.

Each element reads by its name; a flow with none as "the flow from <its source> to <its target>", another element
as its type. A form reads as its label, a deadline as its kind in words, a reference as what it points at. The ids
and keys stay beside the words (`label` of an entry, and `ids` of its properties and changes: the raw value where
the words differ from it) for administrators who need them; the API's values are unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from sqlalchemy.orm import Session

from engine.diagrams.xml import (
    BPMN,
    BPMN_NS,
    BPMNDI_NS,
    PROPERTIES,
    SERVICE_OPERATOR,
    SPIFF,
    parse_xml_safely,
)
from engine.people.users import Actor
from engine.versions.drafts import current_draft
from engine.versions.stored import version

_SKIPPED = {
    "definitions",
    "extensionElements",
    "incoming",
    "outgoing",
    "flowNodeRef",
    "laneSet",
    "childLaneSet",
    "conditionExpression",
    "timeDate",
    "timeDuration",
    "timeCycle",
    "script",
    "documentation",
}


_REFERENCES = ("From", "To", "Attached to", "Default flow")


def _type_name(element: etree._Element) -> str:
    """'userTask' -> 'User task'."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", etree.QName(element).localname).lower()
    return words[:1].upper() + words[1:]


# How the editor names a spiffworkflow:property; any other reads "Property <name>".
_PROPERTY_LABELS = {"formKey": "Form", "deadline": "Due date"}
# The attributes that point at another element or say how an event acts, as the editor names them.
_ATTRIBUTE_LABELS = {
    "sourceRef": "From",
    "targetRef": "To",
    "attachedToRef": "Attached to",
    "default": "Default flow",
    "cancelActivity": "Interrupts the task",
}


def form_label(key: str) -> str:
    """How the editor names a form or a deadline kind: "written_approval" -> "Written approval"."""
    words = key.replace("_", " ")
    return words[:1].upper() + words[1:]


def element_label(facts: dict[str, dict], element_id: str) -> str:
    """An element in words: its name; a flow with none "the flow from A to B"; another "the <type>"."""
    what = facts.get(element_id)
    if what is None:
        return element_id
    if what["Name"]:
        return what["Name"]
    if what["Type"] == "Sequence flow" and what.get("From") and what.get("To"):
        return f"the flow from {_end_label(facts, what['From'])} to {_end_label(facts, what['To'])}"
    return f"the {what['Type'].lower()}"


def _end_label(facts: dict[str, dict], element_id: str) -> str:
    what = facts.get(element_id)
    if what is None:
        return element_id
    return what["Name"] or f"the {what['Type'].lower()}"


def _words(facts: dict[str, dict], name: str, value: str | None) -> str | None:
    """A property's value in words: what a reference points at, a form's label, a deadline in words."""
    if value is None or value == "":
        return value
    if name in _REFERENCES:
        return element_label(facts, value)
    if name in ("Form", "Due date"):
        return form_label(value)
    return value


def _lanes_by_node(root: etree._Element) -> dict[str, str | None]:
    """The lane (its name, else its id) of each flow node a lane lists."""
    lane_of = {}
    for lane in root.iter(f"{BPMN}lane"):
        for ref in lane.iterfind(f"{BPMN}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
    return lane_of


def _is_described(element: etree._Element) -> bool:
    """Whether an element has facts of its own: an identified BPMN element, not a drawing, extension or part."""
    if not isinstance(element.tag, str) or element.get("id") is None:
        return False
    qname = etree.QName(element)
    if qname.namespace != BPMN_NS or qname.localname in _SKIPPED:  # nor the drawing, nor extensions
        return False
    return not qname.localname.endswith("EventDefinition")  # described with its event


def _extension_facts(element: etree._Element) -> dict[str, str]:
    """Its spiffworkflow properties (form, due date...), and the service it calls with its parameters."""
    what = {}
    for prop in element.iterfind(PROPERTIES):
        what[_PROPERTY_LABELS.get(prop.get("name"), f"Property {prop.get('name')}")] = prop.get("value") or ""
    operator = element.find(SERVICE_OPERATOR)
    if operator is not None:
        what["Service"] = operator.get("id") or ""
        for parameter in operator.iter(f"{SPIFF}parameter"):
            what[f"Parameter {parameter.get('id')}"] = parameter.get("value") or ""
    return what


def _content_facts(element: etree._Element) -> dict[str, str]:
    """What it holds as text: a flow's condition, a timer's value, a script, its documentation."""
    what = {}
    condition = element.find(f"{BPMN}conditionExpression")
    if condition is not None:
        what["Condition"] = (condition.text or "").strip()
    for timer in element.iterfind(f"{BPMN}timerEventDefinition/*"):
        if isinstance(timer.tag, str):
            what[f"Timer ({etree.QName(timer).localname})"] = (timer.text or "").strip()
    script = element.find(f"{BPMN}script")
    if script is not None:
        what["Script"] = (script.text or "").strip()
    documentation = element.find(f"{BPMN}documentation")
    if documentation is not None:
        what["Documentation"] = " ".join((documentation.text or "").split())
    return what


def _element_facts(element: etree._Element, lane_of: dict[str, str | None]) -> dict[str, str | None]:
    """What one element is and does: type, name, lane, properties, service, references, then its texts."""
    what: dict[str, str | None] = {"Type": _type_name(element), "Name": element.get("name") or ""}
    if element.get("id") in lane_of:
        what["Lane"] = lane_of[element.get("id")]
    what.update(_extension_facts(element))
    for name, label in _ATTRIBUTE_LABELS.items():
        if element.get(name) is not None:
            what[label] = element.get(name)
    what.update(_content_facts(element))
    return what


def _facts(root: etree._Element) -> dict[str, dict]:
    """What each identified element of a diagram is and does, in the terms the editor shows; no drawing."""
    lane_of = _lanes_by_node(root)
    return {element.get("id"): _element_facts(element, lane_of) for element in root.iter() if _is_described(element)}


def _bounds(root: etree._Element) -> dict[str, tuple]:
    """Where each shape and edge is drawn, by the element it draws."""
    shapes = {}
    for shape in root.iter(f"{{{BPMNDI_NS}}}BPMNShape", f"{{{BPMNDI_NS}}}BPMNEdge"):
        points = tuple(
            (p.get("x"), p.get("y"), p.get("width"), p.get("height"))
            for p in shape.iter()
            if etree.QName(p).localname in ("Bounds", "waypoint")
        )
        shapes[shape.get("bpmnElement")] = points
    return shapes


@dataclass(frozen=True)
class Difference:
    """What changed between two versions of a diagram, element by element."""

    added: list[dict]
    removed: list[dict]
    changed: list[dict]
    moved: list[dict]

    @property
    def empty(self) -> bool:
        """Whether the two diagrams are the same, drawing included."""
        return not (self.added or self.removed or self.changed or self.moved)

    def as_dict(self) -> dict:
        """The difference as the API gives it."""
        return {"added": self.added, "removed": self.removed, "changed": self.changed, "moved": self.moved}


def difference(before: str | bytes, after: str | bytes) -> Difference:
    """Elements added, removed and changed (with each changed property, before and after), and those moved."""
    old_root = parse_xml_safely(before.encode() if isinstance(before, str) else before)
    new_root = parse_xml_safely(after.encode() if isinstance(after, str) else after)
    old, new = _facts(old_root), _facts(new_root)

    def shown(facts: dict[str, dict], name: str, value: str | None) -> str | None:
        """A reference reads as what it points at, "Budget check (Activity_0h91ott)"; compared by id only."""
        target = facts.get(value or "") if name in _REFERENCES else None
        return f"{target['Name']} ({value})" if target is not None and target["Name"] else value

    def raw(facts: dict[str, dict], name: str, value: str | None) -> str | None:
        """The id or key behind the words, where the words are not it."""
        return value if value and _words(facts, name, value) != value else None

    def entry(element_id, facts, every):
        listed = {k: v for k, v in facts.items() if k not in ("Type", "Name") and v != ""}
        return {
            "id": element_id,
            "type": facts["Type"],
            "name": facts["Name"],
            "label": element_label(every, element_id),
            "properties": {k: shown(every, k, v) for k, v in listed.items()},
            "words": {k: _words(every, k, v) for k, v in listed.items()},
            "ids": {k: raw(every, k, v) for k, v in listed.items() if raw(every, k, v)},
        }

    added = [entry(i, new[i], new) for i in new if i not in old]
    removed = [entry(i, old[i], old) for i in old if i not in new]
    changed = []
    for element_id in (i for i in new if i in old and new[i] != old[i]):
        changes = [
            {
                "property": name,
                "before": shown(old, name, old[element_id].get(name)),
                "after": shown(new, name, new[element_id].get(name)),
                "before_words": _words(old, name, old[element_id].get(name)),
                "after_words": _words(new, name, new[element_id].get(name)),
                "before_id": raw(old, name, old[element_id].get(name)),
                "after_id": raw(new, name, new[element_id].get(name)),
            }
            for name in dict.fromkeys([*old[element_id], *new[element_id]])
            if old[element_id].get(name) != new[element_id].get(name)
        ]
        changed.append(
            {
                "id": element_id,
                "type": new[element_id]["Type"],
                "name": new[element_id]["Name"],
                "label": element_label(new, element_id),
                "changes": changes,
            }
        )
    old_bounds, new_bounds = _bounds(old_root), _bounds(new_root)
    changed_ids = {c["id"] for c in changed}
    moved = [
        {"id": i, "type": new[i]["Type"], "name": new[i]["Name"], "label": element_label(new, i)}
        for i in new
        if i in old and i not in changed_ids and i in old_bounds and i in new_bounds and old_bounds[i] != new_bounds[i]
    ]
    return Difference(added, removed, changed, moved)


def compare(session: Session, actor: Actor, key: str, before: int, after: int | str) -> Difference:
    """The difference between two versions of a procedure by number (`after` may be "draft")."""
    old = version(session, actor, key, before).bpmn_xml
    new = (
        current_draft(session, actor, key, with_problems=False).xml
        if after == "draft"
        else version(session, actor, key, int(after)).bpmn_xml
    )
    return difference(old, new)
