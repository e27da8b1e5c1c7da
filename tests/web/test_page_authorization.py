"""Guessing a URL shows nothing: another department's task, another person's request, an investigative profile."""

from __future__ import annotations

from engine.requests import services
from tests.helpers import SETUP, START, only_open_task, start_request
from tests.web.pages import csrf_token, text_of

INVESTIGATIVE = {
    **START,
    "department": "police",
    "account_name": "Undercover 1",
    "investigative": True,
    "proposed_managers": ["officer"],
}


def _approve(session, actor, task):
    services.complete_task(session, actor, task.id, {"decision": "approve"})
    session.commit()


def _investigative_profile(session, people):
    """An investigative profile taken through to the registry: (instance, account_id)."""
    instance = start_request(session, people.officer, INVESTIGATIVE)
    _approve(session, people.police_chief, only_open_task(session, instance))
    _approve(session, people.lieutenant, only_open_task(session, instance))
    services.complete_task(
        session,
        people.officer,
        only_open_task(session, instance).id,
        {"username": "wsp-undercover-1", "password": "a unique password 1"},
    )
    session.commit()
    return instance, instance.data["account_id"]


def test_the_head_of_another_department_cannot_open_take_or_decide_the_task(browser_as, session, people, unchanged):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    page = browser_as("finance_head")
    token = csrf_token(page.get("/inbox"))
    with unchanged():
        opened = page.get(f"/tasks/{task.id}")
        taken = page.post(f"/tasks/{task.id}/claim", data={"csrf_token": token})
        decided = page.post(f"/tasks/{task.id}", data={"decision": "approve", "csrf_token": token})
    assert opened.status_code == taken.status_code == decided.status_code == 403
    assert "West St. Paul Parks" not in text_of(opened) + text_of(taken) + text_of(decided)
    assert "Not yours to open" in text_of(opened)


def test_a_colleague_cannot_open_another_persons_request_or_its_diagram(browser_as, session, people):
    instance = start_request(session, people.requester)
    page = browser_as("colleague")
    for path in (
        f"/instances/{instance.id}",
        f"/instances/{instance.id}/diagram.bpmn",
        f"/tasks/{only_open_task(session, instance).id}",
    ):
        response = page.get(path)
        assert response.status_code == 403, path
        assert "West St. Paul Parks" not in text_of(response)
    assert "West St. Paul Parks" not in text_of(page.get("/instances"))


def test_the_requester_may_read_their_request_but_not_decide_the_heads_task(browser_as, session, people):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    page = browser_as("requester")
    shown = text_of(page.get(f"/tasks/{task.id}"))
    assert "West St. Paul Parks" in shown
    assert "this task is for the Department Head of Parks and Recreation" in shown
    response = page.post(
        f"/tasks/{task.id}", data={"decision": "approve", "csrf_token": csrf_token(page.get("/inbox"))}
    )
    assert response.status_code == 403


def test_an_investigative_request_is_hidden_from_the_communications_manager(browser_as, session, people):
    instance = start_request(session, people.officer, INVESTIGATIVE)
    task = only_open_task(session, instance)
    page = browser_as("comms")
    for path in (f"/instances/{instance.id}", f"/tasks/{task.id}", f"/instances/{instance.id}/diagram.bpmn"):
        response = page.get(path)
        assert response.status_code == 403, path
        assert "Undercover 1" not in text_of(response)
    assert "Undercover 1" not in text_of(page.get("/instances"))
    assert "Undercover 1" not in text_of(page.get("/inbox?view=available"))


def test_an_investigative_profile_is_in_the_registry_only_for_police_roles(browser_as, session, people):
    _, account_id = _investigative_profile(session, people)
    comms = browser_as("comms")
    assert "Undercover 1" not in text_of(comms.get("/registry"))
    refused = comms.post(f"/registry/{account_id}/credentials", data={"csrf_token": csrf_token(comms.get("/inbox"))})
    assert refused.status_code == 404 and "wsp-undercover-1" not in text_of(refused)
    lieutenant = browser_as("lieutenant")
    assert "Undercover 1" in text_of(lieutenant.get("/registry"))
    shown = lieutenant.post(
        f"/registry/{account_id}/credentials", data={"csrf_token": csrf_token(lieutenant.get("/registry"))}
    )
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert "wsp-undercover-1" in text_of(shown) and "recorded in the audit trail" in text_of(shown)


def test_the_registry_shows_a_new_account_with_its_manager_and_approver(browser_as, session, people):
    instance = start_request(session, people.requester)
    _approve(session, people.parks_head, only_open_task(session, instance))
    _approve(session, people.comms, only_open_task(session, instance))
    services.complete_task(session, people.requester, only_open_task(session, instance).id, SETUP)
    session.commit()
    shown = text_of(browser_as("colleague").get("/registry"))
    assert "West St. Paul Parks" in shown
    assert "Requester (Comms (Communications Manager)" in shown


def test_an_unknown_or_malformed_task_or_request_is_not_found(browser_as):
    page = browser_as("parks_head")
    assert page.get("/tasks/not-a-uuid").status_code == 404
    assert page.get("/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert page.get("/instances/999999").status_code == 404
    assert "No request 999999." in text_of(page.get("/instances/999999"))


def test_a_start_form_of_an_unknown_procedure_is_not_found(browser_as):
    assert browser_as("requester").get("/requests/new/no_such_procedure").status_code == 404
