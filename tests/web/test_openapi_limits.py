"""Every limit /api/v1/openapi.json declares is the server's: walking the served document's request bodies and query
parameters, a value just past a declared limit is refused (400) with its field named, and one at the limit is not,
so the document and the server cannot drift apart."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import PASSWORD
from web.ids import MAX_ID

PREFIX = "/api/v1"
# A body each operation with a JSON body accepts (or refuses for something other than its fields), to change one
# field at a time. An operation added to the document without one here fails test_every_json_body_is_walked.
BASES = {
    ("post", "/auth/token"): lambda city: {"username": "admin", "password": PASSWORD},
    ("post", "/processes/{key}/instances"): lambda city: {"data": {}},
    ("post", "/tasks/{task_id}/complete"): lambda city: {"data": {}},
    ("post", "/processes/{key}/publish"): lambda city: {"version": 1},
    ("post", "/instances/{instance_id}/migrate"): lambda city: {"version": 1},
    ("post", "/instances/{instance_id}/cancel"): lambda city: {"reason": "Filed twice."},
    ("post", "/public/appeals"): lambda city: {
        "appellant_name": "Jo Public",
        "appellant_email": "jo@example.org",
        "account": city.facebook,
        "comment_text": "When does the library open on Sundays?",
        "explanation": "My comment asked about City services.",
    },
    ("post", "/public/disputes"): lambda city: {
        "disputant_name": "Sam Citizen",
        "disputant_email": "sam@example.org",
        "policy_section": "Rules of Use, the removal categories",
        "basis": "The categories reach lawful speech.",
    },
}
# Declared limits the server does not check yet, each with where it must be checked; see the report of issue 18.
NOT_YET_CHECKED: dict[tuple[str, str, str], str] = {}
PATH_VALUES = {"key": "new_account_request", "task_id": str(uuid.uuid4()), "instance_id": "1"}
EMAIL_DOMAIN = "@example.org"


def _path(path: str) -> str:
    return PREFIX + re.sub(r"{(\w+)}", lambda part: PATH_VALUES[part[1]], path)


def _json_bodies(document) -> Iterator[tuple[str, str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = content["application/json"]["schema"]
                yield method, path, schema.get("oneOf", [schema])[0]  # the body itself, not wrapped in "data"


def _text(schema: dict, length: int) -> str:
    """A text of exactly `length` characters that is otherwise valid for the field."""
    if schema.get("format") == "email":
        return "a" * (length - len(EMAIL_DOMAIN)) + EMAIL_DOMAIN
    return "x" * length


def _past_and_at_limits(schema: dict) -> Iterator[tuple[str, object, object]]:
    """(limit, a value just past it, a value at it or None) for each limit a property's schema declares."""
    if "maxLength" in schema:
        yield "maxLength", _text(schema, schema["maxLength"] + 1), _text(schema, schema["maxLength"])
    if schema.get("minLength"):
        yield "minLength", "", None
    if "maximum" in schema:
        yield "maximum", schema["maximum"] + 1, None if "enum" in schema else schema["maximum"]
    if "minimum" in schema:
        yield "minimum", schema["minimum"] - 1, None
    if "enum" in schema:
        yield "enum", "not one of them" if schema.get("type") == "string" else 999_999, None
    if "maxItems" in schema:
        items = schema["items"].get("enum", ["x"])
        yield "maxItems", [f"{items[0]}{n}" for n in range(schema["maxItems"] + 1)], None


@pytest.fixture
def send(client, city):
    """POST a body as the administrator, each from its own address (the public routes' rate limits are per client)."""
    token = client.post(f"{PREFIX}/auth/token", json={"username": "admin", "password": PASSWORD}).get_json()["token"]
    count = iter(range(1, 1_000_000))

    def post(method: str, path: str, body: dict):
        address = f"10.9.{next(count) // 250}.{next(count) % 250 + 1}"
        return client.open(
            _path(path),
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            environ_overrides={"REMOTE_ADDR": address},
        )

    return post


