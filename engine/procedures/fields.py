"""Field schemas of the procedures' forms: one source for engine validation, WTForms classes and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse
from uuid import UUID

from engine.errors import Invalid

STRING, TEXT, BOOLEAN, CHOICE, MULTICHOICE, USERNAMES, URL, SECRET, EMAIL, RECORD, IMAGE = (
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


def _check(field: Field, value, errors: dict[str, list[str]]):
    """The cleaned value of one field, or None with a message added to errors."""

    def fail(message):
        errors.setdefault(field.name, []).append(message)

    if field.type == BOOLEAN:
        if not isinstance(value, bool):
            return fail("Must be true or false.")
        return value
    if field.type == RECORD:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
            return fail("Must be a record number such as 12.")
        if field.choices and str(value) not in field.choices:
            return fail(f'{value} is not one of the choices for "{field.label}".')
        return value
    if field.type == IMAGE:
        try:
            return str(UUID(value)) if isinstance(value, str) else fail("Must be an attachment id.")
        except ValueError:
            return fail("Must be the id of an uploaded image (POST /api/v1/attachments).")
    if field.type in (MULTICHOICE, USERNAMES):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return fail("Must be a list of strings.")
        if not all(is_storable_text(item) for item in value):
            return fail(UNSTORABLE)
        items = list(dict.fromkeys(item.strip() for item in value if item.strip()))
        if field.required and not items:
            return fail("Choose at least one.")
        if len(items) > 50:
            return fail("At most 50 entries.")
        bad = [item for item in items if field.choices and item not in field.choices]
        if bad:
            return fail(f"Not a valid choice: {', '.join(bad)}. Choose from: {', '.join(field.choices)}.")
        return items
    if not isinstance(value, str):
        return fail("Must be a string.")
    if not is_storable_text(value):
        return fail(UNSTORABLE)
    text = one_line_break(value).strip() if field.type == TEXT else value.strip()
    if field.required and not text:
        return fail("This field is required.")
    if len(text) > field.max_length:
        return fail(f"At most {field.max_length} characters.")
    if field.type == CHOICE and text and text not in field.choices:
        return fail(f'"{text}" is not a valid choice. Choose from: {", ".join(field.choices)}.')
    if field.type == EMAIL and text and not EMAIL_RE.match(text):
        return fail("Must be an e-mail address such as name@example.org.")
    if field.type == URL and text:
        parsed = urlparse(text if "://" in text else f"https://{text}")
        if parsed.scheme not in ("http", "https") or not parsed.netloc or " " in text:
            return fail("Must be a web address such as https://facebook.com/cityofwsp.")
        text = parsed.geturl()
    return text


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

REVIEW_FIELDS = [
    Field("decision", CHOICE, "Decision", choices=DECISIONS),
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
