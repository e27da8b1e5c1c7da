"""The procedure editor's pages as an administrator uses them: upload, save, publish, versions, differences.

Everyone else is refused, every form needs its CSRF token, and a refused file or draft changes nothing and
says why, element by element.
"""

from __future__ import annotations

import html
import io
import json
import re

import pytest
from lxml import etree
from sqlalchemy import select

from engine import procedures
from engine.db.models import AuditEvent
from engine.people.roles import LANE_ROLES
from engine.time.deadlines import DEADLINE_KINDS
from tests.editing import SPIFF, add_step_before, set_attribute, shipped
from tests.helpers import START
from tests.web.pages import csrf_token, error_next_to, text_of

KEY = "new_account_request"
NAME = "New social media account request"
PAGES = f"/admin/processes/{KEY}"
API_DRAFT = f"/api/v1/processes/{KEY}/draft"
WHEN = r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2} [AP]M"

# What an administrator adds to the Publish form: what changed and why, and the tick that confirms it.
NOTE = "A Records Officer checks each request before the Communications Manager, as the policy now asks."
CONFIRMED = {"note": NOTE, "confirm": "y"}

# Refusals and read-only pages, where the database adds nothing, run on SQLite only (to keep the run short);
# saving, uploading and publishing run on both databases.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def edited() -> bytes:
    """The shipped diagram with a Records Officer's check before the Communications Manager's review."""
    return add_step_before(shipped(KEY), "communications_review")


def with_problems() -> bytes:
    """A diagram with two problems: a lane that is no role, and a user task with no form."""
    xml = set_attribute(shipped(KEY), "Lane_communications_manager", "name", "Press Office")
    root = etree.fromstring(xml)
    [form_key] = root.xpath(
        "//*[@id='confirm_setup']//spiffworkflow:property[@name='formKey']", namespaces={"spiffworkflow": SPIFF}
    )
    form_key.getparent().remove(form_key)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def doctype_attack(secret_file) -> bytes:
    """The shipped diagram with an external entity reading a local file."""
    declaration, body = shipped(KEY).split(b"\n", 1)
    doctype = f'<!DOCTYPE bpmn:definitions [\n  <!ENTITY xxe SYSTEM "{secret_file.as_uri()}">\n]>'.encode()
    body = body.replace(b"<bpmn:documentation>", b"<bpmn:documentation>&xxe;", 1)
    return b"\n".join([declaration, doctype, body])


def editor_config(page) -> dict:
    """The editor's configuration, as the page gives it to the script."""
    match = re.search(
        r'<script type="application/json" id="editor-config">(.*?)</script>', page.get_data(as_text=True), flags=re.S
    )
    assert match, "the edit page has no editor configuration"
    return json.loads(match.group(1))


def problem_list(page) -> str:
    """What the editor's problem list says: one sentence on where the draft stands, then any problems."""
    match = re.search(r'id="problem-list">(.*?)</section>', page.get_data(as_text=True), flags=re.S)
    assert match, "the edit page has no problem list"
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()


def upload(browser, data: bytes | None, filename: str = f"{KEY}.bpmn", *, with_token: bool = True):
    """Post the upload form with a file (or none), with the page's CSRF token unless told otherwise."""
    form = {}
    if with_token:
        form["csrf_token"] = csrf_token(browser.get("/admin/processes/"))
    if data is not None:
        form["file"] = (io.BytesIO(data), filename)
    return browser.post(f"{PAGES}/upload", data=form, content_type="multipart/form-data")


def token_of(browser) -> str:
    """A CSRF token of the administrator's session."""
    return csrf_token(browser.get("/admin/processes/"))


def stored_draft(api) -> tuple[int, bytes]:
    """The draft's revision (0: none) and XML, read through the API."""
    response = api("admin").get(API_DRAFT)
    return int(response.headers["ETag"].strip('"')), response.get_data()


def versions(api) -> list[tuple]:
    """(number, in use, published by) of each version, newest first."""
    return [
        (v["version"], v["current"], v["published_by"])
        for v in api("admin").get(f"/api/v1/processes/{KEY}/versions").get_json()
    ]


def publish_by_api(client, api, xml: bytes) -> None:
    """An administrator's script saves and publishes a diagram."""
    saved = client.put(API_DRAFT, headers=api("admin").headers, data=xml, content_type="application/xml")
    assert saved.status_code == 200, saved.get_json()
    assert api("admin").post(f"/api/v1/processes/{KEY}/publish").status_code == 200


