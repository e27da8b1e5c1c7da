"""SpiffWorkflow's own refusals of a diagram, in civicflow's words: at the element drawn, with what to do instead.

Each refusal a person can meet (a ValidationException of SpiffWorkflow 3.2.0's parser) is translated here. Where
civicflow's own rules see the same thing, the translation is their problem, word for word, so that a refusal
lists it once. Any other keeps SpiffWorkflow's whole message, after "The engine cannot run this:".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from engine.diagrams import rules
from engine.diagrams.problems import Problem, problem_at
from engine.diagrams.xml import BPMN

# SpiffWorkflow's message, and civicflow's, where the words say all there is.
_SAID_AS = {
    "No start event found": "The process has no start event; draw one where the procedure begins.",
    "A SubWorkflow Must contain an End event": "A sub-process needs an end event, where its steps finish.",
    "A multiinstance task must specify a cardinality or a loop input data reference": (
        "A multi-instance task needs a loopCardinality (how many times it runs) or a loopDataInputRef "
        "(the name of the list in the request it goes through)."
    ),
    "A multiinstance task must specify exactly one of cardinality or loop input data reference": (
        "A multi-instance task takes a loopCardinality or a loopDataInputRef, not both."
    ),
    "The loop input data reference is missing from the IO specification": (
        "The multi-instance task's loopDataInputRef is not one of its data inputs (its ioSpecification)."
    ),
    "The loop output data reference is missing from the IO specification": (
        "The multi-instance task's loopDataOutputRef is not one of its data outputs (its ioSpecification)."
    ),
    "Cancel Events may only be used with transactions": (
        "Cancel events are not supported: only timers can be attached to a task."
    ),
}

_Translation = Callable[[re.Match, etree._Element | None, etree._Element, str], Problem]


def _one_way_out(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    kind = "An event" if element is not None and etree.QName(element).localname.endswith("Event") else "A task"
    return problem_at(
        f"{kind} may have only one outgoing flow; put an exclusive gateway after it to choose between paths "
        "(or a parallel gateway to take them all).",
        element,
    )


def _no_process(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    calls = [node for node in root.iter(f"{BPMN}callActivity") if node.get("calledElement") == found["process"]]
    return rules.unsupported(calls[0]) if calls and found["process"] != key else rules.missing_process(root, key)


def _no_condition(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    gateway = element_with_id(root, element.get("sourceRef") or "") if element is not None else None
    return rules.flow_without_condition(element, gateway) if element is not None else problem_at(found[0])


def _flow_elsewhere(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    return problem_at(
        f'A sequence flow from here leads to "{found["target"]}", which is not in the same process or sub-process; '
        "a sequence flow connects the steps of one process (or of one sub-process).",
        element,
    )


def _unknown_kind(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    if element is not None and etree.QName(element).localname in rules.UNSUPPORTED:
        return rules.unsupported(element)
    what = f'"{etree.QName(element).localname}"' if element is not None else "this kind of element"
    return problem_at(f"The engine cannot run a {what}; draw the step as a user, service or script task.", element)


def _data_association(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    association = element.find(f"{BPMN}data{found['way']}Association") if element is not None else None
    return rules.unsupported(association) if association is not None else problem_at(found[0], element)


def _conditional(found: re.Match, element: etree._Element | None, root: etree._Element, key: str) -> Problem:
    return rules.unsupported_event("conditional", element) if element is not None else problem_at(found[0])


def _said(words: str) -> _Translation:
    """civicflow's words for a refusal matched by a pattern, at the element SpiffWorkflow names."""
    return lambda found, element, root, key: problem_at(words, element)


def _as_rule(rule: Callable[[etree._Element], Problem]) -> _Translation:
    """civicflow's own rule's problem, at the element SpiffWorkflow names (its own words when it names none)."""
    return lambda found, element, root, key: rule(element) if element is not None else problem_at(found[0])


_TRANSLATIONS: list[tuple[re.Pattern, _Translation]] = [
    (re.compile(pattern, re.DOTALL), translation)
    for pattern, translation in (
        (r"Multiple outgoing flows are not supported for tasks of type", _one_way_out),
        (
            r"Process .* is not executable\.",
            _said(
                "The process is marked as not executable, so the engine would not run it. "
                'Mark the process as executable (isExecutable="true").'
            ),
        ),
        (r"The process '(?P<process>.*)' was not found\. Did you mean one of the following: .*\?", _no_process),
        (r"Non-default exclusive outgoing sequence flow without condition", _no_condition),
        (r"A loopMaximum or loopCondition must be specified for Loop Tasks", _as_rule(rules.loop_without_maximum)),
        (r"A Service Task must have an operator", _as_rule(rules.no_service)),
        (r"Time Specification Error\. Unknown Time Specification.*", _as_rule(rules.timer_without_value)),
        (r"There is no support implemented for this task type\.", _unknown_kind),
        (r'No "calledElement" attribute for Call Activity\.|No DMN Diagram .*', _as_rule(rules.unsupported)),
        (r"Cannot resolve data(?P<way>Input|Output)Association .*", _data_association),
        (r"Conditional event definition with missing condition", _conditional),
        (r"When looking for a task spec, we found two items, .*\((?P<target>.*)\)", _flow_elsewhere),
        (
            r"NotImplementedError\('Unsupported Catch Event: .*",
            _said("This event waits for nothing: make it a timer (a timeDate or a timeDuration), or remove it."),
        ),
    )
]


def refusal_problem(root: etree._Element, key: str, exc: Exception) -> tuple[Problem, bool]:
    """SpiffWorkflow's refusal as a Problem at the element drawn; and whether it is one civicflow translates."""
    bpmn_id = getattr(exc, "id", None) or getattr(exc, "task_id", None)
    element = element_with_id(root, bpmn_id) if isinstance(bpmn_id, str) and bpmn_id else None
    message = str(exc.args[0]) if exc.args else str(exc)
    if message in _SAID_AS:
        return problem_at(_SAID_AS[message], element), True
    for pattern, translate in _TRANSLATIONS:
        found = pattern.fullmatch(message)
        if found:
            return translate(found, element, root, key), True
    if "RecursionError" in message:
        message = "a chain of steps this long is more than it can follow; split it into sub-processes."
    line = getattr(exc, "line_number", None) or None
    return problem_at(f"The engine cannot run this: {message}", element, line=line), False


def element_with_id(root: etree._Element, bpmn_id: str) -> etree._Element | None:
    """The element with this id, looked up without XPath (so that no id can break the query)."""
    return next((node for node in root.iter() if isinstance(node.tag, str) and node.get("id") == bpmn_id), None)
