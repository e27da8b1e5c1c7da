"""The administrators' forms: adding and changing users, adding departments and setting their heads.

Department, role and people choices come from the database when a form is built. The choice fields do
not check membership themselves: the engine does, and names an unknown department or role in its message.
"""

from __future__ import annotations

from collections.abc import Iterable

from wtforms import BooleanField, EmailField, Form, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from engine.people.directory import MAX_DEPARTMENT_CODE, MAX_EMAIL, MAX_NAME, MAX_PASSWORD
from engine.people.users import MAX_USERNAME, MIN_PASSWORD
from engine.requests.public import NOTICE_LIMIT
from forms.fields import CheckboxGroupField
from forms.validators import Storable

Choices = Iterable[tuple[str, str]]


def _username():
    return StringField(
        "Username",
        validators=[InputRequired(), Length(max=MAX_USERNAME), Storable()],
        description="2-64 lowercase letters, digits, dots, dashes or underscores; "
        "the person logs in with it and it cannot be changed.",
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )


def _display_name():
    return StringField(
        "Full name",
        validators=[InputRequired(), Length(max=MAX_NAME), Storable()],
        description="As it appears on tasks and in the audit trail.",
    )


def _email():
    return EmailField(
        "E-mail", validators=[Optional(), Length(max=MAX_EMAIL), Storable()], render_kw={"autocomplete": "off"}
    )


def _department():
    return SelectField("Department", validate_choice=False, validators=[Storable()])


def _roles():
    return CheckboxGroupField(
        "Roles",
        validate_choice=False,
        validators=[Storable()],
        description="Every user can file requests; no role is needed for that.",
    )


def _head_of():
    return CheckboxGroupField(
        "Head of department",
        validate_choice=False,
        validators=[Storable()],
        description="Heading a department replaces its current head.",
    )


class _ChoicesFromDatabase(Form):
    """A form whose department and role choices are given when it is built."""

    def __init__(self, formdata=None, *, departments: Choices = (), roles: Choices = (), **kwargs):
        super().__init__(formdata, **kwargs)
        departments = list(departments)
        self.department.choices = [("", "(no department)"), *departments]
        self.roles.choices = list(roles)
        self.head_of.choices = departments


class NewUserForm(_ChoicesFromDatabase):
    """A new user: who they are, their first password, department, roles and the departments they head."""

    username = _username()
    display_name = _display_name()
    email = _email()
    password = PasswordField(
        "Password",
        validators=[
            InputRequired(),
            Length(
                min=MIN_PASSWORD,
                max=MAX_PASSWORD,
                message=f"A password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
            ),
            Storable(),
        ],
        description=(
            f"At least {MIN_PASSWORD} characters, not a common or easily guessed one. Give it to the person "
            "directly, never by e-mail; they can change it under Your account."
        ),
        render_kw={"autocomplete": "new-password"},
    )
    department = _department()
    roles = _roles()
    head_of = _head_of()


class EditUserForm(_ChoicesFromDatabase):
    """A user's details, department, roles, headships and whether they may log in."""

    display_name = _display_name()
    email = _email()
    department = _department()
    roles = _roles()
    head_of = _head_of()
    active = BooleanField("Active (may log in and use the API)")


def _head(description: str | None = None):
    return SelectField("Head", validate_choice=False, validators=[Storable()], description=description)


class DepartmentForm(Form):
    """A new department: its code, its name and (optionally) its head."""

    code = StringField(
        "Code",
        validators=[InputRequired(), Length(max=MAX_DEPARTMENT_CODE), Storable()],
        description="Lowercase letters, digits and underscores, e.g. public_works; "
        "requests and the API use it, so it cannot be changed.",
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
    name = StringField("Name", validators=[InputRequired(), Length(max=MAX_NAME), Storable()])
    head = _head("The department head signs off on the department's requests; only active users can be head.")

    def __init__(self, formdata=None, *, people: Choices = (), **kwargs):
        super().__init__(formdata, **kwargs)
        self.head.choices = [("", "(no head yet)"), *people]


class DepartmentHeadForm(Form):
    """Who heads one department (built with a prefix per department, so each row's field is its own)."""

    head = _head()

    def __init__(self, formdata=None, *, people: Choices = (), label: str = "Head", **kwargs):
        super().__init__(formdata, **kwargs)
        self.head.choices = [("", "(no head)"), *people]
        self.head.label.text = label


class NoticeForm(Form):
    """The public notice's text: plain text, paragraphs separated by a blank line, list items starting "- "."""

    body = TextAreaField(
        "Text of the public notice",
        validators=[InputRequired(), Length(max=NOTICE_LIMIT), Storable()],
        description='Plain text. Leave a blank line between paragraphs; start a line with "- " '
        "for a list item. The removal categories are listed under it by themselves.",
        render_kw={"rows": 18},
    )
