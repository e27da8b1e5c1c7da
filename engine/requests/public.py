"""The public side: members of the public appeal a removal or dispute the policy in writing, without a login,
and follow their case by an unguessable tracking code. The City's public notice, which its accounts link to.

What a member of the public can learn here is only the public facts of their own request: when it was
received, acknowledged and responded to, and the City's written response. Never the history, the staff who
worked on it, their comments, or the City Attorney's advice.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, joinedload

from engine import procedures
from engine.db.models import AuditEvent, OutboxMail, ProcessInstance, PublicNotice, PublicRequest
from engine.db.statuses import MailStatus, PublicStatus
from engine.diagrams import budget
from engine.errors import Busy, Invalid, NotFound
from engine.mail import letters, outbox
from engine.people.roles import ADMIN, PUBLIC
from engine.people.users import Actor
from engine.procedures.common import local_date
from engine.procedures.fields import TEXT, Field, is_storable_text, one_line_break, validate
from engine.records import audit
from engine.requests import services
from engine.requests.authz import require_admin
from engine.settings import settings_of
from engine.time import clock

# Crockford's base32: no I, L, O or U, so a code read aloud or copied from a letter is not misread.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 20  # 100 random bits: no one finds a request by trying codes
GROUP = 4
# Where a request's public status page is, under the City's base URL (the web app serves it there).
STATUS_PATH = "/public/requests/"
RECEIPT_LETTER = "public_receipt"
NOTICE_LIMIT = 20000


def procedure_of(kind: str) -> procedures.Procedure:
    """The procedure members of the public file as this kind ("appeal", "dispute")."""
    for procedure in procedures.all_procedures():
        if procedure.public_kind is not None and procedure.public_kind == kind:
            return procedure
    raise NotFound(f'The public cannot file "{kind}".')


# ---- tracking codes ------------------------------------------------------------------------------


def new_code() -> str:
    """A fresh tracking code, grouped for reading: "K7QM-4XPA-9RTD-2WEH-5NBC"."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return format_code(raw)


def format_code(raw: str) -> str:
    """A normalised code in groups of four."""
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


# How a typed code is read: O as 0, I and L as 1, dashes and spaces dropped.
_AS_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def normalise(code) -> str | None:
    """A code as typed (any case, with or without dashes and spaces, O for 0, I or L for 1), or None if it
    cannot be a tracking code."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    raw = code.upper().translate(_AS_TYPED)
    if len(raw) != CODE_LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return raw


def code_hash(raw: str) -> str:
    """What is stored of a code: its sha256 (the code itself opens the status page, so it is not kept)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def find(session: Session, code) -> PublicRequest:
    """The public request a tracking code opens; NotFound, the same for a malformed and an unknown code."""
    raw = normalise(code)
    # The request comes with its record, not its workflow state (kilobytes no public answer needs).
    query = select(PublicRequest).options(joinedload(PublicRequest.instance).defer(ProcessInstance.workflow_state))
    found = session.scalar(query.where(PublicRequest.code_hash == code_hash(raw))) if raw else None
    if found is None:
        raise NotFound("No request has this tracking code. Check it against your receipt.")
    return found


# ---- filing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filed:
    """A request the public filed, and its tracking code (shown once, and e-mailed in the receipt)."""

    instance: ProcessInstance
    code: str
    kind: str


def public_actor(name: str) -> Actor:
    """A member of the public as the engine sees them: no id, no roles, no department; named as they wrote."""
    return Actor(
        id=None, username=PUBLIC, display_name=name, roles=frozenset(), department_id=None, department_code=None
    )


# One public filing at a time in each server process (the web layer holds it around the filing's whole
# transaction, so that on SQLite a burst of filings does not queue on the write lock either). Anyone may file,
# and a diagram step may compute for its whole budget (engine/diagrams/budget.py): ten filings at once would
# otherwise share the process's interpreter and database with the City's staff for seconds. Another filing waits
# a moment, then is asked to send again (503 with Retry-After; the web form comes back as written).
# bench/abuse.py and tests/test_abuse_under_load.py measure it.
_FILING = threading.BoundedSemaphore(1)
FILING_WAIT_SECONDS = 0.5
# An anonymous filing's steps get a quarter of a second of computing time at most (staff steps: the setting).
PUBLIC_STEP_CPU_SECONDS = 0.25


