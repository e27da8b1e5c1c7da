"""Letters by post: a letter to a postal address is printed from a PDF and mailed by staff.

The letter waits in the outbox as `post` (the mail server never sees it) until the "Mail the letter" task of
its request is completed; that marks it `sent` on the day it was mailed, so a promise about the letter (the
dispute's acknowledgement within a business day) is kept or escalated by the date it went into the post.

The PDF is made with fpdf2: the City's letterhead, the letter's date, the address block where a US #10
window envelope shows it (the page folded in three), then the letter's text exactly as stored.
"""

from __future__ import annotations

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import OutboxMail, ProcessInstance
from engine.db.statuses import MailStatus
from engine.errors import Invalid, NotFound
from engine.mail import letters
from engine.people.users import Actor
from engine.records import audit
from engine.requests import authz
from engine.time import clock

# Where a #10 window envelope's window falls on a letter-size page folded in three (inches from the top left).
WINDOW_LEFT_IN = 0.875
WINDOW_TOP_IN = 2.0
WINDOW_WIDTH_IN = 3.5
MARGIN_IN = 1.0
# The core fonts of a PDF know Latin-1 only; anything else is printed as its nearest ASCII or a "?".
_PUNCTUATION = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", " ": " "})


def printable_text(text: str) -> str:
    """Text the PDF's core font can print: typographic punctuation as ASCII, other characters outside Latin-1 '?'."""
    return text.translate(_PUNCTUATION).encode("latin-1", "replace").decode("latin-1")


def pdf(session: Session, mail: OutboxMail) -> bytes:
    """The letter as a printable PDF: letterhead, date, the address in the envelope's window, the text."""
    document = FPDF(orientation="portrait", unit="in", format="letter")
    document.set_title(printable_text(mail.subject))
    document.set_author(letters.CITY)
    document.set_creation_date(clock.as_utc(mail.created_at))
    document.set_margins(MARGIN_IN, 0.6, MARGIN_IN)
    document.set_auto_page_break(True, margin=MARGIN_IN)
    document.add_page()
    # The letterhead, at the top right, clear of the window.
    document.set_font("Helvetica", "B", 14)
    document.cell(0, 0.3, letters.CITY, align="R", new_x="LMARGIN", new_y="NEXT")
    document.set_font("Helvetica", "", 9)
    for line in letters.CITY_ADDRESS:
        document.cell(0, 0.18, line, align="R", new_x="LMARGIN", new_y="NEXT")
    # The date, above the window.
    document.set_font("Helvetica", "", 11)
    document.set_xy(WINDOW_LEFT_IN, 1.5)
    document.cell(WINDOW_WIDTH_IN, 0.2, letters.local_date(session, mail.created_at))
    # The address block, in the window.
    document.set_xy(WINDOW_LEFT_IN, WINDOW_TOP_IN)
    document.multi_cell(WINDOW_WIDTH_IN, 0.19, printable_text(mail.postal_address or ""), align="L", new_x="LMARGIN")
    # The letter, below the first fold's window.
    document.set_xy(MARGIN_IN, 3.4)
    document.multi_cell(0, 0.2, printable_text(mail.body.rstrip()), align="L", new_x="LMARGIN")
    return bytes(document.output())


def awaiting_post(session: Session, instance_id: int) -> list[OutboxMail]:
    """A request's letters printed for the post and not yet mailed, oldest first."""
    return list(
        session.scalars(
            select(OutboxMail)
            .where(OutboxMail.instance_id == instance_id, OutboxMail.status == MailStatus.POST)
            .order_by(OutboxMail.id)
        )
    )


def postal_letters_of(session: Session, instance_id: int) -> list[OutboxMail]:
    """A request's letters by post, mailed or not, oldest first."""
    return list(
        session.scalars(
            select(OutboxMail)
            .where(OutboxMail.instance_id == instance_id, OutboxMail.postal_address.is_not(None))
            .order_by(OutboxMail.id)
        )
    )


def printable(session: Session, actor: Actor, mail_id: int) -> OutboxMail:
    """A postal letter, for someone who may see its request; each reading is in the audit trail."""
    mail = session.get(OutboxMail, mail_id)
    if mail is None or mail.postal_address is None or mail.instance_id is None:
        raise NotFound(f"No letter {mail_id} to print.")
    authz.require_may_view(session, actor, session.get_one(ProcessInstance, mail.instance_id))
    audit.append(
        session,
        actor,
        "letter_printed",
        instance_id=mail.instance_id,
        detail={"letter": mail.letter, "mail_id": mail.id, "subject": mail.subject},
    )
    return mail


def record_mailed(session: Session, instance: ProcessInstance, field: str) -> list[OutboxMail]:
    """The request's letters waiting for the post are mailed now (the "Mail the letter" task is completed)."""
    waiting = awaiting_post(session, instance.id)
    if not waiting:
        raise Invalid("There is no letter waiting to be mailed.", {field: ["This request has no letter to mail."]})
    now = clock.utcnow()
    for mail in waiting:
        mail.status = MailStatus.SENT
        mail.sent_at = now
        mail.attempts += 1
    return waiting
