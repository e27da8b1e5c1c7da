"""Loading BPMN diagrams safely, validating them, and caching parsed specs by content hash."""

from __future__ import annotations

import ast
import copy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask

from engine.diagrams.sandbox import check_source
from engine.errors import DiagramError
from engine.mail.outbox import SEND_LETTER
from engine.people.roles import LANE_ROLES
from engine.time import deadlines

MAX_DIAGRAM_BYTES = 2 * 1024 * 1024
MAX_DIAGRAM_ELEMENTS = 15_000

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
        # The element a person sees in the drawing: a timer's event, not its (also identified) definition.
        while owner is not None and (owner.get("id") is None or str(owner.tag).endswith("EventDefinition")):
            owner = owner.getparent()
        if owner is not None:
            problem["element"] = owner.get("id")
            if owner.get("name"):
                problem["name"] = owner.get("name")
        problem["line"] = element.sourceline
    if line is not None:
        problem["line"] = line
    return problem


_PROLOG_DOCTYPE = re.compile(r"\A\ufeff?\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*)*<!DOCTYPE", re.DOTALL | re.IGNORECASE)


def _prolog_text(data: bytes) -> str:
    """The start of the document as text, enough to see a DOCTYPE in any encoding XML allows."""
    head = data[:65536]
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore")
    if head.startswith(b"<\x00") or head.startswith(b"\x00<"):
        return head.decode("utf-16-le" if head[0] == 0x3C else "utf-16-be", errors="ignore")
    return head.decode("latin-1")  # every ASCII-compatible encoding reads "<!DOCTYPE" the same


def parse_xml_safely(data: bytes) -> etree._Element:
    """Parse diagram XML with entities, DTDs and network access refused; raise DiagramError on any problem.

    The size and a DOCTYPE (the only way entities, and XXE, get in) are refused before any parsing;
    the parser itself resolves nothing either, as a second line.
    """
    if len(data) > MAX_DIAGRAM_BYTES:
        raise DiagramError(
            "The diagram is too large.",
            [_problem(f"The diagram is larger than {MAX_DIAGRAM_BYTES // 1024} KiB.")],
        )
    prolog = _prolog_text(data)
    declared = _PROLOG_DOCTYPE.match(prolog)
    if declared:
        raise DiagramError(
            "The diagram declares a DOCTYPE, which is not allowed.",
            [
                _problem(
                    "DOCTYPE declarations (and the entities they carry) are not allowed.",
                    line=prolog.count("\n", 0, declared.end()) + 1,
                )
            ],
        )
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        message = exc.msg
        if "XML_PARSE_HUGE" in message or "depth" in message.lower():
            message = "the elements are nested too deeply (a BPMN diagram needs a few levels, not hundreds)."
        elif "amplification" in message.lower():
            message = "the document expands too much as it is read."
        raise DiagramError("The diagram is not well-formed XML.", [_problem(f"XML error: {message}", line=exc.lineno)])
    if root.getroottree().docinfo.doctype:
        raise DiagramError(
            "The diagram declares a DOCTYPE, which is not allowed.",
            [_problem("DOCTYPE declarations (and the entities they carry) are not allowed.", line=1)],
        )
    for count, node in enumerate(root.iter(), 1):
        if count > MAX_DIAGRAM_ELEMENTS:
            # The schema check's error list grows quadratically with a file wrong on every line; no procedure
            # comes near this (the largest shipped diagram, drawing included, has under 600 elements).
            raise DiagramError(
                "The diagram is too large.",
                [
                    _problem(
                        f"The diagram has more than {MAX_DIAGRAM_ELEMENTS:,} XML elements; "
                        "a procedure needs far fewer.",
                        line=node.sourceline,
                    )
                ],
            )
        if isinstance(node, etree._Entity):
            raise DiagramError(
                "The diagram uses XML entities, which are not allowed.",
                [_problem("XML entity references are not allowed.", line=node.sourceline)],
            )
    if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
        raise DiagramError(
            "The file is not a BPMN 2.0 diagram.",
            [
                _problem(
                    f'The document\'s root element is "{etree.QName(root).localname}"; a BPMN 2.0 '
                    f'diagram starts with "definitions" in the namespace {BPMN_NS}.',
                    line=root.sourceline,
                )
            ],
        )
    return root