@contextmanager
def one_filing_at_a_time() -> Iterator[None]:
    """Hold the process's one place for a public filing; Busy if another keeps it past FILING_WAIT_SECONDS."""
    if not _FILING.acquire(timeout=FILING_WAIT_SECONDS):
        raise Busy("Many filings are arriving at this moment; please send yours again in a few seconds.")
    try:
        yield
    finally:
        _FILING.release()


def submit(session: Session, kind: str, data) -> Filed:
    """File an appeal or dispute for a member of the public; the receipt goes to the address they gave.

    The data is checked against the public form (its size limits, unknown fields refused), then against
    the procedure's own rules; anything wrong raises Invalid by field and nothing is written.
    """
    procedure = procedure_of(kind)
    if not isinstance(data, dict):
        raise Invalid("The data must be an object.", {"data": ["Must be an object."]})
    data = dict(data)
    via = data.pop("received_via", "web")
    if via != "web":
        raise Invalid(
            "The public form receives through the web only.",
            {"received_via": ['Must be "web" (staff enter letters and e-mails themselves).']},
        )
    clean = validate(procedure.public_fields(session), data)
    actor = public_actor(clean[procedure.filer_name_field])
    code = new_code()
    raw = normalise(code)
    assert raw is not None  # a new code is a well-formed one
    # An acknowledgement the diagram sends at once carries the tracking code and the copy: one letter, not two.
    with (
        budget.metered(budget.Budget(cpu_seconds=PUBLIC_STEP_CPU_SECONDS)),
        letters.enclosing(_receipt_text(session, procedure, clean, code)),
    ):
        instance = services.start_instance(
            session, actor, procedure.key, {**clean, "received_via": "web"}, role=PUBLIC, write_after_steps=True
        )
    session.add(
        PublicRequest(instance_id=instance.id, kind=kind, code_hash=code_hash(raw), received_at=instance.started_at)
    )
    if not _acknowledged(session, procedure, instance):
        outbox.queue_and_record(
            session, receipt(session, procedure, instance, code), name=RECEIPT_LETTER, instance_id=instance.id
        )
    session.flush()
    return Filed(instance, code, kind)


def _acknowledged(session: Session, procedure: procedures.Procedure, instance: ProcessInstance) -> bool:
    """Whether the filing's first steps already wrote the procedure's acknowledgement (which carries the code)."""
    if procedure.acknowledgement_letter is None:
        return False
    session.flush()
    found = session.scalar(
        select(OutboxMail.id)
        .where(OutboxMail.instance_id == instance.id, OutboxMail.letter == procedure.acknowledgement_letter)
        .limit(1)
    )
    return found is not None


KIND_WORDS = {"appeal": "appeal of a removed comment", "dispute": "dispute of the City's Social Media Policy"}


def status_url(base_url: str, code: str) -> str:
    """The status page's address, under the City's base URL (engine/mail/letters.py's base_url)."""
    return f"{base_url}{STATUS_PATH}{code}"


def what_was_sent(session: Session, procedure: procedures.Procedure, record: dict) -> list[tuple[Field, str]]:
    """The public form's fields as the member of the public filled them in (the account by its name)."""
    sent = []
    for field in procedure.public_fields(session):
        if record.get(field.name) in (None, ""):
            continue
        value = record.get("account_name", record[field.name]) if field.name == "account" else record[field.name]
        sent.append((field, str(value)))
    return sent


def _public_form(procedure: procedures.Procedure) -> tuple[str, str, str]:
    """What the public files a procedure as, and the fields of its form that name the filer and their address."""
    kind, name_field, email_field = procedure.public_kind, procedure.filer_name_field, procedure.filer_email_field
    if kind is None or name_field is None or email_field is None:
        raise ValueError(f"{procedure.name} is not filed by the public.")
    return kind, name_field, email_field


