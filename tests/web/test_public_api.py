"""The public endpoints of docs/api.md: members of the public file and follow appeals and disputes with no token;
bad bodies are refused and create nothing; every client is rate limited, across web workers; on both databases."""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from engine.db.models import OutboxMail, ProcessInstance, RateLimit
from tests.engine.test_public import CODE_RE, appeal, dispute, near_codes, row_counts
from tests.web.test_api import error_of
from web.public import PUBLIC_MAX_BYTES

APPEALS, DISPUTES = "/api/v1/public/appeals", "/api/v1/public/disputes"
STATUS_KEYS = {"kind", "status", "received_at", "acknowledged_at", "responded_at", "response"}
APPEAL_FIELDS = {"appellant_name", "appellant_email", "account", "comment_text", "explanation"}
DISPUTE_FIELDS = {"disputant_name", "disputant_email", "policy_section", "basis"}
NOT_FOUND = "No request has this tracking code. Check it against your receipt."


def status_url(code: str) -> str:
    """The JSON status of a tracking code."""
    return f"/api/v1/public/requests/{code}"


def filed_code(response) -> str:
    """The tracking code of a 201 filing."""
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"tracking_code"} and CODE_RE.match(body["tracking_code"])
    return body["tracking_code"]


def counts(sessions) -> dict[str, int]:
    """Requests, public filings, letters and audit events in the database now."""
    with sessions() as session:
        return row_counts(session)


@pytest.fixture
def creates_nothing(sessions):
    """`with creates_nothing(): ...` fails if the block added a request, a filing, a letter or an audit event."""

    @contextmanager
    def check():
        before = counts(sessions)
        yield
        assert counts(sessions) == before

    return check


@pytest.fixture
def make_app(settings):
    """make_app(public_submission_limit=...): a web worker on the test database with these settings changed."""
    from web import create_app

    apps = []

    def make(**changes):
        app = create_app({"TESTING": True}, settings=dataclasses.replace(settings, **changes))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["civicflow.engine"].dispose()


