"""WTForms classes, one per form key, built from the engine's field schemas (one source for the rules).

The HTML pages render and validate these; the engine validates again whatever the client was.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    Form,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import InputRequired, Length, Optional

from engine import fields as f
from engine import procedures
from engine.models import Task
from forms.validators import Storable

RADIO_LIMIT = 4  # a choice among this few is a set of radio buttons: every option visible, one keystroke each


class UsernameListField(StringField):
    """Usernames typed as a comma-separated list; data is a list of strings."""

    def process_formdata(self, valuelist):
        """Split the typed text into usernames."""
        self.data = [name.strip() for name in (valuelist[0] if valuelist else "").split(",") if name.strip()]

    def _value(self):
        return ", ".join(self.data or [])


def choice_label(value: str) -> str:
    """How a choice reads on a page: "return" -> "Return", "public_works" -> "Public works"."""
    return value.replace("_", " ").capitalize()


def _field(spec: f.Field):
    presence = InputRequired() if spec.required else Optional()
    label = spec.label
    if spec.type == f.BOOLEAN:
        return BooleanField(label)
    if spec.type in (f.CHOICE, f.MULTICHOICE):
        choices = [SelectChoice(c, choice_label(c)) for c in spec.choices]
        if spec.type == f.MULTICHOICE:
            return SelectMultipleField(label, choices=choices, validators=[presence])
        if len(choices) <= RADIO_LIMIT:
            return RadioField(label, choices=choices, validators=[presence])
        if not spec.required:
            choices = [SelectChoice("", "(unchanged)"), *choices]
        return SelectField(label, choices=choices, validators=[presence])
    if spec.type == f.USERNAMES:
        return UsernameListField(label, validators=[presence, Storable()],
                                 description="Usernames separated by commas, e.g. pat.lee, sam.ortiz")
    length = Length(max=spec.max_length)
    kind = {f.TEXT: TextAreaField, f.URL: URLField, f.SECRET: PasswordField}.get(spec.type, StringField)
    return kind(label, validators=[presence, length, Storable()])


def form_class(name: str, specs: list[f.Field]) -> type[Form]:
    """A WTForms class with one field per schema field."""
    return type(name, (Form,), {spec.name: _field(spec) for spec in specs})


def _class_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_")) + "Form"


def start_form(session: Session, process_key: str) -> type[Form]:
    """The start form of a procedure (its department choices come from the database)."""
    return form_class(_class_name(process_key), procedures.get(process_key).start_fields(session))


def task_form(session: Session, task: Task) -> type[Form]:
    """The form of a task, for its form key and its request's record."""
    procedure = procedures.get(task.instance.process_key)
    return form_class(_class_name(task.form_key), procedure.task_fields(session, task.form_key, task.instance.data))


def to_engine_data(form: Form) -> dict:
    """A validated form's data in the shape the engine's services take."""
    return {name: field.data for name, field in form._fields.items() if field.data not in (None, "", [])}
