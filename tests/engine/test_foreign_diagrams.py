"""Diagrams from other BPMN tools: the correct ones load, the rest are refused in plain words, attacks quickly.

The diagrams are in tests/fixtures/foreign (its README says which tool each shape comes from). A new file there
is picked up by itself: `ok_*` must load, `hostile_*` must be refused quickly saying why, anything else must
be refused with a list of problems.
"""

import codecs
import html
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from engine import procedures
from engine.diagrams.loading import load_diagram
from engine.diagrams.problems import Problem
from engine.diagrams.xml import MAX_DIAGRAM_BYTES
from engine.errors import DiagramError

KEY = "removal_appeal"
FOREIGN = Path(__file__).resolve().parents[1] / "fixtures" / "foreign"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted(FOREIGN.glob("*.bpmn"))
LOADABLE = [path for path in FIXTURES if path.name.startswith("ok_")]
REFUSED = [path for path in FIXTURES if not path.name.startswith("ok_")]
HOSTILE = [path for path in FIXTURES if path.name.startswith("hostile_")]
QUICKLY = 2.0  # seconds

# What a refusal of each attack must say it refused (any one of these, in any case).
REFUSAL_WORDS = {
    "hostile_xxe_etc_passwd.bpmn": ("DOCTYPE", "entit"),
    "hostile_xxe_utf16.bpmn": ("DOCTYPE", "entit"),
    "hostile_billion_laughs.bpmn": ("DOCTYPE", "entit"),
    "hostile_external_dtd.bpmn": ("DOCTYPE", "DTD"),
    "hostile_parameter_entity.bpmn": ("DOCTYPE", "entit"),
    "hostile_xinclude_etc_passwd.bpmn": ("XInclude",),
    "huge_file": ("too large", "larger than"),
    "png_image": ("not well-formed", "not XML", "not an XML"),
    "bizagi_bpm_zip_archive": ("not well-formed", "not XML", "not an XML"),
    "empty_file": ("empty", "not well-formed"),
    "100000_nested_elements": ("not well-formed", "deep", "nest"),
}
ANY_REFUSAL = ("DOCTYPE", "entit", "too large", "not well-formed", "XInclude")

# Every problem a foreign diagram has, by what is wrong and the element(s) a problem about it may name.
# All of them must be listed in one refusal: the person fixing the diagram should not have to upload it again
# to learn the next one.
EXPECTED_PROBLEMS = {
    "camunda7_modeler_export.bpmn": {
        'lane "Moderation team" is not a role': {"Lane_1fz1r8w"},
        'lane "Communications" is not a role': {"Lane_0x6y1fa"},
        "Review has a camunda:formKey but no civicflow formKey": {"Activity_1r8qgmd"},
        "Log the appeal has no form at all": {"Activity_0zb5xk1"},
        "JUEL condition ${...}": {"Flow_0r6kzm4"},
        "JUEL condition #{...}": {"Flow_1b9r3ai"},
        "timer duration PT48H is a bare name, not a quoted value": {"Event_1kqhx0a", "TimerEventDefinition_0o6jz3q"},
        "Java delegate service task (camunda:class)": {"Activity_0u3n6te"},
        "external-task service task (camunda:topic)": {"Activity_1aw6c9j"},
        "Groovy script": {"Activity_0hx4w1s"},
    },
    "camunda8_zeebe_export.bpmn": {
        "FEEL timer date": {"Event_0due5tm", "TimerEventDefinition_1a2bc3d"},
        "FEEL condition": {"Flow_0reinst"},
        "Review is in no lane and has no civicflow formKey": {"Activity_0r3v1ew"},
        "Restore is in no lane and its form is an external reference": {"Activity_0rest0r"},
        "business rule task (a DMN decision)": {"Activity_1cat0rz"},
        "Zeebe job-worker service task (zeebe:taskDefinition)": {"Activity_1m4il3r"},
    },
    "miwg_a_2_0_exclusive_gateway_conditions.bpmn": {
        "condition in prose": {"_9"},
        "condition in XPath": {"_10"},
        "plain task 1 (no type: no role, no form)": {"_3"},
        "plain task 2": {"_5"},
        "plain task 3": {"_6"},
        "plain task 4": {"_15"},
    },
    "miwg_a_4_0_pools_lanes_message_flows.bpmn": {
        'lane "Front desk" is not a role': {"Lane_front_desk"},
        "Log the appeal has no form": {"Task_log"},
        "message start event: civicflow starts requests itself, the instance would wait forever": {
            "Start_appeal",
            "MessageEventDefinition_c1",
        },
    },
    "miwg_b_1_0_subprocess_timer_data_artifacts.bpmn": {
        "timer duration P2D is a bare name, not a quoted value": {"Event_two_days", "TimerEventDefinition_two_days"},
        "script task with no script": {"Activity_note_delay"},
        "data input from a data object nothing writes": {
            "DataInputAssociation_letter",
            "DataObjectReference_letter",
            "DataObject_letter",
        },
        "data output the task never produces": {
            "DataOutputAssociation_response",
            "DataObjectReference_response",
            "DataObject_response",
        },
    },
    "signavio_export.bpmn": {
        "user task with no form": {"sid-task-review-3b9f"},
    },
    "plain_tasks_in_role_lanes.bpmn": {
        "untyped task": {"Task_review"},
        "manual task": {"Task_reply"},
    },
    "hand_edited_comment_in_script.bpmn": {
        "script cut by a comment (SpiffWorkflow would run nothing)": {"ScriptTask_1"},
    },
}