def client_at(app, address: str):
    """A test client of the app whose requests come from this address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


# ---- filing and following --------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [False, True], ids=["fields", "data object"])
def test_a_member_of_the_public_files_an_appeal_and_a_dispute_and_follows_them_without_a_token(
    client, city, sessions, wrapped
):
    def body(fields):
        return {"data": fields} if wrapped else fields

    appeal_code = filed_code(client.post(APPEALS, json=body(appeal(city.facebook))))
    dispute_code = filed_code(
        client.post(DISPUTES, json=body(dispute()), headers={"Authorization": "Bearer not-a-token"})
    )
    assert appeal_code != dispute_code
    with sessions() as session:
        instances = session.scalars(select(ProcessInstance).order_by(ProcessInstance.id)).all()
        assert [(i.process_key, i.started_by_id, i.data["received_via"]) for i in instances] == [
            ("removal_appeal", None, "web"),
            ("legality_dispute", None, "web"),
        ]
        assert instances[0].data["appellant_name"] == "Jo Public"

    for code, kind, expected in ((appeal_code, "appeal", "received"), (dispute_code, "dispute", "acknowledged")):
        response = client.get(status_url(code))
        assert (response.status_code, response.mimetype) == (200, "application/json")
        shown = response.get_json()
        assert set(shown) == STATUS_KEYS
        assert (shown["kind"], shown["status"], shown["responded_at"], shown["response"]) == (
            kind,
            expected,
            None,
            None,
        )
        assert shown["received_at"].endswith("+00:00")
        assert (shown["acknowledged_at"] is None) == (kind == "appeal")
        for typed in (code.lower(), code.replace("-", "")):
            assert client.get(status_url(typed)).get_json() == shown


def test_the_json_status_follows_the_appeal_to_the_citys_response(client, api, city):
    code = filed_code(client.post(APPEALS, json=appeal(city.facebook)))
    [task] = api("comms").get("/api/v1/tasks?scope=available").get_json()["items"]
    assert api("comms").post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert client.get(status_url(code)).get_json()["status"] == "acknowledged"
    response_text = "Your comment was about the library's hours; it is reinstated."
    done = api("comms").post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": {"decision": "reinstate", "response_text": response_text}}
    )
    assert done.status_code == 200, done.get_json()
    shown = client.get(status_url(code)).get_json()
    assert shown["status"] == "responded" and shown["responded_at"]
    assert response_text in shown["response"] and "Dear Jo Public" in shown["response"]
    assert "comms" not in json.dumps(shown).lower()


# ---- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [APPEALS, DISPUTES])
@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("appellant_name=Jo", "application/x-www-form-urlencoded"),
        ('{"appellant_name": "Jo"}', "text/plain"),
        ("appellant_name=Jo", "multipart/form-data; boundary=x"),
        ('{"appellant_name": "Jo"}', None),
    ],
    ids=["form", "text", "multipart", "no content type"],
)
def test_a_body_that_is_not_json_is_415_and_creates_nothing(client, city, creates_nothing, url, data, content_type):
    with creates_nothing():
        error_of(client.post(url, data=data, content_type=content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize("url", [APPEALS, DISPUTES])
@pytest.mark.parametrize(
    "raw",
    ['{"appellant_name": ', "", "nonsense", "{'a': 1}", "[" * 100_000],
    ids=["cut short", "empty", "not json", "single quotes", "nested too deep"],
)
def test_malformed_json_is_400_naming_the_body_and_creates_nothing(client, city, creates_nothing, url, raw):
    with creates_nothing():
        error = error_of(client.post(url, data=raw, content_type="application/json"), 400, "invalid")
    assert set(error["fields"]) == {"body"}


@pytest.mark.parametrize("url", [APPEALS, DISPUTES])
@pytest.mark.parametrize(
    "body",
    [[{"appellant_name": "Jo"}], "appellant_name", 5, None, True],
    ids=["array", "string", "number", "null", "true"],
)
def test_a_json_body_that_is_not_an_object_is_400_and_creates_nothing(client, city, creates_nothing, url, body):
    with creates_nothing():
        error = error_of(client.post(url, data=json.dumps(body), content_type="application/json"), 400, "invalid")
    assert set(error["fields"]) == {"body"}


BAD_BODIES = [
    ("appeal", {}, APPEAL_FIELDS),
    ("dispute", {}, DISPUTE_FIELDS),
    ("appeal", {"data": {}}, APPEAL_FIELDS),
    ("appeal", dict.fromkeys(APPEAL_FIELDS, ""), APPEAL_FIELDS),
    ("dispute", dict.fromkeys(DISPUTE_FIELDS, "   "), DISPUTE_FIELDS),
    (
        "appeal",
        {"appellant_name": 5, "account": "facebook", "comment_text": ["a"], "removal_id": True},
        {"appellant_name", "account", "comment_text", "removal_id"},
    ),
    (
        "dispute",
        {"disputant_name": {"first": "Sam"}, "disputant_email": 7, "basis": False},
        {"disputant_name", "disputant_email", "basis"},
    ),
    ("appeal", {"appellant_email": "jo.public@", "account": 999_999}, {"appellant_email", "account"}),
    ("appeal", {"colour": "blue", "priority": 1}, {"colour", "priority"}),
    ("dispute", {"started_by_id": 1, "status": "responded"}, {"started_by_id", "status"}),
    ("appeal", {"received_via": "mail"}, {"received_via"}),
    ("dispute", {"received_via": "email"}, {"received_via"}),
    ("appeal", {"appellant_name": "n" * 201, "explanation": "e" * 10_001}, {"appellant_name", "explanation"}),
    ("dispute", {"disputant_email": "a" * 243 + "@example.org", "basis": "b" * 10_001}, {"disputant_email", "basis"}),
    ("dispute", {"policy_section": "Rules\x00of Use"}, {"policy_section"}),
]


def bad_body(city, kind, changes):
    """A filing with these changes; {} and {"data": {}} stand for themselves."""
    if changes in ({}, {"data": {}}):
        return changes
    if set(changes) >= (APPEAL_FIELDS if kind == "appeal" else DISPUTE_FIELDS):
        return changes
    return appeal(city.facebook, **changes) if kind == "appeal" else dispute(**changes)


@pytest.mark.parametrize(
    ("kind", "changes", "fields"),
    BAD_BODIES,
    ids=[
        "appeal empty",
        "dispute empty",
        "empty data",
        "appeal empty strings",
        "dispute blank strings",
        "appeal wrong types",
        "dispute wrong types",
        "bad email and account",
        "unknown fields",
        "staff-only fields",
        "appeal by mail",
        "dispute by email",
        "too long",
        "too long dispute",
        "NUL",
    ],
)
def test_bad_fields_are_400_naming_each_field_and_create_nothing(client, city, creates_nothing, kind, changes, fields):
    url = APPEALS if kind == "appeal" else DISPUTES
    with creates_nothing():
        error = error_of(client.post(url, json=bad_body(city, kind, changes)), 400, "invalid")
    assert set(error["fields"]) == fields
    for messages in error["fields"].values():
        assert messages and all(isinstance(message, str) and message for message in messages)


def escaped_filing(city, kind: str, length: int) -> str:
    """A filing as JSON text whose texts are `length` characters that JSON escapes to six bytes each."""
    if kind == "appeal":
        fields = appeal(city.facebook, appellant_name="é" * 200, comment_text="é" * length, explanation="è" * length)
    else:
        fields = dispute(disputant_name="é" * 200, policy_section="§ 4, Rules of Use", basis="é" * length)
    return json.dumps(fields)


@pytest.mark.parametrize("kind", ["appeal", "dispute"])
def test_the_largest_filing_is_accepted_and_a_body_over_the_limit_is_413(client, city, sessions, creates_nothing, kind):
    url = APPEALS if kind == "appeal" else DISPUTES
    largest = escaped_filing(city, kind, 10_000)
    assert len(largest) <= PUBLIC_MAX_BYTES and len(largest) > 60_000
    code = filed_code(client.post(url, data=largest, content_type="application/json"))
    with sessions() as session:
        [instance] = session.scalars(select(ProcessInstance)).all()
        text = instance.data["comment_text" if kind == "appeal" else "basis"]
    assert text == "é" * 10_000
    assert client.get(status_url(code)).status_code == 200
    with creates_nothing():
        error_of(
            client.post(url, data=escaped_filing(city, kind, 50_000), content_type="application/json"), 413, "too_large"
        )
        error_of(client.post(url, json={"data": appeal(city.facebook, comment_text="x" * 300_000)}), 413, "too_large")


def test_the_body_limit_is_exact(client, city, creates_nothing):
    small = json.dumps(dispute())
    filed_code(client.post(DISPUTES, data=small.ljust(PUBLIC_MAX_BYTES), content_type="application/json"))
    with creates_nothing():
        error_of(
            client.post(DISPUTES, data=small.ljust(PUBLIC_MAX_BYTES + 1), content_type="application/json"),
            413,
            "too_large",
        )


# ---- markup is text ---------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
MARKUP = f"{SCRIPT} {IMAGE} </textarea><svg onload=alert(1)> {{{{ 7*7 }}}} ' OR '1'='1"


def test_script_and_markup_in_every_field_is_stored_and_returned_as_plain_text(client, api, city, sessions):
    appeal_code = filed_code(
        client.post(
            APPEALS,
            json=appeal(city.facebook, appellant_name=IMAGE, comment_text=MARKUP, explanation=f"{SCRIPT}\n{MARKUP}"),
        )
    )
    dispute_code = filed_code(
        client.post(DISPUTES, json=dispute(disputant_name=SCRIPT, policy_section=IMAGE, basis=MARKUP))
    )
    with sessions() as session:
        appealed, disputed = session.scalars(select(ProcessInstance).order_by(ProcessInstance.id)).all()
    assert (appealed.data["appellant_name"], appealed.data["comment_text"], appealed.data["explanation"]) == (
        IMAGE,
        MARKUP,
        f"{SCRIPT}\n{MARKUP}",
    )
    assert (disputed.data["disputant_name"], disputed.data["policy_section"], disputed.data["basis"]) == (
        SCRIPT,
        IMAGE,
        MARKUP,
    )
    assert appealed.title == f"Appeal by {IMAGE} about Facebook: City of West St. Paul"

    [task] = [
        t
        for t in api("comms").get("/api/v1/tasks?scope=available").get_json()["items"]
        if t["form_key"] == "appeal_review"
    ]
    response_text = f"We read {SCRIPT} and {IMAGE} as text."
    done = api("comms").post(
        f"/api/v1/tasks/{task['id']}/complete", json={"data": {"decision": "uphold", "response_text": response_text}}
    )
    assert done.status_code == 200, done.get_json()
    response = client.get(status_url(appeal_code))
    assert response.mimetype == "application/json"
    shown = response.get_json()
    with sessions() as session:
        letter = session.scalar(select(OutboxMail.body).where(OutboxMail.letter == "response_to_appellant"))
    assert shown["response"] == letter
    assert f"Dear {IMAGE}," in shown["response"] and response_text in shown["response"]
    assert "&lt;" not in shown["response"] and "&#34;" not in shown["response"]
    assert client.get(status_url(dispute_code)).get_json()["response"] is None


# ---- tracking codes --------------------------------------------------------------------------------


def test_a_thousand_codes_near_a_real_one_are_404_through_the_api(make_app, city):
    client = client_at(make_app(public_lookup_limit="5000 per minute"), "10.0.0.7")
    code = filed_code(client.post(APPEALS, json=appeal(city.facebook)))
    answers = set()
    for near in near_codes(code):
        response = client.get(status_url(near))
        answers.add(
            (response.status_code, response.get_json()["error"]["code"], response.get_json()["error"]["message"])
        )
    assert answers == {(404, "not_found", NOT_FOUND)}
    assert client.get(status_url(code)).status_code == 200


@pytest.mark.parametrize(
    "typed",
    ["short", "K7QM-4XPA-9RTD-2WEH-5NBCX", "K7QM-4XPA-9RTD-2WEH-5NBU", "A" * 10_000, "%3Cscript%3E", "' OR 1=1 --"],
    ids=["too short", "too long", "U", "10,000 characters", "markup", "sql"],
)
def test_a_malformed_code_is_404_with_the_same_message_as_an_unknown_one(client, typed):
    error = error_of(client.get(status_url(typed)), 404, "not_found")
    assert error["message"] == NOT_FOUND


def test_a_nul_in_the_code_is_404(client):
    error_of(client.get(status_url("K7QM-4XPA-9RTD-2WEH-5NB%00")), 404, "not_found")


# ---- rate limits -----------------------------------------------------------------------------------


def assert_rate_limited(response):
    """429 in the API's error format, with a Retry-After within the window."""
    error = error_of(response, 429, "rate_limited")
    assert "Too many requests" in error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_filings_are_limited_per_client_and_shared_between_appeals_and_disputes(
    make_app, city, sessions, creates_nothing
):
    app = make_app(public_submission_limit="3 per minute")
    first, second = client_at(app, "10.0.0.1"), client_at(app, "10.0.0.2")
    filed_code(first.post(APPEALS, json=appeal(city.facebook)))
    filed_code(first.post(DISPUTES, json=dispute()))
    filed_code(first.post(APPEALS, json={"data": appeal(city.facebook)}))
    with creates_nothing():
        assert_rate_limited(first.post(DISPUTES, json=dispute()))
        assert_rate_limited(first.post(APPEALS, json=appeal(city.facebook)))
        assert_rate_limited(first.post(APPEALS, data="not json", content_type="text/plain"))
    filed_code(second.post(DISPUTES, json=dispute()))
    assert counts(sessions)["public_request"] == 4
    assert first.get(status_url("K7QM-4XPA-9RTD-2WEH-5NBC")).status_code == 404  # lookups have their own limit


