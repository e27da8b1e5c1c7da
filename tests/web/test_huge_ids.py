"""An id no record can have (beyond the database's integer range) names nothing: a 404 in an address, a 400 naming
the argument in the query or the body, never a 500, on SQLite and PostgreSQL alike.

The routes are read from the app's URL map, so a route added later is covered without a change here."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import IntegerConverter

from tests.helpers import PASSWORD
from tests.web.pages import csrf_token, login
from web.ids import MAX_ID, IdConverter

HUGE = ("2147483648", "9223372036854775808", "391856083770353057792", "9" * 400)
# What the other parts of an address take: a real procedure, a kind of public filing, a file name.
OTHER_PARTS = {"key": "new_account_request", "kind": "appeal", "filename": "bpmn-viewer.js"}
# Text ids: the engine reads them as text, and a huge number names no record either.
TEXT_IDS = {"task_id", "attachment_id", "tracking_code"}
_PART = re.compile(r"<(?:[^<>]*:)?(\w+)>")  # <name>, <id:name>, <any(a, b):name>


def _routes_with_ids(app):
    """(rule, method) for every route whose address holds a record's id, and the names of its id parts."""
    for rule in app.url_map.iter_rules():
        ids = {name for name, converter in rule._converters.items() if isinstance(converter, IdConverter)}
        ids |= TEXT_IDS & set(rule.arguments)
        if not ids:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, ids


def _address(rule, ids: set[str], huge: str) -> str:
    """The route's address with the huge number for each id and an ordinary value for its other parts."""
    return _PART.sub(lambda part: huge if part[1] in ids else OTHER_PARTS.get(part[1], "1"), rule.rule)


@pytest.fixture
def as_admin(client, people):
    """Requests as the administrator, who may open every page: logged in for the pages, a token for the API."""
    login(client, "admin")
    token = client.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORD}).get_json()["token"]

    form = {"csrf_token": csrf_token(client.get("/admin/users"))}

    def send(method: str, path: str, **kw):
        """A request as the administrator; a write carries a body its view reads (JSON, or a form with its token)."""
        if path.startswith("/api/"):
            kw.setdefault("headers", {"Authorization": f"Bearer {token}"})
            if method != "GET":
                kw.setdefault("json", {"data": {}, "version": 1, "reason": "A reason."})
        elif method != "GET":
            kw.setdefault("data", form)
        return client.open(path, method=method, **kw)

    return send


def test_no_route_takes_a_number_without_the_id_bound(app):
    plain = [
        rule.rule
        for rule in app.url_map.iter_rules()
        for converter in rule._converters.values()
        if isinstance(converter, IntegerConverter) and not isinstance(converter, IdConverter)
    ]
    assert plain == [], "use <id:...> for a record's id"


def test_every_huge_id_in_an_address_is_not_found(app, as_admin):
    checked = 0
    for rule, method, ids in _routes_with_ids(app):
        for huge in HUGE:
            path = _address(rule, ids, huge)
            response = as_admin(method, path)
            assert response.status_code == 404, (method, path, response.status_code, response.get_data(as_text=True))
            if path.startswith("/api/"):
                assert response.get_json()["error"]["code"] == "not_found"
            elif "tracking_code" in ids:  # the lookup again, to correct the code
                assert "No request has this tracking code." in response.get_data(as_text=True)
            else:
                assert "Not found" in response.get_data(as_text=True)
            checked += 1
    assert checked > 30  # the instances, tasks, versions, incidents, users, departments, accounts, mail, attachments


def test_the_largest_id_is_an_ordinary_missing_record(as_admin):
    response = as_admin("GET", f"/api/v1/instances/{MAX_ID}")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == f"No request {MAX_ID}."


@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize(
    ("path", "argument"),
    [
        ("/api/v1/processes/new_account_request/diff?from={}", "from"),
        ("/api/v1/processes/new_account_request/diff?from=1&to={}", "to"),
        ("/admin/processes/new_account_request/diff?from={}", "from"),
        ("/admin/processes/new_account_request/diff?from=1&to={}", "to"),
    ],
)
def test_a_huge_number_in_the_query_is_refused_naming_the_argument(as_admin, path, argument, huge):
    response = as_admin("GET", path.format(huge))
    assert response.status_code == 400
    message = f"Must be a whole number from 1 to {MAX_ID}."
    if path.startswith("/api/"):
        assert response.get_json()["error"]["fields"] == {argument: [message]}
    else:
        assert f"{argument} is out of range." in response.get_data(as_text=True)


@pytest.mark.parametrize("huge", [int(text) for text in HUGE[:3]])
def test_a_huge_version_in_a_body_is_refused_naming_it(as_admin, huge):
    moved = as_admin("POST", "/api/v1/instances/1/migrate", json={"version": huge})  # checked before the request
    assert moved.status_code == 400
    assert moved.get_json()["error"]["fields"] == {"version": ["A version number, such as 4."]}
