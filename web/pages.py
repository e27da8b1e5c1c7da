"""What every HTML page shares: the logged-in actor, who may open a blueprint's pages, paging, errors shown next to
their fields, the nav count."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import current_user, login_required
from wtforms import Form

from engine.errors import Invalid
from engine.requests import authz
from engine.requests import inbox as task_inbox
from web.auth import current_actor
from web.db import get_session

PER_PAGE = 25


def admin_only(blueprint: Blueprint, what: str) -> None:
    """Every page of the blueprint is for logged-in administrators: others log in first, or are refused (403)
    with "Only administrators can {what}."."""

    @blueprint.before_request
    @login_required
    def require_admin():
        """Only administrators."""
        authz.require_admin(current_actor(), what)


def page_number() -> int:
    """The ?page= argument; anything that is not a sensible page number is page 1."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 1_000_000 else 1


def page_count(total: int) -> int:
    """How many pages of PER_PAGE rows `total` rows fill (at least one, so an empty list still has its page)."""
    return max(1, -(-total // PER_PAGE))


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


def show_refusal(form: Form, exc: Invalid) -> list[str]:
    """The engine refused what the form sent: undo what the refused call wrote (the page is shown again in the same
    request, whose transaction commits), and put its messages next to the form's fields; return the others."""
    get_session().rollback()
    return show_errors(form, exc)


def nav_counts() -> dict:
    """Open tasks assigned to the logged-in user and available to them, for the navigation."""
    if not current_user.is_authenticated:
        return {}
    mine, available = task_inbox.count_open_tasks(get_session(), current_actor())
    return {"inbox_mine": mine, "inbox_available": available, "actor": current_actor()}
