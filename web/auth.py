"""Logging in and out of the HTML app (Flask-Login); the engine checks passwords and throttles failures."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from engine.db.models import User
from engine.errors import NotAuthenticated
from engine.people import users
from forms.auth import LoginForm
from web.db import get_session, transactional

auth = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Log in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


class SessionUser(UserMixin):
    """The logged-in person as Flask-Login holds them: the user row of this request."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        """The id kept in the session cookie."""
        return str(self.user.id)


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    """The active user of a session; a deactivated user's session ends on their next request."""
    if not user_id.isdigit():
        return None
    user = get_session().get(User, int(user_id))
    return SessionUser(user) if user is not None and user.active else None


def current_actor() -> users.Actor:
    """The logged-in person as the engine sees them (roles, department, headships), once per request."""
    if "actor" not in g:
        g.actor = users.actor_for(get_session(), current_user.user, remote_addr=request.remote_addr)
    return g.actor


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("inbox.index")


@auth.route("/login", methods=["GET", "POST"])
@transactional
def login():
    """The login page; five wrong passwords lock the account for fifteen minutes."""
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    form = LoginForm(request.form)
    if request.method == "POST" and form.validate():
        session = get_session()
        try:
            user = users.authenticate(session, form.username.data.strip(), form.password.data)
        except NotAuthenticated as exc:
            session.commit()  # keep the failed-login count although the login fails
            form.password.errors = [exc.message]
            return render_template("auth/login.html", form=form), 401
        login_user(SessionUser(user))
        flash(f"Welcome, {user.display_name}.", "success")
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@auth.post("/logout")
@login_required
def logout():
    """End the session (a POST with the CSRF token, so no other site can log anyone out)."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