def load(data: bytes):
    """Load a diagram as the upload path does for the removal appeal, with its forms and letters."""
    procedure = procedures.get(KEY)
    return load_diagram(data, KEY, procedure.form_keys(), procedure.letters)


def refusal(data: bytes) -> DiagramError:
    """The DiagramError loading raises; any other outcome fails the test saying what happened instead."""
    try:
        loaded = load(data)
    except DiagramError as error:
        return error
    except Exception as error:
        pytest.fail(f"load_diagram raised {type(error).__name__} instead of a DiagramError: {error}")
    pytest.fail(f"load_diagram accepted it (process {loaded.key!r}, forms {sorted(loaded.form_keys)})")


def everything_said(error: DiagramError) -> str:
    """All the text a person is shown about a refusal."""
    return " ".join([error.message, *(str(value) for p in error.problems for value in p.as_dict().values())])


def text_of(data: bytes) -> str:
    """The file as text, in the encoding its BOM or XML declaration names (Latin-1 for anything else)."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    declared = re.match(rb"<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data)
    try:
        return data.decode(declared.group(1).decode() if declared else "utf-8")
    except (LookupError, UnicodeDecodeError):
        return data.decode("latin-1")


def ids_in(text: str) -> set[str]:
    """Every id attribute value in the file."""
    return {match.group(2) for match in re.finditer(r"\bid\s*=\s*([\"'])(.*?)\1", text)}


def passwd_lines() -> list[str]:
    """Lines of /etc/passwd (what XXE and XInclude try to read), or tell-tale parts of such lines."""
    try:
        lines = [line for line in Path("/etc/passwd").read_text().splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines + ["root:x:0:0", ":/bin/bash", "/usr/sbin/nologin"]


def unplain(message) -> str | None:
    """Why a problem message is not a plain sentence a person can act on, or None if it is one."""
    if not isinstance(message, str) or not re.search(r"[A-Za-z]{2,}", message):
        return "no words"
    checks = {
        "a traceback": "Traceback" in message or 'File "' in message,
        "a Python object repr": " object at 0x" in message,
        "a Python exception repr": re.search(r"\b[A-Z]\w*(Error|Exception|Warning)\(", message) is not None,
        'a Python "None"': '"None"' in message or "'None'" in message,
        "a namespace URI in braces (Clark notation)": "{http" in message,
        "a library option name": re.search(r"\b[A-Z]{2,}(?:_[A-Z]+)+\b", message) is not None,
        "a libxml2 function name": re.search(r"\bxml[A-Z]\w+", message) is not None,
    }
    found = [what for what, present in checks.items() if present]
    return ", ".join(found) or None


def assert_problems_are_plain_and_point_into_the_file(error: DiagramError, data: bytes) -> None:
    """Each problem, as the API gives it: a plain message, its element an id in the file, its line a line of it."""
    text = text_of(data)
    ids, last_line = ids_in(text), text.count("\n") + 1
    assert unplain(error.message) is None, f"headline {error.message!r}: {unplain(error.message)}"
    assert error.problems, f"refused ({error.message!r}) without saying what is wrong"
    for found in error.problems:
        assert isinstance(found, Problem), f"a problem that is not a Problem: {found!r}"
        problem = found.as_dict()
        assert unplain(problem.get("message")) is None, f"{problem!r}: {unplain(problem.get('message'))}"
        if "element" in problem:
            assert problem["element"] in ids, f"{problem!r} names an element that is not in the file"
        if "name" in problem:
            assert problem["name"] in html.unescape(text), f"{problem!r} names something that is not in the file"
        if "line" in problem:
            assert isinstance(problem["line"], int) and 1 <= problem["line"] <= last_line, (
                f"{problem!r}: the file has lines 1 to {last_line}"
            )


def _correct_diagram() -> bytes:
    return (FOREIGN / "ok_no_di_removal_appeal.bpmn").read_bytes()


def _zip_of_a_diagram() -> bytes:
    """A Bizagi .bpm file is a ZIP archive with the model inside, not BPMN XML."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bpm:
        bpm.writestr("Diagram1/Diagram.diag", _correct_diagram())
    return archive.getvalue()


