"""Administration: users and departments (skeleton; built out in the admin work)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from engine.errors import NotAllowed
from engine.roles import ADMIN
from web.auth import current_actor

admin = Blueprint("admin", __name__, url_prefix="/admin")


@admin.before_request
@login_required
def require_admin():
    """Only administrators."""
    if ADMIN not in current_actor().roles:
        raise NotAllowed("Only administrators can manage users and departments.")


@admin.get("/users")
def users():
    """The users."""
    return render_template("admin/users.html")
