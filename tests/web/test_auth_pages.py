"""Logging in and out of the HTML app: limited attempts, no open redirects, CSRF on logout, cookie flags."""

from __future__ import annotations

import pytest

from tests.web.pages import csrf_token, login, text_of

PAGES = [
    "/inbox",
    "/requests/new",
    "/instances",
    "/registry",
    "/admin/users",
    "/tasks/00000000-0000-0000-0000-000000000000",
    "/instances/1",
]


def test_logging_in_lands_on_the_inbox_with_a_welcome(client, people):
    response = login(client, "parks_head")
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    page = client.get("/inbox")
    assert "Welcome, Parks_Head." in text_of(page)
    assert "Log out" in text_of(page)


def test_a_wrong_password_says_so_next_to_the_password(client, people):
    response = login(client, "parks_head", "not the password")
    assert response.status_code == 401
    assert "Wrong username or password." in text_of(response)
    assert client.get("/inbox").status_code == 302


def test_the_sixth_attempt_a_minute_from_one_address_waits_without_checking(client, people):
    for _ in range(5):
        assert login(client, "parks_head", "not the password").status_code == 401
    response = login(client, "parks_head")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts from here. Wait" in text_of(response)
    assert client.get("/inbox").status_code == 302


def test_an_empty_login_form_names_both_fields(client, people):
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert 'id="username-error"' in response.get_data(as_text=True)
    assert 'id="password-error"' in response.get_data(as_text=True)


def test_login_never_redirects_to_another_site(client, people):
    page = client.get("/login")
    response = client.post(
        "/login?next=https://evil.example/phish",
        data={"username": "parks_head", "password": "correct horse battery", "csrf_token": csrf_token(page)},
    )
    assert response.headers["Location"] == "/inbox"


def test_login_returns_to_the_page_asked_for(client, people):
    assert client.get("/registry").headers["Location"].startswith("/login?next=")
    page = client.get("/login?next=/registry")
    response = client.post(
        "/login?next=/registry",
        data={"username": "parks_head", "password": "correct horse battery", "csrf_token": csrf_token(page)},
    )
    assert response.headers["Location"] == "/registry"


def test_a_login_without_the_csrf_token_is_refused(client, people):
    response = client.post("/login", data={"username": "parks_head", "password": "correct horse battery"})
    assert response.status_code == 400
    assert "security token was missing" in text_of(response)
    assert client.get("/inbox").status_code == 302


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_an_anonymous_visitor_to_the_login(client, people, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_logging_out_takes_a_post_with_the_csrf_token(client, people):
    login(client, "parks_head")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token: still logged in
    assert client.get("/inbox").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(client.get("/inbox"))})
    assert response.headers["Location"] == "/login"
    assert client.get("/inbox").status_code == 302


def test_the_session_cookie_is_httponly_samesite_and_secure_outside_the_demo(client, people):
    response = login(client, "parks_head")
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("civicflow_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_pages_are_not_cached_and_carry_the_security_headers(client, people):
    login(client, "parks_head")
    response = client.get("/inbox")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
