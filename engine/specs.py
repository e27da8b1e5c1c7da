"""Loading BPMN diagrams safely, validating them, and caching parsed specs by content hash."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask

from engine import deadlines
from engine.errors import DiagramError
from engine.outbox import SEND_LETTER
from engine.roles import LANE_ROLES
from engine.sandbox import check_source

MAX_DIAGRAM_BYTES = 2 * 1024 * 1024

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

# Elements whose text is Python that the engine will evaluate ('eval') or run ('exec').
_EXPRESSION_ELEMENTS = {
    f"{{{BPMN_NS}}}conditionExpression": "eval",
    f"{{{BPMN_NS}}}timeDuration": "eval",
    f"{{{BPMN_NS}}}timeDate": "eval",
    f"{{{BPMN_NS}}}timeCycle": "eval",
    f"{{{BPMN_NS}}}loopCardinality": "eval",
    f"{{{BPMN_NS}}}completionCondition": "eval",
    f"{{{BPMN_NS}}}script": "exec",
    f"{{{SPIFF_NS}}}preScript": "exec",
    f"{{{SPIFF_NS}}}postScript": "exec",
}


def _problem(message: str, element=None, line: int | None = None) -> dict:
    problem = {"message": message}
    if element is not None:
        owner = element
        while owner is not None and owner.get("id") is None:
            owner = owner.getparent()
        if owner is not None:
            problem["element"] = owner.get("id")
            if owner.get("name"):
                problem["name"] = owner.get("name")
        problem["line"] = element.sourceline
    if line is not None:
        problem["line"] = line
    return problem


def parse_xml_safely(data: bytes) -> etree._Element:
    """Parse diagram XML with entities, DTDs and network access refused; raise DiagramError on any problem."""
    if len(data) > MAX_DIAGRAM_BYTES:
        raise DiagramError(
            "The diagram is too large.",
            [_problem(f"The diagram is larger than {MAX_DIAGRAM_BYTES // 1024} KiB.")],
        )
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise DiagramError(
            "The diagram is not well-formed XML.", [_problem(f"XML error: {exc.msg}", line=exc.lineno)]
        )
    if root.getroottree().docinfo.doctype:
        # A DOCTYPE is how entities (and XXE) get in; BPMN never needs one.
        raise DiagramError(
            "The diagram declares a DOCTYPE, which is not allowed.",
            [_problem("DOCTYPE declarations (and the entities they carry) are not allowed.", line=1)],
        )
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise DiagramError("The diagram uses XML entities, which are not allowed.",
                               [_problem("XML entity references are not allowed.", line=node.sourceline)])
    return root


def check_expressions(root: etree._Element) -> list[dict]:
    """Problems with every expression and script in the diagram, by element."""
    problems = []
    for element in root.iter(*_EXPRESSION_ELEMENTS):
        source = (element.text or "").strip()
        if not source:
            continue
        for reason in check_source(source, _EXPRESSION_ELEMENTS[element.tag]):
            problems.append(_problem(f"Expression refused: {reason}", element))
    # A service task's parameter values are expressions too (SpiffWorkflow evaluates them).
    for element in root.iter(f"{{{SPIFF_NS}}}parameter"):
        source = (element.get("value") or "").strip()
        for reason in check_source(source, "eval") if source else ():
            problems.append(_problem(f"Expression refused: {reason}", element))
    return problems


def _service_problems(task_spec, element, known_letters: frozenset[str] | None) -> list[dict]:
    """A service task sends one of the procedure's letters (named by a plain string), or a reminder or escalation."""
    if task_spec.operation_name in deadlines.NOTICE_OPERATORS:
        return _notice_problems(task_spec, element)
    if task_spec.operation_name != SEND_LETTER:
        known = ", ".join([SEND_LETTER, *sorted(deadlines.NOTICE_OPERATORS)])
        return [_problem(f'Service "{task_spec.operation_name}" is unknown; the services are {known}.', element)]
    if set(task_spec.operation_params) != {"letter"}:
        return [_problem('A send_letter step takes exactly one parameter, "letter".', element)]
    try:
        letter = ast.literal_eval(task_spec.operation_params["letter"]["value"])
    except (ValueError, SyntaxError):
        letter = None
    if not isinstance(letter, str):
        return [_problem('The "letter" parameter must be a quoted name, e.g. "screenshot_to_communications".',
                         element)]
    if known_letters is not None and letter not in known_letters:
        known = ", ".join(sorted(known_letters)) or "none"
        return [_problem(f'Letter "{letter}" is not one of this procedure\'s letters ({known}).', element)]
    return []


