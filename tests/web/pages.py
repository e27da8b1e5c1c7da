"""Helpers for tests of the HTML pages: the CSRF token of a page, logging in, the text a person reads."""

from __future__ import annotations

import html
import re

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(response) -> str:
    """The CSRF token of the first form on a page."""
    match = _TOKEN.search(response.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def text_of(response) -> str:
    """The page's visible text, with tags dropped and spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def error_next_to(response, field: str) -> str:
    """The error message shown under a field (the macro gives it the id <field>-error)."""
    match = re.search(rf'id="{re.escape(field)}-error">(.*?)</p>', response.get_data(as_text=True), flags=re.S)
    assert match, f"no error shown next to {field}"
    return html.unescape(re.sub(r"\s+", " ", match.group(1))).strip()


def login(client, username: str, password: str = PASSWORD):
    """Log a test client in through the login form; returns the response to the POST."""
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_token(page)})


def post_form(client, path: str, data: dict, page_path: str | None = None):
    """Post a form the way a browser does: with the CSRF token of the page it is on."""
    token = csrf_token(client.get(page_path or path))
    return client.post(path, data={**data, "csrf_token": token})
