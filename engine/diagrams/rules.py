"""civicflow's rules for a diagram, each written once: what a procedure needs beyond valid BPMN and safe expressions.

Most rules read the XML (`structure_problems`), so that every problem of a draft is listed at once. What can only
be known once SpiffWorkflow has parsed it (which letter a step sends, what a timer is attached to) is checked on
the parsed spec (`spec_problems`), which a stored version is held to as well. Where both stages see the same
thing (a timer's cycle, a helper's deadline, a service's name), both call the one rule below. Where SpiffWorkflow's
own parser refuses what a rule here sees too, `refusals.py` gives the rule's problem (the public functions below),
so that it is listed once.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask

from engine.diagrams.problems import ACTIVITIES, GATEWAYS, Problem, problem_at
from engine.diagrams.task_specs import attached_task_spec, deadline_of, is_timer
from engine.diagrams.xml import BPMN, SERVICE_OPERATOR, bpmn, label, property_of
from engine.mail.outbox import SEND_LETTER
from engine.people.roles import LANE_ROLES
from engine.time import deadlines

# ---- the rules both stages apply ------------------------------------------------------------------------

SERVICES = (SEND_LETTER, *sorted(deadlines.REMINDER_AND_ESCALATION_OPERATORS))
MAX_LOOPS = 1000  # the most rounds a loop, or instances a multi-instance task, may run
CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"


def _unknown_service(operator: str | None, element) -> list[Problem]:
    """A service task calls one of civicflow's services."""
    if operator in SERVICES:
        return []
    return [problem_at(f'Service "{operator}" is unknown; the services are {", ".join(SERVICES)}.', element)]


def _repeating_timer(element) -> Problem:
    """Timers run on civicflow's clock: a date or a duration, never a cycle."""
    return problem_at("Repeating timers (timeCycle) are not supported; use a timeDate or timeDuration.", element)


