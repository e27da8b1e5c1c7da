"""The JSON API of docs/api.md: a new account request end to end; every bad input refused, nothing changed."""

from __future__ import annotations

import pytest

from tests.helpers import SETUP, START

START_URL = "/api/v1/processes/new_account_request/instances"


def error_of(response, status: int, code: str | None = None) -> dict:
    """The docs/api.md error object of a response, after checking its status, media type and shape."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert isinstance(error["code"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


@pytest.fixture
def waiting(api):
    """A request waiting for the Parks Department Head: (instance, its department_head_review task)."""
    response = api("requester").post(START_URL, json={"data": START})
    assert response.status_code == 201, response.get_json()
    instance = response.get_json()
    [task] = instance["tasks"]
    return instance, task


def task_url(task_id, action=""):
    """The URL of a task, or of an action on it."""
    return f"/api/v1/tasks/{task_id}" + (f"/{action}" if action else "")


# ---- the whole flow --------------------------------------------------------------------------------


def test_new_account_request_through_the_api_enters_the_account_in_the_registry(api):
    me = api("parks_head").get("/api/v1/me").get_json()
    assert (me["username"], me["department"], me["roles"]) == ("parks_head", "parks", ["department_head"])
    processes = api("requester").get("/api/v1/processes").get_json()
    assert "new_account_request" in [p["key"] for p in processes]

    started = api("requester").post(START_URL, json={"data": START})
    assert started.status_code == 201
    instance = started.get_json()
    assert (instance["status"], instance["started_by"]) == ("running", "requester")
    assert instance["data"]["account_name"] == "West St. Paul Parks"

    available = api("parks_head").get("/api/v1/tasks?scope=available").get_json()
    [head_task] = available["items"]
    assert (head_task["form_key"], head_task["instance_id"], head_task["department"]) == (
        "department_head_review",
        instance["id"],
        "parks",
    )
    assert api("requester").get("/api/v1/tasks?scope=available").get_json()["total"] == 0

    claimed = api("parks_head").post(task_url(head_task["id"], "claim"))
    assert (claimed.status_code, claimed.get_json()["assignee"]) == (200, "parks_head")
    assert [t["id"] for t in api("parks_head").get("/api/v1/tasks?scope=mine").get_json()["items"]] == [head_task["id"]]
    released = api("parks_head").post(task_url(head_task["id"], "release"))
    assert (released.status_code, released.get_json()["assignee"]) == (200, None)

    approve = {"data": {"decision": "approve"}}
    after_head = api("parks_head").post(task_url(head_task["id"], "complete"), json=approve)
    assert after_head.status_code == 200
    [comms_task] = after_head.get_json()["tasks"]
    assert comms_task["form_key"] == "communications_review"
    after_comms = api("comms").post(
        task_url(comms_task["id"], "complete"),
        json={"data": {"decision": "approve", "comment": "Approved in writing."}},
    )
    [setup_task] = after_comms.get_json()["tasks"]
    form = api("requester").get(task_url(setup_task["id"])).get_json()["form"]
    assert {f["name"] for f in form["fields"]} == set(SETUP)
    done = api("requester").post(task_url(setup_task["id"], "complete"), json={"data": SETUP})
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["outcome"]) == ("completed", "approved")

    record = api("requester").get(f"/api/v1/instances/{instance['id']}").get_json()
    assert [(e["action"], e["actor"], e["decision"], e["comment"]) for e in record["history"]] == [
        ("started", "requester", None, None),
        ("claimed", "parks_head", None, None),
        ("released", "parks_head", None, None),
        ("completed", "parks_head", "approve", None),
        ("completed", "comms", "approve", "Approved in writing."),
        ("completed", "requester", "confirmed", None),
    ]
    assert record["tasks"] == []
    [account] = [a for a in api("requester").get("/api/v1/accounts").get_json() if a["url"] == SETUP["account_url"]]
    assert (account["platform"], account["department"], account["status"]) == ("facebook", "parks", "active")
    assert [m["username"] for m in account["managers"]] == ["requester"]


# ---- bad start data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"data"}),
        ({"data": "platform=facebook"}, {"data"}),
        ({"data": ["facebook"]}, {"data"}),
        ({"data": {}}, {"platform", "account_name", "department", "purpose", "audience", "proposed_managers"}),
        (
            {"data": {**START, "platform": 5, "proposed_managers": "x", "investigative": "yes"}},
            {"platform", "proposed_managers", "investigative"},
        ),
        ({"data": {**START, "account_name": None, "purpose": ["a"]}}, {"account_name", "purpose"}),
        ({"data": {**START, "platform": "myspace"}}, {"platform"}),
        ({"data": {**START, "department": "parking"}}, {"department"}),
        ({"data": {**START, "colour": "blue", "priority": 1}}, {"colour", "priority"}),
        ({"data": {**START, "proposed_managers": ["nobody_here"]}}, {"proposed_managers"}),
        ({"data": {**START, "investigative": True}}, {"investigative"}),
        ({"data": {**START, "account_name": "x" * 201}}, {"account_name"}),
    ],
    ids=[
        "no data",
        "data a string",
        "data a list",
        "all missing",
        "wrong types",
        "null and list",
        "platform not a choice",
        "unknown department",
        "unknown fields",
        "unknown manager",
        "investigative outside police",
        "too long",
    ],
)
def test_bad_start_data_is_400_naming_each_field_and_starts_nothing(api, unchanged, body, fields):
    with unchanged():
        error = error_of(api("requester").post(START_URL, json=body), 400, "invalid")
    assert set(error["fields"]) == fields
    for messages in error["fields"].values():
        assert messages and all(isinstance(message, str) and message for message in messages)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**START, "account_name": "Parks\x00"}, "account_name"),
        ({**START, "purpose": "Announcements \ud800"}, "purpose"),
        ({**START, "proposed_managers": ["requester\x00"]}, "proposed_managers"),
    ],
    ids=["NUL", "unpaired surrogate", "NUL in a list"],
)
def test_text_that_cannot_be_stored_is_400_naming_the_field(api, unchanged, data, field):
    with unchanged():
        error = error_of(api("requester").post(START_URL, json={"data": data}), 400, "invalid")
    assert set(error["fields"]) == {field}


def test_choice_error_lists_the_allowed_values(api):
    error = error_of(api("requester").post(START_URL, json={"data": {**START, "platform": "myspace"}}), 400)
    [message] = error["fields"]["platform"]
    assert "myspace" in message and "facebook" in message


def test_unknown_process_is_404(api, unchanged):
    with unchanged():
        error_of(
            api("requester").post("/api/v1/processes/no_such_procedure/instances", json={"data": START}),
            404,
            "not_found",
        )


# ---- bad decisions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({}, {"decision"}),
        ({"decision": "maybe"}, {"decision"}),
        ({"decision": True}, {"decision"}),
        ({"decision": "reject"}, {"comment"}),
        ({"decision": "return", "comment": "   "}, {"comment"}),
        ({"decision": "approve", "signature": "x"}, {"signature"}),
    ],
)
def test_bad_decision_is_400_naming_the_field_and_leaves_the_task_open(api, waiting, unchanged, data, fields):
    _, task = waiting
    with unchanged():
        error = error_of(api("parks_head").post(task_url(task["id"], "complete"), json={"data": data}), 400)
    assert set(error["fields"]) == fields


def test_comment_that_cannot_be_stored_is_400_and_leaves_the_task_open(api, waiting, unchanged):
    _, task = waiting
    with unchanged():
        rejection = {"data": {"decision": "reject", "comment": "No\x00"}}
        error = error_of(api("parks_head").post(task_url(task["id"], "complete"), json=rejection), 400)
    assert set(error["fields"]) == {"comment"}


# A fixed UUID no task has: xdist workers must collect the same test ids.
@pytest.mark.parametrize("task_id", ["5f0c3a9e-2b71-4d8e-9a46-c1e7b3d25f08", "not-a-task", "1"])
@pytest.mark.parametrize(
    ("method", "action"), [("get", ""), ("post", "claim"), ("post", "release"), ("post", "complete")]
)
def test_unknown_task_is_404(api, waiting, unchanged, task_id, method, action):
    caller = api("parks_head")
    with unchanged():
        if method == "post":
            response = caller.post(task_url(task_id, action), json={"data": {"decision": "approve"}})
        else:
            response = caller.get(task_url(task_id))
        error_of(response, 404, "not_found")


@pytest.mark.parametrize("outsider", ["finance_head", "colleague", "officer", "admin", "requester"])
@pytest.mark.parametrize("action", ["claim", "complete"])
def test_task_of_someone_elses_lane_or_department_is_403(api, waiting, unchanged, outsider, action):
    _, task = waiting
    with unchanged():
        error_of(
            api(outsider).post(task_url(task["id"], action), json={"data": {"decision": "approve"}}), 403, "forbidden"
        )


def test_completed_task_is_409_for_complete_claim_and_release(api, waiting, unchanged):
    _, task = waiting
    approve = {"data": {"decision": "approve"}}
    assert api("parks_head").post(task_url(task["id"], "complete"), json=approve).status_code == 200
    with unchanged():
        again = api("parks_head").post(task_url(task["id"], "complete"), json=approve)
        error = error_of(again, 409, "conflict")
        assert "no longer open" in error["message"]
        error_of(api("parks_head").post(task_url(task["id"], "claim")), 409, "conflict")
        error_of(api("parks_head").post(task_url(task["id"], "release")), 409, "conflict")


def test_task_claimed_by_someone_else_cannot_be_released_by_the_requester(api, waiting, unchanged):
    _, task = waiting
    api("parks_head").post(task_url(task["id"], "claim"))
    with unchanged():
        error_of(api("requester").post(task_url(task["id"], "release")), 403, "forbidden")


# ---- bad bodies ------------------------------------------------------------------------------------


def test_malformed_json_is_400(api, unchanged):
    with unchanged():
        error = error_of(
            api("requester").post(START_URL, data='{"data": {"platform": ', content_type="application/json"),
            400,
            "invalid",
        )
    assert "body" in error["fields"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_body_that_is_not_json_is_415(api, unchanged, content_type):
    with unchanged():
        error_of(
            api("requester").post(START_URL, data="data=platform", content_type=content_type),
            415,
            "unsupported_media_type",
        )


def test_body_over_one_mib_is_413(api, waiting, unchanged):
    _, task = waiting
    huge = {"data": {**START, "purpose": "x" * (1024 * 1024 + 1)}}
    with unchanged():
        error_of(api("requester").post(START_URL, json=huge), 413, "too_large")
        long_comment = {"data": {"decision": "approve", "comment": "x" * (1024 * 1024)}}
        response = api("parks_head").post(task_url(task["id"], "complete"), json=long_comment)
        error_of(response, 413, "too_large")


@pytest.mark.parametrize("raw", ["[" * 100_000, '{"data": ' * 50_000], ids=["arrays", "objects"])
def test_json_nested_too_deep_is_400(api, unchanged, raw):
    with unchanged():
        error = error_of(api("requester").post(START_URL, data=raw, content_type="application/json"), 400)
    assert "body" in error["fields"]


def test_json_body_that_is_not_an_object_is_400(api, unchanged):
    with unchanged():
        error = error_of(api("requester").post(START_URL, json=[{"data": START}]), 400, "invalid")
    assert "body" in error["fields"]


# ---- credentials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic cmVxdWVzdGVyOmNvcnJlY3Q="},
    ],
)
def test_missing_or_wrong_token_is_401(client, people, unchanged, headers):
    with unchanged():
        for method, path in [("get", "/api/v1/me"), ("get", "/api/v1/tasks"), ("post", START_URL)]:
            response = getattr(client, method)(path, headers=headers, json={"data": START})
            error_of(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_401(client, people):
    token = login(client, "correct horse battery").get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.delete("/api/v1/auth/token", headers=headers).status_code == 204
    error_of(client.get("/api/v1/me", headers=headers), 401, "unauthorized")
    error_of(client.post(START_URL, headers=headers, json={"data": START}), 401, "unauthorized")


def login(client, password, username="requester"):
    """POST /api/v1/auth/token."""
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_the_sixth_attempt_a_minute_waits_with_retry_after_and_locks_nobody_out(client, people):
    for _ in range(5):
        error_of(login(client, "wrong password"), 401, "unauthorized")
    limited = login(client, "correct horse battery")
    error_of(limited, 429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert login(client, "correct horse battery", username="colleague").status_code == 201


def test_four_wrong_passwords_do_not_lock_the_account(client, people):
    for _ in range(4):
        error_of(login(client, "wrong password"), 401, "unauthorized")
    assert login(client, "correct horse battery").status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "requester", "password": 12345678901}, {"password"}),
        ({"username": "", "password": "correct horse battery"}, {"username"}),
    ],
)
def test_token_request_without_credentials_is_400(client, people, body, fields):
    assert set(error_of(client.post("/api/v1/auth/token", json=body), 400, "invalid")["fields"]) == fields


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "requester\x00", "password": "x"}, "username"),
        ({"username": "requester", "password": "\ud800"}, "password"),
    ],
)
def test_token_request_with_text_that_cannot_be_stored_is_400(client, people, body, field):
    assert set(error_of(client.post("/api/v1/auth/token", json=body), 400, "invalid")["fields"]) == {field}


def test_unknown_user_is_401_like_a_wrong_password(client, people):
    assert (
        error_of(login(client, "whatever", username="nobody"), 401)["message"]
        == error_of(login(client, "wrong password"), 401)["message"]
    )


# ---- query arguments and unknown paths -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/instances"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=-1", "page"),
    ],
)
def test_bad_paging_is_400_naming_the_argument(api, path, query, field):
    error = error_of(api("requester").get(f"{path}?{query}"), 400, "invalid")
    assert set(error["fields"]) == {field}


def test_unknown_scope_is_400(api):
    assert set(error_of(api("requester").get("/api/v1/tasks?scope=everything"), 400)["fields"]) == {"scope"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/processes/new_account_request%00/form", 404),
        ("post", "/api/v1/processes/new_account_request%00/instances", 404),
        ("get", "/api/v1/tasks?key=new_account_request%00", 400),
        ("get", "/api/v1/instances?key=new_account_request%00", 400),
    ],
)
def test_nul_in_the_address_is_refused_not_a_server_error(api, unchanged, method, path, status):
    with unchanged():
        error_of(getattr(api("requester"), method)(path, json={"data": START}), status)


def test_unknown_status_filter_is_400(api):
    assert set(error_of(api("requester").get("/api/v1/instances?status=lost"), 400)["fields"]) == {"status"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/nope", 404),
        ("post", "/api/v1/nope", 404),
        ("get", "/api/v1/instances/999999", 404),
        ("get", "/api/v1/instances/abc", 404),
        ("delete", "/api/v1/me", 405),
    ],
)
def test_unknown_api_path_is_json_never_html(api, method, path, status):
    response = getattr(api("requester"), method)(path)
    error_of(response, status)
    assert b"<html" not in response.data.lower()


def test_paging_reports_the_total(api):
    for _ in range(3):
        assert api("requester").post(START_URL, json={"data": START}).status_code == 201
    page = api("requester").get("/api/v1/instances?per_page=2&page=2").get_json()
    assert (page["total"], page["page"], page["per_page"], len(page["items"])) == (3, 2, 2, 1)


def test_someone_elses_request_is_403(api, waiting):
    instance, _ = waiting
    error_of(api("finance_head").get(f"/api/v1/instances/{instance['id']}"), 403, "forbidden")