def audit_actions(sessions) -> list[str]:
    """The actions in the audit trail, oldest first."""
    with sessions() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.fixture
def secret_file(tmp_path):
    """A file whose text must never appear on a page."""
    path = tmp_path / "secret.txt"
    path.write_text("s3cr3t-civicflow-token-0b5e\n")
    return path


# ---- who may ------------------------------------------------------------------------------------

GETS = [
    "/admin/processes/",
    f"{PAGES}/edit",
    f"{PAGES}/draft.bpmn",
    f"{PAGES}/versions",
    f"{PAGES}/versions/1.bpmn",
    f"{PAGES}/diff?from=1&to=2",
]
POSTS = [f"{PAGES}/upload", f"{PAGES}/publish", f"{PAGES}/discard", f"{PAGES}/versions/1/publish"]


@SQLITE_ONLY
def test_a_staff_member_who_is_not_an_administrator_gets_403_on_every_page_and_form(client, api, browser_as, unchanged):
    publish_by_api(client, api, edited())
    client.put(API_DRAFT, headers=api("admin").headers, data=with_problems(), content_type="application/xml")
    before = (versions(api), stored_draft(api))
    for username in ("comms", "parks_head"):
        staff = browser_as(username)
        token = csrf_token(staff.get("/inbox/"))
        with unchanged():
            for path in GETS:
                response = staff.get(path)
                assert response.status_code == 403, path
                assert "<bpmn:" not in response.get_data(as_text=True)
            for path in POSTS:
                response = staff.post(
                    path,
                    data={"csrf_token": token, "revision": "1", "file": (io.BytesIO(edited()), "x.bpmn")},
                    content_type="multipart/form-data",
                )
                assert response.status_code == 403, path
            response = staff.put(
                f"{PAGES}/draft", data=edited(), content_type="application/xml", headers={"X-CSRFToken": token}
            )
            assert response.status_code == 403
    assert (versions(api), stored_draft(api)) == before


@SQLITE_ONLY
def test_someone_not_logged_in_is_sent_to_the_login_page(app, api, unchanged):
    anonymous = app.test_client()
    token = csrf_token(anonymous.get("/login"))
    with unchanged():
        for path in GETS:
            response = anonymous.get(path)
            assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
        for path in POSTS:
            response = anonymous.post(path, data={"csrf_token": token})
            assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
        response = anonymous.put(
            f"{PAGES}/draft", data=edited(), content_type="application/xml", headers={"X-CSRFToken": token}
        )
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert stored_draft(api) == (0, shipped(KEY))


@SQLITE_ONLY
def test_a_form_without_its_csrf_token_is_400_and_changes_nothing(client, api, browser_as, unchanged):
    publish_by_api(client, api, edited())
    client.put(API_DRAFT, headers=api("admin").headers, data=shipped(KEY), content_type="application/xml")
    before = (versions(api), stored_draft(api))
    admin = browser_as("admin")
    with unchanged():
        assert upload(admin, with_problems(), with_token=False).status_code == 400
        for path in (f"{PAGES}/publish", f"{PAGES}/discard", f"{PAGES}/versions/1/publish"):
            response = admin.post(path, data={"revision": "1"})
            assert response.status_code == 400, path
            assert "security token" in text_of(response)
        response = admin.put(
            f"{PAGES}/draft", data=with_problems(), content_type="application/xml", headers={"If-Match": '"1"'}
        )
        assert response.status_code == 400
    assert (versions(api), stored_draft(api)) == before


# ---- uploading a file ---------------------------------------------------------------------------