def _nested(depth: int) -> bytes:
    """A correct diagram whose documentation holds `depth` nested elements."""
    documentation = b"<bpmn2:documentation>" + b"<a>" * depth + b"</a>" * depth + b"</bpmn2:documentation>"
    return _correct_diagram().replace(b'isExecutable="true">', b'isExecutable="true">\n    ' + documentation, 1)


GENERATED = {
    "huge_file": lambda: _correct_diagram().replace(
        b"</bpmn2:definitions>", b"<!-- " + b"x" * (MAX_DIAGRAM_BYTES + 1) + b" --></bpmn2:definitions>"
    ),
    "png_image": lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16,
    "bizagi_bpm_zip_archive": _zip_of_a_diagram,
    "empty_file": lambda: b"",
    "100000_nested_elements": lambda: _nested(100_000),
}


def test_the_readme_says_where_every_fixture_comes_from():
    readme = (FOREIGN / "README.md").read_text()
    assert LOADABLE and HOSTILE and len(REFUSED) > len(HOSTILE)
    assert [path.name for path in FIXTURES if f"`{path.name}`" not in readme] == []


@pytest.mark.parametrize("path", LOADABLE, ids=lambda path: path.stem)
def test_a_correct_diagram_loads_whichever_tool_saved_it(path):
    loaded = load(path.read_bytes())
    assert loaded.key == KEY
    assert loaded.form_keys == {"appeal_review", "restore_content"}


@pytest.mark.parametrize("path", REFUSED, ids=lambda path: path.stem)
def test_a_foreign_diagram_is_refused_with_problems_that_point_into_it(path):
    data = path.read_bytes()
    error = refusal(data)
    assert_problems_are_plain_and_point_into_the_file(error, data)
    said = everything_said(error)
    assert [line for line in passwd_lines() if line in said] == []


@pytest.mark.parametrize("name", GENERATED)
def test_a_file_that_is_not_a_usable_diagram_is_refused_with_problems_that_point_into_it(name):
    data = GENERATED[name]()
    assert_problems_are_plain_and_point_into_the_file(refusal(data), data)


@pytest.mark.parametrize("name", [path.name for path in HOSTILE] + list(GENERATED))
def test_an_attack_is_refused_quickly_saying_what_was_refused_and_showing_nothing_it_read(name):
    data = GENERATED[name]() if name in GENERATED else (FOREIGN / name).read_bytes()
    started = time.perf_counter()
    error = refusal(data)
    elapsed = time.perf_counter() - started
    said = everything_said(error)
    assert elapsed < QUICKLY, f"took {elapsed:.2f} s"
    words = REFUSAL_WORDS.get(name, ANY_REFUSAL)
    assert any(word.lower() in said.lower() for word in words), f"says neither of {words}: {said}"
    assert [line for line in passwd_lines() if line in said] == []


