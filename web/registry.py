"""The account registry: the City's accounts, their managers and status; investigative profiles for police."""

from __future__ import annotations

from flask import Blueprint, make_response, render_template
from flask_login import login_required

from engine.db.models import Account
from engine.records import registry as account_registry
from web.auth import current_actor
from web.db import get_session, transactional

registry = Blueprint("registry", __name__, url_prefix="/registry")


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
    )


@registry.post("/<int:account_id>/credentials")
@transactional
def credentials(account_id):
    """An investigative profile's credentials, for police roles only; every reveal goes into the audit trail."""
    session = get_session()
    revealed = account_registry.reveal_credentials(session, current_actor(), account_id)
    account = session.get(Account, account_id)  # reveal_credentials has checked that the actor may see it
    response = make_response(render_template("registry/credentials.html", account=account, revealed=revealed))
    response.headers["Cache-Control"] = "no-store"
    return response