_FOREIGN_EXPRESSION = re.compile(r"^\s*(\$\{|#\{|=)")


def check_expressions(root: etree._Element) -> list[dict]:
    """Problems with every expression and script in the diagram, by element."""
    problems = []
    for element in root.iter(*_EXPRESSION_ELEMENTS):
        if len(element) or any(isinstance(node, etree._Comment | etree._ProcessingInstruction) for node in element):
            # The engine reads only the text before the first child: the rest would silently vanish.
            problems.append(
                _problem(
                    "An expression or script must be plain text: no elements, comments or "
                    "processing instructions inside it.",
                    element,
                )
            )
            continue
        source = (element.text or "").strip()
        if not source:
            continue
        reasons = check_source(source, _EXPRESSION_ELEMENTS[element.tag])
        if reasons and _FOREIGN_EXPRESSION.match(source):
            reasons = [
                f"{reasons[0]} This looks like a Camunda (JUEL or FEEL) expression; civicflow's expressions "
                'are Python, for example decision == "approve".'
            ]
        for reason in reasons:
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
        return [_problem('The "letter" parameter must be a quoted name, e.g. "screenshot_to_communications".', element)]
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
    return [
        spec
        for spec in _all_task_specs(loaded.spec, loaded.subprocess_specs)
        if isinstance(spec, BoundaryEvent) and getattr(attached_task_spec(spec), "bpmn_id", None) == bpmn_id
    ]


def _notice_problems(task_spec, element) -> list[dict]:
    """A reminder or escalation step comes straight after a timer on a user task that has a deadline."""
    operator = task_spec.operation_name
    if task_spec.operation_params:
        return [_problem(f"A {operator} step takes no parameters.", element)]
    events = [
        i
        for i in task_spec.inputs
        if isinstance(i, BoundaryEvent) and isinstance(getattr(i, "event_definition", None), TimerEventDefinition)
    ]
    if len(events) != 1 or len(task_spec.inputs) != 1:
        return [_problem(f"A {operator} step must come straight after one timer attached to a user task.", element)]
    attached = attached_task_spec(events[0])
    if not isinstance(attached, UserTask) or not deadline_of(attached):
        return [
            _problem(f'A {operator} step must follow a timer on a user task that has a "deadline" property.', element)
        ]
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
            problems.append(
                _problem(
                    f'This timer counts the deadline "{kind}" but the task it is attached to has the deadline "{own}".',
                    element,
                )
            )
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