@pytest.mark.parametrize("path", [FOREIGN / name for name in EXPECTED_PROBLEMS], ids=lambda path: path.stem)
def test_every_problem_of_a_foreign_diagram_is_listed_at_once(path):
    error = refusal(path.read_bytes())
    named = {problem.element for problem in error.problems}
    ids = ids_in(text_of(path.read_bytes()))
    missing = [what for what, elements in EXPECTED_PROBLEMS[path.name].items() if not named & elements]
    assert all(elements <= ids for elements in EXPECTED_PROBLEMS[path.name].values())
    assert missing == [], f"not reported: {missing}; reported: {error.problems}"


def test_a_task_inside_a_sub_process_drawn_in_a_role_lane_is_in_that_lane():
    # SpiffWorkflow gives the tasks of an expanded sub-process the sub-process's lane; lanes list only
    # the sub-process itself, as every modeller writes them.
    try:
        load((FOREIGN / "miwg_b_1_0_subprocess_timer_data_artifacts.bpmn").read_bytes())
    except DiagramError as error:
        about_lanes = [p for p in error.problems if p.element == "Activity_review" and "lane" in p.message]
        assert about_lanes == []


def test_a_long_chain_of_steps_loads_or_is_refused_in_plain_words():
    steps = 500
    flows = [
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>',
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="step0" />',
    ]
    for i in range(steps):
        following = f"step{i + 1}" if i + 1 < steps else "done"
        flows.append(
            f'<bpmn:scriptTask id="step{i}" name="Step {i}"><bpmn:incoming>f{i}</bpmn:incoming>'
            f"<bpmn:outgoing>f{i + 1}</bpmn:outgoing><bpmn:script>count = {i}</bpmn:script></bpmn:scriptTask>"
        )
        flows.append(f'<bpmn:sequenceFlow id="f{i + 1}" sourceRef="step{i}" targetRef="{following}" />')
    flows.append(f'<bpmn:endEvent id="done"><bpmn:incoming>f{steps}</bpmn:incoming></bpmn:endEvent>')
    data = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Definitions_chain" '
        'targetNamespace="http://civicflow.example/bpmn">\n'
        f'<bpmn:process id="{KEY}" isExecutable="true">\n'
        + "\n".join(flows)
        + "\n</bpmn:process>\n</bpmn:definitions>\n"
    ).encode()
    try:
        load(data)
    except DiagramError as error:
        assert_problems_are_plain_and_point_into_the_file(error, data)


_CHILD = """
import json, sys, time
from engine.errors import DiagramError
from engine.diagrams.loading import load_diagram
data = open(sys.argv[1], "rb").read()
started = time.perf_counter()
try:
    load_diagram(data, sys.argv[2])
    outcome = "loaded"
except DiagramError as error:
    outcome = f"refused: {error.message}"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - started}))
"""


def test_a_file_just_under_the_size_limit_with_an_error_on_every_line_is_refused_quickly(tmp_path):
    # Runs in a child process so that a slow refusal fails this test instead of holding up the whole run.
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
        b'20100524/MODEL" id="Definitions_errors" targetNamespace="http://civicflow.example/bpmn">\n'
        b'<bpmn:process id="removal_appeal" isExecutable="true">\n'
    )
    tail = b"</bpmn:process>\n</bpmn:definitions>\n"
    tasks, size, i = [], len(head) + len(tail), 0
    while True:
        task = b'<bpmn:task id="t%d" startQuantity="many" />\n' % i
        if size + len(task) > MAX_DIAGRAM_BYTES:
            break
        tasks.append(task)
        size, i = size + len(task), i + 1
    diagram = tmp_path / "errors.bpmn"
    diagram.write_bytes(head + b"".join(tasks) + tail)
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(diagram), KEY],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{i} schema errors in {size // 1024} KiB: still loading after 20 s")
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["outcome"].startswith("refused")
    assert result["seconds"] < QUICKLY, f"{i} schema errors in {size // 1024} KiB: {result['seconds']:.1f} s"
