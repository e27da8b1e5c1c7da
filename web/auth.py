"""Signing in and out of the HTML app (Flask-Login), changing one's password, and a reset by an e-mailed link.

The engine checks passwords (engine/people/); web/login_limits.py limits the attempts. A session cookie holds
the person's id and their session generation: signing out, a new password or deactivation bumps it, and
every cookie of the older generation opens nothing, replayed or not.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from engine.db.models import User
from engine.errors import Invalid, NotAuthenticated
from engine.people import recovery, users
from forms.auth import ChangePasswordForm, ForgotPasswordForm, LoginForm, ResetPasswordForm
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
        """What the session cookie keeps: the user's id and the session generation they signed in under."""
        return f"{self.user.id}:{self.user.session_generation}"


@login_manager.user_loader
def load_user(session_id: str) -> SessionUser | None:
    """The active user of a session of their current generation; any other session opens nothing."""
    user_id, _, generation = session_id.partition(":")
    if not user_id.isdigit() or not generation.isdigit() or len(user_id) > 12:
        return None
    user = get_session().get(User, int(user_id))
    if user is None or not user.active or user.session_generation != int(generation):
        return None
    return SessionUser(user)


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
    """The login page; attempts are limited per account and address (web/login_limits.py), nobody is locked out."""
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    form = LoginForm(request.form)
    if request.method == "POST" and form.validate():
        session = get_session()
        try:
            user = users.authenticate(session, form.username.data.strip().lower(), form.password.data)
        except NotAuthenticated as exc:
            form.password.errors = [exc.message]
            return render_template("auth/login.html", form=form), 401
        login_user(SessionUser(user))
        flash(f"Welcome, {user.display_name}.", "success")
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@auth.post("/logout")
@login_required
@transactional
def logout():
    """End the session on the server, on every device (a POST with the CSRF token: no other site can do it)."""
    users.end_sessions(current_user.user)
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


def _saved(form, save) -> bool:
    """A posted password form, checked and then saved by `save()`; what the engine refuses is shown by its field."""
    if request.method != "POST" or not form.validate():
        return False
    try:
        save()
    except Invalid as exc:
        from web.pages import show_refusal  # web.pages imports this module

        show_refusal(form, exc)
        return False
    return True


def _status() -> int:
    """A form page shown again after a post was refused: 400; shown to fill in: 200."""
    return 400 if request.method == "POST" else 200


@auth.route("/account/password", methods=["GET", "POST"])
@login_required
@transactional
def change_password():
    """Change your own password, giving the current one; your other sessions and API tokens end."""
    form = ChangePasswordForm(request.form)

    def save():
        user = users.change_own_password(get_session(), current_actor(), form.current_password.data, form.password.data)
        login_user(SessionUser(user))  # this device goes on under the new generation

    if _saved(form, save):
        flash("Your password is changed. Your other sessions and API tokens have ended.", "success")
        return redirect(url_for("inbox.index"))
    return render_template("auth/password.html", form=form), _status()


FORGOT_ANSWER = (
    "If that is the username or e-mail address of an account, a link to choose a new password is on its way "
    "to the account's e-mail address. It works once, within {minutes} minutes."
)


@auth.route("/password/forgot", methods=["GET", "POST"])
@transactional
def forgot_password():
    """Ask for a reset link by mail; the answer is the same whether an account matched or not."""
    form = ForgotPasswordForm(request.form)
    if request.method == "POST" and form.validate():
        recovery.ask_for_reset(
            get_session(),
            form.who.data,
            lambda token: url_for("auth.reset_password", token=token, _external=True),
        )
        minutes = int(recovery.RESET_LIFETIME.total_seconds() // 60)
        flash(FORGOT_ANSWER.format(minutes=minutes), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form), _status()


@auth.route("/password/reset/<token>", methods=["GET", "POST"])
@transactional
def reset_password(token):
    """Choose a new password from a reset link in force; the link is spent."""
    session = get_session()
    try:
        person = recovery.user_of_link(session, token)
    except Invalid as exc:
        flash(exc.message, "error")
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm(request.form)
    if _saved(form, lambda: recovery.reset_with_link(session, token, form.password.data)):
        flash("Your password is changed: log in with it now.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, person=person, token=token), _status()
