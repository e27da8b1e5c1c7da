"""What is wrong with a diagram: one Problem a finding, at the element and line a person can find it.

The engine passes Problems around; the web turns them into the API's dicts (`as_dict`) at its edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree


@dataclass(frozen=True)
class Problem:
    """One thing that stops a diagram from being published, with where it is when that is known."""

    message: str
    element: str | None = None  # the id of the element a person sees in the drawing
    name: str | None = None  # that element's name, when it has one
    line: int | None = None  # the line of the file

    def as_dict(self) -> dict:
        """The problem as the API and the editor give it: its message, and each of the others it has."""
        shown: dict = {"message": self.message}
        if self.element is not None:
            shown["element"] = self.element
        if self.name:
            shown["name"] = self.name
        if self.line is not None:
            shown["line"] = self.line
        return shown


# What a person sees drawn: flow nodes, sequence flows and the other shapes and lines of a BPMN drawing.
_BPMN_MODEL = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"  # as xml.BPMN, which imports this module
# The BPMN elements that do work, and those that choose a path (rules.py reads them too).
ACTIVITIES = (
    "task",
    "userTask",
    "serviceTask",
    "scriptTask",
    "manualTask",
    "sendTask",
    "receiveTask",
    "businessRuleTask",
    "callActivity",
    "subProcess",
    "transaction",
    "adHocSubProcess",
)
GATEWAYS = ("exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway")
_DRAWN = frozenset(
    f"{_BPMN_MODEL}{name}"
    for name in (
        *ACTIVITIES,
        *GATEWAYS,
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
        "sequenceFlow",
        "messageFlow",
        "association",
        "dataInputAssociation",
        "dataOutputAssociation",
        "dataObjectReference",
        "dataStoreReference",
        "textAnnotation",
        "group",
        "lane",
        "participant",
    )
)


def drawn_owner(element: etree._Element | None) -> etree._Element | None:
    """The element a person sees in the drawing for this one: itself when drawn, else its nearest drawn ancestor.

    A condition is found on its sequence flow, a timer's definition on its event, loop characteristics on their
    task. Outside any drawn element (a process, a message, the diagram's own shapes), the nearest element with an
    id that is not an event definition.
    """
    for owner in _self_and_ancestors(element):
        if owner.tag in _DRAWN and owner.get("id") is not None:
            return owner
    for owner in _self_and_ancestors(element):
        if owner.get("id") is not None and not str(owner.tag).endswith("EventDefinition"):
            return owner
    return None


def _self_and_ancestors(element: etree._Element | None) -> Iterator[etree._Element]:
    while element is not None:
        yield element
        element = element.getparent()


def problem_at(message: str, element: etree._Element | None = None, line: int | None = None) -> Problem:
    """A problem at an XML element (and its line), or at a line of the file, or of the whole file.

    The problem names the drawn element it belongs to (`drawn_owner`) and keeps the line of the element itself.
    """
    element_id = name = None
    owner = drawn_owner(element)
    if owner is not None:
        element_id, name = owner.get("id"), owner.get("name") or None
    if line is None and element is not None:
        line = element.sourceline
    return Problem(message, element_id, name, line)


def as_dicts(problems: Iterable[Problem]) -> list[dict]:
    """Problems as the API and the editor's page give them."""
    return [problem.as_dict() for problem in problems]


def unique(problems: Iterable[Problem]) -> list[Problem]:
    """The problems in order, each said once at its element and line."""
    kept, seen = [], set()
    for problem in problems:
        marker = (problem.element, problem.line, problem.message)
        if marker not in seen:
            seen.add(marker)
            kept.append(problem)
    return kept


def summary(problems: list[Problem]) -> str:
    """The headline of a refusal: what kind of problems, and how many."""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    if all(p.message.startswith("Expression refused") for p in problems):
        return f"The diagram has expressions the sandbox refuses ({count})."
    if all(p.message.startswith("BPMN schema") for p in problems):
        return f"The diagram is not valid BPMN ({count})."
    return f"The diagram cannot be used as it is ({count})."
