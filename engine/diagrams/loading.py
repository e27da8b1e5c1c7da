"""Loading a diagram: parsed safely, checked by the schema, the sandbox and civicflow's rules, then by SpiffWorkflow."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import UserTask

from engine.diagrams import rules
from engine.diagrams.expressions import check_expressions
from engine.diagrams.problems import Problem, problem_at, summary, unique
from engine.diagrams.schema import schema_problems
from engine.diagrams.task_specs import all_task_specs, form_key_of, is_timer
from engine.diagrams.xml import parse_xml_safely
from engine.errors import DiagramError


@dataclass(frozen=True)
class LoadedSpec:
    """A parsed, validated diagram: the spec SpiffWorkflow runs, and what civicflow reads from it."""

    key: str
    name: str
    version_hash: str
    spec: object
    subprocess_specs: dict
    form_keys: frozenset[str]
    has_timers: bool = False


def version_hash(data: bytes) -> str:
    """The version of a diagram: the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


def diagram_problems(root: etree._Element, key: str, known_form_keys: frozenset[str] | None = None) -> list[Problem]:
    """Every problem that can be read off the XML: the schema, the sandbox's verdict, civicflow's rules."""
    return unique(
        schema_problems(root) + check_expressions(root) + rules.structure_problems(root, key, known_form_keys)
    )


def load_diagram(
    data: bytes,
    key: str,
    known_form_keys: frozenset[str] | None = None,
    known_letters: frozenset[str] | None = None,
    *,
    publishing: bool = True,
) -> LoadedSpec:
    """Parse and validate a diagram for process `key`; every problem found is listed in the DiagramError.

    `publishing=False` loads a version that was validated when it was published (for the requests running
    on it): parsed as safely and its expressions checked by the sandbox as always, but not held to rules
    added since, which would strand those requests.
    """
    root = parse_xml_safely(data)
    problems = diagram_problems(root, key, known_form_keys) if publishing else check_expressions(root)
    if problems:
        raise DiagramError(summary(problems), problems)
    spec, subprocess_specs = _spiff_spec(root, key)
    task_specs = list(all_task_specs(spec, subprocess_specs))
    by_id = {node.get("id"): node for node in root.iter() if isinstance(node.tag, str) and node.get("id")}
    problems = rules.spec_problems(task_specs, by_id, known_letters)
    if problems:
        raise DiagramError("The diagram cannot be used as it is.", problems)
    # A stored version loads without today's rules (publishing=False), so a user task of it may have no form key.
    form_keys = frozenset(
        form_key for form_key in (form_key_of(t) for t in task_specs if isinstance(t, UserTask)) if form_key is not None
    )
    return LoadedSpec(
        key,
        spec.description or key,
        version_hash(data),
        spec,
        subprocess_specs,
        form_keys,
        any(is_timer(t) for t in task_specs),
    )


def _spiff_spec(root: etree._Element, key: str):
    """SpiffWorkflow's spec of the process and its sub-processes (the schema was checked, every error listed)."""
    parser = SpiffBpmnParser(validator=None)
    try:
        parser.add_bpmn_xml(etree.ElementTree(root), filename=f"{key}.bpmn")
        return parser.get_spec(key), parser.get_subprocess_specs(key)
    except (ValidationException, SpiffWorkflowException) as exc:
        raise DiagramError("The diagram cannot be executed.", [_spiff_problem(root, exc)])
    except RecursionError:
        raise DiagramError(
            "The diagram cannot be executed.",
            [
                problem_at(
                    "The engine cannot follow a chain of steps this long in one procedure; split it into sub-processes."
                )
            ],
        )


def _spiff_problem(root: etree._Element, exc: Exception) -> Problem:
    """SpiffWorkflow's own refusal, at the element it names when it names one."""
    bpmn_id = getattr(exc, "id", None) or getattr(exc, "task_id", None)
    element = root.find(f".//*[@id='{bpmn_id}']") if isinstance(bpmn_id, str) else None
    message = exc.args[0] if exc.args else str(exc)
    if "RecursionError" in str(message):
        message = "a chain of steps this long is more than it can follow; split it into sub-processes."
    return problem_at(f"The engine cannot run this: {message}", element, line=getattr(exc, "line_number", None) or None)


def workflow_files(directory: Path) -> list[Path]:
    """The diagrams shipped in workflows/, one per procedure, named after its process key."""
    return sorted(directory.glob("*.bpmn"))
