"""Changing a procedure through the API: drafts, every refusal with its element and words, publishing, versions.

An administrator's script sends BPMN XML; what it gets back is what these tests check: the problems listed
(each at its element, with its line), what publishing does to new and running requests, and that a hostile
or malformed document is refused before anything is stored.
"""

from __future__ import annotations

import io

import pytest
from lxml import etree
from sqlalchemy import select

from engine import procedures
from engine.db.models import AuditEvent
from engine.diagrams.xml import MAX_DIAGRAM_BYTES
from tests.editing import BPMN, SPIFF, add_step_before, set_text, shipped
from tests.helpers import SETUP, START
from tests.web.pages import csrf_token

KEY = "new_account_request"
BASE = f"/api/v1/processes/{KEY}"
DRAFT = f"{BASE}/draft"
PUBLISH = f"{BASE}/publish"
VERSIONS = f"{BASE}/versions"
START_URL = f"{BASE}/instances"
XML = "application/xml"

ROLES = (
    "Requester, Department Head, Communications Manager, Administrative Lieutenant, Social Media Manager, "
    "City Attorney, Records Officer"
)
FORMS = ", ".join(sorted(procedures.get(KEY).editor_form_keys()))  # the procedure's forms and the written approval
DEADLINES = (
    "appeal_response, attorney_consultation, communications_review, department_head_review, "
    "dispute_acknowledgement, dispute_response"
)
SETUP_TASK = ("confirm_setup", "Set up the account and confirm")
REMINDER = ("communications_review_reminder", "Reminder before the due date")
STANDARD_FLOW = ("Flow_standard", "no")
RECORD_APPROVED = ("record_approved", "Record the approval")


# ---- helpers ---------------------------------------------------------------------------------------


def edited() -> bytes:
    """The shipped diagram with a Records Officer's check before the Communications Manager's review."""
    return add_step_before(shipped(KEY), "communications_review")


def put_draft(client, api, body: bytes, *, who: str = "admin", content_type: str = XML, headers=None):
    """PUT a diagram as the draft, as an API client does."""
    return client.put(DRAFT, headers={**api(who).headers, **(headers or {})}, data=body, content_type=content_type)


def as_admin(client, api, method: str, path: str, headers=None, **kwargs):
    """A request by the administrator's script with extra headers (Accept, If-Match)."""
    return getattr(client, method)(path, headers={**api("admin").headers, **(headers or {})}, **kwargs)