def attached_task_spec(boundary_event):
    """The activity a boundary event is attached to (SpiffWorkflow puts both under a split)."""
    for split in boundary_event.inputs:
        for output in split.outputs:
            if not isinstance(output, BoundaryEvent):
                return output
    return None


def boundary_events_of(loaded: LoadedSpec, bpmn_id: str) -> list:
    """The boundary events attached to the activity with this BPMN id."""
    return [spec for spec in _all_task_specs(loaded.spec, loaded.subprocess_specs)
            if isinstance(spec, BoundaryEvent) and getattr(attached_task_spec(spec), "bpmn_id", None) == bpmn_id]


def _notice_problems(task_spec, element) -> list[dict]:
    """A reminder or escalation step comes straight after a timer on a user task that has a deadline."""
    operator = task_spec.operation_name
    if task_spec.operation_params:
        return [_problem(f"A {operator} step takes no parameters.", element)]
    events = [i for i in task_spec.inputs if isinstance(i, BoundaryEvent)
              and isinstance(getattr(i, "event_definition", None), TimerEventDefinition)]
    if len(events) != 1 or len(task_spec.inputs) != 1:
        return [_problem(f"A {operator} step must come straight after one timer attached to a user task.", element)]
    attached = attached_task_spec(events[0])
    if not isinstance(attached, UserTask) or not deadline_of(attached):
        return [_problem(f'A {operator} step must follow a timer on a user task that has a "deadline" property.',
                         element)]
    return []


def _timer_problems(task_spec, element) -> list[dict]:
    """Timers run on civicflow's clock: a date or a duration, never a cycle; helpers name a known deadline."""
    if not deadlines.on_the_clock(task_spec):
        return [_problem("Repeating timers (timeCycle) are not supported; use a timeDate or timeDuration.", element)]
    problems = []
    kinds = set()
    try:
        tree = ast.parse(task_spec.event_definition.expression.strip(), mode="eval")
    except SyntaxError:
        return []  # check_expressions has reported it
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in deadlines.TIMER_HELPERS:
            kind = node.args[0].value if len(node.args) == 1 and isinstance(node.args[0], ast.Constant) else None
            if kind not in deadlines.DEADLINE_KINDS:
                known = ", ".join(sorted(deadlines.DEADLINE_KINDS))
                problems.append(_problem(f"{node.func.id}() takes one quoted deadline: {known}.", element))
            kinds.add(kind)
    if isinstance(task_spec, BoundaryEvent):
        attached = attached_task_spec(task_spec)
        own = deadline_of(attached) if attached is not None else None
        for kind in kinds - {own} if own else ():
            problems.append(_problem(f'This timer counts the deadline "{kind}" but the task it is attached to has '
                                     f'the deadline "{own}".', element))
    return problems


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


def form_key_of(task_spec) -> str | None:
    """The form key of a user task (a spiffworkflow:property named formKey)."""
    return (getattr(task_spec, "extensions", None) or {}).get("properties", {}).get("formKey")


def deadline_of(task_spec) -> str | None:
    """The deadline kind of a review task (a spiffworkflow:property named deadline), e.g. "appeal_response"."""
    return (getattr(task_spec, "extensions", None) or {}).get("properties", {}).get("deadline")


