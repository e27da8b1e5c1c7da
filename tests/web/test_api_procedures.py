"""The four newer procedures through the JSON API of docs/api.md: a removal with its uploaded screenshot, and the
privileged advice of a dispute kept out of every response but the attorney's and the Communications Manager's."""

from __future__ import annotations

import pytest

from tests.procedures import add_account, png_bytes
from tests.web.test_api import error_of
from tests.web.test_attachment_pages import uploaded

ADVICE = "PRIVILEGED-ADVICE: keep the categories; see memo 2026-14."


@pytest.fixture
def accounts(session, people, make_user):
    """The City's Facebook, managed by `moderator`; plus the City Attorney and the Records Officer."""
    make_user("moderator", department="communications", roles=["social_media_manager"])
    make_user("attorney", department="administration", roles=["city_attorney"])
    make_user("records", department="administration", roles=["records_officer"])
    return add_account(
        session, "City of West St. Paul", "https://facebook.com/cityofwsp", "communications", ["moderator"]
    ).id


def _removal(account_id, screenshot):
    return {
        "account_id": account_id,
        "stage": "published",
        "content_url": "https://facebook.com/cityofwsp/posts/9",
        "author_name": "J. Doe",
        "content_text": "Spam spam spam",
        "categories": ["spam"],
        "rationale": "A commercial promotion.",
        "screenshot": screenshot,
    }


def test_a_manager_files_a_removal_with_an_uploaded_screenshot_through_the_api(api, accounts):
    form = api("moderator").get("/api/v1/processes/content_removal/form").get_json()["fields"]
    by_name = {field["name"]: field for field in form}
    assert by_name["account_id"]["choices"] == [accounts]
    assert by_name["account_id"]["choice_labels"] == {str(accounts): "Facebook: City of West St. Paul"}
    assert by_name["categories"]["choice_labels"]["spam"] == "Commercial promotions or spam"
    assert by_name["screenshot"]["type"] == "image"
    image = png_bytes()
    shot = uploaded(api("moderator"), image)
    response = api("moderator").post(
        "/api/v1/processes/content_removal/instances", json={"data": _removal(accounts, shot["id"])}
    )
    assert response.status_code == 201, response.get_json()
    instance = response.get_json()
    assert [t["form_key"] for t in instance["tasks"]] == ["confirm_deletion"]
    assert [e["action"] for e in instance["history"]] == ["started", "mail_queued"]
    assert instance["history"][0]["role"] == "social_media_manager"
    # Bound to the record: the Communications Manager may now see it, a colleague may not.
    assert api("comms").get(f"/api/v1/attachments/{shot['id']}").get_data() == image
    assert api("colleague").get(f"/api/v1/attachments/{shot['id']}").status_code == 403
    task = instance["tasks"][0]["id"]
    done = api("moderator").post(f"/api/v1/tasks/{task}/complete", json={"data": {"deleted": True}})
    assert (done.status_code, done.get_json()["outcome"]) == (200, "removed")


def test_a_removal_by_someone_who_does_not_manage_the_account_is_refused_through_the_api(api, accounts):
    shot = uploaded(api("requester"), png_bytes())
    error = error_of(
        api("requester").post(
            "/api/v1/processes/content_removal/instances", json={"data": _removal(accounts, shot["id"])}
        ),
        403,
    )
    assert "content removal" in error["message"]


def test_the_attorneys_advice_and_recommendation_are_in_the_api_only_for_the_attorney_and_the_communications_manager(
    api, accounts
):
    started = (
        api("requester")
        .post(
            "/api/v1/processes/legality_dispute/instances",
            json={
                "data": {
                    "disputant_name": "Sam Citizen",
                    "disputant_email": "sam@example.net",
                    "policy_section": "Rules of Use",
                    "basis": "Too broad.",
                    "received_via": "mail",
                }
            },
        )
        .get_json()
    )
    [task] = api("attorney").get("/api/v1/tasks?scope=available").get_json()["items"]
    done = api("attorney").post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": {"advice": ADVICE, "recommendation": "no_change"}}
    )
    assert done.status_code == 200
    url = f"/api/v1/instances/{started['id']}"
    for reader in ("attorney", "comms"):
        data = api(reader).get(url).get_json()["data"]
        assert (data["advice"], data["recommendation"]) == (ADVICE, "no_change")
    for outsider in ("requester", "records"):
        body = api(outsider).get(url)
        assert body.status_code == 200
        assert ADVICE not in body.get_data(as_text=True)
        assert "advice" not in body.get_json()["data"]
        assert "recommendation" not in body.get_json()["data"]  # part of the privileged consultation too
