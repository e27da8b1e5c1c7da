"""Uploaded diagrams cannot read files, expand entities or run arbitrary Python, at load or at run time."""

from xml.sax.saxutils import escape

import pytest

from engine.diagrams.loading import load_diagram
from engine.diagrams.sandbox import RestrictedEnvironment
from engine.diagrams.xml import MAX_DIAGRAM_BYTES, parse_xml_safely
from engine.errors import DiagramError, ExpressionError

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
{doctype}<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_probe" targetNamespace="http://civicflow.example/bpmn">
  <bpmn:process id="probe" name="Probe" isExecutable="true">
    <bpmn:documentation>{documentation}</bpmn:documentation>
    <bpmn:laneSet id="LaneSet_roles">
      <bpmn:lane id="Lane_requester" name="Requester">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>revise</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>resubmit_or_withdraw</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>record_resubmitted</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>resubmitted</bpmn:flowNodeRef>
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
    <bpmn:sequenceFlow id="Flow_revised" sourceRef="revise" targetRef="resubmit_or_withdraw" />
    <bpmn:exclusiveGateway id="resubmit_or_withdraw" name="Resubmit or withdraw?">
      <bpmn:incoming>Flow_revised</bpmn:incoming>
      <bpmn:outgoing>Flow_resubmit</bpmn:outgoing>
      <bpmn:outgoing>Flow_withdraw</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="Flow_resubmit" sourceRef="resubmit_or_withdraw" targetRef="record_resubmitted">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_withdraw" sourceRef="resubmit_or_withdraw" targetRef="withdrawn">
      <bpmn:conditionExpression>action == "withdraw"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:scriptTask id="record_resubmitted" name="Record the resubmission">
      <bpmn:incoming>Flow_resubmit</bpmn:incoming>
      <bpmn:outgoing>Flow_recorded</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="Flow_recorded" sourceRef="record_resubmitted" targetRef="resubmitted" />
    <bpmn:endEvent id="resubmitted"><bpmn:incoming>Flow_recorded</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="withdrawn"><bpmn:incoming>Flow_withdraw</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

ATTACKS = [
    "__import__('os')",
    "open('/etc/passwd').read()",
    "().__class__.__base__.__subclasses__()",
    "import os",
    "getattr(x, '__class__')",
]


def diagram(
    *, condition='action == "resubmit"', script='outcome = "resubmitted"', doctype="", documentation=""
) -> bytes:
    """The probe diagram, with an expression, a script, a DOCTYPE or raw documentation text swapped in."""
    return TEMPLATE.format(
        condition=escape(condition), script=escape(script), doctype=doctype, documentation=documentation
    ).encode()


def refusal(data: bytes) -> DiagramError:
    """The DiagramError that loading (and safe parsing, where it is the parser's job) raises."""
    with pytest.raises(DiagramError) as caught:
        load_diagram(data, "probe")
    return caught.value


def everything_said(error: DiagramError) -> str:
    """All the text a user is shown about a refusal."""
    return f"{error.message} {error.fields} {error.problems}"


@pytest.fixture
def secret_file(tmp_path):
    """A local file an attacker would like to read, holding a unique secret."""
    path = tmp_path / "secret.txt"
    path.write_text("civicflow-secret-7f3e9a1c")
    return path


def test_the_probe_diagram_itself_loads():
    loaded = load_diagram(diagram(), "probe")
    assert loaded.form_keys == {"revise_request"}


def xxe_payloads(secret_path):
    """Entity and DTD tricks, each with where the entity is used."""
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return {
        "external entity in text": (f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret_path}">]>\n', "&xxe;"),
        "internal entity": ('<!DOCTYPE d [<!ENTITY greeting "hello">]>\n', "&greeting;"),
        "billion laughs": (f'<!DOCTYPE d [<!ENTITY l0 "lol">{laughs}]>\n', "&l9;"),
        "external DTD": (f'<!DOCTYPE d SYSTEM "file://{secret_path}">\n', ""),
        "external DTD over the network": ('<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">\n', ""),
        "parameter entity": (f'<!DOCTYPE d [<!ENTITY % p SYSTEM "file://{secret_path}"> %p;]>\n', ""),
    }


