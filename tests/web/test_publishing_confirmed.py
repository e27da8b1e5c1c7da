"""Publishing as an administrator sees it: one true sentence on where the draft stands (the dry run's refusals
included), a confirmation and a note of what changed and why, kept with the publication and shown with the version.
"""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from engine.db.models import AuditEvent
from engine.versions.publishing import MAX_NOTE
from tests.editing import add_step_before, insert_step, shipped
from tests.web.pages import csrf_token, error_next_to, text_of

KEY = "new_account_request"
PAGES = f"/admin/processes/{KEY}"
API = f"/api/v1/processes/{KEY}"
NOTE = "A Records Officer checks each request before the Communications Manager, as the policy now asks."
NO_DRAFT = "There is no draft yet: the diagram shown is the version in use. Change it and save it to start a draft."
PUBLISHABLE = "No problems: this draft can be published."


def failing_after_rejection() -> bytes:
    """A script that raises only on the path of the Department Head's "reject": it loads, but the dry run fails."""
    return insert_step(
        shipped(KEY),
        "Flow_head_rejected",
        '<bpmn:scriptTask id="check" name="Check the budget"><bpmn:script>raise ValueError("No budget code.")'
        "</bpmn:script></bpmn:scriptTask>",
    )


def problem_list(page) -> str:
    """What the editor's problem list says, as a person reads it."""
    match = re.search(r'id="problem-list">(.*?)</section>', page.get_data(as_text=True), flags=re.S)
    assert match, "the edit page has no problem list"
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()


def save(client, api, xml: bytes):
    saved = client.put(f"{API}/draft", headers=api("admin").headers, data=xml, content_type="application/xml")
    assert saved.status_code == 200, saved.get_json()
    return saved.get_json()


def post_publish(admin, **fields):
    token = csrf_token(admin.get(f"{PAGES}/edit"))
    return admin.post(f"{PAGES}/publish", data={"csrf_token": token, **fields})


def published_events(sessions) -> list[dict]:
    with sessions() as s:
        return list(s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "process_published")))


def test_the_editor_says_one_true_sentence_on_where_the_draft_stands(client, api, browser_as):
    admin = browser_as("admin")
    page = admin.get(f"{PAGES}/edit")
    assert problem_list(page) == NO_DRAFT
    assert "No problems" not in text_of(page) and "There is no draft to publish yet" not in text_of(page)

    save(client, api, add_step_before(shipped(KEY), "communications_review"))
    page = admin.get(f"{PAGES}/edit")
    assert problem_list(page) == PUBLISHABLE
    assert "no draft" not in text_of(page).lower()


def test_a_draft_the_dry_run_refuses_lists_its_failing_step_and_is_never_called_publishable(client, api, browser_as):
    saved = save(client, api, failing_after_rejection())
    assert saved["publishable"] is False
    assert [p["element"] for p in saved["problems"]] == ["check"]

    admin = browser_as("admin")
    listed = problem_list(admin.get(f"{PAGES}/edit"))
    assert listed.startswith("1 problem must be fixed and saved before this draft can be published: Check the budget")
    assert "ValueError: No budget code." in listed and "No problems" not in listed

    refused = post_publish(admin, revision="1", note=NOTE, confirm="y")
    assert refused.status_code == 400
    assert "The diagram fails when it runs" in text_of(refused)
    listed = problem_list(refused)
    assert listed.startswith("1 problem must be fixed and saved before this draft can be published:"), listed
    assert "No problems" not in listed
    assert [v["version"] for v in api("admin").get(f"{API}/versions").get_json()] == [1]


def test_publishing_asks_for_a_confirmation_and_a_note_and_shows_the_note_with_the_version(
    client, api, browser_as, sessions
):
    save(client, api, add_step_before(shipped(KEY), "communications_review"))
    admin = browser_as("admin")
    page = admin.get(f"{PAGES}/edit")
    assert 'name="note"' in page.get_data(as_text=True) and 'name="confirm"' in page.get_data(as_text=True)
    assert "See what the draft changes" in text_of(page)

    unasked = post_publish(admin, revision="1")
    assert unasked.status_code == 400
    assert "The draft was not published: publishing needs a confirmation and a note." in text_of(unasked)
    assert error_next_to(unasked, "note") == "Say in a sentence what changed and why: it is kept with the version."
    assert error_next_to(unasked, "confirm") == "Tick the box to confirm that this draft is to be published."
    unconfirmed = post_publish(admin, revision="1", note=NOTE)
    assert unconfirmed.status_code == 400 and NOTE in unconfirmed.get_data(as_text=True)  # the note is kept
    assert error_next_to(unconfirmed, "confirm")
    blank = post_publish(admin, revision="1", note="   ", confirm="y")
    assert error_next_to(blank, "note") == "Say in a sentence what changed and why: it is kept with the version."
    too_long = post_publish(admin, revision="1", note="x" * (MAX_NOTE + 1), confirm="y")
    assert error_next_to(too_long, "note") == f"At most {MAX_NOTE} characters."
    assert [v["version"] for v in api("admin").get(f"{API}/versions").get_json()] == [1]
    assert published_events(sessions) == []

    done = post_publish(admin, revision="1", note=NOTE, confirm="y")
    assert (done.status_code, done.headers["Location"]) == (303, f"{PAGES}/versions")
    versions_page = text_of(admin.get(f"{PAGES}/versions"))
    assert versions_page.count(f"“{NOTE}”") == 2  # with the version, and in the list of publications
    [event] = published_events(sessions)
    assert event["note"] == NOTE and event["version"] == 2
    listed = {v["version"]: v["note"] for v in api("admin").get(f"{API}/versions").get_json()}
    assert listed == {2: NOTE, 1: None}


def test_the_api_publishes_with_an_optional_note_and_refuses_a_bad_one_naming_the_field(client, api, sessions):
    save(client, api, add_step_before(shipped(KEY), "communications_review"))
    bad = api("admin").post(f"{API}/publish", json={"note": 42})
    assert bad.status_code == 400 and "note" in bad.get_json()["error"]["fields"]
    long = api("admin").post(f"{API}/publish", json={"note": "x" * (MAX_NOTE + 1)})
    assert long.status_code == 400 and "note" in long.get_json()["error"]["fields"]
    published = api("admin").post(f"{API}/publish", json={"note": f"  {NOTE}  "})
    assert published.status_code == 200, published.get_json()
    assert (published.get_json()["version"], published.get_json()["note"]) == (2, NOTE)
    again = api("admin").post(f"{API}/publish", json={"version": 1})  # no note: still published
    assert (again.status_code, again.get_json()["note"]) == (200, None)
    assert {v["version"]: v["note"] for v in api("admin").get(f"{API}/versions").get_json()} == {2: NOTE, 1: None}
    assert [e.get("note") for e in published_events(sessions)] == [NOTE, None]
