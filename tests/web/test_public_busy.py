"""While another public filing's steps run in the same server process, a filing waits a moment and is then asked to
send again: 503 with Retry-After in the API, the form back as written on the page, and nothing stored."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import pytest

from engine.errors import Busy
from engine.requests import public
from tests.editing import insert_step, shipped
from tests.engine.test_public import row_counts
from tests.helpers import publish_unchecked
from tests.web.pages import csrf_token, text_of
from tests.web.test_public_pages import dispute_form


@contextmanager
def another_filing_running():
    """Hold the process's one place for a public filing's steps, as a slow filing does."""
    assert public._FILING.acquire(timeout=5)
    try:
        yield
    finally:
        public._FILING.release()


def test_a_filing_that_arrives_while_another_runs_is_asked_to_send_again_and_nothing_is_stored(client, sessions):
    with sessions() as session:
        before = row_counts(session)
    with another_filing_running():
        answer = client.post("/api/v1/public/disputes", json=dispute_form())
        token = csrf_token(client.get("/public/dispute"))
        page = client.post("/public/dispute", data={**dispute_form(), "csrf_token": token})
    with sessions() as session:
        assert row_counts(session) == before

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(Busy.retry_after)  # the app's, not the rate limiter's window
    assert "Retry-After" not in page.headers  # the form comes back at once: nothing to wait for
    assert answer.get_json()["error"]["code"] == "busy"
    assert "send yours again in a few seconds" in answer.get_json()["error"]["message"]
    assert page.status_code == 400
    assert "send yours again in a few seconds" in text_of(page)
    assert 'value="Sam Citizen"' in page.text  # the form comes back as they wrote it

    # Once the other filing is done, the same filing goes through.
    assert client.post("/api/v1/public/disputes", json=dispute_form()).status_code == 201


def test_an_anonymous_filing_s_steps_get_a_quarter_of_a_second_and_the_filer_still_gets_a_tracking_code(
    session, people, client, api
):
    burner = (
        '<bpmn:scriptTask id="weigh" name="Weigh the dispute"><bpmn:script>'
        'page = "a" * 1000000\nfor i in range(len(basis) * 100):\n    page = page.replace("a", "a")'
        "</bpmn:script></bpmn:scriptTask>"
    )
    publish_unchecked(
        session,
        people.admin,
        "legality_dispute",
        insert_step(shipped("legality_dispute"), "Flow_dispute_received", burner),
    )
    dispute = {
        "disputant_name": "Sam Citizen",
        "disputant_email": "sam.citizen@example.net",
        "policy_section": "Rules of Use",
        "basis": "They restrict protected speech, and the City may not do that.",
    }

    filed = client.post("/api/v1/public/disputes", json=dispute)

    assert filed.status_code == 201 and filed.get_json()["tracking_code"]
    [held] = api("comms").get("/api/v1/instances?status=error").get_json()["items"]
    incident = api("comms").get(f"/api/v1/instances/{held['id']}").get_json()["incident"]
    assert incident["element_id"] == "weigh"
    assert "more than its 0.25 s of computing time" in incident["message"]


@pytest.fixture
def hourly_app(settings):
    """The app with at most two filings an hour from one client: a window far longer than any Busy wait."""
    from web import create_app

    app = create_app({"TESTING": True}, settings=dataclasses.replace(settings, public_submission_limit="2 per hour"))
    yield app
    app.extensions["civicflow.engine"].dispose()


def test_a_refusal_for_too_many_filings_says_when_the_limit_resets_and_an_accepted_one_says_nothing(hourly_app):
    client = hourly_app.test_client()
    filed = [client.post("/api/v1/public/disputes", json=dispute_form()) for _ in range(2)]
    refused = client.post("/api/v1/public/disputes", json=dispute_form())

    assert [answer.status_code for answer in filed] == [201, 201]
    assert all("Retry-After" not in answer.headers for answer in filed)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    # The limiter's own reset: within the hour's window, and longer than a minute or a Busy wait could be.
    assert 60 < int(refused.headers["Retry-After"]) <= 3600
    with another_filing_running():
        busy = hourly_app.test_client().post(
            "/api/v1/public/disputes", json=dispute_form(), environ_base={"REMOTE_ADDR": "10.0.0.9"}
        )
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == str(Busy.retry_after)
