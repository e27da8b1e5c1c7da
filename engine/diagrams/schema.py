"""The BPMN 2.0 schema (with SpiffWorkflow's extensions) checked on a diagram, every error listed."""

from __future__ import annotations

import copy

from lxml import etree
from SpiffWorkflow.spiff.parser import VALIDATOR

from engine.diagrams.problems import Problem, problem_at
from engine.diagrams.xml import BPMN_NS, BPMNDI_NS, DC_NS, DI_NS, SPIFF_NS

_NAMESPACE_NAMES = {BPMN_NS: "bpmn", SPIFF_NS: "spiffworkflow", BPMNDI_NS: "bpmndi", DC_NS: "dc", DI_NS: "di"}

MAX_PROBLEMS = 200  # a file wrong on every line gets the first ones and a count, not a page of thousands


def _readable(message: str) -> str:
    """An XSD message with namespace URIs written as the usual prefixes: "{...MODEL}task" -> "bpmn:task"."""
    for namespace, prefix in _NAMESPACE_NAMES.items():
        message = message.replace(f"{{{namespace}}}", f"{prefix}:")
    return message


def schema_problems(root: etree._Element) -> list[Problem]:
    """Every XSD error of the diagram (BPMN 2.0 with SpiffWorkflow's extensions), each at its element and line."""
    tree = etree.ElementTree(copy.deepcopy(root))
    VALIDATOR.preprocess(tree)
    if VALIDATOR.validator.validate(tree):
        return []
    entries = list(VALIDATOR.validator.error_log)
    at_line: dict[int, etree._Element] = {}
    for node in tree.iter():
        if isinstance(node.tag, str):
            at_line.setdefault(node.sourceline, node)
    problems = [
        problem_at(f"BPMN schema: {_readable(entry.message)}", at_line.get(entry.line), line=entry.line)
        for entry in entries[:MAX_PROBLEMS]
    ]
    if len(entries) > MAX_PROBLEMS:
        problems.append(
            problem_at(
                f"BPMN schema: and {len(entries) - MAX_PROBLEMS} more errors like these.",
                line=entries[MAX_PROBLEMS].line,
            )
        )
    return problems
