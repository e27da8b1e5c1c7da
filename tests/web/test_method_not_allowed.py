"""A request with a method an address does not take is a 405 whose Allow header names the methods it does take,
on every route (read from the app's URL map, so a route added later is covered), in the API and on the pages."""

from __future__ import annotations

import re

_PART = re.compile(r"<(?:[^<>]*:)?(\w+)>")
VALUES = {"key": "new_account_request", "kind": "dispute", "filename": "bpmn-viewer.js"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _addresses(app):
    """Each distinct address of the app, with an ordinary value in each of its parts."""
    return sorted({_PART.sub(lambda part: VALUES.get(part[1], "1"), rule.rule) for rule in app.url_map.iter_rules()})


def _allow(response) -> set[str]:
    return {method.strip() for method in response.headers.get("Allow", "").split(",") if method.strip()}


def test_every_405_names_the_methods_the_address_takes(app, client):
    adapter = app.url_map.bind("localhost")
    checked = 0
    for address in _addresses(app):
        allowed = set(adapter.allowed_methods(address))
        for method in METHODS:
            if method in allowed:
                continue
            response = client.open(address, method=method)
            assert response.status_code == 405, (method, address, response.status_code)
            assert _allow(response) == allowed, (method, address)
            checked += 1
    assert checked > 100


def test_a_405_is_still_an_answer_in_the_address_s_own_format(client):
    api = client.delete("/api/v1/me")
    assert api.status_code == 405
    assert api.get_json()["error"]["code"] == "method_not_allowed"
    assert _allow(api) == {"GET", "HEAD", "OPTIONS"}

    page = client.put("/public/notice")
    assert page.status_code == 405
    assert page.mimetype == "text/html"
    assert "Not allowed here" in page.get_data(as_text=True)
    assert _allow(page) == {"GET", "HEAD", "OPTIONS"}