def test_an_uploaded_file_becomes_the_draft_and_the_flash_names_it(api, browser_as, sessions):
    admin = browser_as("admin")
    response = upload(admin, edited(), "records check.bpmn")
    assert (response.status_code, response.headers["Location"]) == (303, f"{PAGES}/edit")
    page = admin.get(f"{PAGES}/edit")
    assert "records check.bpmn is the draft now (revision 1). It has no problems and can be published." in text_of(page)
    assert stored_draft(api) == (1, edited())
    assert editor_config(page)["publishable"] is True
    index = text_of(admin.get("/admin/processes/"))
    assert re.search(
        rf"{NAME} {KEY} Version 1, published {WHEN} by civicflow Revision 1, saved {WHEN} by Admin", index
    ), index

    response = upload(admin, with_problems(), "two problems.xml")
    assert response.status_code == 303
    page = admin.get(f"{PAGES}/edit")
    assert (
        "two problems.xml is the draft now (revision 2). 2 problems must be fixed before it can be published."
        in text_of(page)
    )
    problems = text_of(page)
    assert "Press Office (Lane_communications_manager" in problems
    assert "Set up the account and confirm (confirm_setup" in problems
    assert audit_actions(sessions).count("process_draft_saved") == 2

    discarded = admin.post(f"{PAGES}/discard", data={"csrf_token": token_of(admin)})
    assert (discarded.status_code, discarded.headers["Location"]) == (303, f"{PAGES}/edit")
    assert "The draft is discarded" in text_of(admin.get(f"{PAGES}/edit"))
    assert stored_draft(api) == (0, shipped(KEY))


def test_an_uploaded_file_with_a_doctype_is_refused_and_not_saved(api, browser_as, sessions, secret_file):
    admin = browser_as("admin")
    assert upload(admin, edited()).status_code == 303
    response = upload(admin, doctype_attack(secret_file), "appeal.bpmn")
    assert response.status_code == 400
    text = text_of(response)
    assert "appeal.bpmn was not saved" in text
    assert "DOCTYPE" in text
    assert "s3cr3t" not in response.get_data(as_text=True)
    assert stored_draft(api) == (1, edited())
    assert audit_actions(sessions).count("process_draft_saved") == 1


@SQLITE_ONLY
def test_an_upload_that_is_not_a_bpmn_or_xml_file_or_no_file_is_400(api, browser_as, unchanged):
    admin = browser_as("admin")
    with unchanged():
        response = upload(admin, None)
        assert response.status_code == 400
        assert error_next_to(response, "file") == "Choose a .bpmn file to upload."
        response = upload(admin, edited(), "diagram.txt")
        assert response.status_code == 400
        assert error_next_to(response, "file") == "Upload a .bpmn or .xml file."
    assert stored_draft(api) == (0, shipped(KEY))


# ---- the editor's save --------------------------------------------------------------------------


def test_the_editor_saves_with_the_csrf_token_of_its_config(api, browser_as, secret_file):
    admin = browser_as("admin")
    config = editor_config(admin.get(f"{PAGES}/edit"))
    assert (config["revision"], config["save_url"]) == (0, f"{PAGES}/draft")
    headers = {"X-CSRFToken": config["csrf_token"], "If-Match": f'"{config["revision"]}"'}

    saved = admin.put(config["save_url"], data=edited(), content_type="application/xml", headers=headers)
    assert (saved.status_code, saved.mimetype) == (200, "application/json")
    assert (saved.get_json()["revision"], saved.get_json()["problems"], saved.get_json()["publishable"]) == (
        1,
        [],
        True,
    )
    assert stored_draft(api) == (1, edited())

    refused = admin.put(
        config["save_url"], data=with_problems(), content_type="application/xml", headers={"If-Match": '"1"'}
    )
    assert refused.status_code == 400
    stale = admin.put(config["save_url"], data=with_problems(), content_type="application/xml", headers=headers)
    assert (stale.status_code, stale.get_json()["error"]["code"]) == (409, "conflict")
    attack = admin.put(
        config["save_url"],
        data=doctype_attack(secret_file),
        content_type="application/xml",
        headers={**headers, "If-Match": '"1"'},
    )
    assert (attack.status_code, attack.get_json()["error"]["code"]) == (400, "invalid_diagram")
    assert "DOCTYPE" in attack.get_json()["error"]["problems"][0]["message"]
    assert "s3cr3t" not in attack.get_data(as_text=True)
    assert stored_draft(api) == (1, edited())

    with_two = admin.put(
        config["save_url"], data=with_problems(), content_type="application/xml", headers={**headers, "If-Match": '"1"'}
    )
    assert (with_two.status_code, with_two.get_json()["revision"], with_two.get_json()["publishable"]) == (
        200,
        2,
        False,
    )
    assert {(p.get("element"), p["message"]) for p in with_two.get_json()["problems"]} == {
        ("Lane_communications_manager", f'Lane "Press Office" is not a role; the roles are {", ".join(LANE_ROLES)}.'),
        ("confirm_setup", "User task has no formKey property (the form it shows)."),
    }


