"""Field types the form macro knows how to draw beyond WTForms' own."""

from __future__ import annotations

from markupsafe import Markup
from werkzeug.datastructures import FileStorage
from wtforms import FileField, SelectMultipleField, StringField
from wtforms.validators import StopValidation, ValidationError
from wtforms.widgets import CheckboxInput, html_params

ACCEPTED_IMAGES = "image/png,image/jpeg,image/webp"


class CheckboxList:
    """A list of checkboxes, each with its own label (styled like the form macro's other check boxes)."""

    def __call__(self, field, **kwargs):
        """The checkboxes as an unstyled list."""
        # The form macro passes aria attributes as None when there is nothing to point to: leave those out.
        kwargs = {name: value for name, value in kwargs.items() if value is not None}
        kwargs.setdefault("id", field.id)
        # No box is required by itself (the group is): `required` on each would tell a screen reader otherwise.
        items = "".join(f'<li class="check">{option(required=False)} {option.label}</li>' for option in field)
        # Safe as wtforms' own ListWidget: html_params escapes, options and labels are already Markup.
        return Markup(f"<ul {html_params(class_='plain', **kwargs)}>{items}</ul>")  # noqa: S704


class CheckboxGroupField(SelectMultipleField):
    """Several choices, each a checkbox; data is the list of checked values."""

    widget = CheckboxList()
    option_widget = CheckboxInput()


class AtLeastOne:
    """A group of checkboxes of which at least one must be ticked."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        """Refuse an empty selection with a message that says what to do."""
        if not field.data:
            raise StopValidation("Choose at least one.")


class ImageUploadField(FileField):
    """An image file to upload (the page stores it, the engine verifies it); data is the uploaded FileStorage."""

    def __init__(self, label=None, *, required: bool = True, **kwargs):
        super().__init__(label, render_kw={"accept": ACCEPTED_IMAGES}, **kwargs)
        self.required = required
        if required:
            self.flags.required = True

    def process_formdata(self, valuelist):
        """Keep the upload; text in its place (a form posted without multipart encoding) is no file at all."""
        first = valuelist[0] if valuelist else None
        self.data = first if isinstance(first, FileStorage) else None

    def has_file(self) -> bool:
        """Whether a file was chosen (a browser sends an empty, unnamed part when none was)."""
        return isinstance(self.data, FileStorage) and bool(self.data.filename)

    def pre_validate(self, form):
        """A required image must come as a file."""
        if self.required and not self.has_file():
            raise StopValidation("Choose an image file to upload.")


class UsernameListField(StringField):
    """Usernames typed as a comma-separated list; data is a list of strings."""

    def process_formdata(self, valuelist):
        """Split the typed text into usernames."""
        self.data = [name.strip() for name in (valuelist[0] if valuelist else "").split(",") if name.strip()]

    def _value(self):
        return ", ".join(self.data or [])


class PeopleField(SelectMultipleField):
    """Several people chosen by name from a list; data is their usernames. One the list does not offer (no longer
    active) is left for the engine to refuse by name, not "not a valid choice"."""

    def pre_validate(self, form):
        """Accept any username: the engine knows who is active and says so next to the field."""
        if self.data and not all(isinstance(value, str) for value in self.data):
            raise ValidationError("Choose people from the list.")
