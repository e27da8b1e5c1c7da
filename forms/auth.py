"""The forms of signing in: the login, changing one's password, asking for a reset link, and resetting."""

from __future__ import annotations

from wtforms import Form, PasswordField, StringField
from wtforms.validators import InputRequired, Length, ValidationError

from engine.people.users import MAX_PASSWORD, MIN_PASSWORD
from forms.validators import Storable


class LoginForm(Form):
    """Username and password; the engine checks them, web/login_limits.py counts the attempts."""

    username = StringField(
        "Username",
        validators=[InputRequired(), Length(max=64), Storable()],
        render_kw={"autocomplete": "username", "autocapitalize": "none"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=500), Storable()],
        render_kw={"autocomplete": "current-password"},
    )


def _new_password(label: str = "New password") -> PasswordField:
    return PasswordField(
        label,
        validators=[InputRequired(), Length(max=MAX_PASSWORD), Storable()],
        description=(
            f"At least {MIN_PASSWORD} characters; a few words you will remember work well. "
            "No rules about digits or symbols, but not a common or easily guessed password."
        ),
        render_kw={"autocomplete": "new-password"},
    )


def _same_as_password(form, field) -> None:
    if field.data != form.password.data:
        raise ValidationError("The two passwords are not the same.")


class ChangePasswordForm(Form):
    """A signed-in person's new password, after their current one."""

    current_password = PasswordField(
        "Current password",
        validators=[InputRequired(), Length(max=MAX_PASSWORD), Storable()],
        render_kw={"autocomplete": "current-password"},
    )
    password = _new_password()
    confirm = PasswordField("New password again", validators=[InputRequired(), _same_as_password])


class ForgotPasswordForm(Form):
    """Who is asking for a reset link: a username or an e-mail address."""

    who = StringField(
        "Username or e-mail address",
        validators=[InputRequired(), Length(max=254), Storable()],
        render_kw={"autocomplete": "username", "autocapitalize": "none"},
    )


class ResetPasswordForm(Form):
    """A new password, from a reset link or an administrator."""

    password = _new_password()
    confirm = PasswordField("New password again", validators=[InputRequired(), _same_as_password])
