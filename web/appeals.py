"""Appeals of removals on staff pages: linking an appeal filed without its removal number to the removal."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import login_required

from engine.errors import Conflict, Invalid
from engine.procedures import removal_appeal
from engine.requests import services
from web.auth import current_actor
from web.db import get_session, transactional

appeals = Blueprint("appeals", __name__)


@appeals.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@appeals.post("/instances/<id:instance_id>/removal")
@transactional
def link_removal(instance_id):
    """Link the appeal to its removal record; back to the page the form was on, saying what happened."""
    session = get_session()
    actor = current_actor()
    instance = services.get_instance(session, actor, instance_id)
    back = _same_site(request.form.get("next")) or url_for("instances.show", instance_id=instance_id)
    try:
        removal_appeal.link_removal(session, actor, instance, request.form.get("removal_id", "").strip() or None)
    except Invalid as exc:
        session.rollback()
        messages = [m for field in exc.fields.values() for m in field] or [exc.message]
        flash("Removal record number: " + " ".join(messages), "error")
        return redirect(back)
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    flash(f"The appeal is linked to removal record {instance.data['removal_id']}.", "success")
    return redirect(back)


def _same_site(path: str | None) -> str | None:
    """A path on this site to return to, never another site's address."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None
