"""Publishing checks every expression site with the sandbox, and lists every problem at once, in plain words.

SpiffWorkflow's own refusals come in the same pass as civicflow's, in civicflow's words, at the element drawn.
"""

from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import SpiffWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.diagrams.loading import diagram_problems, load_diagram
from engine.diagrams.problems import Problem
from engine.diagrams.refusals import _SAID_AS, refusal_problem
from engine.diagrams.rules import MAX_LOOPS
from engine.diagrams.xml import parse_xml_safely
from engine.errors import DiagramError

KEY = "probe"
FORMS = frozenset({"revise_request", "confirm_withdrawal"})
ESCAPE = '__import__("os").system("id")'

# A small procedure that loads: a user task, a gateway with a condition, a script task. Each test adds to it.
DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="Definitions_probe" targetNamespace="http://civicflow.example/bpmn">
  <bpmn:process id="probe" name="Probe" isExecutable="true">
    <bpmn:laneSet id="LaneSet_roles">
      <bpmn:lane id="Lane_requester" name="Requester">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>revise</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>decide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>record</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>done</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>withdrawn</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>Flow_start</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_start" sourceRef="start" targetRef="revise" />
    <bpmn:userTask id="revise" name="Revise or withdraw">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="revise_request" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_start</bpmn:incoming>
      <bpmn:outgoing>Flow_revised</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_revised" sourceRef="revise" targetRef="decide" />
    <bpmn:exclusiveGateway id="decide" name="Resubmit or withdraw?" default="Flow_withdraw">
      <bpmn:incoming>Flow_revised</bpmn:incoming>
      <bpmn:outgoing>Flow_resubmit</bpmn:outgoing>
      <bpmn:outgoing>Flow_withdraw</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="Flow_resubmit" name="Resubmit" sourceRef="decide" targetRef="record">
      <bpmn:conditionExpression id="Condition_resubmit">action == "resubmit"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_withdraw" sourceRef="decide" targetRef="withdrawn" />
    <bpmn:scriptTask id="record" name="Record the resubmission">
      <bpmn:incoming>Flow_resubmit</bpmn:incoming>
      <bpmn:outgoing>Flow_recorded</bpmn:outgoing>
      <bpmn:script>outcome = "resubmitted"</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="Flow_recorded" sourceRef="record" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>Flow_recorded</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="withdrawn"><bpmn:incoming>Flow_withdraw</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

REVISE_BODY = "      <bpmn:outgoing>Flow_revised</bpmn:outgoing>\n"
RECORD_BODY = '      <bpmn:script>outcome = "resubmitted"</bpmn:script>\n'
TIMER = """    <bpmn:boundaryEvent id="revise_timer" name="Two days pass" attachedToRef="revise">
      <bpmn:outgoing>Flow_timed_out</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TimerEventDefinition_revise">{}</bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="Flow_timed_out" sourceRef="revise_timer" targetRef="withdrawn" />
"""


def diagram(*, revise: str = "", record: str = "", process: str = "", replace: tuple[str, str] = ("", "")) -> str:
    """The probe diagram with elements added inside the user task, the script task or the process."""
    text = DIAGRAM.replace(REVISE_BODY, REVISE_BODY + revise, 1).replace(RECORD_BODY, RECORD_BODY + record, 1)
    text = text.replace("  </bpmn:process>", process + "  </bpmn:process>", 1)
    return text.replace(*replace, 1) if replace[0] else text


def refused(text: str, forms: frozenset[str] | None = FORMS) -> list[Problem]:
    """Every problem loading the diagram for publishing lists (it must be refused)."""
    with pytest.raises(DiagramError) as refusal:
        load_diagram(text.encode(), KEY, forms)
    return refusal.value.problems


