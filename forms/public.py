"""The public pages' forms: an appeal or dispute (from the procedure's public fields) with a honeypot, and the
tracking-code lookup."""

from __future__ import annotations

from sqlalchemy.orm import Session
from wtforms import Form, StringField

from engine.requests import public
from forms import form_class

# A field people never see nor reach (off screen, out of the tab order, hidden from screen readers) and
# automated form fillers fill in: a filing that has it is refused, with its label saying why.
HONEYPOT = "website"


def public_form(session: Session, kind: str) -> type[Form]:
    """The form of a kind of public filing ("appeal", "dispute"), with the honeypot field."""
    base = form_class(f"Public{kind.capitalize()}Form", public.procedure_of(kind).public_fields(session))
    return type(
        base.__name__,
        (base,),
        {HONEYPOT: StringField("Leave this field empty", render_kw={"autocomplete": "off", "tabindex": "-1"})},
    )


def lookup_form() -> type[Form]:
    """The tracking-code lookup (a GET form: it changes nothing)."""
    return type(
        "LookupForm",
        (Form,),
        {
            "code": StringField(
                "Tracking code",
                description="From your receipt.",
                render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
            )
        },
    )
