"""What every HTML page shares: the logged-in actor, paging, errors shown next to their fields, the nav count."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from wtforms import Form

from engine.errors import Invalid
from engine.requests import services
from web.auth import current_actor
from web.db import get_session

PER_PAGE = 25


def page_number() -> int:
    """The ?page= argument; anything that is not a sensible page number is page 1."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 1_000_000 else 1


def show_errors(form: Form, exc: Invalid) -> list[str]:
    """Put the engine's per-field messages next to the form's fields; return those that fit no field."""
    general = []
    for name, messages in exc.fields.items():
        field = form._fields.get(name)
        if field is None:
            general.extend(f"{name}: {message}" for message in messages)
        else:
            field.errors = [*field.errors, *messages]
    if not exc.fields:
        general.append(exc.message)
    return general


def nav_counts() -> dict:
    """Open tasks assigned to the logged-in user and available to them, for the navigation."""
    if not current_user.is_authenticated:
        return {}
    mine, available = services.count_open_tasks(get_session(), current_actor())
    return {"inbox_mine": mine, "inbox_available": available, "actor": current_actor()}
