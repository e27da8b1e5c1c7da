"""WTForms classes, one per form key, built from the engine's field schemas (one source for the rules).

The HTML pages render and validate these; the engine validates again whatever the client was.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    EmailField,
    Form,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import InputRequired, Length, Optional, Regexp

from engine import procedures
from engine.db.models import Task
from engine.people.users import Actor
from engine.procedures import fields as f
from forms.fields import AtLeastOne, CheckboxGroupField, ImageUploadField, PeopleField, UsernameListField
from forms.validators import Storable

RECORD_NUMBER = "Must be a number such as 12."
ONE_OR_MORE = re.compile(r"\s*\(one or more\)\s*$")
RADIO_LIMIT = 4  # a choice among this few is a set of radio buttons: every option visible, one keystroke each


def _stripped(value):
    return value.strip() if isinstance(value, str) else value


def choice_label(value: str) -> str:
    """How a choice reads on a page: "return" -> "Return", "public_works" -> "Public works"."""
    return value.replace("_", " ").capitalize()


def _record_choice(spec: f.Field, choices: list[SelectChoice], hint: str | None):
    """A registry account (or other record) chosen by name; the engine says why a crafted number is refused."""
    presence = InputRequired() if spec.required else Optional()
    # validate_choice off: the engine knows the rule (e.g. "You are not a social media manager of this
    # account") and says it next to the field, where WTForms could only say "Not a valid choice".
    if len(choices) <= RADIO_LIMIT:
        # One possible account (a manager of one account) is chosen already: nothing to pick.
        default = choices[0].value if spec.required and len(choices) == 1 else None
        return RadioField(
            spec.label, choices=choices, validators=[presence], description=hint, default=default, validate_choice=False
        )
    # No account is preselected in a long list: a request filed against the wrong one by accident is worse
    # than a field left to fill in.
    blank = SelectChoice("", "Choose one" if spec.required else "(none)")
    return SelectField(
        spec.label, choices=[blank, *choices], validators=[presence], description=hint, validate_choice=False
    )


def _person_choice(spec: f.Field, hint: str | None):
    """A person, or people, chosen by name from a list of active users (a filter box narrows it where scripts run);
    the value is the username, and the engine says why one it does not know is refused."""
    choices = [SelectChoice(username, name) for username, name in spec.people]
    attributes = {"data-person-filter": "", "class": "people"}
    if spec.type == f.USERNAMES:
        return PeopleField(
            spec.label,
            choices=choices,
            validators=[AtLeastOne()] if spec.required else [Optional()],
            description=hint or "Choose one or more (Ctrl or ⌘ and click to choose several).",
            # Not `required` on the list: Chromium announces an empty required list as invalid before anyone has
            # chosen. aria-required says it is needed; AtLeastOne and the engine refuse an empty one by name.
            render_kw={
                **attributes,
                "size": min(8, max(len(choices), 2)),
                "required": False,
                "aria-required": "true" if spec.required else False,
            },
        )
    blank = SelectChoice("", "Choose a person" if spec.required else "(nobody)")
    return SelectField(
        spec.label,
        choices=[blank, *choices],
        validators=[InputRequired() if spec.required else Optional()],
        description=hint,
        validate_choice=False,
        render_kw=attributes,
    )


def _field(spec: f.Field):
    presence = InputRequired() if spec.required else Optional()
    label = spec.label
    hint = spec.hint or None
    if spec.people:
        return _person_choice(spec, hint)
    if spec.type == f.BOOLEAN:
        return BooleanField(label, description=hint)
    if spec.type == f.IMAGE:
        return ImageUploadField(label, required=spec.required, description=hint)
    if spec.type == f.RECORD and not spec.choices:
        # Text with one plain message (an IntegerField says "Not a valid integer value" and more); the engine
        # takes the digits.
        return StringField(
            label,
            validators=[presence, Regexp(r"^\s*[0-9]{1,9}\s*$", message=RECORD_NUMBER)],
            description=hint,
            filters=[_stripped],
            render_kw={"inputmode": "numeric"},
        )
    if spec.type in (f.CHOICE, f.MULTICHOICE, f.RECORD):
        choices = [SelectChoice(c, spec.label_of(c) or choice_label(c)) for c in spec.choices]
        if spec.type == f.RECORD:
            return _record_choice(spec, choices, hint)
        if spec.type == f.MULTICHOICE:
            # The macro says "(required)"; "Choose one or more." says how many, once, under the boxes.
            label = ONE_OR_MORE.sub("", label)
            validators = [AtLeastOne()] if spec.required else [Optional()]
            return CheckboxGroupField(
                label,
                choices=choices,
                validators=validators,
                description=hint or ("Choose one or more." if spec.required else None),
            )
        if len(choices) <= RADIO_LIMIT:
            return RadioField(label, choices=choices, validators=[presence], description=hint)
        if not spec.required:
            choices = [SelectChoice("", "(unchanged)"), *choices]
        return SelectField(label, choices=choices, validators=[presence], description=hint)
    if spec.type == f.USERNAMES:
        return UsernameListField(
            label,
            validators=[presence, Storable()],
            description="Usernames separated by commas, e.g. pat.lee, sam.ortiz",
        )
    length = Length(max=spec.max_length)
    kind = {f.TEXT: TextAreaField, f.URL: URLField, f.SECRET: PasswordField, f.EMAIL: EmailField}.get(
        spec.type, StringField
    )
    filters = [f.one_line_break] if spec.type == f.TEXT else []
    return kind(label, validators=[presence, length, Storable()], description=hint, filters=filters)


def form_class(name: str, specs: list[f.Field]) -> type[Form]:
    """A WTForms class with one field per schema field."""
    return type(name, (Form,), {spec.name: _field(spec) for spec in specs})


def _class_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_")) + "Form"


def start_form(session: Session, process_key: str, actor: Actor | None = None) -> type[Form]:
    """The start form of a procedure for who files it (its choices come from the database)."""
    return form_class(_class_name(process_key), procedures.get(process_key).start_fields(session, actor))


def task_form(session: Session, task: Task) -> type[Form]:
    """The form of a task, for its form key and its request's record."""
    procedure = procedures.get(task.instance.process_key)
    return form_class(_class_name(task.form_key), procedure.fields_for(session, task.form_key, task.instance.data))


def uploads(form: Form) -> dict:
    """The files a validated form carries, by field name (the page stores them before it starts the request)."""
    return {
        name: field.data
        for name, field in form._fields.items()
        if isinstance(field, ImageUploadField) and field.has_file()
    }


def to_engine_data(form: Form) -> dict:
    """A validated form's data in the shape the engine's services take (uploaded files left to the page)."""
    return {
        name: field.data
        for name, field in form._fields.items()
        if not isinstance(field, ImageUploadField) and field.data not in (None, "", [])
    }