def test_status_lookups_are_limited_per_client(make_app, city):
    app = make_app(public_lookup_limit="5 per minute")
    first, second = client_at(app, "10.0.0.1"), client_at(app, "10.0.0.2")
    code = filed_code(first.post(APPEALS, json=appeal(city.facebook)))
    for _ in range(4):
        assert first.get(status_url(code)).status_code == 200
    assert first.get(status_url("K7QM-4XPA-9RTD-2WEH-5NBC")).status_code == 404  # a miss counts too
    assert_rate_limited(first.get(status_url(code)))
    assert second.get(status_url(code)).get_json()["status"] == "received"
    filed_code(first.post(DISPUTES, json=dispute()))  # filings have their own limit


def test_two_web_workers_share_one_clients_limit_through_the_database(make_app, city, sessions):
    worker_a = make_app(public_submission_limit="3 per minute")
    worker_b = make_app(public_submission_limit="3 per minute")
    assert worker_a.extensions["civicflow.engine"] is not worker_b.extensions["civicflow.engine"]
    filed_code(client_at(worker_a, "10.0.0.1").post(APPEALS, json=appeal(city.facebook)))
    filed_code(client_at(worker_b, "10.0.0.1").post(DISPUTES, json=dispute()))
    filed_code(client_at(worker_a, "10.0.0.1").post(DISPUTES, json=dispute()))
    assert_rate_limited(client_at(worker_b, "10.0.0.1").post(APPEALS, json=appeal(city.facebook)))
    assert_rate_limited(client_at(worker_a, "10.0.0.1").post(APPEALS, json=appeal(city.facebook)))
    filed_code(client_at(worker_b, "10.0.0.2").post(APPEALS, json=appeal(city.facebook)))
    with sessions() as session:
        keys = session.scalars(select(RateLimit.key)).all()
        assert [k for k in keys if "10.0.0.1" in k] and [k for k in keys if "10.0.0.2" in k]
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 4


# ---- the document ------------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_public_endpoints_as_needing_no_token(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    appeals, disputes = paths["/public/appeals"]["post"], paths["/public/disputes"]["post"]
    status = paths["/public/requests/{tracking_code}"]["get"]
    for operation in (appeals, disputes, status):
        assert operation["security"] == []
        assert "429" in operation["responses"]
    for operation, fields in ((appeals, APPEAL_FIELDS), (disputes, DISPUTE_FIELDS)):
        fields_itself, wrapped = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
        assert set(fields_itself["required"]) == fields
        assert wrapped["properties"]["data"] == fields_itself  # or {"data": fields}, as the staff start takes it
        assert {"201", "400", "413", "415"} <= set(operation["responses"])
    schema = status["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == STATUS_KEYS
