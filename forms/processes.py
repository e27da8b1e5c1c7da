"""The forms of the procedure editor: uploading a diagram, and publishing the draft it was made from."""

from __future__ import annotations

from wtforms import FileField, Form, HiddenField
from wtforms.validators import InputRequired, Optional, Regexp, ValidationError

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


class PublishForm(Form):
    """Publish the draft as it was when the page showed it (its revision)."""

    revision = HiddenField(validators=[Optional(), Regexp(r"^\d{1,9}$", message="Reload the page.")])
