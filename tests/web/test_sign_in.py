"""Signing in that strangers cannot abuse, sessions that end on the server, and accounts people can recover.

Attempts are limited per account and address, per address and per account (web/login_limits.py), counted
before the password is checked; nobody is locked out by someone else's wrong passwords. A reset link arrives
by mail (a real SMTP server on loopback), works once and expires. Passwords follow NIST SP 800-63B.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.db.models import User
from engine.errors import NotAuthenticated
from engine.mail import outbox
from engine.people import passwords, recovery, users
from engine.time import clock
from tests.helpers import PASSWORD
from tests.web.pages import csrf_token, error_next_to, login, post_form, text_of

NEW_PASSWORD = "a lighthouse keeper's quiet ledger"


def login_from(client, address: str, username: str, password: str = PASSWORD):
    """Log in through the form as a browser at that client address would."""
    page = client.get("/login", environ_base={"REMOTE_ADDR": address})
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(page)},
        environ_base={"REMOTE_ADDR": address},
    )


def test_wrong_passwords_from_one_address_do_not_keep_the_person_out_from_their_own(app, people):
    stranger, own = app.test_client(), app.test_client()
    answers = [login_from(stranger, "203.0.113.9", "parks_head", "guess number one").status_code for _ in range(20)]
    assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}
    assert login_from(own, "198.51.100.7", "parks_head").status_code == 302
    assert own.get("/inbox", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 200


def test_signing_in_successfully_takes_its_attempt_back(app, people):
    """An office signing in all day behind one address never meets the limits: they fall on failures alone."""
    for _ in range(12):
        client = app.test_client()
        assert login_from(client, "192.0.2.50", "parks_head").status_code == 302
    for _ in range(5):
        assert login_from(app.test_client(), "192.0.2.50", "parks_head", "not the password").status_code == 401
    assert login_from(app.test_client(), "192.0.2.50", "parks_head").status_code == 429


def test_an_unknown_username_is_limited_exactly_as_a_real_one(client, people):
    for name in ("parks_head", "nobody_here"):
        answers = [login_from(client, f"192.0.2.{len(name)}", name, "guess again please").status_code for _ in range(6)]
        assert answers == [401] * 5 + [429]


def test_the_token_endpoint_is_limited_with_retry_after(client, people):
    for _ in range(5):
        refused = client.post("/api/v1/auth/token", json={"username": "parks_head", "password": "not it at all"})
        assert refused.status_code == 401
    limited = client.post("/api/v1/auth/token", json={"username": "parks_head", "password": PASSWORD})
    assert limited.status_code == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 60


def test_an_administrator_clears_a_persons_sign_in_limits(app, people):
    client, admin = app.test_client(), app.test_client()
    for _ in range(6):
        login(client, "parks_head", "not the password at all")
    assert login(client, "parks_head").status_code == 429
    assert login(admin, "admin").status_code == 302
    person = admin.get("/admin/users").get_data(as_text=True)
    user_id = re.search(r'href="/admin/users/(\d+)">parks_head', person) or re.search(
        r'href="/admin/users/(\d+)"[^>]*>[^<]*Parks_Head', person
    )
    assert user_id, "the users page links to parks_head"
    path = f"/admin/users/{user_id.group(1)}"
    cleared = post_form(admin, f"{path}/sign-in-limits", {}, page_path=path)
    assert cleared.status_code == 302
    assert "may try to log in again at once" in text_of(admin.get(path))
    assert login(client, "parks_head").status_code == 302


def session_cookie(client) -> str:
    return client.get_cookie("civicflow_session").value


def test_a_session_cookie_replayed_after_logout_gets_the_login_page(app, people):
    client = app.test_client()
    assert login(client, "parks_head").status_code == 302
    kept = session_cookie(client)
    inbox = client.get("/inbox")
    assert client.post("/logout", data={"csrf_token": csrf_token(inbox)}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("civicflow_session", kept)
    response = replay.get("/inbox")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_changing_ones_password_ends_the_other_sessions_and_tokens(app, people, session):
    here, elsewhere = app.test_client(), app.test_client()
    assert login(here, "parks_head").status_code == 302
    assert login(elsewhere, "parks_head").status_code == 302
    token = here.post("/api/v1/auth/token", json={"username": "parks_head", "password": PASSWORD}).get_json()["token"]
    wrong = post_form(
        here,
        "/account/password",
        {"current_password": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert wrong.status_code == 400
    assert error_next_to(wrong, "current_password") == "That is not your current password."
    changed = post_form(
        here, "/account/password", {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert changed.status_code == 302
    assert "Your password is changed" in text_of(here.get("/inbox"))  # this device goes on
    assert elsewhere.get("/inbox").status_code == 302  # the other session has ended
    assert here.get("/api/v1/tasks?scope=mine", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(app.test_client(), "parks_head", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("short one", "at least 15 characters"),
        ("passwordpassword", "too easy to guess"),
        ("parks_head parks_head", "your name or your username"),
        ("1234567890123456", "common"),
    ],
)
def test_a_new_password_follows_nist_800_63b(app, people, password, words):
    client = app.test_client()
    login(client, "parks_head")
    refused = post_form(
        client, "/account/password", {"current_password": PASSWORD, "password": password, "confirm": password}
    )
    assert refused.status_code == 400
    assert words in error_next_to(refused, "password")
    assert login(app.test_client(), "parks_head").status_code == 302  # the old password still works


def test_nist_allows_any_characters_and_asks_for_no_composition():
    assert passwords.problems("mañana the blue ferry leaves") == []
    assert passwords.problems("x" * passwords.MAX_LENGTH + "y") == [
        f"A password may have at most {passwords.MAX_LENGTH} characters."
    ]
    assert "common" in passwords.problems("password")[0] or "at least" in passwords.problems("password")[0]


def test_a_reset_link_arrives_by_mail_works_once_and_expires(
    app, people, session, sessions, mail_settings, smtp_server
):
    client = app.test_client()
    page = client.get("/password/forgot")
    assert "Forgot your password?" in text_of(page)
    for who in ("parks_head", "nobody@example.org"):
        answer = client.post("/password/forgot", data={"who": who, "csrf_token": csrf_token(page)})
        assert answer.status_code == 302
        assert "If that is the username or e-mail address of an account" in text_of(client.get("/login"))
    outbox.deliver_due(sessions, mail_settings)
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "parks_head@example.org"
    link = re.search(r"http://localhost/password/reset/\S+", mail.get_content()).group(0)
    path = link.removeprefix("http://localhost")

    form = client.get(path)
    assert "Choose a new password" in text_of(form)
    saved = post_form(client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert saved.status_code == 302
    assert login(app.test_client(), "parks_head", NEW_PASSWORD).status_code == 302
    again = client.get(path)
    assert again.status_code == 302 and again.headers["Location"] == "/password/forgot"
    assert "expired or has been used already" in text_of(client.get("/password/forgot"))

    session.commit()
    recovery.ask_for_reset(session, "parks_head@example.org", lambda token: f"http://localhost/password/reset/{token}")
    session.commit()
    outbox.deliver_due(sessions, mail_settings)
    second = smtp_server.wait_for(2)[1]
    late = re.search(r"http://localhost(/password/reset/\S+)", second.get_content()).group(1)
    clock.set_now(clock.now() + recovery.RESET_LIFETIME + timedelta(seconds=1))
    assert client.get(late).headers["Location"] == "/password/forgot"


def test_unknown_deactivated_and_wrong_password_users_cost_the_same(session, people, monkeypatch):
    """The time of an answer tells nothing: the same hash work for each (processor time, median of 50 each,
    taken in turn so that whatever else the machine does falls on all three alike).

    The hash is a real one (PBKDF2, 60,000 rounds), slower than the suite's cheap one so that it, not the
    database's few hundred microseconds, is what is compared; production's scrypt is slower still, and the
    stand-in for a username with no usable account follows whatever method is set.
    """
    monkeypatch.setattr(passwords.Hashing, "method", "pbkdf2:sha256:60000")
    real = session.scalar(select(User).where(User.username == "parks_head"))
    real.password_hash = passwords.hash_password(PASSWORD)
    gone = session.scalar(select(User).where(User.username == "requester"))
    gone.active = False
    session.flush()
    took: dict[str, list[float]] = {"parks_head": [], "nobody_at_all": [], "requester": []}
    for _ in range(50):
        for username, times in took.items():
            began = time.thread_time()
            with pytest.raises(NotAuthenticated, match="Wrong username or password."):
                users.authenticate(session, username, "the wrong password here")
            times.append(time.thread_time() - began)
    medians = {username: statistics.median(times) for username, times in took.items()}
    assert max(medians.values()) <= min(medians.values()) * 1.2, medians