# ---- publishing ---------------------------------------------------------------------------------


def test_publishing_a_valid_draft_through_the_form_shows_the_new_version_in_use(api, browser_as, sessions):
    admin = browser_as("admin")
    assert upload(admin, edited()).status_code == 303
    response = admin.post(f"{PAGES}/publish", data={"csrf_token": token_of(admin), "revision": "1", **CONFIRMED})
    assert (response.status_code, response.headers["Location"]) == (303, f"{PAGES}/versions")
    page = text_of(admin.get(f"{PAGES}/versions"))
    assert f"Version 2 of “{NAME}” is published: new requests use it." in page
    assert re.search(r"\b2 in use\b", page), page
    assert not re.search(r"\b1 in use\b", page)
    assert versions(api) == [(2, True, "Admin"), (1, False, "civicflow")]
    assert audit_actions(sessions).count("process_published") == 1
    assert stored_draft(api) == (0, edited())

    assert upload(admin, shipped(KEY)).status_code == 303  # revision 1 of a new draft
    assert upload(admin, with_problems()).status_code == 303  # revision 2
    stale = admin.post(f"{PAGES}/publish", data={"csrf_token": token_of(admin), "revision": "1", **CONFIRMED})
    assert stale.status_code == 409
    assert "revision 2" in text_of(stale)
    assert versions(api) == [(2, True, "Admin"), (1, False, "civicflow")]


def test_publishing_an_invalid_draft_lists_each_problem_with_its_element_and_publishes_nothing(
    api, browser_as, sessions
):
    admin = browser_as("admin")
    assert upload(admin, with_problems()).status_code == 303
    response = admin.post(f"{PAGES}/publish", data={"csrf_token": token_of(admin), "revision": "1", **CONFIRMED})
    assert response.status_code == 400
    text = text_of(response)
    assert "Nothing was changed." in text
    assert (
        f'Press Office (Lane_communications_manager, line 35): Lane "Press Office" is not a role; the roles '
        f"are {', '.join(LANE_ROLES)}."
    ) in text
    assert re.search(
        r"Set up the account and confirm \(confirm_setup, line \d+\): User task has no formKey "
        r"property \(the form it shows\)\.",
        text,
    ), text
    assert versions(api) == [(1, True, "civicflow")]
    assert "process_published" not in audit_actions(sessions)
    assert stored_draft(api) == (1, with_problems())


def test_the_versions_page_lists_publications_and_publishes_an_earlier_version_again(client, api, browser_as):
    publish_by_api(client, api, edited())
    admin = browser_as("admin")
    page = admin.get(f"{PAGES}/versions")
    text = text_of(page)
    assert re.search(
        rf"{WHEN}: version 2 published by Admin {WHEN}: version 1 published by civicflow \(shipped\)", text
    ), text
    assert "Publish version 1 again" in text and "Publish version 2 again" not in text

    unasked = admin.post(f"{PAGES}/versions/1/publish", data={"csrf_token": csrf_token(page)})
    assert (unasked.status_code, unasked.headers["Location"]) == (303, f"{PAGES}/versions")
    assert (
        "Version 1 was not published again: Say in a sentence what changed and why: it is kept with the version. "
        "Tick the box to confirm that this version is to be published again."
    ) in text_of(admin.get(f"{PAGES}/versions"))
    assert versions(api) == [(2, True, "Admin"), (1, False, "civicflow")]

    back = "The Records Officer's check is dropped until the policy is adopted."
    response = admin.post(
        f"{PAGES}/versions/1/publish", data={"csrf_token": csrf_token(page), "note": back, "confirm": "y"}
    )
    assert (response.status_code, response.headers["Location"]) == (303, f"{PAGES}/versions")
    text = text_of(admin.get(f"{PAGES}/versions"))
    assert "Version 1 is published again: new requests use it." in text
    assert f"“{back}”" in text
    assert re.search(r"\b1 in use\b", text) and "Publish version 2 again" in text
    assert re.search(
        rf"{WHEN}: version 1 published by Admin “{re.escape(back)}” {WHEN}: version 2 published by Admin {WHEN}: "
        r"version 1 published by civicflow \(shipped\)",
        text,
    ), text
    assert versions(api) == [(2, False, "Admin"), (1, True, "Admin")]
    [_, first] = api("admin").get(f"/api/v1/processes/{KEY}/versions").get_json()
    started = api("requester").post(f"/api/v1/processes/{KEY}/instances", json={"data": START})
    assert started.get_json()["version"] == first["version_hash"]


