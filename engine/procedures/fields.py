"""Field schemas of the procedures' forms: one source for engine validation, WTForms classes and the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

from engine.errors import Invalid

# Every type a field may have, in the order the API's document lists them.
FIELD_TYPES = (
    "string",
    "text",
    "boolean",
    "choice",
    "multichoice",
    "usernames",
    "url",
    "secret",
    "email",
    "record",
    "image",
)
STRING, TEXT, BOOLEAN, CHOICE, MULTICHOICE, USERNAMES, URL, SECRET, EMAIL, RECORD, IMAGE = FIELD_TYPES
# RECORD: the number of a registry account or a request (an integer, as JSON or as digits);
# IMAGE: the id of an uploaded, verified image (POST /api/v1/attachments).

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
EMAIL_RE = re.compile(rf"^[^@\s<>()\[\],;:\"]+@{_LABEL}(?:\.{_LABEL})+$")


@dataclass(frozen=True)
class Field:
    """One field of a form: its type, whether it is required, its choices and its size limit."""

    name: str
    type: str
    label: str
    required: bool = True
    choices: tuple[str, ...] = ()
    max_length: int = 200
    # How each choice reads (value -> words), where the value alone would not say it.
    choice_labels: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    # A person chosen by name (a string or usernames field): the active users as (username, how they read).
    # Pages offer these; the value stored, and what the API takes, is still the username.
    people: tuple[tuple[str, str], ...] = ()

    def describe(self) -> dict:
        """The field as the API's task form lists it."""
        out = {"name": self.name, "type": self.type, "required": self.required, "label": self.label}
        if self.choices:
            out["choices"] = [int(c) for c in self.choices] if self.type == RECORD else list(self.choices)
        if self.choice_labels:
            out["choice_labels"] = dict(self.choice_labels)
        if self.hint:
            out["hint"] = self.hint
        if self.type in (STRING, TEXT, URL, SECRET, EMAIL):
            out["max_length"] = self.max_length
        return out

    def label_of(self, value: str) -> str | None:
        """The words for a choice, if the field names them."""
        return dict(self.choice_labels).get(str(value))


def person_field(name: str, field_type: str, label: str, people: tuple[tuple[str, str], ...], **options) -> Field:
    """A person (STRING) or people (USERNAMES) chosen by name among `people`, stored as usernames."""
    return Field(name, field_type, label, people=people, **options)


def labelled_choice(
    name: str, label: str, pairs: tuple[tuple[str, str], ...], *, field_type: str = CHOICE, **options
) -> Field:
    """A choice among (value, words) pairs: the value is what is stored, the words what a person reads."""
    return Field(name, field_type, label, choices=tuple(value for value, _ in pairs), choice_labels=pairs, **options)


def is_storable_text(value: str) -> bool:
    """Whether text can be stored: no NUL (PostgreSQL refuses it) and no unpaired surrogate (not UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def one_line_break(value):
    """Text with every line break as one "\\n": a browser sends CRLF, and a limit counts what the person typed."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


UNSTORABLE = "Contains a character that cannot be stored (NUL or an unpaired surrogate)."


class _Refused(Exception):
    """A field's value is refused; the message says why."""


