"""The registry's form: an account's policy marks and whether it is active (administrators)."""

from __future__ import annotations

from wtforms import BooleanField, Form, RadioField, SelectChoice
from wtforms.validators import InputRequired

from engine.db.statuses import AccountStatus
from engine.records.registry import CHECKLIST


def account_form(formdata=None, account=None) -> Form:
    """The account's checklist marks and status, filled from the account (or from what was posted)."""
    fields = {name: BooleanField(label) for name, label in CHECKLIST}
    fields["status"] = RadioField(
        "Status",
        choices=[
            SelectChoice(AccountStatus.ACTIVE.value, "Active"),
            SelectChoice(
                AccountStatus.INACTIVE.value, "Inactive: kept in the registry, no longer chosen for new requests"
            ),
        ],
        validators=[InputRequired()],
    )
    form_class = type("AccountForm", (Form,), fields)
    return form_class(formdata, obj=account)