def _receipt_text(session: Session, procedure: procedures.Procedure, record: dict, code: str) -> str:
    """What a filer is mailed with their tracking code: the code, the status page's link, a copy of what they sent."""
    kind, name_field, email_field = _public_form(procedure)
    copy = [
        f"{field.label}:\n{value}" if field.type == TEXT else f"{field.label}: {value}"
        for field, value in what_was_sent(session, procedure, record)
        if field.name not in (name_field, email_field)
    ]
    return (
        f"Your tracking code: {code}\n\n"
        f"Follow your {kind}, and read the City's written response once it is sent, at:\n"
        f"{status_url(letters.base_url(settings_of(session)), code)}\n\n"
        f"Anyone who has this code can see the status of your {kind} and the City's response, so keep it to "
        "yourself. The response will also be e-mailed to you.\n\n"
        "What you sent:\n\n" + "\n\n".join(copy)
    )


def receipt(session: Session, procedure: procedures.Procedure, instance: ProcessInstance, code: str) -> outbox.Letter:
    """The e-mailed receipt: when it arrived, the tracking code and its link, and a copy of what was sent."""
    record = instance.data
    kind, name_field, email_field = _public_form(procedure)
    body = (
        f"The City of West St. Paul received your {KIND_WORDS[kind]} on {local_date(session, instance.started_at)}."
        f"\n\n{_receipt_text(session, procedure, record, code)}"
    )
    text = f"Dear {record[name_field]},\n\n{body}\n\n{letters.CITY}\n"
    subject = f"Receipt: your {KIND_WORDS[kind]}"
    return outbox.Letter(recipients=(record[email_field],), subject=subject, body=text)