# ---- differences and the editor page ------------------------------------------------------------


@SQLITE_ONLY
def test_the_difference_page_shows_what_was_added_and_changed(client, api, browser_as):
    publish_by_api(client, api, edited())
    text = text_of(browser_as("admin").get(f"{PAGES}/diff?from=1&to=2"))
    assert "From version 1 to version 2." in text
    assert "Added (3)" in text and "Removed (0)" in text and "Changed (1)" in text
    assert (
        "User task “Records check” records_check Lane Records Officer Form Communications review communications_review"
        in text
    )
    assert "Lane “Records Officer” Lane_records_check" in text
    # A flow without a name reads by its two ends; a reference and a form by their names, their ids beside them.
    assert (
        "Sequence flow “the flow from Records check to Communications Manager written approval” Flow_records_check "
        "From Records check records_check To Communications Manager written approval communications_review"
    ) in text
    assert (
        "Sequence flow “no” Flow_standard Property Before After To Communications Manager written approval "
        "communications_review Records check records_check"
    ) in text
    assert "Flow_records_check”" not in text and "“Flow_" not in text
    html_text = browser_as("admin").get(f"{PAGES}/diff?from=1&to=2").get_data(as_text=True)
    assert '<span title="communications_review">Communications review</span>' in html_text


@SQLITE_ONLY
def test_the_edit_page_has_the_canvas_the_problems_and_the_choices_of_the_procedure(client, api, browser_as):
    admin = browser_as("admin")
    page = admin.get(f"{PAGES}/edit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="canvas"' in html and 'id="problem-list"' in html
    assert problem_list(page) == (
        "There is no draft yet: the diagram shown is the version in use. Change it and save it to start a draft."
    )
    config = editor_config(page)
    assert (config["key"], config["name"], config["revision"], config["is_draft"]) == (KEY, NAME, 0, False)
    assert [lane["name"] for lane in config["lanes"]] == list(LANE_ROLES)
    assert [lane["role"] for lane in config["lanes"]] == list(LANE_ROLES.values())
    assert [form["key"] for form in config["form_keys"]] == sorted(procedures.get(KEY).editor_form_keys())
    assert set(procedures.get(KEY).form_keys()) <= {form["key"] for form in config["form_keys"]}
    assert sorted(deadline["kind"] for deadline in config["deadlines"]) == sorted(DEADLINE_KINDS)
    assert config["csrf_token"]
    assert admin.get(config["xml_url"]).get_data() == shipped(KEY)

    client.put(API_DRAFT, headers=api("admin").headers, data=with_problems(), content_type="application/xml")
    page = admin.get(f"{PAGES}/edit")
    config = editor_config(page)
    assert (config["revision"], config["is_draft"], config["publishable"]) == (1, True, False)
    assert {p["element"] for p in config["problems"]} == {"Lane_communications_manager", "confirm_setup"}
    listed = re.search(r'id="problem-list">(.*?)</section>', page.get_data(as_text=True), flags=re.S).group(1)
    assert "Lane_communications_manager" in listed and "confirm_setup" in listed
    assert admin.get(config["xml_url"]).get_data() == with_problems()


@SQLITE_ONLY
def test_markup_in_a_diagram_is_shown_as_text_on_every_page(client, api, browser_as):
    hostile = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    xml = set_attribute(shipped(KEY), "Lane_communications_manager", "name", hostile)
    xml = set_attribute(xml, "confirm_setup", "name", hostile)
    saved = client.put(API_DRAFT, headers=api("admin").headers, data=xml, content_type="application/xml")
    assert saved.status_code == 200
    admin = browser_as("admin")
    for path in (f"{PAGES}/edit", f"{PAGES}/diff?from=1&to=draft"):
        page = admin.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert "<script>alert(1)" not in html and "<img src=x" not in html, path
        assert hostile in text_of(page), path
    config = editor_config(admin.get(f"{PAGES}/edit"))
    assert any(p.get("name") == hostile for p in config["problems"])
    published = admin.post(f"{PAGES}/publish", data={"csrf_token": token_of(admin), "revision": "1", **CONFIRMED})
    assert published.status_code == 400
    assert "<script>alert(1)" not in published.get_data(as_text=True)
    assert f'Lane "{hostile}" is not a role' in text_of(published)