def load_diagram(data: bytes, key: str, known_form_keys: frozenset[str] | None = None,
                 known_letters: frozenset[str] | None = None) -> LoadedSpec:
    """Parse and validate a diagram for process `key`; every problem found is listed in the DiagramError."""
    root = parse_xml_safely(data)
    problems = check_expressions(root)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        parser.add_bpmn_xml(etree.ElementTree(root), filename=f"{key}.bpmn")
    except ValidationException as exc:
        raise DiagramError("The diagram is not valid BPMN.",
                           problems + [_problem(f"BPMN schema: {exc.args[0] if exc.args else exc}",
                                                line=getattr(exc, "line_number", None))])
    if key not in parser.get_process_ids():
        raise DiagramError("The diagram does not define this procedure.",
                           problems + [_problem(f'No executable process with id "{key}".')])
    if problems:
        raise DiagramError("The diagram has expressions the sandbox refuses.", problems)
    try:
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except (ValidationException, SpiffWorkflowException) as exc:
        raise DiagramError("The diagram cannot be executed.", [_problem(str(exc))])
    form_keys = set()
    for task_spec in _all_task_specs(spec, subprocess_specs):
        element = root.find(f".//*[@id='{task_spec.bpmn_id}']") if task_spec.bpmn_id else None
        if isinstance(task_spec, UserTask):
            if task_spec.lane not in LANE_ROLES:
                problems.append(_problem(
                    f'User task "{task_spec.bpmn_name or task_spec.bpmn_id}" is in lane '
                    f'"{task_spec.lane}", which is not a role.', element))
            form_key = form_key_of(task_spec)
            if not form_key:
                problems.append(_problem("User task has no formKey property.", element))
            elif known_form_keys is not None and form_key not in known_form_keys:
                problems.append(_problem(f'Form key "{form_key}" has no form.', element))
            else:
                form_keys.add(form_key)
            deadline = deadline_of(task_spec)
            if deadline is not None and deadline not in deadlines.DEADLINE_KINDS:
                known = ", ".join(sorted(deadlines.DEADLINE_KINDS))
                problems.append(_problem(f'Deadline "{deadline}" is unknown; the deadlines are {known}.', element))
        if isinstance(getattr(task_spec, "event_definition", None), TimerEventDefinition):
            problems.extend(_timer_problems(task_spec, element))
        if isinstance(task_spec, ServiceTask):
            problems.extend(_service_problems(task_spec, element, known_letters))
        if (task_spec.bpmn_id and not task_spec.outputs and not isinstance(task_spec, CatchingEvent)
                and element is not None and etree.QName(element).localname != "endEvent"):
            problems.append(_problem("This element has no way out (no outgoing sequence flow).", element))
    if problems:
        raise DiagramError("The diagram cannot be used as it is.", problems)
    has_timers = any(isinstance(getattr(t, "event_definition", None), TimerEventDefinition)
                     for t in _all_task_specs(spec, subprocess_specs))
    return LoadedSpec(key, spec.description or key, version_hash(data), spec, subprocess_specs,
                      frozenset(form_keys), has_timers)


def _all_task_specs(spec, subprocess_specs):
    for process in [spec, *subprocess_specs.values()]:
        yield from process.task_specs.values()


_cache: dict[str, LoadedSpec] = {}
_cache_lock = Lock()


def cached_spec(key: str, xml: str | bytes) -> LoadedSpec:
    """The parsed spec for a stored diagram version, parsed once per process and version."""
    data = xml.encode() if isinstance(xml, str) else xml
    digest = version_hash(data)
    loaded = _cache.get(digest)
    if loaded is None:
        loaded = load_diagram(data, key)
        with _cache_lock:
            _cache[digest] = loaded
    return loaded


def cached_version(version_hash: str) -> LoadedSpec | None:
    """The parsed spec of a diagram version if this process has parsed it already (no XML read, no hashing)."""
    return _cache.get(version_hash)


def workflow_files(directory: Path) -> list[Path]:
    """The diagrams shipped in workflows/, one per procedure, named after its process key."""
    return sorted(directory.glob("*.bpmn"))
