"""A request returned and resubmitted 500 times (1,000 completed tasks) is still approved, rejected and withdrawn
through the API, with its whole history; SpiffWorkflow alone fails such a request after about 140 rounds.

The rounds are driven through the engine's services (as tests/procedures.py's `act` does, but committing every
few rounds); the last round and the ending go through the JSON API, as a person's client would.
"""

from __future__ import annotations

import pytest

from engine.db.models import ProcessInstance
from engine.requests import services
from tests.helpers import SETUP, START

ROUNDS = 500  # the last through the API
COMMIT_EVERY = 25  # rounds
RETURN = {"decision": "return", "comment": "Say who will moderate it."}
RESUBMIT = {"action": "resubmit"}
START_URL = "/api/v1/processes/new_account_request/instances"

# Each ending after the rounds: its steps as (who, form key, data); the outcome; the decisions its history shows.
ENDINGS = {
    "approved": (
        (
            ("parks_head", "department_head_review", {"decision": "approve"}),
            ("comms", "communications_review", {"decision": "approve", "comment": "Approved in writing."}),
            ("requester", "confirm_setup", SETUP),
        ),
        "approved",
        [("parks_head", "approve"), ("comms", "approve"), ("requester", "confirmed")],
    ),
    "rejected": (
        (("parks_head", "department_head_review", {"decision": "reject", "comment": "No."}),),
        "rejected",
        [("parks_head", "reject")],
    ),
    "withdrawn": (
        (("parks_head", "department_head_review", RETURN), ("requester", "revise_request", {"action": "withdraw"})),
        "withdrawn",
        [("parks_head", "return"), ("requester", "withdraw")],
    ),
}


def _complete_through_the_api(api, instance: dict, username: str, form_key: str, data: dict) -> dict:
    """Complete the request's one open task, which has this form, as `username` through the API; the instance."""
    [task] = instance["tasks"]
    assert task["form_key"] == form_key
    response = api(username).post(f"/api/v1/tasks/{task['id']}/complete", json={"data": data})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _returned_and_resubmitted(session, people, instance_id: int, rounds: int) -> None:
    """Return and resubmit the request `rounds` times through the engine's services, committing every few rounds
    (each step flushes as it does under the API; fewer commits keep the test quick)."""
    instance = session.get(ProcessInstance, instance_id)
    steps = ((people.parks_head, "department_head_review", RETURN), (people.requester, "revise_request", RESUBMIT))
    for number in range(1, rounds + 1):
        for actor, form_key, data in steps:
            [task] = services.open_tasks_of(session, instance)
            assert task.form_key == form_key, f"round {number}: {task.form_key} open"
            services.complete_task(session, actor, task.id, data)
        if number % COMMIT_EVERY == 0:
            session.commit()
    session.commit()


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_request_returned_and_resubmitted_500_times_still_ends_through_the_api(api, session, people, ending):
    started = api("requester").post(START_URL, json={"data": START})
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]
    _returned_and_resubmitted(session, people, instance_id, ROUNDS - 1)

    url = f"/api/v1/instances/{instance_id}"
    instance = api("requester").get(url).get_json()
    instance = _complete_through_the_api(api, instance, "parks_head", "department_head_review", RETURN)
    instance = _complete_through_the_api(api, instance, "requester", "revise_request", RESUBMIT)
    steps, outcome, decided = ENDINGS[ending]
    for username, form_key, data in steps:
        instance = _complete_through_the_api(api, instance, username, form_key, data)

    seen = api("requester").get(url).get_json()
    assert (seen["status"], seen["outcome"], seen["tasks"]) == ("completed", outcome, [])
    decisions = [(e["actor"], e["decision"]) for e in seen["history"] if e["action"] == "completed"]
    assert decisions == [("parks_head", "return"), ("requester", "resubmit")] * ROUNDS + decided
    if ending == "approved":
        urls = [account["url"] for account in api("requester").get("/api/v1/accounts").get_json()]
        assert SETUP["account_url"] in urls
