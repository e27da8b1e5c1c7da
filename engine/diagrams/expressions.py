"""The sandbox's verdict on every expression and script of a diagram, read from the XML before it is parsed."""

from __future__ import annotations

import re

from lxml import etree

from engine.diagrams.problems import Problem, problem_at
from engine.diagrams.sandbox import check_source
from engine.diagrams.xml import BPMN, SPIFF

# Elements whose text is Python that the engine will evaluate ('eval') or run ('exec'): every one SpiffWorkflow
# 3.2.0's parser (SpiffBpmnParser) hands to the script engine. Those of events civicflow refuses (conditions,
# message, signal, error and escalation payloads, correlations) are checked too, so that no site is left open.
EXPRESSION_ELEMENTS = {
    f"{BPMN}conditionExpression": "eval",  # a sequence flow's condition
    f"{BPMN}timeDuration": "eval",
    f"{BPMN}timeDate": "eval",
    f"{BPMN}timeCycle": "eval",
    f"{BPMN}loopCondition": "eval",  # whether a standard loop goes round again
    f"{BPMN}loopCardinality": "eval",  # how many instances a multi-instance task runs
    f"{BPMN}completionCondition": "eval",  # when a multi-instance task (or an ad-hoc sub-process) is done
    f"{BPMN}condition": "eval",  # a conditional event's condition
    f"{BPMN}messagePath": "eval",  # a message correlation's retrieval expression
    f"{BPMN}formalExpression": "eval",  # the same, as bpmn-js writes it
    f"{BPMN}script": "exec",
    f"{SPIFF}preScript": "exec",
    f"{SPIFF}postScript": "exec",
    f"{SPIFF}messagePayload": "eval",
    f"{SPIFF}payloadExpression": "eval",  # a signal's, error's or escalation's payload
    f"{SPIFF}expression": "eval",  # a process variable correlation
}

_FOREIGN_EXPRESSION = re.compile(r"^\s*(\$\{|#\{|=)")


def check_expressions(root: etree._Element) -> list[Problem]:
    """Problems with every expression and script in the diagram, by element."""
    problems = []
    for element in root.iter(*EXPRESSION_ELEMENTS):
        if len(element) or any(isinstance(node, etree._Comment | etree._ProcessingInstruction) for node in element):
            # The engine reads only the text before the first child: the rest would silently vanish.
            problems.append(
                problem_at(
                    "An expression or script must be plain text: no elements, comments or "
                    "processing instructions inside it.",
                    element,
                )
            )
            continue
        source = (element.text or "").strip()
        if not source:
            continue
        reasons = check_source(source, EXPRESSION_ELEMENTS[element.tag])
        if reasons and _FOREIGN_EXPRESSION.match(source):
            reasons = [
                f"{reasons[0]} This looks like a Camunda (JUEL or FEEL) expression; civicflow's expressions "
                'are Python, for example decision == "approve".'
            ]
        for reason in reasons:
            problems.append(problem_at(f"Expression refused: {reason}", element))
    # A service task's parameter values are expressions too (SpiffWorkflow evaluates them).
    for element in root.iter(f"{SPIFF}parameter"):
        source = (element.get("value") or "").strip()
        for reason in check_source(source, "eval") if source else ():
            problems.append(problem_at(f"Expression refused: {reason}", element))
    return problems