def line_of(text: str, fragment: str) -> int:
    """The line of the diagram that holds this text."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_the_probe_diagram_loads():
    assert load_diagram(diagram().encode(), KEY, FORMS).form_keys == {"revise_request"}


# ---- every expression site is checked by the sandbox ---------------------------------------------------------

SERVICE_TASK = """    <bpmn:serviceTask id="mail" name="Mail the requester">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="send_letter">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="letter" type="str" value="{}" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
"""
ESCAPED = escape(ESCAPE, {'"': "&quot;"})

# Each site SpiffWorkflow 3.2.0 evaluates or runs: the diagram with the escape attempt there, and the element drawn.
SITES = {
    "sequence flow condition": (
        diagram(replace=('action == "resubmit"', ESCAPED)),
        "Flow_resubmit",
    ),
    "script task's script": (diagram(replace=('outcome = "resubmitted"', ESCAPED)), "record"),
    "pre-script": (
        diagram(
            replace=(
                "<spiffworkflow:properties>",
                f"<spiffworkflow:preScript>{ESCAPED}</spiffworkflow:preScript><spiffworkflow:properties>",
            )
        ),
        "revise",
    ),
    "post-script": (
        diagram(
            replace=(
                "<spiffworkflow:properties>",
                f"<spiffworkflow:postScript>{ESCAPED}</spiffworkflow:postScript><spiffworkflow:properties>",
            )
        ),
        "revise",
    ),
    "timer duration": (
        diagram(process=TIMER.format(f"<bpmn:timeDuration>{ESCAPED}</bpmn:timeDuration>")),
        "revise_timer",
    ),
    "timer date": (diagram(process=TIMER.format(f"<bpmn:timeDate>{ESCAPED}</bpmn:timeDate>")), "revise_timer"),
    "timer cycle": (diagram(process=TIMER.format(f"<bpmn:timeCycle>{ESCAPED}</bpmn:timeCycle>")), "revise_timer"),
    "standard loop condition": (
        diagram(
            revise='<bpmn:standardLoopCharacteristics id="Loop_revise" loopMaximum="3">'
            f"<bpmn:loopCondition>{ESCAPED}</bpmn:loopCondition></bpmn:standardLoopCharacteristics>\n"
        ),
        "revise",
    ),
    "multi-instance cardinality": (
        diagram(
            revise='<bpmn:multiInstanceLoopCharacteristics id="Each_revise">'
            f"<bpmn:loopCardinality>{ESCAPED}</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>\n"
        ),
        "revise",
    ),
    "multi-instance completion condition": (
        diagram(
            revise='<bpmn:multiInstanceLoopCharacteristics id="Each_revise">'
            "<bpmn:loopCardinality>3</bpmn:loopCardinality>"
            f"<bpmn:completionCondition>{ESCAPED}</bpmn:completionCondition>"
            "</bpmn:multiInstanceLoopCharacteristics>\n"
        ),
        "revise",
    ),
    "multi-instance input collection": (
        diagram(
            revise='<bpmn:multiInstanceLoopCharacteristics id="Each_revise">'
            f"<bpmn:loopDataInputRef>{ESCAPED}</bpmn:loopDataInputRef>"
            '<bpmn:inputDataItem id="item" name="item" /></bpmn:multiInstanceLoopCharacteristics>\n'
        ),
        "revise",
    ),
    "service task parameter": (
        diagram(
            replace=(RECORD_BODY, RECORD_BODY),
            process=SERVICE_TASK.format(ESCAPED),
        ),
        "mail",
    ),
    "conditional event's condition": (
        diagram(
            process='    <bpmn:intermediateCatchEvent id="when_ready" name="When ready">'
            f'<bpmn:conditionalEventDefinition id="Ready"><bpmn:condition>{ESCAPED}</bpmn:condition>'
            "</bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>\n"
        ),
        "when_ready",
    ),
    "message payload": (
        diagram(
            process='    <bpmn:intermediateThrowEvent id="tell" name="Tell">'
            '<bpmn:messageEventDefinition id="Told" messageRef="Message_told">'
            f"<bpmn:extensionElements><spiffworkflow:messagePayload>{ESCAPED}</spiffworkflow:messagePayload>"
            "</bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateThrowEvent>\n"
        ),
        "tell",
    ),
}


@pytest.mark.parametrize("site", SITES)
def test_an_escape_attempt_at_every_expression_site_is_refused_at_the_element_drawn(site):
    text, element = SITES[site]
    problems = refused(text)
    # The input collection is a name (the schema's QName), not an expression: it is refused as invalid BPMN.
    kind = "BPMN schema" if site == "multi-instance input collection" else "Expression refused"
    at_element = [p for p in problems if p.element == element and p.message.startswith(kind)]
    assert at_element, f"not refused at {element}: {problems}"


def test_the_same_expressions_written_safely_load():
    loop = (
        '<bpmn:standardLoopCharacteristics id="Loop_revise" loopMaximum="3">'
        '<bpmn:loopCondition>action == "revise"</bpmn:loopCondition></bpmn:standardLoopCharacteristics>\n'
    )
    each = (
        '<bpmn:multiInstanceLoopCharacteristics id="Each_revise"><bpmn:loopCardinality>3</bpmn:loopCardinality>'
        '<bpmn:completionCondition>action == "done"</bpmn:completionCondition>'
        "</bpmn:multiInstanceLoopCharacteristics>\n"
    )
    for text in (
        diagram(revise=loop),
        diagram(revise=each),
        diagram(process=TIMER.format('<bpmn:timeDuration>"P2D"</bpmn:timeDuration>')),
    ):
        assert load_diagram(text.encode(), KEY, FORMS).key == KEY


# ---- loops stop -----------------------------------------------------------------------------------------------


def test_a_loop_with_a_condition_and_no_maximum_is_refused():
    loop = (
        "<bpmn:standardLoopCharacteristics><bpmn:loopCondition>True</bpmn:loopCondition>"
        "</bpmn:standardLoopCharacteristics>\n"
    )
    [problem] = refused(diagram(revise=loop))
    assert problem.message == f"A loop needs a maximum number of rounds, at most {MAX_LOOPS} (its loopMaximum)."
    assert (problem.element, problem.name) == ("revise", "Revise or withdraw")
    assert MAX_LOOPS == 1000


def test_a_loop_with_neither_condition_nor_maximum_is_refused_once():
    # SpiffWorkflow refuses it too ("A loopMaximum or loopCondition must be specified"): said once, in one voice.
    [problem] = refused(diagram(revise="<bpmn:standardLoopCharacteristics />\n"))
    assert problem.message.startswith("A loop needs a maximum number of rounds, at most 1000")


@pytest.mark.parametrize("maximum", ["1001", "0", "-5", "1000000000"])
def test_a_loop_maximum_over_the_cap_or_below_one_is_refused_naming_the_cap(maximum):
    loop = f'<bpmn:standardLoopCharacteristics loopMaximum="{maximum}" />\n'
    [problem] = refused(diagram(revise=loop))
    assert "from 1 to 1000" in problem.message and f'"{maximum}"' in problem.message
    assert problem.element == "revise"


def test_a_loop_maximum_at_the_cap_loads():
    assert load_diagram(
        diagram(revise='<bpmn:standardLoopCharacteristics loopMaximum="1000" />\n').encode(), KEY, FORMS
    )


@pytest.mark.parametrize(
    ("cardinality", "said"), [("5000", "at most 1000 times"), ('"3"', "a whole number"), ("2.5", "a whole number")]
)
def test_a_literal_loop_cardinality_over_the_cap_is_refused_naming_the_cap(cardinality, said):
    each = (
        '<bpmn:multiInstanceLoopCharacteristics id="Each_revise">'
        f"<bpmn:loopCardinality>{escape(cardinality)}</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>\n"
    )
    [problem] = refused(diagram(revise=each))
    assert said in problem.message and problem.element == "revise"


# ---- a problem on a sub-element points at the element drawn, at the sub-element's line -----------------------


def test_a_problem_of_a_condition_with_its_own_id_names_the_sequence_flow_at_the_conditions_line():
    text = diagram(replace=('action == "resubmit"', "open('/etc/passwd')"))
    [problem] = refused(text)
    assert (problem.element, problem.name) == ("Flow_resubmit", "Resubmit")
    assert problem.line == line_of(text, 'id="Condition_resubmit"')


def test_a_problem_of_loop_characteristics_with_their_own_id_names_the_task_at_their_line():
    text = diagram(revise='<bpmn:standardLoopCharacteristics id="Loop_revise" loopMaximum="5000" />\n')
    [problem] = refused(text)
    assert (problem.element, problem.name) == ("revise", "Revise or withdraw")
    assert problem.line == line_of(text, 'id="Loop_revise"')


def test_a_problem_of_a_timer_definition_names_its_event():
    text = diagram(process=TIMER.format("<bpmn:timeDuration>P2D</bpmn:timeDuration>"))
    problems = refused(text)
    assert {(p.element, p.name) for p in problems} == {("revise_timer", "Two days pass")}


# ---- SpiffWorkflow's refusals, in the same pass and in civicflow's words --------------------------------------

TWO_WAYS_OUT = '    <bpmn:sequenceFlow id="Flow_shortcut" sourceRef="revise" targetRef="done" />\n'


def test_a_task_with_two_outgoing_flows_is_listed_with_civicflows_problems_at_once():
    text = diagram(
        process=TWO_WAYS_OUT,
        replace=('<spiffworkflow:property name="formKey" value="revise_request" />', ""),
    ).replace(REVISE_BODY, REVISE_BODY + "      <bpmn:outgoing>Flow_shortcut</bpmn:outgoing>\n", 1)
    problems = refused(text)
    assert [(p.element, p.message) for p in problems] == [
        ("revise", "User task has no formKey property (the form it shows)."),
        (
            "revise",
            "A task may have only one outgoing flow; put an exclusive gateway after it to choose between paths "
            "(or a parallel gateway to take them all).",
        ),
    ]
    assert problems[1].name == "Revise or withdraw"


def test_a_process_not_marked_executable_is_listed_with_civicflows_problems_at_once():
    text = diagram(replace=('isExecutable="true"', 'isExecutable="false"')).replace(
        'value="revise_request"', 'value="no_such_form"'
    )
    problems = refused(text)
    assert [p.element for p in problems] == ["revise", "probe"]
    assert problems[1].message == (
        "The process is marked as not executable, so the engine would not run it. "
        'Mark the process as executable (isExecutable="true").'
    )
    assert (problems[1].name, problems[1].line) == ("Probe", line_of(text, 'isExecutable="false"'))


def test_a_missing_process_is_said_once_though_spiffworkflow_says_it_too():
    with pytest.raises(DiagramError) as refusal:
        load_diagram(diagram().encode(), "removal_appeal", FORMS)
    [problem] = refusal.value.problems
    assert problem.message.startswith('No process with the id "removal_appeal"')


def test_a_boundary_event_waiting_for_nothing_is_told_to_become_a_timer():
    event = (
        '    <bpmn:boundaryEvent id="revise_wait" name="Wait" attachedToRef="revise">'
        "<bpmn:outgoing>Flow_waited</bpmn:outgoing></bpmn:boundaryEvent>\n"
        '    <bpmn:sequenceFlow id="Flow_waited" sourceRef="revise_wait" targetRef="withdrawn" />\n'
    )
    [problem] = refused(diagram(process=event))
    assert problem.element == "revise_wait"
    assert problem.message.startswith("This event waits for nothing: make it a timer")


def test_a_sequence_flow_into_another_pool_is_refused_in_plain_words():
    other = (
        '  <bpmn:process id="elsewhere" isExecutable="false">'
        '<bpmn:task id="elsewhere_task" name="Elsewhere" /></bpmn:process>\n'
    )
    text = diagram(replace=('targetRef="done"', 'targetRef="elsewhere_task"')).replace(
        "</bpmn:definitions>", other + "</bpmn:definitions>"
    )
    problems = refused(text)
    assert any(
        p.element == "record" and p.message.startswith('A sequence flow from here leads to "elsewhere_task"')
        for p in problems
    ), problems


def test_an_unknown_spiffworkflow_refusal_keeps_its_whole_message():
    root = parse_xml_safely(diagram().encode())
    message = "Something SpiffWorkflow 9 refuses: " + "a long explanation, " * 20 + "the end."
    problem, translated = refusal_problem(root, KEY, ValidationException(message, node=root.find(".//*[@id='record']")))
    assert not translated
    assert problem.message == f"The engine cannot run this: {message}"
    assert (problem.element, problem.name) == ("record", "Record the resubmission")


def test_every_translated_message_is_one_spiffworkflows_parser_says():
    # Upgrading SpiffWorkflow must not leave a translation that matches nothing.
    package = Path(SpiffWorkflow.__file__).parent
    sources = "".join(path.read_text() for path in package.glob("**/parser/*.py"))
    assert [message for message in _SAID_AS if message not in sources] == []


# ---- a Camunda form is named, with the procedure's own forms to choose from ------------------------------------


def test_a_camunda_form_key_is_told_to_choose_one_of_the_procedures_forms():
    text = diagram(
        replace=(
            '<spiffworkflow:property name="formKey" value="revise_request" />',
            "",
        )
    ).replace(
        '<bpmn:userTask id="revise"', '<bpmn:userTask id="revise" camunda:formKey="embedded:app:forms/revise.html"'
    )
    problems = diagram_problems(parse_xml_safely(text.encode()), KEY, FORMS)
    assert [(p.element, p.message) for p in problems] == [
        (
            "revise",
            'The task shows the Camunda form "embedded:app:forms/revise.html", which civicflow cannot show; '
            "choose one of this procedure's forms: confirm_withdrawal, revise_request (a formKey property).",
        )
    ]
    assert refused(text) == problems
