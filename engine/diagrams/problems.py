"""What is wrong with a diagram: one Problem a finding, at the element and line a person can find it.

The engine passes Problems around; the web turns them into the API's dicts (`as_dict`) at its edge.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def problem_at(message: str, element: etree._Element | None = None, line: int | None = None) -> Problem:
    """A problem at an XML element (and its line), or at a line of the file, or of the whole file."""
    element_id = name = None
    owner = element
    # The element a person sees in the drawing: a timer's event, not its (also identified) definition.
    while owner is not None and (owner.get("id") is None or str(owner.tag).endswith("EventDefinition")):
        owner = owner.getparent()
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