def _helper_call(node: ast.AST) -> tuple[str, ast.Call] | None:
    """The timer helper (due_time, reminder_time, escalation_time) a node calls, and the call; None if it calls none."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in deadlines.TIMER_HELPERS:
        return node.func.id, node
    return None


def _deadline_named(call: ast.Call) -> str | None:
    """The deadline a helper call names: its one quoted argument, else None (a number or bytes name none)."""
    if len(call.args) == 1 and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _helper_problem(helper: str, call: ast.Call, element, *, refuse_keywords: bool = True) -> Problem | None:
    """A timer helper takes one quoted deadline that the City has: reminder_time("appeal_response").

    The parsed-spec stage, which stored versions are held to, has never refused extra keyword arguments (only the
    XML stage does, on a timer's outermost call): `refuse_keywords=False` keeps it so, so that no version stored
    before now stops loading.
    """
    if (refuse_keywords and call.keywords) or _deadline_named(call) not in deadlines.DEADLINE_KINDS:
        known = ", ".join(sorted(deadlines.DEADLINE_KINDS))
        return problem_at(f"{helper}() takes one quoted deadline: {known}.", element)
    return None


# ---- rules read from the XML ----------------------------------------------------------------------------

# What civicflow can run, besides user, service and script tasks, gateways, sub-processes and plain events.
UNSUPPORTED = {
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
_TIMER_VALUES = ("timeDate", "timeDuration", "timeCycle")
_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


class _Scope:
    """The processes a diagram's rules look at, and what they need to know of them."""

    def __init__(self, processes: list[etree._Element]):
        self.processes = processes
        self.lane_of: dict[str, str] = {}
        self.flows_out: dict[str | None, list[etree._Element]] = {}

    def each(self, *names: str) -> Iterator[etree._Element]:
        """Every element with one of these BPMN names, in the processes in scope."""
        for process in self.processes:
            yield from process.iter(*bpmn(*names))

    def lane_of_node(self, node: etree._Element | None) -> str | None:
        """The lane of a flow node: its own, or (inside a sub-process) the sub-process's, as SpiffWorkflow reads it."""
        while node is not None:
            if node.get("id") in self.lane_of:
                return self.lane_of[node.get("id")]
            node = node.getparent()
        return None


def _process_scope(root: etree._Element, key: str) -> tuple[_Scope, list[Problem]]:
    """The procedure's own process, or every process when none has the procedure's id (a problem)."""
    processes = root.findall(f"{BPMN}process")
    scope = [process for process in processes if process.get("id") == key]
    if scope:
        return _Scope(scope), []
    return _Scope(processes), [missing_process(root, key)]


def missing_process(root: etree._Element, key: str) -> Problem:
    """The diagram has no process with the procedure's key as its id."""
    found = ", ".join(f'"{process.get("id")}"' for process in root.findall(f"{BPMN}process")) or "none"
    return problem_at(
        f"No process with the id \"{key}\" (this procedure's key); the diagram's processes are: {found}.",
        line=root.sourceline,
    )


def _lane_problems(scope: _Scope) -> list[Problem]:
    """Lanes named after no role; notes which lane (by name) each flow node is in."""
    problems = []
    roles = ", ".join(LANE_ROLES)
    for lane in scope.each("lane"):
        if lane.find(f"{BPMN}childLaneSet") is not None:
            continue  # a lane holding lanes only groups them; its leaves are the roles
        name = (lane.get("name") or "").strip()
        if name not in LANE_ROLES:
            what = f'Lane "{name}"' if name else "A lane with no name"
            problems.append(problem_at(f"{what} is not a role; the roles are {roles}.", lane))
        for ref in lane.iterfind(f"{BPMN}flowNodeRef"):
            scope.lane_of[(ref.text or "").strip()] = name
    return problems


def _user_task_problems(scope: _Scope, known_form_keys: frozenset[str] | None) -> Iterator[Problem]:
    """A user task is in a role's lane, shows one of the procedure's forms, and names a deadline the City has."""
    forms = ", ".join(sorted(known_form_keys)) if known_form_keys is not None else ""
    for task in scope.each("userTask"):
        if scope.lane_of_node(task) is None:
            yield problem_at(
                f'User task "{label(task)}" is in no lane: put it in the lane of the role that does it.', task
            )
        form_key = property_of(task, "formKey")
        if not form_key and task.get(f"{CAMUNDA}formKey"):
            yield _camunda_form_problem(task, known_form_keys)
        elif not form_key:
            yield problem_at("User task has no formKey property (the form it shows).", task)
        elif known_form_keys is not None and form_key not in known_form_keys:
            yield problem_at(f'Form key "{form_key}" has no form; the forms of this procedure are {forms}.', task)
        deadline = property_of(task, "deadline")
        if deadline is not None and deadline not in deadlines.DEADLINE_KINDS:
            known = ", ".join(sorted(deadlines.DEADLINE_KINDS))
            yield problem_at(f'Deadline "{deadline}" is unknown; the deadlines are {known}.', task)


def _camunda_form_problem(task: etree._Element, known_form_keys: frozenset[str] | None) -> Problem:
    """A task drawn in Camunda's modeller names a Camunda form (camunda:formKey), which civicflow cannot show."""
    choose = (
        f"choose one of this procedure's forms: {', '.join(sorted(known_form_keys))}"
        if known_form_keys
        else "choose one of this procedure's forms"
    )
    return problem_at(
        f'The task shows the Camunda form "{task.get(f"{CAMUNDA}formKey")}", which civicflow cannot show; '
        f"{choose} (a formKey property).",
        task,
    )


def unsupported(element: etree._Element) -> Problem:
    """An element civicflow cannot run, and what to draw instead."""
    return problem_at(UNSUPPORTED[etree.QName(element).localname], element)


def unsupported_event(kind: str, element: etree._Element) -> Problem:
    """An event that waits for something other than time ("message", "signal"...), which never reaches a request."""
    return problem_at(
        f"{kind.capitalize()} events are not supported: only timers (and plain start and end events) can be used.",
        element,
    )


def _unsupported_problems(scope: _Scope) -> Iterator[Problem]:
    """Elements civicflow cannot run, and events other than timers."""
    for element in scope.each(*UNSUPPORTED):
        yield unsupported(element)
    for definition in scope.each(*_EVENT_DEFINITIONS):
        yield unsupported_event(etree.QName(definition).localname.removesuffix("EventDefinition"), definition)


def _service_operator_problems(scope: _Scope) -> Iterator[Problem]:
    """A service task calls one of civicflow's services (the parameters are checked once it parses)."""
    for task in scope.each("serviceTask"):
        operator = task.find(SERVICE_OPERATOR)
        if operator is None:
            yield no_service(task)
        else:
            yield from _unknown_service(operator.get("id"), task)


def no_service(task: etree._Element) -> Problem:
    """A service task that calls nothing."""
    return problem_at(
        f"Service task calls no civicflow service (a spiffworkflow:serviceTaskOperator: {', '.join(SERVICES)}).",
        task,
    )


def _script_problems(scope: _Scope) -> Iterator[Problem]:
    """A script task has a script, in Python."""
    for script_task in scope.each("scriptTask"):
        script = script_task.find(f"{BPMN}script")
        language = (script_task.get("scriptFormat") or "python").lower()
        if "python" not in language:
            yield problem_at(
                f'The script is in "{script_task.get("scriptFormat")}"; civicflow\'s scripts are Python.', script_task
            )
        elif script is None or not (script.text or "").strip() and not len(script):
            yield problem_at("Script task has no script.", script_task)


def _way_out_problems(scope: _Scope) -> Iterator[Problem]:
    """Every activity, gateway and start event leads somewhere."""
    for node in scope.each(*ACTIVITIES, *GATEWAYS, "startEvent"):
        if node.get("triggeredByEvent") == "true" or etree.QName(node).localname in UNSUPPORTED:
            continue  # an event sub-process starts by its event; unsupported elements are reported as such
        if node.get("id") not in scope.flows_out:
            yield problem_at("This element has no way out (no outgoing sequence flow).", node)


def _gateway_problems(scope: _Scope) -> Iterator[Problem]:
    """Each flow out of a deciding gateway has a condition, or is its default flow."""
    for gateway in scope.each("exclusiveGateway", "inclusiveGateway"):
        leaving = scope.flows_out.get(gateway.get("id"), [])
        if len(leaving) < 2:
            continue
        for flow in leaving:
            condition = flow.find(f"{BPMN}conditionExpression")
            if flow.get("id") != gateway.get("default") and (condition is None or not (condition.text or "").strip()):
                yield flow_without_condition(flow, gateway)


def flow_without_condition(flow: etree._Element, gateway: etree._Element | None) -> Problem:
    """A flow out of a deciding gateway with no condition, that is not the gateway's default flow."""
    out_of = f' out of the gateway "{label(gateway)}"' if gateway is not None else " out of a gateway"
    return problem_at(f'The flow "{label(flow)}"{out_of} has no condition and is not its default flow.', flow)


def _loop_problems(scope: _Scope) -> Iterator[Problem]:
    """A loop stops after at most MAX_LOOPS rounds; a multi-instance task's literal count is at most MAX_LOOPS."""
    for loop in scope.each("standardLoopCharacteristics"):
        maximum = loop.get("loopMaximum")
        if maximum is None:
            yield loop_without_maximum(loop)
        elif not _whole_number_up_to_the_cap(maximum):
            yield problem_at(
                f"A loop's maximum number of rounds (loopMaximum) must be a whole number from 1 to {MAX_LOOPS}, "
                f'not "{maximum}".',
                loop,
            )
    for cardinality in scope.each("loopCardinality"):
        yield from _cardinality_problems(cardinality)


def loop_without_maximum(loop: etree._Element) -> Problem:
    """A standard loop with no loopMaximum: its condition alone could keep it going for ever."""
    return problem_at(f"A loop needs a maximum number of rounds, at most {MAX_LOOPS} (its loopMaximum).", loop)


def _whole_number_up_to_the_cap(text: str) -> bool:
    try:
        return 1 <= int(text) <= MAX_LOOPS
    except ValueError:
        return False


def _cardinality_problems(cardinality: etree._Element) -> list[Problem]:
    """A loopCardinality written as a number is a whole number no greater than MAX_LOOPS."""
    try:
        node = ast.parse((cardinality.text or "").strip(), mode="eval").body
    except SyntaxError:
        return []  # check_expressions reports it (an empty one is SpiffWorkflow's to refuse)
    if not isinstance(node, ast.Constant):
        return []  # computed from the request's data at run time; the sandbox has checked it
    if isinstance(node.value, bool) or not isinstance(node.value, int):
        return [problem_at("A multi-instance task's loopCardinality must be a whole number.", cardinality)]
    if node.value > MAX_LOOPS:
        return [
            problem_at(
                f"A multi-instance task runs at most {MAX_LOOPS} times; its loopCardinality is {node.value}.",
                cardinality,
            )
        ]
    return []


def _timer_value_problems(definition: etree._Element) -> list[Problem]:
    """A timer's value: a duration ("P2D"), a date ("2026-12-01T09:00:00-06:00") or a deadline helper."""
    values = [
        child for child in definition if isinstance(child.tag, str) and etree.QName(child).localname in _TIMER_VALUES
    ]
    if not values:
        return [timer_without_value(definition)]
    return [problem for value in values for problem in _one_timer_value_problems(value)]


def timer_without_value(element: etree._Element) -> Problem:
    """A timer that says neither when nor how long."""
    return problem_at("This timer has no value (a timeDate or a timeDuration).", element)


def _one_timer_value_problems(value: etree._Element) -> list[Problem]:
    """One timeDate or timeDuration: a quoted ISO 8601 value, a helper in a timeDate, or computed from the record."""
    kind = etree.QName(value).localname
    if kind == "timeCycle":
        return [_repeating_timer(value)]
    source = (value.text or "").strip()
    if not source:
        return [problem_at(f"This timer's {kind} is empty.", value)]
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return []  # check_expressions reports it
    helper_call = _helper_call(node)
    if helper_call is not None:
        helper, call = helper_call
        problem = _helper_problem(helper, call, value)
        if problem is None and kind != "timeDate":
            problem = problem_at(f"{helper}() gives a date and time; put it in a timeDate, not a {kind}.", value)
        return [problem] if problem else []
    if isinstance(node, ast.Name) and (_ISO_DURATION.match(node.id) or node.id[:1] == "P"):
        return [
            problem_at(
                f'Write the {kind} in quotes, "{node.id}": unquoted, it is read as the name of a value in the request.',
                value,
            )
        ]
    if not isinstance(node, ast.Constant):
        return []  # computed from the request's data at run time; the sandbox has checked it
    if not isinstance(node.value, str):
        example = '"P2D"' if kind == "timeDuration" else '"2026-12-01T09:00:00-06:00"'
        return [problem_at(f"This timer's {kind} must be a quoted ISO 8601 value, e.g. {example}.", value)]
    return _iso_value_problems(node.value, kind, value)


def _iso_value_problems(text: str, kind: str, value: etree._Element) -> list[Problem]:
    """A quoted timer value SpiffWorkflow can read: an ISO 8601 duration, or date and time."""
    try:
        if kind == "timeDuration":
            if not _ISO_DURATION.match(text):
                raise ValueError(text)  # SpiffWorkflow alone would take "2D", or "P" as no time at all
            TimerEventDefinition.parse_iso_duration(text)
        else:
            TimerEventDefinition.get_datetime(text)
    except Exception:  # noqa: BLE001 - SpiffWorkflow raises plain ValueError, KeyError or AttributeError
        example = "P2D (two days) or PT4H (four hours)" if kind == "timeDuration" else "2026-12-01T09:00:00-06:00"
        what = "duration" if kind == "timeDuration" else "date and time"
        return [problem_at(f'"{text}" is not a valid ISO 8601 {what}; for example {example}.', value)]
    return []


def structure_problems(root: etree._Element, key: str, known_form_keys: frozenset[str] | None) -> list[Problem]:
    """What civicflow needs of a diagram, read from the XML: roles, forms, ways out, timers, the process id.

    Only the procedure's own process is checked (other pools of a collaboration never run), or every process
    when none has the procedure's id.
    """
    scope, problems = _process_scope(root, key)
    for include in root.iter(f"{_XINCLUDE}include"):
        problems.append(problem_at("XInclude is not allowed: a diagram cannot pull in other files.", include))
    problems.extend(_lane_problems(scope))
    for flow in scope.each("sequenceFlow"):
        scope.flows_out.setdefault(flow.get("sourceRef"), []).append(flow)
    problems.extend(_user_task_problems(scope, known_form_keys))
    problems.extend(_unsupported_problems(scope))
    problems.extend(_service_operator_problems(scope))
    problems.extend(_script_problems(scope))
    problems.extend(_way_out_problems(scope))
    problems.extend(_gateway_problems(scope))
    problems.extend(_loop_problems(scope))
    for definition in scope.each("timerEventDefinition"):
        problems.extend(_timer_value_problems(definition))
    return problems


# ---- rules read from the parsed spec --------------------------------------------------------------------


def _lane_role_problems(task_spec, element) -> list[Problem]:
    """A user task is in a lane named after a role, as SpiffWorkflow read its lane."""
    if task_spec.lane in LANE_ROLES:
        return []
    return [
        problem_at(
            f'User task "{task_spec.bpmn_name or task_spec.bpmn_id}" is in lane "{task_spec.lane}", '
            "which is not a role.",
            element,
        )
    ]


def _timer_problems(task_spec, element) -> list[Problem]:
    """A timer runs on civicflow's clock, its helpers name known deadlines, the deadline of the task it is on."""
    if not deadlines.on_the_clock(task_spec):
        return [_repeating_timer(element)]
    try:
        tree = ast.parse(task_spec.event_definition.expression.strip(), mode="eval")
    except SyntaxError:
        return []  # check_expressions has reported it
    problems = []
    kinds: dict[str, None] = {}  # the deadlines the helpers name, in order, once each
    for helper, call in filter(None, map(_helper_call, ast.walk(tree))):
        problem = _helper_problem(helper, call, element, refuse_keywords=False)
        if problem is not None:
            problems.append(problem)
        kind = _deadline_named(call)
        if kind is not None:  # a call naming none has its problem above
            kinds[kind] = None
    if isinstance(task_spec, BoundaryEvent):
        attached = attached_task_spec(task_spec)
        own = deadline_of(attached) if attached is not None else None
        for kind in [kind for kind in kinds if kind != own] if own else ():
            problems.append(
                problem_at(
                    f'This timer counts the deadline "{kind}" but the task it is attached to has the deadline "{own}".',
                    element,
                )
            )
    return problems


def _service_problems(task_spec, element, known_letters: frozenset[str] | None) -> list[Problem]:
    """A service task sends one of the procedure's letters (named by a plain string), or a reminder or escalation."""
    if task_spec.operation_name in deadlines.REMINDER_AND_ESCALATION_OPERATORS:
        return _reminder_or_escalation_problems(task_spec, element)
    if task_spec.operation_name != SEND_LETTER:
        return _unknown_service(task_spec.operation_name, element)
    if set(task_spec.operation_params) != {"letter"}:
        return [problem_at('A send_letter step takes exactly one parameter, "letter".', element)]
    try:
        letter = ast.literal_eval(task_spec.operation_params["letter"]["value"])
    except (ValueError, SyntaxError):
        letter = None
    if not isinstance(letter, str):
        return [
            problem_at('The "letter" parameter must be a quoted name, e.g. "screenshot_to_communications".', element)
        ]
    if known_letters is not None and letter not in known_letters:
        known = ", ".join(sorted(known_letters)) or "none"
        return [problem_at(f'Letter "{letter}" is not one of this procedure\'s letters ({known}).', element)]
    return []


def _reminder_or_escalation_problems(task_spec, element) -> list[Problem]:
    """A reminder or escalation step comes straight after a timer on a user task that has a deadline."""
    operator = task_spec.operation_name
    if task_spec.operation_params:
        return [problem_at(f"A {operator} step takes no parameters.", element)]
    events = [i for i in task_spec.inputs if isinstance(i, BoundaryEvent) and is_timer(i)]
    if len(events) != 1 or len(task_spec.inputs) != 1:
        return [problem_at(f"A {operator} step must come straight after one timer attached to a user task.", element)]
    attached = attached_task_spec(events[0])
    if not isinstance(attached, UserTask) or not deadline_of(attached):
        return [
            problem_at(f'A {operator} step must follow a timer on a user task that has a "deadline" property.', element)
        ]
    return []


def spec_problems(
    task_specs: Iterable, elements: dict[str, etree._Element], known_letters: frozenset[str] | None
) -> list[Problem]:
    """What the parsed spec must be for civicflow to run it: lanes that are roles, timers on its clock, services.

    Putting a timer on civicflow's clock happens here too, so every loaded spec has been through it.
    """
    problems = []
    for task_spec in task_specs:
        element = elements.get(task_spec.bpmn_id)
        if isinstance(task_spec, UserTask):
            problems.extend(_lane_role_problems(task_spec, element))
        if is_timer(task_spec):
            problems.extend(_timer_problems(task_spec, element))
        if isinstance(task_spec, ServiceTask):
            problems.extend(_service_problems(task_spec, element, known_letters))
    return problems
