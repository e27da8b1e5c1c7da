"""Limits on signing in (Flask-Limiter, counted in the database every worker shares: web/ratelimit.py).

No wrong password locks an account: a stranger could lock anyone out that way. Instead, attempts are
counted before the password is checked, one atomic statement each, so thirty at once check no more than
the limit, and refused with 429 and `Retry-After` beyond it:

- per account and client address: a few a minute, then fewer per quarter hour and per day (the delays
  grow as the attempts go on);
- per client address, whatever the accounts: a guesser moving from name to name;
- per account from anywhere: many addresses guessing one password; set well above the per-address limit,
  so that one address guessing cannot keep the person out from their own computer.

A sign-in that succeeds takes its own attempt back from each count (`refund_success`), so the limits and
their growing waits fall on failed attempts alone: a City office behind one address signing in all
morning never meets them. An unknown username is counted and limited exactly as a real one, so a refusal
tells nothing either.
An administrator's "clear sign-in limits" (and `civicflow users unlock`) forgets one account's counts.
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

from flask import Flask, current_app, make_response, render_template, request
from flask_limiter import Limiter, RequestLimit
from sqlalchemy import CursorResult, delete, or_, update
from sqlalchemy.orm import Session

from engine.db.connection import WRITE_OPTION
from engine.db.models import RateLimit
from engine.settings import Settings
from web.ratelimit import client_address

# The endpoints that check a password: the login page and the API's token exchange.
SIGN_INS = ["auth.login", "api.create_token"]
LIMITED = "Too many sign-in attempts from here. Wait {wait} and try again, or ask an administrator."


def submitted_username() -> str:
    """The username a sign-in attempt names, as the engine will look it up (the form or the JSON body)."""
    if request.is_json:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    else:
        name = request.form.get("username")
    return name.strip().lower()[:64] if isinstance(name, str) else ""


def account_key() -> str:
    """The account named, from anywhere."""
    return f"login-account:{submitted_username()}|"


def account_and_address_key() -> str:
    """The account named, from this client's address."""
    return f"login-account:{submitted_username()}|{client_address()}"


def address_key() -> str:
    """This client's address, whatever the account."""
    return f"login-address:{client_address()}"


def _like(text: str) -> str:
    """text for a LIKE pattern, its wildcards and the escape character taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def refund_success(response):
    """After a sign-in that succeeded (a redirect from the login page, a token), take its attempt back."""
    if request.endpoint not in SIGN_INS or request.method != "POST" or response.status_code not in (201, 302):
        return response
    keys = [f"LIMITER/%/{_like(key())}/%" for key in (account_and_address_key, address_key, account_key)]
    engine = current_app.extensions["civicflow.engine"]
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection, connection.begin():
        connection.execute(
            update(RateLimit)
            .where(or_(*(RateLimit.key.like(pattern, escape="\\") for pattern in keys)), RateLimit.hits > 0)
            .values(hits=RateLimit.hits - 1)
        )
    return response


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def _refused(limit: RequestLimit):
    """The login page again, with how long to wait; the API's 429 is web/errors.py's, with the same header."""
    wait = max(1, math.ceil(limit.reset_at - time.time()))
    if request.blueprint == "api":
        return None
    from forms.auth import LoginForm

    form = LoginForm(request.form)
    form.password.errors = [LIMITED.format(wait=_wait_words(wait))]
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(wait)
    return response


def init_app(app: Flask, settings: Settings, limiter: Limiter) -> None:
    """Wrap the sign-in endpoints in the three limits, counted on POSTs only."""
    limits = [
        limiter.shared_limit(value, scope=scope, key_func=key, methods=["POST"], on_breach=_refused)
        for value, scope, key in (
            (settings.login_account_address_limit, "login-account-address", account_and_address_key),
            (settings.login_address_limit, "login-address", address_key),
            (settings.login_account_limit, "login-account", account_key),
        )
    ]
    app.after_request(refund_success)
    for endpoint in SIGN_INS:
        view = app.view_functions[endpoint]
        for limit in limits:
            view = limit(view)
        app.view_functions[endpoint] = view


def forget_account(session: Session, username: str) -> int:
    """Forget the sign-in counts of one account (from every address), in the session's transaction; how many."""
    pattern = f"%login-account:{_like(username.lower())}|%"
    found = session.execute(delete(RateLimit).where(RateLimit.key.like(pattern, escape="\\")))
    return cast(CursorResult[Any], found).rowcount