@pytest.mark.parametrize(
    "attack",
    [
        "external entity in text",
        "internal entity",
        "billion laughs",
        "external DTD",
        "external DTD over the network",
        "parameter entity",
    ],
)
def test_doctype_and_entity_tricks_are_refused_without_leaking_the_file(attack, secret_file):
    doctype, use = xxe_payloads(secret_file)[attack]
    data = diagram(doctype=doctype, documentation=use)
    for error in (refusal(data), pytest.raises(DiagramError, parse_xml_safely, data).value):
        assert error.problems, error.message
        assert "civicflow-secret-7f3e9a1c" not in everything_said(error)


def test_external_entity_in_an_attribute_is_refused_without_leaking_the_file(secret_file):
    data = diagram(doctype=f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret_file}">]>\n').replace(
        b'name="Probe"', b'name="&xxe;"'
    )
    assert "civicflow-secret-7f3e9a1c" not in everything_said(refusal(data))


def test_doctype_refusal_says_why():
    error = refusal(diagram(doctype='<!DOCTYPE d [<!ENTITY hi "hello">]>\n', documentation="&hi;"))
    assert "DOCTYPE" in error.message


@pytest.mark.parametrize("attack", ATTACKS)
def test_dangerous_condition_is_refused_at_load_naming_the_sequence_flow(attack):
    error = refusal(diagram(condition=attack))
    assert error.problems
    assert {p.element for p in error.problems} == {"Flow_resubmit"}
    assert all(p.message.startswith("Expression refused") for p in error.problems)


@pytest.mark.parametrize("attack", ATTACKS)
def test_dangerous_script_is_refused_at_load_naming_the_script_task(attack):
    error = refusal(diagram(script=attack))
    assert error.problems
    assert {(p.element, p.name) for p in error.problems} == {("record_resubmitted", "Record the resubmission")}


@pytest.mark.parametrize("attack", ATTACKS)
def test_sandbox_refuses_dangerous_expressions_at_run_time(attack):
    with pytest.raises(ExpressionError):
        RestrictedEnvironment().evaluate(attack, {"x": "anything"})


@pytest.mark.parametrize("attack", ATTACKS)
def test_sandbox_refuses_dangerous_scripts_at_run_time(attack):
    context = {"x": "anything"}
    with pytest.raises(ExpressionError):
        RestrictedEnvironment().execute(attack, context)
    assert context == {"x": "anything"}


RECORD = {
    "decision": "Approve",
    "investigative": False,
    "steps": [1, 2, 3],
    "record": {"platform": "x", "managers": ["pat", "lee"]},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('decision.lower() == "approve"', True),
        ("decision.strip().upper()", "APPROVE"),
        ('record["platform"] == "x"', True),
        ("steps[1] > 1", True),
        ('len(record["managers"]) == 2', True),
        ("not investigative", True),
        ('decision == "reject" or steps[-1] >= 3', True),
    ],
)
def test_sandbox_evaluates_ordinary_conditions(expression, expected):
    assert RestrictedEnvironment().evaluate(expression, dict(RECORD)) == expected


def test_sandbox_script_writes_plain_values_back_to_the_task_data():
    context = dict(RECORD)
    script = 'outcome = decision.lower()\nmanager_count = len(record["managers"])'
    RestrictedEnvironment().execute(script, context)
    assert (context["outcome"], context["manager_count"]) == ("approve", 2)


def test_diagram_over_two_mib_is_refused_before_parsing():
    comment = b"<!--" + b"x" * MAX_DIAGRAM_BYTES + b"-->\n"
    too_big = diagram().replace(b"<bpmn:definitions", comment + b"<bpmn:definitions")
    error = refusal(too_big)
    assert error.message == "The diagram is too large."
    # Garbage of that size gets the same answer: the size is checked before any XML is read.
    assert refusal(b"<" * (MAX_DIAGRAM_BYTES + 1)).message == "The diagram is too large."


def test_diagram_just_under_the_limit_is_not_refused_for_its_size():
    padding = MAX_DIAGRAM_BYTES - len(diagram()) - 100
    loaded = load_diagram(diagram(documentation="x" * padding), "probe")
    assert loaded.key == "probe"


def test_not_well_formed_xml_reports_the_line():
    lines = diagram().decode().split("\n")
    broken_line = next(n for n, line in enumerate(lines, 1) if 'id="Flow_recorded"' in line)
    lines[broken_line - 1] = '    <bpmn:sequenceFlow id="Flow_recorded" sourceRef= />'
    error = refusal("\n".join(lines).encode())
    assert error.message == "The diagram is not well-formed XML."
    [problem] = error.problems
    assert problem.line == broken_line
