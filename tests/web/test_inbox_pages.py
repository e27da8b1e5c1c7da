"""The inbox and the task page as staff use them: what waits, taking and giving back, signing off in writing."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

from sqlalchemy import update

from engine.db.models import Task
from engine.requests import services
from engine.time import clock
from tests.helpers import START, only_open_task, start_request
from tests.web.pages import csrf_token, error_next_to, post_form, text_of

START_PAGE = "/requests/new/new_account_request"
FORM = {**START, "proposed_managers": "requester"}


def _waiting_for_head(session, people):
    """A request filed by the requester, waiting for the Parks head: (instance, task)."""
    instance = start_request(session, people.requester)
    return instance, only_open_task(session, instance)


def test_filing_a_request_in_the_browser_shows_where_it_waits(browser_as, session):
    page = browser_as("requester")
    response = post_form(page, START_PAGE, FORM)
    assert response.status_code == 302
    shown = text_of(page.get(response.headers["Location"]))
    assert 'Your request Facebook account "West St. Paul Parks" was submitted.' in shown
    assert "It now waits for: Department Head approval (Department Head)." in shown
    assert "Submitted the request" in shown


def test_the_new_request_page_lists_the_procedures_one_may_start(browser_as):
    shown = text_of(browser_as("requester").get("/requests/new"))
    assert "New social media account request" in shown


def test_a_start_form_with_missing_fields_names_each_one_and_files_nothing(browser_as, unchanged):
    page = browser_as("requester")
    with unchanged():
        response = post_form(page, START_PAGE, {**FORM, "purpose": "", "account_name": ""})
    assert response.status_code == 400
    assert error_next_to(response, "purpose") == "This field is required."
    assert error_next_to(response, "account_name") == "This field is required."
    assert re.search(r'<option selected value="facebook">', response.get_data(as_text=True))  # kept as chosen


def test_a_start_form_with_a_platform_outside_its_choices_is_refused_next_to_it(browser_as, unchanged):
    with unchanged():
        response = post_form(browser_as("requester"), START_PAGE, {**FORM, "platform": "myspace"})
    assert response.status_code == 400
    assert error_next_to(response, "platform") == "Not a valid choice."


def test_the_engines_own_refusal_appears_next_to_its_field(browser_as, unchanged):
    with unchanged():
        response = post_form(browser_as("requester"), START_PAGE, {**FORM, "proposed_managers": "nobody.here"})
    assert response.status_code == 400
    assert error_next_to(response, "proposed_managers") == "No active user named: nobody.here."


def test_a_start_form_without_the_csrf_token_is_refused_and_files_nothing(browser_as, unchanged):
    page = browser_as("requester")
    with unchanged():
        response = page.post(START_PAGE, data=FORM)
    assert response.status_code == 400
    assert "security token was missing" in text_of(response)


def test_a_refused_token_offers_the_way_back_to_the_form_on_this_site_only(browser_as):
    page = browser_as("requester")
    here = page.post(START_PAGE, data=FORM, headers={"Referer": f"http://localhost{START_PAGE}"})
    assert f'href="http://localhost{START_PAGE}">Back to the form' in here.get_data(as_text=True)
    elsewhere = page.post(START_PAGE, data=FORM, headers={"Referer": "https://evil.example/form"})
    assert "evil.example" not in elsewhere.get_data(as_text=True)
    assert "Back to the form" not in text_of(elsewhere)


def test_the_head_sees_the_request_with_who_asked_and_when(browser_as, session, people):
    _waiting_for_head(session, people)
    shown = text_of(browser_as("parks_head").get("/inbox?view=available"))
    assert "Department Head approval" in shown
    assert 'Facebook account "West St. Paul Parks"' in shown
    assert "Requester" in shown and "New social media account request" in shown
    assert "Inbox 0 assigned to you · 1 you may take" in shown  # the navigation's counts, in words


def test_taking_and_giving_back_moves_the_task_between_the_views(browser_as, session, people):
    _, task = _waiting_for_head(session, people)
    page = browser_as("parks_head")
    response = post_form(page, f"/tasks/{task.id}/claim", {}, page_path="/inbox?view=available")
    assert response.headers["Location"] == f"/tasks/{task.id}"
    assert "You took Department Head approval" in text_of(page.get(response.headers["Location"]))
    assert "West St. Paul Parks" in text_of(page.get("/inbox?view=mine"))
    assert "Nothing is waiting for your roles" in text_of(page.get("/inbox?view=available"))
    response = post_form(page, f"/tasks/{task.id}/release", {}, page_path=f"/tasks/{task.id}")
    assert "it is available to your colleagues again" in text_of(page.get(response.headers["Location"]))
    assert "West St. Paul Parks" in text_of(page.get("/inbox?view=available"))


def test_a_task_taken_by_a_colleague_says_who_has_it(browser_as, session, people, make_user, unchanged):
    instance, task = _waiting_for_head(session, people)
    services.complete_task(session, people.parks_head, task.id, {"decision": "approve"})
    review = only_open_task(session, instance)
    services.claim_task(session, people.comms, review.id)
    session.commit()
    make_user("deputy", department="communications", roles=["communications_manager"])
    page = browser_as("deputy")
    token = csrf_token(page.get("/inbox"))
    with unchanged():
        response = page.post(f"/tasks/{review.id}/claim", data={"csrf_token": token})
    assert response.headers["Location"] == "/inbox?view=available"
    assert "This task was already claimed by Comms." in text_of(page.get("/inbox?view=available"))
    shown = text_of(page.get(f"/tasks/{review.id}"))
    assert "Comms has taken this task; only they can complete it now." in shown


def test_approving_sends_the_request_on_with_a_message_saying_so(browser_as, session, people):
    _, task = _waiting_for_head(session, people)
    page = browser_as("parks_head")
    response = post_form(page, f"/tasks/{task.id}", {"decision": "approve", "comment": "Fine by Parks."})
    assert response.headers["Location"] == "/inbox"
    shown = text_of(page.get("/inbox"))
    assert "Department Head approval done for Facebook account" in shown
    assert "It now waits for: Communications Manager written approval (Communications Manager)." in shown
    session.rollback()  # a fresh snapshot: the page changed the database
    comms = text_of(browser_as("comms").get(f"/tasks/{only_open_task(session, task.instance).id}"))
    assert "Approved · Department Head approval" in comms and "Fine by Parks." in comms


def test_rejecting_without_a_written_reason_is_refused_next_to_the_comment(browser_as, session, people, unchanged):
    _, task = _waiting_for_head(session, people)
    page = browser_as("parks_head")
    with unchanged():
        response = post_form(page, f"/tasks/{task.id}", {"decision": "reject", "comment": ""})
    assert response.status_code == 400
    assert error_next_to(response, "comment") == "Write the reasons to reject the request."
    assert re.search(r'<input checked[^>]*value="reject"', response.get_data(as_text=True))


def test_a_decision_outside_its_choices_is_refused_next_to_the_field(browser_as, session, people, unchanged):
    _, task = _waiting_for_head(session, people)
    with unchanged():
        response = post_form(browser_as("parks_head"), f"/tasks/{task.id}", {"decision": "shrug"})
    assert response.status_code == 400
    assert error_next_to(response, "decision") == "Not a valid choice."


def test_a_decision_without_the_csrf_token_is_refused_and_changes_nothing(browser_as, session, people, unchanged):
    _, task = _waiting_for_head(session, people)
    page = browser_as("parks_head")
    with unchanged():
        response = page.post(f"/tasks/{task.id}", data={"decision": "approve"})
        claim = page.post(f"/tasks/{task.id}/claim")
    assert response.status_code == 400 and claim.status_code == 400
    assert "security token was missing" in text_of(response)


def test_a_decision_on_a_task_already_done_says_it_is_no_longer_open(browser_as, session, people):
    _, task = _waiting_for_head(session, people)
    page = browser_as("parks_head")
    token = csrf_token(page.get(f"/tasks/{task.id}"))
    first = page.post(f"/tasks/{task.id}", data={"decision": "approve", "csrf_token": token})
    second = page.post(f"/tasks/{task.id}", data={"decision": "approve", "csrf_token": token})
    assert first.status_code == second.status_code == 302
    assert "Department Head approval is no longer open: it was completed." in text_of(page.get("/inbox"))


def test_a_returned_request_reopens_for_the_requester_with_its_current_values(browser_as, session, people):
    instance, task = _waiting_for_head(session, people)
    post_form(browser_as("parks_head"), f"/tasks/{task.id}", {"decision": "return", "comment": "Name it WSP Parks."})
    session.rollback()
    revise = only_open_task(session, instance)
    page = browser_as("requester")
    assert "Revise or withdraw the request" in text_of(page.get("/inbox"))
    form_page = page.get(f"/tasks/{revise.id}")
    assert 'value="West St. Paul Parks"' in form_page.get_data(as_text=True)
    assert "Name it WSP Parks." in text_of(form_page)
    response = post_form(
        page,
        f"/tasks/{revise.id}",
        {"action": "resubmit", "account_name": "WSP Parks", "platform": "facebook", "department": "parks"},
    )
    assert response.status_code == 302, text_of(response)[-600:]
    session.rollback()
    assert session.get(type(instance), instance.id).title == 'Facebook account "WSP Parks"'


def test_the_inbox_filters_overdue_tasks_and_marks_them(browser_as, session, people):
    _, late = _waiting_for_head(session, people)
    _, fresh = _waiting_for_head(session, people)
    session.execute(update(Task).where(Task.id == late.id).values(due_at=clock.utcnow() - timedelta(days=2)))
    session.execute(update(Task).where(Task.id == fresh.id).values(due_at=clock.utcnow() + timedelta(days=2)))
    session.commit()
    page = browser_as("parks_head")
    everything = page.get("/inbox?view=available").get_data(as_text=True)
    assert everything.count("/claim") == 2 and "Overdue since" in everything
    overdue = page.get("/inbox?view=available&overdue=1").get_data(as_text=True)
    assert overdue.count("/claim") == 1 and f"/tasks/{late.id}/claim" in overdue


def test_the_inbox_filters_by_procedure_and_ignores_an_unknown_one(browser_as, session, people):
    _waiting_for_head(session, people)
    page = browser_as("parks_head")
    filtered = page.get("/inbox?view=available&process=new_account_request").get_data(as_text=True)
    assert "/claim" in filtered and '<option value="new_account_request" selected>' in filtered
    unknown = page.get("/inbox?view=available&process=no_such_procedure")
    assert unknown.status_code == 200 and "/claim" in unknown.get_data(as_text=True)


def test_the_inbox_pages_through_many_tasks(browser_as, session, people):
    for _ in range(27):
        start_request(session, people.requester)
    page = browser_as("parks_head")
    first = page.get("/inbox?view=available")
    assert first.get_data(as_text=True).count("/claim") == 25
    assert "Page 1 of 2 (27 tasks)" in text_of(first)
    second = page.get("/inbox?view=available&page=2")
    assert second.get_data(as_text=True).count("/claim") == 2
    assert "Page 2 of 2 (27 tasks)" in text_of(second)
    assert page.get("/inbox?view=available&page=abc").status_code == 200


def test_an_unknown_inbox_view_is_not_found(browser_as):
    assert browser_as("parks_head").get("/inbox?view=everything").status_code == 404


def test_the_instance_page_shows_history_record_and_the_diagram_progress(browser_as, session, people, app):
    instance, task = _waiting_for_head(session, people)
    post_form(browser_as("parks_head"), f"/tasks/{task.id}", {"decision": "approve", "comment": "Yes."})
    response = browser_as("requester").get(f"/instances/{instance.id}")
    shown = text_of(response)
    assert "Submitted the request Requester (Requester)" in shown
    assert "Approved · Department Head approval Parks_Head (Department Head)" in shown
    assert "Waiting for Communications Manager written approval" in shown
    body = response.get_data(as_text=True)
    done = json.loads(html.unescape(re.search(r'data-done="([^"]*)"', body).group(1)))
    current = json.loads(html.unescape(re.search(r'data-current="([^"]*)"', body).group(1)))
    assert {"request_submitted", "department_head_review"} <= set(done)
    assert current == ["communications_review"]
    diagram = browser_as("requester").get(f"/instances/{instance.id}/diagram.bpmn")
    assert diagram.status_code == 200 and b"bpmn:definitions" in diagram.data


def test_the_instance_page_says_how_to_install_a_missing_viewer(browser_as, session, people, app):
    instance, _ = _waiting_for_head(session, people)
    app.extensions["civicflow.viewer"] = False
    shown = text_of(browser_as("requester").get(f"/instances/{instance.id}"))
    assert "The diagram viewer (bpmn-js) is not installed" in shown and "make assets" in shown
    assert "Submitted the request" in shown  # the rest of the page still works


def test_the_viewer_is_served_locally(client, app):
    if not app.extensions["civicflow.viewer"]:
        raise AssertionError("bpmn-js is not installed: run `make assets`")
    response = client.get("/vendor/bpmn-js/bpmn-viewer.production.min.js")
    response.close()
    assert response.status_code == 200 and response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/vendor/bpmn-js/../../package.json").status_code == 404


def test_the_inbox_opens_where_the_work_is_and_counts_in_words(browser_as, session, people):
    _, task = _waiting_for_head(session, people)
    session.commit()
    page = browser_as("parks_head")
    inbox = page.get("/inbox").get_data(as_text=True)
    views = inbox.split('aria-label="Inbox views"')[1].split("</nav>")[0]
    assert re.search(r'aria-current="page">\s*Available to me', views)  # nothing assigned: it opens on what to take
    assert "West St. Paul Parks" in text_of(page.get("/inbox"))
    assert "Inbox 0 assigned to you · 1 you may take" in text_of(page.get("/inbox"))

    post_form(page, f"/tasks/{task.id}/claim", {}, page_path=f"/tasks/{task.id}")
    shown = text_of(page.get("/inbox"))
    assert "Inbox 1 assigned to you · 0 you may take" in shown
    assert "Assigned to me 1 task Available to me no tasks" in shown
    assert "West St. Paul Parks" in shown  # now it opens on what is assigned
    assert "Inbox nothing waiting" in text_of(browser_as("colleague").get("/inbox"))