# ---- what the public may see ---------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """The public facts of one request: nothing else about it leaves the City this way."""

    kind: str
    status: PublicStatus
    received_at: datetime
    acknowledged_at: datetime | None
    responded_at: datetime | None
    response: str | None

    def as_json(self) -> dict:
        """The API's shape (docs/api.md), times in ISO 8601 UTC."""

        def iso(moment):
            return clock.as_utc(moment).isoformat() if moment else None

        return {
            "kind": self.kind,
            "status": self.status,
            "received_at": iso(self.received_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "responded_at": iso(self.responded_at),
            "response": self.response,
        }


def _letter_written(session: Session, instance_id: int, letter: str | None, *, newest: bool = False):
    """When the request's first (or newest) letter of this name was written, and its text."""
    if letter is None:
        return None
    order = OutboxMail.id.desc() if newest else OutboxMail.id
    # A letter by post is written to the person once it is mailed: its date is the day it went into the post.
    written = case((OutboxMail.postal_address.is_not(None), OutboxMail.sent_at), else_=OutboxMail.created_at)
    return session.execute(
        select(written.label("created_at"), OutboxMail.body)
        .where(
            OutboxMail.instance_id == instance_id,
            OutboxMail.letter == letter,
            OutboxMail.status != MailStatus.POST,
        )
        .order_by(order)
        .limit(1)
    ).first()


def _furthest_step(acknowledged_at: datetime | None, responded_at: datetime | None) -> PublicStatus:
    if responded_at:
        return PublicStatus.RESPONDED
    return PublicStatus.ACKNOWLEDGED if acknowledged_at else PublicStatus.RECEIVED


def status_of(session: Session, public: PublicRequest) -> Status:
    """Received; acknowledged (the City's acknowledgement written, or a member of staff took the request up);
    responded (the City's written response written, shown as it was sent)."""
    instance = public.instance
    procedure = procedures.get(instance.process_key)
    acknowledgement = _letter_written(session, instance.id, procedure.acknowledgement_letter)
    taken_up = session.scalar(
        select(func.min(AuditEvent.at)).where(
            AuditEvent.instance_id == instance.id,
            AuditEvent.action.in_(("claimed", "completed")),
            AuditEvent.actor_id.is_not(None),
        )
    )
    response = _letter_written(session, instance.id, procedure.response_letter, newest=True)
    moments = [m for m in (acknowledgement.created_at if acknowledgement else None, taken_up) if m is not None]
    acknowledged_at = min(moments) if moments else None
    responded_at = response.created_at if response else None
    if responded_at is not None and acknowledged_at is None:
        acknowledged_at = responded_at
    return Status(
        kind=public.kind,
        status=_furthest_step(acknowledged_at, responded_at),
        received_at=public.received_at,
        acknowledged_at=acknowledged_at,
        responded_at=responded_at,
        response=response.body if response else None,
    )


# ---- the public notice ---------------------------------------------------------------------------

DEFAULT_NOTICE = """\
The City of West St. Paul uses social media to share information about City government and services. \
Where the City invites comments, its pages are a limited public forum for discussion of matters related to \
City government and services.

By accessing, using or posting to a City social media page, you agree to these terms:

- Comments, posts and media from the public are not edited, but they may be removed or denied, before or \
after they are published, when they fall into one of the removal categories.
- City social media is not used for City business. To make a request, apply for something or ask a question \
that needs a City process, contact the City by phone, e-mail or in person.
- Everything posted to or sent through the City's accounts belongs to the City and is subject to the \
Minnesota Government Data Practices Act, which makes some of it available to the public on request.

If your comment was removed, you may appeal in writing: explain how it does not fall into any of the removal \
categories. The City will respond in writing as soon as reasonably possible.

If you believe a portion of the City's Social Media Policy is not lawful, you may dispute that portion in \
writing. The City will acknowledge your claim promptly, consult the City Attorney, and respond in writing as \
soon as reasonably possible.

Questions about this notice go to the City's Marketing and Communications Manager."""


def notice_in_force(session: Session) -> PublicNotice:
    """The public notice in force: the newest version an administrator saved, or the City's default text."""
    current = session.scalar(select(PublicNotice).order_by(PublicNotice.id.desc()).limit(1))
    return current or PublicNotice(body=DEFAULT_NOTICE, changed_by_id=None, changed_at=None)


def notice_versions(session: Session, limit: int = 20) -> list[PublicNotice]:
    """The saved versions of the public notice, newest first."""
    return list(session.scalars(select(PublicNotice).order_by(PublicNotice.id.desc()).limit(limit)))


def change_notice(session: Session, actor: Actor, body) -> PublicNotice:
    """Save a new version of the public notice (plain text; earlier versions are kept); logged in the audit."""
    require_admin(actor, "change the public notice")
    if not isinstance(body, str) or not is_storable_text(body):
        raise Invalid("The notice must be plain text.", {"body": ["Must be text without NUL characters."]})
    text = one_line_break(body).strip()
    if not text:
        raise Invalid("The notice cannot be empty.", {"body": ["Write the notice's text."]})
    if len(text) > NOTICE_LIMIT:
        raise Invalid("The notice is too long.", {"body": [f"At most {NOTICE_LIMIT} characters."]})
    if text == notice_in_force(session).body:
        raise Invalid("Nothing changed.", {"body": ["The text is the same as the notice in force."]})
    version = PublicNotice(body=text, changed_by_id=actor.id, changed_at=clock.utcnow())
    session.add(version)
    session.flush()
    audit.append(
        session, actor, "public_notice_changed", role=ADMIN, detail={"version": version.id, "characters": len(text)}
    )
    return version


def notice_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Plain text as blocks for a page: ("p", [paragraph]) for lines run together, ("ul", [items]) for lines that
    start "- ". A blank line ends a paragraph or a list."""
    blocks: list[tuple[str, list[str]]] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close():
        if paragraph:
            blocks.append(("p", [" ".join(paragraph)]))
        if items:
            blocks.append(("ul", list(items)))
        paragraph.clear()
        items.clear()

    for line in (raw.strip() for raw in text.replace("\r\n", "\n").split("\n")):
        if not line:
            close()
        elif line.startswith("- "):
            if paragraph:
                close()
            items.append(line[2:].strip())
        else:
            if items:
                close()
            paragraph.append(line)
    close()
    return blocks
