"""The login form."""

from __future__ import annotations

from wtforms import Form, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from forms.validators import Storable


class LoginForm(Form):
    """Username and password; the engine checks them and counts failures."""

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