def _messages(response, name: str) -> list[str]:
    """What a 400 says of the field (nothing for another answer)."""
    if response.status_code != 400:
        return []
    return (response.get_json() or {}).get("error", {}).get("fields", {}).get(name, [])


def _refused_naming(response, name: str) -> bool:
    return bool(_messages(response, name))


def test_every_json_body_is_walked(client):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    assert {(method, path) for method, path, _ in _json_bodies(document)} == set(BASES)


def test_every_declared_body_limit_is_the_server_s(client, city, send):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    checked = []
    for method, path, schema in _json_bodies(document):
        base = BASES[method, path](city)
        accepted = send(method, path, base)
        assert not any(_refused_naming(accepted, name) for name in schema["properties"]), (path, accepted.get_json())
        for name in schema.get("required", []):
            missing = {key: value for key, value in base.items() if key != name}
            assert _refused_naming(send(method, path, missing), name), (path, name, "required")
        if schema.get("additionalProperties") is False:
            assert _refused_naming(send(method, path, {**base, "surprise": "x"}), "surprise"), path
        for name, field in schema.get("properties", {}).items():
            for limit, past, at in _past_and_at_limits(field):
                if (path, name, limit) in NOT_YET_CHECKED:
                    continue
                refused = send(method, path, {**base, name: past})
                assert _refused_naming(refused, name), (path, name, limit, refused.get_json())
                if at is not None:  # not refused, or refused by another rule (no such removal), not the limit
                    kept = send(method, path, {**base, name: at})
                    assert _messages(kept, name) != _messages(refused, name), (path, name, limit, kept.get_json())
                checked.append((path, name, limit))
    # The public forms' texts and e-mail addresses, the ids, the versions, the enums are all declared and walked.
    assert ("/public/appeals", "appellant_email", "maxLength") in checked
    assert ("/public/disputes", "basis", "maxLength") in checked
    assert ("/public/appeals", "account", "enum") in checked
    assert ("/instances/{instance_id}/migrate", "version", "maximum") in checked
    assert ("/auth/token", "password", "minLength") in checked


def test_every_declared_query_limit_is_the_server_s(client, city):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    token = client.post(f"{PREFIX}/auth/token", json={"username": "admin", "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    checked = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            for limit, past, at in _past_and_at_limits(parameter["schema"]):
                refused = client.get(_path(path), query_string={parameter["name"]: past}, headers=headers)
                assert _refused_naming(refused, parameter["name"]), (path, parameter["name"], limit)
                if at is not None:
                    kept = client.get(_path(path), query_string={parameter["name"]: at}, headers=headers)
                    assert kept.status_code == 200, (path, parameter["name"], limit, kept.get_json())
                checked.append((path, parameter["name"], limit))
    assert ("/instances", "per_page", "maximum") in checked
    assert ("/tasks", "scope", "enum") in checked


def test_every_id_in_an_address_is_declared_with_the_database_s_bound(client):
    document = client.get(f"{PREFIX}/openapi.json").get_json()
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}, path
                    assert "404" in operation["responses"], path


def test_the_public_routes_declare_their_rate_limit_and_busy_answers_with_retry_after(client):
    paths = client.get(f"{PREFIX}/openapi.json").get_json()["paths"]
    for path, method, codes in (
        ("/public/appeals", "post", ("429", "503")),
        ("/public/disputes", "post", ("429", "503")),
        ("/public/requests/{tracking_code}", "get", ("429",)),
    ):
        for code in codes:
            assert "Retry-After" in paths[path][method]["responses"][code]["headers"], (path, code)
    assert paths["/public/appeals"]["post"]["requestBody"]["x-max-bytes"] == 256 * 1024
    assert paths["/auth/token"]["post"]["requestBody"]["x-max-bytes"] == 1024 * 1024
