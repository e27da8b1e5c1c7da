"""Administration → Incidents in the pages: an administrator reads what failed, moves the held request to a fixed
version, retries it or cancels it, through the forms; the request page says it is held and which version it follows.

The failure is a script that raises, put on the new account request as it is filed (tests/engine/test_incidents.py
drives every kind of failure through the API).
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from engine.db.models import AuditEvent, Incident, ProcessInstance
from engine.mail import outbox
from engine.requests import services
from engine.versions import publishing
from tests.editing import insert_step, shipped
from tests.helpers import START, publish_unchecked
from tests.web.pages import csrf_token, error_next_to, login, text_of

KEY = "new_account_request"
STEP = "Check the budget"
SCRIPT = '<bpmn:scriptTask id="check" name="Check the budget"><bpmn:script>{}</bpmn:script></bpmn:scriptTask>'
BROKEN = 'raise ValueError("The budget code is missing.")'
FIXED = "checked = True"


def publish(session, admin, script: str) -> int:
    """The shipped diagram with the script step on the flow from the filing, published as the next version."""
    return publish_unchecked(session, admin, KEY, insert_step(shipped(KEY), "Flow_submitted", SCRIPT.format(script)))


def held_request(session, people, who=None) -> tuple[ProcessInstance, Incident]:
    """A request filed on a version whose new step raises: held, with its incident."""
    publish(session, people.admin, BROKEN)
    instance = services.start_instance(session, who or people.requester, KEY, START)
    session.commit()
    assert instance.status == "error"
    incident = session.scalar(select(Incident).where(Incident.instance_id == instance.id))
    return instance, incident


def admin_client(app):
    client = app.test_client()
    assert login(client, "admin").status_code == 302
    return client


def flashes(response) -> list[str]:
    return [text_of_html(m) for m in re.findall(r'<p class="flash [a-z]+">(.*?)</p>', response.get_data(as_text=True))]


def text_of_html(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def refresh(session, instance: ProcessInstance) -> ProcessInstance:
    """The request as the app left it (a new transaction: a snapshot older than the app's commit would not see it)."""
    session.commit()
    session.expire_all()
    return session.get(ProcessInstance, instance.id)


def test_only_administrators_open_the_incident_pages_and_every_form_needs_its_token(app, session, people, unchanged):
    instance, incident = held_request(session, people)
    base = f"/admin/incidents/{incident.id}"
    posts = {
        f"{base}/move": {"version": "1"},
        f"{base}/retry": {},
        f"{base}/cancel": {"reason": "Filed twice."},
        f"/admin/processes/{KEY}/versions/2/move": {"to": "1"},
    }
    anonymous = app.test_client()
    assert anonymous.get("/admin/incidents").status_code == 302  # to the login form
    # The Communications Manager oversees every request, and still may not touch incidents.
    comms = app.test_client()
    login(comms, "comms")
    token = csrf_token(comms.get("/inbox"))
    with unchanged():
        for path in ("/admin/incidents", base, "/admin/incidents?status=resolved"):
            assert comms.get(path).status_code == 403, path
        for path, data in posts.items():
            assert comms.post(path, data={**data, "csrf_token": token}).status_code == 403, path
        assert "Only administrators can see incidents." in text_of(comms.get(base))
        admin = admin_client(app)
        for path, data in posts.items():
            refused = admin.post(path, data=data)  # no token
            assert refused.status_code == 400, path
            assert "security token was missing" in text_of(refused)
        assert admin.get("/admin/incidents/999999").status_code == 404
    assert refresh(session, instance).status == "error"


def test_the_incident_says_which_step_failed_what_it_said_and_links_to_the_step_in_the_editor(
    app, session, sessions, people, mail_settings, smtp_server
):
    instance, incident = held_request(session, people)
    admin = admin_client(app)

    listed = admin.get("/admin/incidents")
    row = text_of_html(
        re.search(rf'<tr id="incident-{incident.id}">(.*?)</tr>', listed.get_data(as_text=True), re.S)[1]
    )
    assert f'#{instance.id} Facebook account "West St. Paul Parks"' in row
    assert "New social media account request failed in version 2" in row
    assert STEP in row and "ValueError: The budget code is missing." in row
    assert "as the request was filed" in row and row.endswith(" 1")  # one attempt
    assert text_of(admin.get("/admin/incidents?status=resolved")).count("Incident ") == 0
    assert f"Incident {incident.id}" in text_of(admin.get("/admin/incidents?status=open"))

    # The page the administrators' mail links to.
    outbox.deliver_due(sessions, mail_settings)
    [mail] = smtp_server.to("admin@example.org")
    path = re.search(r"http://\S+?(/admin/incidents/\d+)", mail.get_content())[1]
    page = admin.get(path)
    text = text_of(page)
    assert f"Incident {incident.id}: the step “{STEP}” failed" in text
    assert "The step failed in version 2, the version in use for new requests." in text
    assert 'The step "Check the budget" failed: ValueError: The budget code is missing.' in text
    assert "as the request was filed" in text
    names = text_of_html(re.search(r'id="incident-data-names">(.*?)</dd>', page.get_data(as_text=True), re.S)[1])
    assert re.split(r"\s*,\s*", names) == sorted({*START, "investigative"})  # what the start form set, by name only
    editor = re.search(r'href="([^"]+)">Open the step in the editor', page.get_data(as_text=True))[1]
    assert editor == f"/admin/processes/{KEY}/edit?element=check"
    assert admin.get(editor).status_code == 200
    # The administrator is no reviewer of this request: its title is shown, its page is not linked.
    assert f'href="/instances/{instance.id}"' not in page.get_data(as_text=True)
    assert "your roles do not let you open this request's page" in text
    # The only other version is the shipped one, offered (and chosen) in the move form.
    assert re.search(r'<option selected value="1">Version 1</option>', page.get_data(as_text=True))


def test_a_fixed_version_the_move_form_and_the_retry_button_move_the_request_on(app, session, people):
    instance, incident = held_request(session, people)
    fixed = publish(session, people.admin, FIXED)
    admin = admin_client(app)
    page = admin.get(f"/admin/incidents/{incident.id}")
    # The newest version is chosen: the one the fix was published as.
    assert re.search(
        rf'<option selected value="{fixed}">Version {fixed} \(in use for new requests\)</option>', page.text
    )

    moved = admin.post(
        f"/admin/incidents/{incident.id}/move", data={"version": str(fixed), "csrf_token": csrf_token(page)}
    )
    assert moved.status_code == 302 and moved.location.endswith(f"/admin/incidents/{incident.id}")
    after_move = admin.get(moved.location)
    assert flashes(after_move) == [
        f"Request {instance.id} now follows version {fixed}. It is still held: retry the step to move it on."
    ]
    assert "The request has since moved to version 3." in text_of(after_move)
    assert refresh(session, instance).status == "error"

    retried = admin.post(f"/admin/incidents/{incident.id}/retry", data={"csrf_token": csrf_token(after_move)})
    assert retried.status_code == 302
    resolved = admin.get(retried.location)
    assert flashes(resolved) == [
        f"The step ran: request {instance.id} moves again. "
        "It now waits for: Department Head approval (Department Head)."
    ]
    assert "The step was retried and the request moved on by Admin" in text_of(resolved)
    assert "Retry the step" not in text_of(resolved)  # nothing left to do
    assert (refresh(session, instance).status, refresh(session, instance).model.number) == ("running", fixed)
    assert f"Incident {incident.id}" in text_of(admin.get("/admin/incidents?status=resolved"))

    # The requester's page: no banner, the version it follows now, and when and by whom it moved.
    requester = app.test_client()
    login(requester, "requester")
    text = text_of(requester.get(f"/instances/{instance.id}"))
    assert "This request is held" not in text
    assert f"This request follows version {fixed} of the procedure. Moved from version 2" in text
    assert re.search(rf"Moved from version 2 to version {fixed} on \w+ \d+, \d{{4}} [\d:]+ [AP]M by Admin\.", text)
    for label in ("A step of the diagram failed: the request is held", "Moved to another version of the procedure"):
        assert label in text
    assert "Retried the failed step · Check the budget" in text
    assert "Department Head approval" in text  # waiting for it


def test_a_move_the_new_version_refuses_changes_nothing_and_names_the_step_that_stops_it(
    app, session, people, unchanged
):
    instance, incident = held_request(session, people)
    admin = admin_client(app)
    page = admin.get(f"/admin/incidents/{incident.id}")
    with unchanged():
        refused = admin.post(
            f"/admin/incidents/{incident.id}/move", data={"version": "1", "csrf_token": csrf_token(page)}
        )
    assert refused.status_code == 409
    summary = text_of_html(re.search(r'<div class="error-summary" role="alert">(.*?)</div>', refused.text, re.S)[1])
    assert f"Request {instance.id} cannot move to version 1 (1 problem); nothing was changed." in summary
    assert "“Check the budget” (check): " in summary
    assert refresh(session, instance).model.number == 2
    # A version the form does not offer (its own, or none at all) is refused next to the field.
    for version in ("2", "12345678901234567890", "x"):
        wrong = admin.post(
            f"/admin/incidents/{incident.id}/move", data={"version": version, "csrf_token": csrf_token(page)}
        )
        assert wrong.status_code == 400, version
        assert error_next_to(wrong, "version")


def test_a_retry_of_a_step_still_broken_keeps_the_request_held_and_says_what_it_said(app, session, people):
    instance, incident = held_request(session, people)
    admin = admin_client(app)
    page = admin.get(f"/admin/incidents/{incident.id}")
    retried = admin.post(f"/admin/incidents/{incident.id}/retry", data={"csrf_token": csrf_token(page)})
    again = admin.get(retried.location)
    assert flashes(again) == [
        f"The step failed again; request {instance.id} stays held. It said: "
        'The step "Check the budget" failed: ValueError: The budget code is missing.'
    ]
    assert "it has failed 2 times" in text_of(again)
    assert refresh(session, instance).status == "error"


def test_cancelling_needs_a_written_reason_which_the_request_keeps(app, session, people, unchanged):
    instance, incident = held_request(session, people)
    admin = admin_client(app)
    page = admin.get(f"/admin/incidents/{incident.id}")
    with unchanged():
        blank = admin.post(
            f"/admin/incidents/{incident.id}/cancel", data={"reason": "  ", "csrf_token": csrf_token(page)}
        )
    assert blank.status_code == 400
    assert error_next_to(blank, "reason") == "Write the reason; it goes in the record."

    done = admin.post(
        f"/admin/incidents/{incident.id}/cancel",
        data={"reason": "Filed twice; see the other request.", "csrf_token": csrf_token(page)},
    )
    resolved = admin.get(done.location)
    assert flashes(resolved) == [
        f"Request {instance.id} is cancelled: its open tasks are closed, and the reason is in its history."
    ]
    assert "The request was cancelled by Admin" in text_of(resolved)
    assert "Filed twice; see the other request." in text_of(resolved)
    # Acting again on a resolved incident changes nothing, and says why.
    again = admin.post(f"/admin/incidents/{incident.id}/retry", data={"csrf_token": csrf_token(resolved)})
    assert flashes(admin.get(again.location)) == [f"Incident {incident.id} is already resolved; nothing was changed."]

    requester = app.test_client()
    login(requester, "requester")
    text = text_of(requester.get(f"/instances/{instance.id}"))
    assert "cancelled" in text and "This request is held" not in text
    assert "This request follows version 2 of the procedure." in text
    assert "Cancelled · Check the budget" in text and "Filed twice; see the other request." in text


def test_the_request_page_says_it_is_held_and_which_version_it_follows(app, session, people, make_user):
    # An administrator who also oversees every request (the Records Officer) sees the request and its incident.
    make_user("clerk_admin", department="administration", roles=["admin", "records_officer"])
    instance, incident = held_request(session, people)
    requester = app.test_client()
    login(requester, "requester")
    page = requester.get(f"/instances/{instance.id}")
    text = text_of(page)
    assert (
        'This request is held at the step "Check the budget": a step of the procedure\'s diagram failed, and the '
        "administrators have been told. Nothing written on it is lost" in text
    )
    assert "/admin/incidents/" not in page.text  # only administrators get the link
    assert "This request follows version 2 of the procedure." in text
    assert "A step of the diagram failed: the request is held · Check the budget" in text

    clerk = app.test_client()
    login(clerk, "clerk_admin")
    shown = clerk.get(f"/instances/{instance.id}")
    assert f'<a href="/admin/incidents/{incident.id}">Open incident {incident.id}</a>' in shown.text

    fixed = publish(session, people.admin, FIXED)
    assert (
        f"follows version 2 of the procedure (a later version is in use for new requests). That is version {fixed}."
        in text_of(requester.get(f"/instances/{instance.id}"))
    )


@pytest.mark.parametrize("republished", [False, True], ids=["to-the-fix", "back-to-version-1"])
def test_the_versions_page_moves_the_requests_of_another_version_to_the_one_in_use(app, session, people, republished):
    earlier = services.start_instance(session, people.colleague, KEY, {**START, "account_name": "Parks Events"})
    session.commit()
    held, _ = held_request(session, people)
    if republished:
        publishing.republish(session, people.admin, KEY, 1)
    else:
        publish(session, people.admin, FIXED)
    session.commit()
    admin = admin_client(app)
    page = admin.get(f"/admin/processes/{KEY}/versions")
    buttons = re.findall(r"<button [^>]*>(Move the .*?)</button>", page.text)
    in_use = 1 if republished else 3
    if republished:
        # Version 1 is in use: only the held request is elsewhere; the other is on version 1 already.
        assert buttons == ["Move the 1 running request of version 2 to version 1"]
        moved = admin.post(f"/admin/processes/{KEY}/versions/2/move", data={"to": "1", "csrf_token": csrf_token(page)})
        shown = flashes(admin.get(moved.location))
        assert len(shown) == 1
        assert shown[0].startswith(f"Request {held.id} stays where it is: “Check the budget” (check): ")
        assert refresh(session, held).model.number == 2
        return
    assert buttons == [
        "Move the 1 running request of version 2 to version 3",
        "Move the 1 running request of version 1 to version 3",
    ]
    for number, instance in ((1, earlier), (2, held)):
        moved = admin.post(
            f"/admin/processes/{KEY}/versions/{number}/move",
            data={"to": str(in_use), "csrf_token": csrf_token(page)},
        )
        assert moved.status_code == 303
        assert flashes(admin.get(moved.location)) == [
            f"Moved 1 request of version {number} to version 3: #{instance.id}."
        ]
        assert refresh(session, instance).model.number == 3
    assert refresh(session, held).status == "error"  # moved, still held until retried
    after = admin.get(f"/admin/processes/{KEY}/versions")
    assert "Move the" not in text_of(after)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "migrated").order_by(AuditEvent.id)).all()
    assert [(e.instance_id, e.detail, e.actor) for e in events] == [
        (earlier.id, {"from_version": 1, "to_version": 3}, "admin"),
        (held.id, {"from_version": 2, "to_version": 3}, "admin"),
    ]
