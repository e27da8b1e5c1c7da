"""Loading a diagram: parsed safely, checked by the schema, the sandbox, civicflow's rules and SpiffWorkflow at once."""

from __future__ import annotations

import hashlib
import re
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
from engine.diagrams.refusals import refusal_problem
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

    civicflow's checks and SpiffWorkflow's own parse run in the same pass, so that a refusal lists both kinds at
    once. `publishing=False` loads a version that was validated when it was published (for the requests running
    on it): parsed as safely and its expressions checked by the sandbox as always, but not held to rules
    added since, which would strand those requests.
    """
    root = parse_xml_safely(data)
    problems = diagram_problems(root, key, known_form_keys) if publishing else check_expressions(root)
    parsed, refusal = _spiff_spec(root, key, problems)
    if refusal is not None and not _said_already(refusal, problems):
        problems = [*problems, refusal]
    if problems or parsed is None:
        raise DiagramError(summary(problems), problems)
    spec, subprocess_specs = parsed
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


def _said_already(refusal: Problem, problems: list[Problem]) -> bool:
    """Whether civicflow's checks said what SpiffWorkflow refused, in the same words at the same element."""
    return any(p.element == refusal.element and p.message == refusal.message for p in problems)


def _spiff_spec(root: etree._Element, key: str, refused: list[Problem]) -> tuple[tuple | None, Problem | None]:
    """SpiffWorkflow's spec of the process and its sub-processes, or the problem it refused the diagram with.

    When civicflow's checks have already refused the diagram (`refused`), SpiffWorkflow parses it to add what it
    would refuse too. What is no news then is left out: a failure of its parser (a Python error of its own, which a
    file civicflow refused can trip anywhere), and an untranslated complaint about a file that breaks the schema.
    """
    parser = SpiffBpmnParser(validator=None)
    try:
        parser.add_bpmn_xml(etree.ElementTree(root), filename=f"{key}.bpmn")
        return (parser.get_spec(key), parser.get_subprocess_specs(key)), None
    except (ValidationException, SpiffWorkflowException) as exc:
        problem, translated = refusal_problem(root, key, exc)
        no_news = refused and (_PYTHON_ERROR.match(problem.message) or any(_breaks_schema(p) for p in refused))
        return None, None if not translated and no_news else problem
    except RecursionError:
        return None, problem_at(
            "The engine cannot follow a chain of steps this long in one procedure; split it into sub-processes."
        )
    except Exception:
        if refused:
            return None, None
        raise


_PYTHON_ERROR = re.compile(r"The engine cannot run this: [A-Z]\w*(Error|Exception)\(")


def _breaks_schema(problem: Problem) -> bool:
    return problem.message.startswith("BPMN schema")


def workflow_files(directory: Path) -> list[Path]:
    """The diagrams shipped in workflows/, one per procedure, named after its process key."""
    return sorted(directory.glob("*.bpmn"))