_ACTIVITIES = (
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
_GATEWAYS = ("exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway")
_NAMESPACE_NAMES = {
    BPMN_NS: "bpmn",
    SPIFF_NS: "spiffworkflow",
    "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
    "http://www.omg.org/spec/DD/20100524/DC": "dc",
    "http://www.omg.org/spec/DD/20100524/DI": "di",
}


def _bpmn(*names: str) -> list[str]:
    return [f"{{{BPMN_NS}}}{name}" for name in names]


def _readable(message: str) -> str:
    """An XSD message with namespace URIs written as the usual prefixes: "{...MODEL}task" -> "bpmn:task"."""
    for namespace, prefix in _NAMESPACE_NAMES.items():
        message = message.replace(f"{{{namespace}}}", f"{prefix}:")
    return message


MAX_PROBLEMS = 200  # a file wrong on every line gets the first ones and a count, not a page of thousands


def _schema_problems(root: etree._Element) -> list[dict]:
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
    problems = []
    for entry in entries[:MAX_PROBLEMS]:
        problem = _problem(f"BPMN schema: {_readable(entry.message)}", at_line.get(entry.line))
        problem["line"] = entry.line
        problems.append(problem)
    if len(entries) > MAX_PROBLEMS:
        problems.append(
            _problem(
                f"BPMN schema: and {len(entries) - MAX_PROBLEMS} more errors like these.",
                line=entries[MAX_PROBLEMS].line,
            )
        )
    return problems


def _property(element: etree._Element, name: str) -> str | None:
    """A spiffworkflow:property of an element (formKey, deadline), or None."""
    for prop in element.iterfind(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"):
        if prop.get("name") == name:
            return prop.get("value")
    return None


def _label(element: etree._Element) -> str:
    return element.get("name") or element.get("id") or etree.QName(element).localname


def _lane_problems(root: etree._Element) -> tuple[list[dict], dict[str, str]]:
    """Lanes named after no role, and which lane (by name) each flow node is in."""
    problems, lane_of = [], {}
    roles = ", ".join(LANE_ROLES)
    for lane in root.iter(*_bpmn("lane")):
        if lane.find(f"{{{BPMN_NS}}}childLaneSet") is not None:
            continue  # a lane holding lanes only groups them; its leaves are the roles
        name = (lane.get("name") or "").strip()
        if name not in LANE_ROLES:
            what = f'Lane "{name}"' if name else "A lane with no name"
            problems.append(_problem(f"{what} is not a role; the roles are {roles}.", lane))
        for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = name
    return problems, lane_of


_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def _timer_value_problems(definition: etree._Element) -> list[dict]:
    """A timer's value: a duration ("P2D"), a date ("2026-12-01T09:00:00-06:00") or a deadline helper."""
    values = [
        child
        for child in definition
        if isinstance(child.tag, str) and etree.QName(child).localname in ("timeDate", "timeDuration", "timeCycle")
    ]
    if not values:
        return [_problem("This timer has no value (a timeDate or a timeDuration).", definition)]
    problems = []
    for value in values:
        kind = etree.QName(value).localname
        if kind == "timeCycle":
            problems.append(
                _problem("Repeating timers (timeCycle) are not supported; use a timeDate or timeDuration.", value)
            )
            continue
        source = (value.text or "").strip()
        if not source:
            problems.append(_problem(f"This timer's {kind} is empty.", value))
            continue
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError:
            continue  # check_expressions reports it
        node = tree.body
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in deadlines.TIMER_HELPERS:
            known = ", ".join(sorted(deadlines.DEADLINE_KINDS))
            given = node.args[0].value if len(node.args) == 1 and isinstance(node.args[0], ast.Constant) else None
            if node.keywords or given not in deadlines.DEADLINE_KINDS:
                problems.append(_problem(f"{node.func.id}() takes one quoted deadline: {known}.", value))
            elif kind != "timeDate":
                problems.append(
                    _problem(f"{node.func.id}() gives a date and time; put it in a timeDate, not a {kind}.", value)
                )
            continue
        if isinstance(node, ast.Name) and (_ISO_DURATION.match(node.id) or node.id[:1] == "P"):
            problems.append(
                _problem(
                    f'Write the {kind} in quotes, "{node.id}": unquoted, it is read as the name '
                    f"of a value in the request.",
                    value,
                )
            )
            continue
        if not isinstance(node, ast.Constant):
            continue  # computed from the request's data at run time; the sandbox has checked it
        if not isinstance(node.value, str):
            example = '"P2D"' if kind == "timeDuration" else '"2026-12-01T09:00:00-06:00"'
            problems.append(_problem(f"This timer's {kind} must be a quoted ISO 8601 value, e.g. {example}.", value))
            continue
        try:
            if kind == "timeDuration":
                if not _ISO_DURATION.match(node.value):
                    raise ValueError(node.value)  # SpiffWorkflow alone would take "2D", or "P" as no time at all
                TimerEventDefinition.parse_iso_duration(node.value)
            else:
                TimerEventDefinition.get_datetime(node.value)
        except Exception:  # noqa: BLE001 - SpiffWorkflow raises plain ValueError, KeyError or AttributeError
            example = "P2D (two days) or PT4H (four hours)" if kind == "timeDuration" else "2026-12-01T09:00:00-06:00"
            what = "duration" if kind == "timeDuration" else "date and time"
            problems.append(_problem(f'"{node.value}" is not a valid ISO 8601 {what}; for example {example}.', value))
    return problems


# What civicflow can run, besides user, service and script tasks, gateways, sub-processes and plain events.
_UNSUPPORTED = {
    "task": "A plain task has no form and no service, so nobody could do it; make it a user task with a form.",
    "manualTask": "A manual task has no form, so nobody could mark it done; make it a user task with a form.",
    "sendTask": "Send tasks are not supported; a letter is sent by a service task (send_letter).",
    "receiveTask": "Receive tasks are not supported: civicflow receives nothing from outside a task's form.",
    "businessRuleTask": "Business rule (DMN) tasks are not supported; use a gateway with conditions.",
    "callActivity": "Call activities are not supported; draw the steps in this procedure.",
    "transaction": "Transactions are not supported; use a sub-process.",
    "adHocSubProcess": "Ad-hoc sub-processes are not supported; use a sub-process.",
    "complexGateway": "Complex gateways are not supported; use exclusive, inclusive or parallel gateways.",
    "eventBasedGateway": "Event-based gateways are not supported; use a timer on a task.",
    "dataInputAssociation": "Data associations are not supported: the steps read and write the request's record.",
    "dataOutputAssociation": "Data associations are not supported: the steps read and write the request's record.",
}
# Events only wait for time here: nothing else (messages, signals...) ever reaches a request.
_EVENT_DEFINITIONS = (
    "messageEventDefinition",
    "signalEventDefinition",
    "conditionalEventDefinition",
    "escalationEventDefinition",
    "errorEventDefinition",
    "compensateEventDefinition",
    "linkEventDefinition",
    "cancelEventDefinition",
)
_XINCLUDE = "{http://www.w3.org/2001/XInclude}"


def _lane_of(node: etree._Element, lane_of: dict[str, str]) -> str | None:
    """The lane of a flow node: its own, or (inside a sub-process) the sub-process's, as SpiffWorkflow reads it."""
    while node is not None:
        if node.get("id") in lane_of:
            return lane_of[node.get("id")]
        node = node.getparent()
    return None


def _service_operator_problems(task: etree._Element) -> list[dict]:
    """A service task calls one of civicflow's services (the parameters are checked once it parses)."""
    operator = task.find(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}serviceTaskOperator")
    known = ", ".join([SEND_LETTER, *sorted(deadlines.NOTICE_OPERATORS)])
    if operator is None:
        return [
            _problem(f"Service task calls no civicflow service (a spiffworkflow:serviceTaskOperator: {known}).", task)
        ]
    if operator.get("id") not in {SEND_LETTER, *deadlines.NOTICE_OPERATORS}:
        return [_problem(f'Service "{operator.get("id")}" is unknown; the services are {known}.', task)]
    return []


def structure_problems(root: etree._Element, key: str, known_form_keys: frozenset[str] | None) -> list[dict]:
    """What civicflow needs of a diagram, read from the XML: roles, forms, ways out, timers, the process id.

    Only the procedure's own process is checked (other pools of a collaboration never run), or every process
    when none has the procedure's id.
    """
    problems = []
    processes = root.findall(f"{{{BPMN_NS}}}process")
    scope = [process for process in processes if process.get("id") == key]
    if not scope:
        found = ", ".join(f'"{process.get("id")}"' for process in processes) or "none"
        problems.append(
            _problem(
                f"No process with the id \"{key}\" (this procedure's key); the diagram's processes are: {found}.",
                line=root.sourceline,
            )
        )
        scope = processes
    for include in root.iter(f"{_XINCLUDE}include"):
        problems.append(_problem("XInclude is not allowed: a diagram cannot pull in other files.", include))

    def each(*names):
        for process in scope:
            yield from process.iter(*_bpmn(*names))

    lane_problems, lane_of = [], {}
    for process in scope:
        found_problems, found_lanes = _lane_problems(process)
        lane_problems.extend(found_problems)
        lane_of.update(found_lanes)
    problems.extend(lane_problems)
    flows_out: dict[str, list[etree._Element]] = {}
    for flow in each("sequenceFlow"):
        flows_out.setdefault(flow.get("sourceRef"), []).append(flow)
    forms = ", ".join(sorted(known_form_keys)) if known_form_keys is not None else ""
    for task in each("userTask"):
        if _lane_of(task, lane_of) is None:
            problems.append(
                _problem(
                    f'User task "{_label(task)}" is in no lane: put it in the lane of the role that does it.', task
                )
            )
        form_key = _property(task, "formKey")
        if not form_key:
            problems.append(_problem("User task has no formKey property (the form it shows).", task))
        elif known_form_keys is not None and form_key not in known_form_keys:
            problems.append(
                _problem(f'Form key "{form_key}" has no form; the forms of this procedure are {forms}.', task)
            )
        deadline = _property(task, "deadline")
        if deadline is not None and deadline not in deadlines.DEADLINE_KINDS:
            known = ", ".join(sorted(deadlines.DEADLINE_KINDS))
            problems.append(_problem(f'Deadline "{deadline}" is unknown; the deadlines are {known}.', task))
    for element in each(*_UNSUPPORTED):
        problems.append(_problem(_UNSUPPORTED[etree.QName(element).localname], element))
    for definition in each(*_EVENT_DEFINITIONS):
        kind = etree.QName(definition).localname.removesuffix("EventDefinition")
        problems.append(
            _problem(
                f"{kind.capitalize()} events are not supported: only timers (and plain start and "
                f"end events) can be used.",
                definition,
            )
        )
    for task in each("serviceTask"):
        problems.extend(_service_operator_problems(task))
    for script_task in each("scriptTask"):
        script = script_task.find(f"{{{BPMN_NS}}}script")
        language = (script_task.get("scriptFormat") or "python").lower()
        if "python" not in language:
            problems.append(
                _problem(
                    f'The script is in "{script_task.get("scriptFormat")}"; civicflow\'s scripts are Python.',
                    script_task,
                )
            )
        elif script is None or not (script.text or "").strip() and not len(script):
            problems.append(_problem("Script task has no script.", script_task))
    for node in each(*_ACTIVITIES, *_GATEWAYS, "startEvent"):
        if node.get("triggeredByEvent") == "true" or etree.QName(node).localname in _UNSUPPORTED:
            continue  # an event sub-process starts by its event; unsupported elements are reported as such
        if node.get("id") not in flows_out:
            problems.append(_problem("This element has no way out (no outgoing sequence flow).", node))
    for gateway in each("exclusiveGateway", "inclusiveGateway"):
        leaving = flows_out.get(gateway.get("id"), [])
        if len(leaving) < 2:
            continue
        for flow in leaving:
            condition = flow.find(f"{{{BPMN_NS}}}conditionExpression")
            if flow.get("id") != gateway.get("default") and (condition is None or not (condition.text or "").strip()):
                problems.append(
                    _problem(
                        f'The flow "{_label(flow)}" out of the gateway "{_label(gateway)}" has no '
                        f"condition and is not its default flow.",
                        flow,
                    )
                )
    for definition in each("timerEventDefinition"):
        problems.extend(_timer_value_problems(definition))
    return problems


def diagram_problems(root: etree._Element, key: str, known_form_keys: frozenset[str] | None = None) -> list[dict]:
    """Every problem that can be read off the XML: the schema, the sandbox's verdict, civicflow's rules."""
    problems = _schema_problems(root) + check_expressions(root) + structure_problems(root, key, known_form_keys)
    unique, seen = [], set()
    for problem in problems:
        marker = (problem.get("element"), problem.get("line"), problem["message"])
        if marker not in seen:
            seen.add(marker)
            unique.append(problem)
    return unique


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
        raise DiagramError(_summary(problems), problems)
    parser = SpiffBpmnParser(validator=None)  # the schema was checked above, with every error listed
    try:
        parser.add_bpmn_xml(etree.ElementTree(root), filename=f"{key}.bpmn")
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except (ValidationException, SpiffWorkflowException) as exc:
        raise DiagramError("The diagram cannot be executed.", [_spiff_problem(root, exc)])
    except RecursionError:
        raise DiagramError(
            "The diagram cannot be executed.",
            [
                _problem(
                    "The engine cannot follow a chain of steps this long in one procedure; split it into sub-processes."
                )
            ],
        )
    form_keys = set()
    by_id = {node.get("id"): node for node in root.iter() if isinstance(node.tag, str) and node.get("id")}
    for task_spec in _all_task_specs(spec, subprocess_specs):
        element = by_id.get(task_spec.bpmn_id)
        if isinstance(task_spec, UserTask):
            if task_spec.lane not in LANE_ROLES:
                problems.append(
                    _problem(
                        f'User task "{task_spec.bpmn_name or task_spec.bpmn_id}" is in lane '
                        f'"{task_spec.lane}", which is not a role.',
                        element,
                    )
                )
            form_keys.add(form_key_of(task_spec))
        if isinstance(getattr(task_spec, "event_definition", None), TimerEventDefinition):
            problems.extend(_timer_problems(task_spec, element))
        if isinstance(task_spec, ServiceTask):
            problems.extend(_service_problems(task_spec, element, known_letters))
    if problems:
        raise DiagramError("The diagram cannot be used as it is.", problems)
    has_timers = any(
        isinstance(getattr(t, "event_definition", None), TimerEventDefinition)
        for t in _all_task_specs(spec, subprocess_specs)
    )
    return LoadedSpec(
        key, spec.description or key, version_hash(data), spec, subprocess_specs, frozenset(form_keys), has_timers
    )


def _summary(problems: list[dict]) -> str:
    """The headline of a refusal: what kind of problems, and how many."""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    if all(p["message"].startswith("Expression refused") for p in problems):
        return f"The diagram has expressions the sandbox refuses ({count})."
    if all(p["message"].startswith("BPMN schema") for p in problems):
        return f"The diagram is not valid BPMN ({count})."
    return f"The diagram cannot be used as it is ({count})."


def _spiff_problem(root: etree._Element, exc: Exception) -> dict:
    """SpiffWorkflow's own refusal, at the element it names when it names one."""
    bpmn_id = getattr(exc, "id", None) or getattr(exc, "task_id", None)
    element = root.find(f".//*[@id='{bpmn_id}']") if isinstance(bpmn_id, str) else None
    message = exc.args[0] if exc.args else str(exc)
    if "RecursionError" in str(message):
        message = "a chain of steps this long is more than it can follow; split it into sub-processes."
    problem = _problem(f"The engine cannot run this: {message}", element)
    if getattr(exc, "line_number", None):
        problem["line"] = exc.line_number
    return problem


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
        loaded = load_diagram(data, key, publishing=False)
        with _cache_lock:
            _cache[digest] = loaded
    return loaded


def cached_version(version_hash: str) -> LoadedSpec | None:
    """The parsed spec of a diagram version if this process has parsed it already (no XML read, no hashing)."""
    return _cache.get(version_hash)


def workflow_files(directory: Path) -> list[Path]:
    """The diagrams shipped in workflows/, one per procedure, named after its process key."""
    return sorted(directory.glob("*.bpmn"))
