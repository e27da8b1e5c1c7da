"""The City's letter: one template holds the greeting, the reference and the signature; staff write the body.

A reviewer's written response is the body of the letter only. The template greets the person who wrote in,
adds the reference and signs for the City, so a letter has exactly one of each; a body that greets or signs
itself is refused with the field named, since a clerk would rather fix their text than have it changed
unseen. Every link a letter carries starts with one base URL (`base_url`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy.orm import Session

from engine.errors import Invalid
from engine.settings import Settings, settings_of
from engine.time import deadlines

CITY = "City of West St. Paul"
# Where the City's letters come from: the letterhead of a printed letter, and its return address.
CITY_ADDRESS = ("1616 Humboldt Avenue", "West St. Paul, MN 55118")
# The base URL a fresh checkout runs at (`civicflow serve`'s default); CIVICFLOW_BASE_URL says otherwise.
DEFAULT_BASE_URL = "http://127.0.0.1:5000"

# A body that opens with a greeting, or closes with a sign-off, would greet or sign the letter twice.
_GREETING = re.compile(r"^\s*(dear|hello|hi|good (morning|afternoon|evening)|to whom it may concern)\b", re.I)
_SIGN_OFF = re.compile(
    r"^\s*(sincerely|yours (sincerely|truly|faithfully)|(with )?(kind |best |warm )?regards|respectfully"
    r"( yours| submitted)?|cordially|best wishes|best)\s*[,.!]?\s*$",
    re.I,
)
# How far from the end a sign-off is looked for: "Sincerely," then a name and a title or two.
_SIGN_OFF_LINES = 4


def signature(session: Session) -> str:
    """How the City signs its letters: its name and the Communications Manager's title."""
    return f"{CITY}\n{settings_of(session).communications_manager_title}"


def local_date(session: Session, moment: datetime) -> str:
    """A stored UTC time as a date in the City's time zone (settings), for letters: 'November 21, 2026'."""
    local = deadlines.of(settings_of(session)).local(moment)
    return f"{local:%B} {local.day}, {local.year}"


def check_body(text: str, field: str, to_name: str) -> None:
    """Refuse a body that greets or signs: the City's letter does both (Invalid naming the field)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines and _GREETING.match(lines[0]):
        raise Invalid(
            "The text greets the reader; the letter already does.",
            {
                field: [
                    "Start with the first sentence of your reply: the City's letter already begins "
                    f'"Dear {to_name},". Remove "{lines[0].strip()}".'
                ]
            },
        )
    for line in lines[-_SIGN_OFF_LINES:]:
        if _SIGN_OFF.match(line):
            raise Invalid(
                "The text signs off; the letter already does.",
                {
                    field: [
                        f"End with the last sentence of your reply: the City's letter adds the reference and signs "
                        f'for the City. Remove "{line.strip()}" and the lines after it.'
                    ]
                },
            )


def compose(session: Session, *, to_name: str, body: str, reference: str) -> str:
    """The City's letter: the greeting, the body as written, the reference, the City's signature."""
    return f"Dear {to_name},\n\n{body.strip()}\n\nReference: {reference}\n\n{signature(session)}\n"


# ---- what a public filing's first letter encloses ------------------------------------------------

# The tracking code's paragraph and the copy of what was sent, while a public filing runs its first steps: the
# acknowledgement a diagram sends then carries them, so the filer gets one letter rather than two.
_enclosure: ContextVar[str | None] = ContextVar("civicflow_letter_enclosure", default=None)


@contextmanager
def enclosing(text: str) -> Iterator[None]:
    """While the block runs, the letters composed with `enclosure()` carry `text` (a public filing's receipt)."""
    token = _enclosure.set(text)
    try:
        yield
    finally:
        _enclosure.reset(token)


def enclosure() -> str | None:
    """The receipt text the letter being composed carries, if a public filing is running its first steps."""
    return _enclosure.get()


# ---- the one base URL of mailed links ------------------------------------------------------------

_serving: ContextVar[str | None] = ContextVar("civicflow_serving_base_url", default=None)


def serve_from(url: str | None):
    """Set the serving address for the current context; the token resets it (the web app's request hooks)."""
    return _serving.set(url.rstrip("/") if url else None)


def stop_serving(token) -> None:
    """Forget the serving address set by `serve_from`."""
    _serving.reset(token)


def base_url(settings: Settings) -> str:
    """Where every mailed link starts: CIVICFLOW_BASE_URL if set, else the address the serving request came to,
    else the default `civicflow serve` address (a scheduler's letters, with no request)."""
    if settings.base_url and settings.base_url != DEFAULT_BASE_URL:
        return settings.base_url
    return _serving.get() or settings.base_url or DEFAULT_BASE_URL
