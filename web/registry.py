"""The account registry: the City's accounts, their managers and status; investigative profiles for police.

Administrators keep it: an account's policy marks and its status (an inactive account stays listed).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import login_required

from engine.db.models import Account
from engine.errors import Invalid
from engine.records import registry as account_registry
from forms.registry import account_form
from web.auth import current_actor
from web.db import get_session, transactional
from web.pages import show_refusal

registry = Blueprint("registry", __name__, url_prefix="/registry")
CHANGE_WORDS = dict(account_registry.CHECKLIST) | {"status": "Status"}


@registry.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@registry.get("")
def index():
    """Every account of the City; investigative profiles appear only to police roles."""
    accounts = account_registry.list_accounts(get_session(), current_actor())
    return render_template(
        "registry/index.html",
        accounts=[a for a in accounts if not a.investigative],
        investigative=[a for a in accounts if a.investigative],
        may_keep=account_registry.may_keep(current_actor()),
    )


def _account_to_keep(account_id: int) -> Account:
    """An account the logged-in administrator may change (404 for one they may not see, 403 for a non-admin)."""
    if not account_registry.may_keep(current_actor()):
        abort(403, "Only administrators can keep the account registry.")
    account = get_session().get(Account, account_id)
    if account is None or (account.investigative and not current_actor().is_police):
        abort(404)
    return account


@registry.get("/<id:account_id>")
def edit(account_id):
    """An account's policy marks and status, to change (administrators)."""
    account = _account_to_keep(account_id)
    return render_template("registry/edit.html", account=account, form=account_form(account=account))


@registry.post("/<id:account_id>")
@transactional
def update(account_id):
    """Save an account's policy marks and status; every change goes into the audit trail."""
    account = _account_to_keep(account_id)
    form = account_form(request.form)
    general: list[str] = []
    if form.validate():
        changes = {name: form[name].data for name in CHANGE_WORDS}
        try:
            changed = account_registry.update_account(get_session(), current_actor(), account_id, changes)
        except Invalid as exc:
            general = show_refusal(form, exc)
        else:
            words = ", ".join(CHANGE_WORDS[name].lower() for name in changed)
            flash(f"{account.name}: changed {words}." if changed else f"Nothing changed for {account.name}.", "success")
            return redirect(url_for("registry.index"))
    page = render_template("registry/edit.html", account=account, form=form, general_errors=general)
    return page, 400


@registry.post("/<id:account_id>/credentials")
@transactional
def credentials(account_id):
    """An investigative profile's credentials, for police roles only; every reveal goes into the audit trail."""
    session = get_session()
    revealed = account_registry.reveal_credentials(session, current_actor(), account_id)
    account = session.get(Account, account_id)  # reveal_credentials has checked that the actor may see it
    response = make_response(render_template("registry/credentials.html", account=account, revealed=revealed))
    response.headers["Cache-Control"] = "no-store"
    return response