def draft_json(client, api) -> dict:
    """The draft as JSON: its revision, problems and XML."""
    response = as_admin(client, api, "get", DRAFT, headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.get_json()


def error_of(response, status: int, code: str | None = None) -> dict:
    """The docs/api.md error object of a response, after checking its status and media type."""
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def audit_actions(sessions) -> list[str]:
    """The actions in the audit trail, oldest first."""
    with sessions() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def versions_of(api) -> list[dict]:
    """The version list as the administrator's script reads it."""
    response = api("admin").get(VERSIONS)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def draft_xml(api) -> tuple[bytes, str]:
    """The draft's XML (or the version in use) and its ETag."""
    response = api("admin").get(DRAFT)
    assert response.status_code == 200
    return response.get_data(), response.headers["ETag"]


def edit(xml: bytes, change) -> bytes:
    """The diagram after `change(element_by_id)` edited its XML tree."""
    root = etree.fromstring(xml)

    def element(element_id):
        [found] = root.xpath("//*[@id=$id]", id=element_id)
        return found

    change(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _b(name: str) -> str:
    return f"{{{BPMN}}}{name}"


def line_of(xml: bytes, number: int) -> str:
    """One line of the document that was sent, as an editor numbers it."""
    return xml.decode("utf-8").splitlines()[number - 1]


def complete(api, who: str, task_id: str, data: dict) -> dict:
    """Complete a task through the API; the instance afterwards."""
    response = api(who).post(f"/api/v1/tasks/{task_id}/complete", json={"data": data})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def start(api, **changes) -> dict:
    """A new account request started by the requester."""
    response = api("requester").post(START_URL, json={"data": {**START, **changes}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# Checks of what the diagram says, where the database adds nothing, run on SQLite only (to keep the run short);
# saving and publishing are checked on both databases by the other tests.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

APPROVE = {"decision": "approve"}
COMMS_APPROVE = {"decision": "approve", "comment": "Approved in writing."}


# ---- a draft published, and the requests on each version ----------------------------------------


def test_published_draft_is_used_by_new_requests_while_a_running_request_finishes_on_its_version(
    client, api, make_user, sessions
):
    make_user("records", department="administration", roles=["records_officer"])
    [shipped_version] = versions_of(api)
    assert (shipped_version["version"], shipped_version["current"], shipped_version["published_by"]) == (
        1,
        True,
        "civicflow",
    )
    earlier = start(api)
    assert earlier["version"] == shipped_version["version_hash"]

    saved = put_draft(client, api, edited())
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert (body["revision"], body["problems"], body["publishable"], body["is_draft"]) == (1, [], True, True)
    assert (body["based_on_version"], body["updated_by"]) == (1, "Admin")
    assert saved.headers["ETag"] == '"1"'
    assert draft_xml(api) == (edited(), '"1"')
    as_json = draft_json(client, api)
    assert (as_json["xml"], as_json["revision"], as_json["problems"]) == (edited().decode(), 1, [])

    published = api("admin").post(PUBLISH)
    assert published.status_code == 200, published.get_json()
    assert (published.get_json()["version"], published.get_json()["published_by"]) == (2, "Admin")
    new_hash = published.get_json()["version_hash"]
    assert new_hash != shipped_version["version_hash"]

    later = start(api, account_name="West St. Paul Parks Events")
    assert later["version"] == new_hash
    listed = versions_of(api)
    assert [(v["version"], v["current"], v["published_by"], v["running_requests"], v["source"]) for v in listed] == [
        (2, True, "Admin", 1, "api"),
        (1, False, "civicflow", 1, "shipped"),
    ]
    assert listed[0]["version_hash"] == new_hash and listed[0]["created_by"] == "Admin"
    assert draft_xml(api) == (edited(), '"0"')  # no draft now: the editor opens on version 2

    # The new request goes through the Records Officer's check that version 2 added.
    [head_task] = later["tasks"]
    [check] = complete(api, "parks_head", head_task["id"], APPROVE)["tasks"]
    assert (check["name"], check["role"], check["form_key"]) == (
        "Records check",
        "records_officer",
        "communications_review",
    )
    [comms_task] = complete(api, "records", check["id"], COMMS_APPROVE)["tasks"]
    assert comms_task["name"] == "Communications Manager written approval"

    # The earlier request finishes on version 1: no Records Officer's check.
    [head_task] = earlier["tasks"]
    [comms_task] = complete(api, "parks_head", head_task["id"], APPROVE)["tasks"]
    assert comms_task["name"] == "Communications Manager written approval"
    [setup_task] = complete(api, "comms", comms_task["id"], COMMS_APPROVE)["tasks"]
    done = complete(api, "requester", setup_task["id"], SETUP)
    assert (done["status"], done["outcome"], done["version"]) == (
        "completed",
        "approved",
        shipped_version["version_hash"],
    )
    record = api("requester").get(f"/api/v1/instances/{earlier['id']}").get_json()
    assert record["version"] == shipped_version["version_hash"]
    assert [e["actor"] for e in record["history"] if e["action"] == "completed"] == ["parks_head", "comms", "requester"]
    assert api("requester").get(f"/api/v1/instances/{later['id']}").get_json()["version"] == new_hash
    assert audit_actions(sessions).count("process_published") == 1

    # Each version's XML is what was published.
    for number, xml in ((1, shipped(KEY)), (2, edited())):
        stored = api("admin").get(f"{VERSIONS}/{number}")
        assert (stored.status_code, stored.mimetype, stored.get_data()) == (200, XML, xml)
    error_of(api("admin").get(f"{VERSIONS}/3"), 404, "not_found")


# ---- every validation problem, at its element ---------------------------------------------------


def _unknown_element(element):
    etree.SubElement(element("confirm_setup"), _b("frobnicate"))


def _lane_not_a_role(element):
    element("Lane_communications_manager").set("name", "Press Office")


def _no_form_key(element):
    task = element("confirm_setup")
    task.remove(task.find(_b("extensionElements")))


def _form_key_with_no_form(element):
    next(element("confirm_setup").iter(f"{{{SPIFF}}}property")).set("value", "press_release")


def _no_way_out(element):
    flow = element("Flow_set_up")
    flow.getparent().remove(flow)
    task = element("confirm_setup")
    task.remove(task.find(_b("outgoing")))


def _flow_without_condition(element):
    flow = element("Flow_head_rejected")
    flow.remove(flow.find(_b("conditionExpression")))


def _unknown_deadline(element):
    for prop in element("communications_review").iter(f"{{{SPIFF}}}property"):
        if prop.get("name") == "deadline":
            prop.set("value", "someday")


def _timer(kind: str | None, value: str = ""):
    """The Communications Manager's reminder timer with one value of this kind (None: no value at all)."""

    def change(element):
        definition = element("communications_review_reminder_timer")
        for child in list(definition):
            definition.remove(child)
        if kind:
            etree.SubElement(definition, _b(kind)).text = value

    return change


def _condition(text: str):
    """The "not an investigative profile" flow's condition replaced."""

    def change(element):
        element("Flow_standard").find(_b("conditionExpression")).text = text

    return change


def _refused(reason: str) -> str:
    return f"Expression refused: Line 1: {reason}"


def _underscore_attribute(name: str) -> str:
    return _refused(f'"{name}" is an invalid attribute name because it starts with "_".')


# (change, [(element id, name, message, text on the line the problem gives)])
VALIDATION_ERRORS = {
    "unknown bpmn element (XSD)": (
        _unknown_element,
        [
            (
                *SETUP_TASK,
                "BPMN schema: Element 'bpmn:frobnicate': This element is not expected. Expected is one of "
                "( bpmn:outgoing, bpmn:ioSpecification, bpmn:property, bpmn:dataInputAssociation, "
                "bpmn:dataOutputAssociation, bpmn:resourceRole, bpmn:performer, bpmn:humanPerformer, "
                "bpmn:potentialOwner, bpmn:loopCharacteristics ).",
                "frobnicate",
            )
        ],
    ),
    "lane not a role": (
        _lane_not_a_role,
        [
            (
                "Lane_communications_manager",
                "Press Office",
                f'Lane "Press Office" is not a role; the roles are {ROLES}.',
                'id="Lane_communications_manager"',
            )
        ],
    ),
    "user task with no formKey": (
        _no_form_key,
        [(*SETUP_TASK, "User task has no formKey property (the form it shows).", 'id="confirm_setup"')],
    ),
    "form key with no form": (
        _form_key_with_no_form,
        [
            (
                *SETUP_TASK,
                f'Form key "press_release" has no form; the forms of this procedure are {FORMS}.',
                'id="confirm_setup"',
            )
        ],
    ),
    "task with no way out": (
        _no_way_out,
        [(*SETUP_TASK, "This element has no way out (no outgoing sequence flow).", 'id="confirm_setup"')],
    ),
    "gateway flow with no condition": (
        _flow_without_condition,
        [
            (
                "Flow_head_rejected",
                "reject",
                'The flow "reject" out of the gateway "Department Head\'s decision" has '
                "no condition and is not its default flow.",
                'id="Flow_head_rejected"',
            )
        ],
    ),
    "unknown deadline": (
        _unknown_deadline,
        [
            (
                "communications_review",
                "Communications Manager written approval",
                f'Deadline "someday" is unknown; the deadlines are {DEADLINES}.',
                'id="communications_review"',
            )
        ],
    ),
    "condition that does not compile": (
        _condition('decision == "approve" and'),
        [
            (
                *STANDARD_FLOW,
                _refused("SyntaxError: invalid syntax at statement: 'decision == \"approve\" and'"),
                'decision == "approve" and',
            )
        ],
    ),
    "condition with an import": (
        _condition('__import__("os").system("id")'),
        [
            (
                *STANDARD_FLOW,
                _refused('"__import__" is an invalid variable name because it starts with "_"'),
                "__import__",
            )
        ],
    ),
    "condition calling open()": (
        _condition('open("/etc/passwd").read()'),
        [(*STANDARD_FLOW, _refused('"open" is not available in diagram expressions.'), "open(")],
    ),
    "condition walking __class__ to __subclasses__": (
        _condition("().__class__.__base__.__subclasses__()"),
        [
            (*STANDARD_FLOW, _underscore_attribute(name), "__subclasses__")
            for name in ("__subclasses__", "__base__", "__class__")
        ],
    ),
    "condition reading a lambda's __globals__": (
        _condition("(lambda: 0).__globals__"),
        [(*STANDARD_FLOW, _underscore_attribute("__globals__"), "__globals__")],
    ),
    "condition returning __builtins__ from a lambda": (
        _condition("(lambda: __builtins__)()"),
        [
            (
                *STANDARD_FLOW,
                _refused('"__builtins__" is an invalid variable name because it starts with "_"'),
                "__builtins__",
            )
        ],
    ),
    "condition calling getattr": (
        _condition('getattr(decision, "__class__")'),
        [(*STANDARD_FLOW, _refused('"getattr" is not available in diagram expressions.'), "getattr(")],
    ),
    "timer duration P2X": (
        _timer("timeDuration", '"P2X"'),
        [
            (
                *REMINDER,
                '"P2X" is not a valid ISO 8601 duration; for example P2D (two days) or PT4H (four hours).',
                "P2X",
            )
        ],
    ),
    "timer duration not in quotes": (
        _timer("timeDuration", "P2D"),
        [
            (
                *REMINDER,
                'Write the timeDuration in quotes, "P2D": unquoted, it is read as the name of a value in the request.',
                "P2D",
            )
        ],
    ),
    "timer date that does not exist": (
        _timer("timeDate", '"2026-02-30T09:00:00-06:00"'),
        [
            (
                *REMINDER,
                '"2026-02-30T09:00:00-06:00" is not a valid ISO 8601 date and time; for example '
                "2026-12-01T09:00:00-06:00.",
                "2026-02-30",
            )
        ],
    ),
    "timer cycle": (
        _timer("timeCycle", '"R3/PT1H"'),
        [(*REMINDER, "Repeating timers (timeCycle) are not supported; use a timeDate or timeDuration.", "R3/PT1H")],
    ),
    "timer with no value": (
        _timer(None),
        [
            (
                *REMINDER,
                "This timer has no value (a timeDate or a timeDuration).",
                'id="communications_review_reminder_timer"',
            )
        ],
    ),
    "timer helper with an unknown deadline": (
        _timer("timeDate", 'reminder_time("someday")'),
        [(*REMINDER, f"reminder_time() takes one quoted deadline: {DEADLINES}.", "someday")],
    ),
    "timer helper in a timeDuration": (
        _timer("timeDuration", 'due_time("communications_review")'),
        [(*REMINDER, "due_time() gives a date and time; put it in a timeDate, not a timeDuration.", "due_time")],
    ),
}


def assert_problems_point_into(xml: bytes, problems: list[dict], expected: list[tuple]) -> None:
    """Each problem names its element (and its name) with the exact message, at a line holding what is wrong."""
    assert sorted((p.get("element"), p.get("name"), p["message"]) for p in problems) == sorted(
        (element, name, message) for element, name, message, _ in expected
    )
    for problem in problems:
        [marker] = {
            m for element, _, message, m in expected if (element, message) == (problem["element"], problem["message"])
        }
        assert marker in line_of(xml, problem["line"]), (problem, line_of(xml, problem["line"]))


@SQLITE_ONLY
@pytest.mark.parametrize("case", list(VALIDATION_ERRORS))
def test_each_problem_is_listed_at_its_element_and_blocks_publishing(client, api, sessions, case):
    change, expected = VALIDATION_ERRORS[case]
    xml = edit(shipped(KEY), change)
    before = versions_of(api)

    saved = put_draft(client, api, xml)
    assert saved.status_code == 200, saved.get_json()
    assert (saved.get_json()["revision"], saved.get_json()["publishable"]) == (1, False)
    assert_problems_point_into(xml, saved.get_json()["problems"], expected)

    error = error_of(api("admin").post(PUBLISH), 400, "invalid_diagram")
    assert_problems_point_into(xml, error["problems"], expected)
    assert versions_of(api) == before
    assert "process_published" not in audit_actions(sessions)
    assert draft_xml(api) == (xml, '"1"')  # the draft is kept, to be fixed


def test_a_draft_with_several_problems_lists_them_all(client, api, sessions):
    cases = (
        "lane not a role",
        "user task with no formKey",
        "condition calling open()",
        "timer cycle",
        "gateway flow with no condition",
    )
    xml = shipped(KEY)
    for case in cases:
        xml = edit(xml, VALIDATION_ERRORS[case][0])
    expected = [problem for case in cases for problem in VALIDATION_ERRORS[case][1]]
    saved = put_draft(client, api, xml)
    assert_problems_point_into(xml, saved.get_json()["problems"], expected)
    error = error_of(api("admin").post(PUBLISH), 400, "invalid_diagram")
    assert "5 problems" in error["message"]
    assert_problems_point_into(xml, error["problems"], expected)
    assert [v["version"] for v in versions_of(api)] == [1]
    assert "process_published" not in audit_actions(sessions)


def test_a_document_that_is_not_well_formed_bpmn_is_refused_with_its_line_and_not_stored(client, api, sessions):
    lines = shipped(KEY).decode().splitlines()
    lines[19] = lines[19] + "<bpmn:flowNodeRef>parks & recreation</bpmn:flowNodeRef>"
    broken = "\n".join(lines).encode()
    assert put_draft(client, api, edited()).status_code == 200

    error = error_of(put_draft(client, api, broken), 400, "invalid_diagram")
    assert error["message"] == "The diagram is not well-formed XML."
    [problem] = error["problems"]
    assert problem["line"] == 20
    assert problem["message"].startswith("XML error: ")

    not_bpmn = b"<?xml version='1.0'?>\n<html><body>Hello</body></html>"
    error = error_of(put_draft(client, api, not_bpmn), 400, "invalid_diagram")
    [problem] = error["problems"]
    assert problem["message"].startswith(
        'The document\'s root element is "html"; a BPMN 2.0 diagram starts with "definitions"'
    )
    assert draft_xml(api) == (edited(), '"1"')
    assert audit_actions(sessions).count("process_draft_saved") == 1


# ---- XXE and friends: refused before anything is read or stored ---------------------------------

SECRET = "s3cr3t-civicflow-token-0b5e"


def _hostile(kind: str, secret_file) -> bytes:
    """The shipped diagram with a DOCTYPE attack in front of it (and its entity used in the documentation)."""
    declaration, body = shipped(KEY).split(b"\n", 1)
    uri = secret_file.as_uri()
    doctypes = {
        "external entity": f'<!DOCTYPE bpmn:definitions [\n  <!ENTITY xxe SYSTEM "{uri}">\n]>',
        "billion laughs": '<!DOCTYPE bpmn:definitions [\n  <!ENTITY lol "lol">\n'
        + "".join(f'  <!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">\n' for n in range(1, 10))
        + "]>",
        "external DTD": f'<!DOCTYPE bpmn:definitions SYSTEM "{uri}">',
        "parameter entity": f'<!DOCTYPE bpmn:definitions [\n  <!ENTITY % file SYSTEM "{uri}">\n'
        '  <!ENTITY % remote SYSTEM "http://127.0.0.1:9/exfiltrate.dtd">\n  %remote;\n]>',
    }
    reference = {"external entity": "&xxe;", "billion laughs": "&lol9;"}.get(kind, "")
    body = body.replace(b"<bpmn:documentation>", b"<bpmn:documentation>" + reference.encode(), 1)
    return b"\n".join([declaration, doctypes[kind].encode(), body])


HOSTILE = ["external entity", "billion laughs", "external DTD", "parameter entity", "external entity in UTF-16"]


@pytest.fixture
def secret_file(tmp_path):
    """A file whose text must never appear in a response or be stored."""
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def hostile(kind: str, secret_file) -> bytes:
    """One attack document, as bytes."""
    if kind.endswith("in UTF-16"):
        text = _hostile(kind.removesuffix(" in UTF-16"), secret_file).decode()
        return text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    return _hostile(kind, secret_file)


@SQLITE_ONLY
@pytest.mark.parametrize("kind", HOSTILE)
def test_a_doctype_is_refused_through_the_api_and_the_upload_and_nothing_is_stored_or_read(
    client, api, browser_as, sessions, secret_file, kind
):
    assert put_draft(client, api, edited()).status_code == 200
    attack = hostile(kind, secret_file)

    response = put_draft(client, api, attack)
    error = error_of(response, 400, "invalid_diagram")
    assert error["message"] == "The diagram declares a DOCTYPE, which is not allowed."
    assert [p["message"] for p in error["problems"]] == [
        "DOCTYPE declarations (and the entities they carry) are not allowed."
    ]
    assert SECRET not in response.get_data(as_text=True)

    admin = browser_as("admin")
    token = csrf_token(admin.get("/admin/processes/"))
    page = admin.post(
        f"/admin/processes/{KEY}/upload",
        content_type="multipart/form-data",
        data={"csrf_token": token, "file": (io.BytesIO(attack), "appeal.bpmn")},
    )
    assert page.status_code == 400
    assert "DOCTYPE" in page.get_data(as_text=True)
    assert SECRET not in page.get_data(as_text=True)

    assert draft_xml(api) == (edited(), '"1"')
    assert audit_actions(sessions).count("process_draft_saved") == 1


@SQLITE_ONLY
def test_an_xinclude_is_never_followed_and_blocks_publishing(client, api, secret_file):
    xinclude = (
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{secret_file.as_uri()}" parse="text"/>'
    ).encode()
    xml = shipped(KEY).replace(b"<bpmn:documentation>", b"<bpmn:documentation>" + xinclude, 1)
    saved = put_draft(client, api, xml)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["publishable"] is False
    assert "XInclude is not allowed: a diagram cannot pull in other files." in [
        p["message"] for p in saved.get_json()["problems"]
    ]
    error = error_of(api("admin").post(PUBLISH), 400, "invalid_diagram")
    [problem] = [p for p in error["problems"] if p["message"].startswith("XInclude")]
    assert "xi:include" in line_of(xml, problem["line"])
    for response in (saved, api("admin").post(PUBLISH), api("admin").get(DRAFT), api("admin").get(VERSIONS)):
        assert SECRET not in response.get_data(as_text=True)
    assert [v["version"] for v in versions_of(api)] == [1]


def test_a_body_too_large_not_xml_or_empty_is_refused_before_it_is_parsed(client, api, sessions):
    not_even_xml = b"<" * (MAX_DIAGRAM_BYTES + 1)
    error_of(put_draft(client, api, not_even_xml), 413, "too_large")
    for content_type in ("text/plain", "application/json", "multipart/form-data", "application/x-www-form-urlencoded"):
        error_of(put_draft(client, api, edited(), content_type=content_type), 415, "unsupported_media_type")
    for body in (b"", b"  \n\t "):
        error_of(put_draft(client, api, body), 400, "invalid")
    error_of(
        client.put(
            "/api/v1/processes/no_such_procedure/draft", headers=api("admin").headers, data=edited(), content_type=XML
        ),
        404,
        "not_found",
    )
    assert draft_json(client, api)["revision"] == 0
    assert "process_draft_saved" not in audit_actions(sessions)


# ---- the sandbox's verdict on an uploaded diagram ------------------------------------------------

_FORMAT = _refused(
    '".format()" is not available in diagram expressions (it reads attributes from inside a string); '
    "join strings with +."
)
ESCAPES = {
    "import os": (
        "import os\noutcome = os.getcwd()",
        '__import__("os").getcwd()',
        [_refused("imports are not allowed in diagram expressions.")],
        [_refused('"__import__" is an invalid variable name because it starts with "_"')],
    ),
    "open /etc/passwd": (
        'outcome = open("/etc/passwd").read()',
        'open("/etc/passwd").read() == ""',
        [_refused('"open" is not available in diagram expressions.')],
        [_refused('"open" is not available in diagram expressions.')],
    ),
    "__class__.__mro__": (
        "outcome = ().__class__.__mro__",
        "().__class__.__mro__",
        [_underscore_attribute("__mro__"), _underscore_attribute("__class__")],
        [_underscore_attribute("__mro__"), _underscore_attribute("__class__")],
    ),
    "f-string attribute": (
        'outcome = f"{().__class__}"',
        'f"{().__class__}" == ""',
        [_underscore_attribute("__class__")],
        [_underscore_attribute("__class__")],
    ),
    # str.format reads attributes inside the string: "{0.__class__}" walks to the class like the f-string does.
    "str.format attribute": (
        'outcome = "{0.__class__.__mro__}".format(())',
        '"{0.__class__}".format(decision)',
        [_FORMAT],
        [_FORMAT],
    ),
}


@SQLITE_ONLY
@pytest.mark.parametrize("escape", list(ESCAPES))
def test_a_sandbox_escape_in_an_uploaded_diagram_is_refused_on_each_element(client, api, browser_as, sessions, escape):
    script, condition, script_messages, condition_messages = ESCAPES[escape]
    xml = set_text(shipped(KEY), "record_approved", "script", script)
    xml = set_text(xml, "Flow_standard", "conditionExpression", condition)
    admin = browser_as("admin")
    token = csrf_token(admin.get("/admin/processes/"))
    uploaded = admin.post(
        f"/admin/processes/{KEY}/upload",
        content_type="multipart/form-data",
        data={"csrf_token": token, "file": (io.BytesIO(xml), f"{KEY}.bpmn")},
    )
    assert uploaded.status_code == 303

    draft = draft_json(client, api)
    assert (draft["revision"], draft["publishable"]) == (1, False)
    for problems in (draft["problems"], error_of(api("admin").post(PUBLISH), 400, "invalid_diagram")["problems"]):
        for element, messages in ((RECORD_APPROVED, script_messages), (STANDARD_FLOW, condition_messages)):
            listed = [p["message"] for p in problems if (p.get("element"), p.get("name")) == element]
            assert sorted(listed) == sorted(messages), f"the {element[0]} of {escape}"
        assert {(p.get("element"), p.get("name")) for p in problems} == {RECORD_APPROVED, STANDARD_FLOW}
    assert [v["version"] for v in versions_of(api)] == [1]
    assert "process_published" not in audit_actions(sessions)


# ---- who may ------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", DRAFT, None),
    ("put", DRAFT, "xml"),
    ("post", PUBLISH, None),
    ("post", PUBLISH, {"version": 1}),
    ("get", VERSIONS, None),
    ("get", f"{VERSIONS}/1", None),
    ("get", f"{BASE}/diff?from=1&to=draft", None),
]


def test_only_administrators_may_use_the_editor_api(client, api, unchanged):
    assert put_draft(client, api, edited()).status_code == 200
    before = (versions_of(api), draft_xml(api))
    callers = [
        (api("comms").headers, 403, "forbidden"),
        (api("parks_head").headers, 403, "forbidden"),
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer not-a-token"}, 401, "unauthorized"),
    ]
    with unchanged():
        for method, path, body in ENDPOINTS:
            kwargs = {"data": edited(), "content_type": XML} if body == "xml" else {"json": body} if body else {}
            for headers, status, code in callers:
                response = getattr(client, method)(path, headers=headers, **kwargs)
                assert (response.status_code, response.get_json()["error"]["code"]) == (status, code), (
                    method,
                    path,
                    headers,
                )
                assert "<bpmn:" not in response.get_data(as_text=True)
    assert (versions_of(api), draft_xml(api)) == before


# ---- If-Match: no one overwrites someone else's work --------------------------------------------


def test_saving_from_a_stale_revision_is_409_and_keeps_the_newer_draft(client, api, sessions):
    first = put_draft(client, api, edited(), headers={"If-Match": '"0"'})
    assert (first.status_code, first.get_json()["revision"]) == (200, 1)
    other = edit(edited(), _lane_not_a_role)
    second = put_draft(client, api, other, headers={"If-Match": 'W/"1"'})
    assert (second.status_code, second.get_json()["revision"]) == (200, 2)

    error = error_of(put_draft(client, api, edited(), headers={"If-Match": '"1"'}), 409, "conflict")
    assert "revision 2" in error["message"] and "Admin" in error["message"]
    error = error_of(put_draft(client, api, edited(), headers={"If-Match": "*"}), 400, "invalid")
    assert "If-Match" in error["fields"]
    assert draft_xml(api) == (other, '"2"')
    assert audit_actions(sessions).count("process_draft_saved") == 2


def test_publishing_from_a_stale_revision_or_with_no_draft_is_409_and_publishes_nothing(client, api, sessions):
    error = error_of(api("admin").post(PUBLISH), 409, "conflict")
    assert "no draft" in error["message"]
    put_draft(client, api, edit(edited(), _lane_not_a_role))
    put_draft(client, api, edited())
    error_of(as_admin(client, api, "post", PUBLISH, headers={"If-Match": '"1"'}), 409, "conflict")
    assert [v["version"] for v in versions_of(api)] == [1]
    assert "process_published" not in audit_actions(sessions)
    published = as_admin(client, api, "post", PUBLISH, headers={"If-Match": '"2"'})
    assert (published.status_code, published.get_json()["version"]) == (200, 2)


# ---- publishing an earlier version again --------------------------------------------------------


def test_an_earlier_version_published_again_is_used_by_new_requests(client, api, sessions):
    put_draft(client, api, edited())
    assert api("admin").post(PUBLISH).status_code == 200
    [second, first] = versions_of(api)

    again = api("admin").post(PUBLISH, json={"version": 1})
    assert again.status_code == 200, again.get_json()
    assert (again.get_json()["version"], again.get_json()["version_hash"]) == (1, first["version_hash"])
    assert start(api)["version"] == first["version_hash"]
    assert [(v["version"], v["current"], v["published_by"]) for v in versions_of(api)] == [
        (2, False, "Admin"),
        (1, True, "Admin"),
    ]

    error = error_of(api("admin").post(PUBLISH, json={"version": 1}), 409, "conflict")
    assert "already" in error["message"]
    error_of(api("admin").post(PUBLISH, json={"version": 9}), 404, "not_found")
    error_of(api("admin").post(PUBLISH, json={"version": "1"}), 400, "invalid")
    assert audit_actions(sessions).count("process_published") == 2
    assert second["version_hash"] != first["version_hash"]


def test_a_draft_equal_to_a_stored_version_publishes_that_version_not_a_new_one(client, api, sessions):
    put_draft(client, api, edited())
    assert api("admin").post(PUBLISH).get_json()["version"] == 2

    put_draft(client, api, edited())
    error = error_of(api("admin").post(PUBLISH), 409, "conflict")
    assert "version 2" in error["message"] and "already in use" in error["message"]

    put_draft(client, api, shipped(KEY))
    published = api("admin").post(PUBLISH)
    assert (published.status_code, published.get_json()["version"]) == (200, 1)
    assert [(v["version"], v["current"]) for v in versions_of(api)] == [(2, False), (1, True)]
    assert audit_actions(sessions).count("process_published") == 2


# ---- what changed -------------------------------------------------------------------------------

CHECK = "Records check (records_check)"  # a reference, as the difference names what it points at
REVIEW = "Communications Manager written approval (communications_review)"


def test_the_difference_lists_the_added_task_and_the_changed_flow(client, api):
    put_draft(client, api, edited())
    api("admin").post(PUBLISH)
    response = api("admin").get(f"{BASE}/diff?from=1&to=2")
    assert response.status_code == 200
    difference = response.get_json()
    added = {item["id"]: item for item in difference["added"]}
    assert (added["records_check"]["type"], added["records_check"]["name"]) == ("User task", "Records check")
    assert added["records_check"]["properties"] == {"Lane": "Records Officer", "Form": "communications_review"}
    assert added["Flow_records_check"]["properties"] == {"From": CHECK, "To": REVIEW}
    assert (added["Lane_records_check"]["type"], added["Lane_records_check"]["name"]) == ("Lane", "Records Officer")
    assert difference["removed"] == []
    [changed] = difference["changed"]
    assert (changed["id"], changed["type"], changed["name"], changed["label"]) == (
        "Flow_standard",
        "Sequence flow",
        "no",
        "no",
    )
    assert changed["changes"] == [
        {
            "property": "To",
            "before": REVIEW,
            "after": CHECK,
            "before_words": "Communications Manager written approval",
            "after_words": "Records check",
            "before_id": "communications_review",
            "after_id": "records_check",
        }
    ]
    # A flow without a name is named by its two ends; a form by its label, the key beside it.
    assert (
        added["Flow_records_check"]["label"] == "the flow from Records check to Communications Manager written approval"
    )
    assert added["records_check"]["words"]["Form"] == "Communications review"
    assert added["records_check"]["ids"] == {"Form": "communications_review"}

    back = api("admin").get(f"{BASE}/diff?from=2&to=1").get_json()
    assert {item["id"] for item in back["removed"]} == set(added)
    assert api("admin").get(f"{BASE}/diff?from=1&to=1").get_json() == {
        "added": [],
        "removed": [],
        "changed": [],
        "moved": [],
    }
    error = error_of(api("admin").get(f"{BASE}/diff?from=one&to=2"), 400, "invalid")
    assert "from" in error["fields"]
