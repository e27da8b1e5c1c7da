"""The forms of the procedure editor: uploading a diagram, and publishing the draft it was made from."""

from __future__ import annotations

from wtforms import BooleanField, FileField, Form, HiddenField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp, ValidationError

from engine.versions.publishing import MAX_NOTE

UPLOAD_SUFFIXES = (".bpmn", ".xml")


class UploadForm(Form):
    """A .bpmn file from another BPMN tool or a download, to become the procedure's draft."""

    file = FileField(
        "A .bpmn file",
        validators=[InputRequired(message="Choose a .bpmn file to upload.")],
        description="A BPMN 2.0 file (.bpmn or .xml) of at most 2 MiB, from civicflow's download, "
        "Camunda Modeler or another BPMN tool. It replaces the draft.",
        render_kw={"accept": ".bpmn,.xml,application/xml,text/xml"},
    )

    def validate_file(self, field):
        """Only .bpmn and .xml files (the content is checked when it is read, before anything is stored)."""
        name = (getattr(field.data, "filename", "") or "").lower()
        if not name.endswith(UPLOAD_SUFFIXES):
            raise ValidationError("Upload a .bpmn or .xml file.")


class RepublishForm(Form):
    """Publish a version, confirmed, with a note of what changed and why (kept with the publication)."""

    note = TextAreaField(
        "What changed and why",
        validators=[
            InputRequired(message="Say in a sentence what changed and why: it is kept with the version."),
            Length(max=MAX_NOTE, message=f"At most {MAX_NOTE} characters."),
        ],
        description="Kept with the version and shown on its versions page, e.g. “A Records Officer checks "
        "requests before the Communications Manager, as the policy now asks.”",
        render_kw={"rows": 3, "maxlength": MAX_NOTE},
    )
    confirm = BooleanField(
        "Publish this version again: new requests follow it from now on",
        validators=[InputRequired(message="Tick the box to confirm that this version is to be published again.")],
    )

    def validate_note(self, field):
        """A note of spaces only says nothing."""
        if field.data is not None and not field.data.strip():
            raise ValidationError("Say in a sentence what changed and why: it is kept with the version.")


class PublishForm(RepublishForm):
    """Publish the draft as it was when the page showed it (its revision), confirmed, with a note of what changed."""

    revision = HiddenField(validators=[Optional(), Regexp(r"^\d{1,9}$", message="Reload the page.")])
    confirm = BooleanField(
        "Publish this draft: new requests follow it from now on",
        validators=[InputRequired(message="Tick the box to confirm that this draft is to be published.")],
    )
