"""Validators shared by the forms."""

from __future__ import annotations

from wtforms.validators import ValidationError

from engine.procedures.fields import UNSTORABLE, is_storable_text


class Storable:
    """Refuse text the database cannot store (NUL, unpaired surrogates), with the field's own message."""

    def __call__(self, form, field):
        values = field.data if isinstance(field.data, list) else [field.data]
        if any(isinstance(value, str) and not is_storable_text(value) for value in values):
            raise ValidationError(UNSTORABLE)