def _boolean(field: Field, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Refused("Must be true or false.")
    return value


def _record(field: Field, value: Any) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise _Refused("Must be a record number such as 12.")
    if field.choices and str(value) not in field.choices:
        raise _Refused(f'{value} is not one of the choices for "{field.label}".')
    return value


def _image(field: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused("Must be an attachment id.")
    try:
        return str(UUID(value))
    except ValueError:
        raise _Refused("Must be the id of an uploaded image (POST /api/v1/attachments).")


def _list_of_choices(field: Field, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Refused("Must be a list of strings.")
    if not all(is_storable_text(item) for item in value):
        raise _Refused(UNSTORABLE)
    items = list(dict.fromkeys(item.strip() for item in value if item.strip()))
    if field.required and not items:
        raise _Refused("Choose at least one.")
    if len(items) > 50:
        raise _Refused("At most 50 entries.")
    bad = [item for item in items if field.choices and item not in field.choices]
    if bad:
        raise _Refused(f"Not a valid choice: {', '.join(bad)}. Choose from: {', '.join(field.choices)}.")
    return items


def _choice(field: Field, text: str) -> str:
    if text not in field.choices:
        raise _Refused(f'"{text}" is not a valid choice. Choose from: {", ".join(field.choices)}.')
    return text


def _email(field: Field, text: str) -> str:
    if not EMAIL_RE.match(text):
        raise _Refused("Must be an e-mail address such as name@example.org.")
    return text


def _url(field: Field, text: str) -> str:
    parsed = urlparse(text if "://" in text else f"https://{text}")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or " " in text:
        raise _Refused("Must be a web address such as https://facebook.com/cityofwsp.")
    return parsed.geturl()


# What a text field of some types must be besides text (checked when it is not empty), and its cleaned form.
_TEXT_CHECKS: dict[str, Callable[[Field, str], str]] = {CHOICE: _choice, EMAIL: _email, URL: _url}


def _text(field: Field, value: Any) -> str:
    """A string, text, choice, URL, secret or e-mail field: storable text within the limit, stripped."""
    if not isinstance(value, str):
        raise _Refused("Must be a string.")
    if not is_storable_text(value):
        raise _Refused(UNSTORABLE)
    text = one_line_break(value).strip() if field.type == TEXT else value.strip()
    if field.required and not text:
        raise _Refused("This field is required.")
    if len(text) > field.max_length:
        raise _Refused(f"At most {field.max_length} characters.")
    check = _TEXT_CHECKS.get(field.type)
    return check(field, text) if check is not None and text else text


# The check of each field type that is not text; any other type is checked by _text.
_CHECKS: dict[str, Callable[[Field, Any], Any]] = {
    BOOLEAN: _boolean,
    RECORD: _record,
    IMAGE: _image,
    MULTICHOICE: _list_of_choices,
    USERNAMES: _list_of_choices,
}


def _check(field: Field, value: Any, errors: dict[str, list[str]]) -> Any:
    """The cleaned value of one field, or None with a message added to errors."""
    try:
        return _CHECKS.get(field.type, _text)(field, value)
    except _Refused as refused:
        errors.setdefault(field.name, []).append(str(refused))
        return None


def validate(fields: list[Field], data, *, partial: bool = False) -> dict:
    """Clean `data` against the fields; raise Invalid naming every bad field. Unknown fields are errors."""
    if not isinstance(data, dict):
        raise Invalid("The data must be a JSON object.", {"data": ["Must be an object."]})
    errors: dict[str, list[str]] = {}
    known = {field.name for field in fields}
    for name in data:
        if name not in known:
            errors.setdefault(str(name)[:100], []).append("Unknown field.")
    clean = {}
    for field in fields:
        if field.name not in data or data[field.name] is None:
            if field.required and not partial:
                errors.setdefault(field.name, []).append("This field is required.")
            elif field.type == BOOLEAN and not partial:
                clean[field.name] = False
            continue
        value = _check(field, data[field.name], errors)
        if field.name not in errors:
            clean[field.name] = value
    if errors:
        raise Invalid("Some fields are missing or invalid.", errors)
    return clean


DECISIONS = ("approve", "reject", "return")

# "Return" says to whom: a returned request goes back to whoever made it, to change and resubmit.
REVIEW_DECISIONS = (("approve", "Approve"), ("reject", "Reject"), ("return", "Return to the requester for changes"))

REVIEW_FIELDS = [
    labelled_choice("decision", "Decision", REVIEW_DECISIONS),
    Field("comment", TEXT, "Written comment (required to reject or return)", required=False, max_length=5000),
]


APPROVAL_FIELDS = [
    Field("decision", CHOICE, "Decision", choices=("approve", "reject")),
    Field("comment", TEXT, "Written comment (required to reject)", required=False, max_length=5000),
]


def check_review(clean: dict) -> None:
    """A rejection or return must say why, in writing."""
    if clean["decision"] in ("reject", "return") and not clean.get("comment"):
        raise Invalid(
            "A written reason is required.", {"comment": [f"Write the reasons to {clean['decision']} the request."]}
        )
