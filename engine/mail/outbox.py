"""The mail outbox: letters are rows written in the same transaction as the change that caused them.

A diagram sends mail with a service task whose operator is "send_letter"; while the engine runs
the workflow, such steps are collected here, and the service that ran it queues the procedure's
letter in the outbox. A rolled-back change therefore sends nothing, and a mail server that is
down loses nothing: the sender delivers what is pending, retrying with backoff.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.db.connection import begin_write
from engine.db.models import Attachment, Blob, OutboxMail
from engine.db.statuses import MailStatus
from engine.errors import ExpressionError
from engine.records import audit
from engine.settings import Settings
from engine.time import clock

SEND_LETTER = "send_letter"
# Set in a session's info when it queued mail, so whoever commits it can wake the sender at once.
QUEUED = "civicflow.mail_queued"


@dataclass(frozen=True)
class Letter:
    """One message: to whom, subject, plain-text body, and the attachments (ids) to send with it. A letter with a
    postal address (the name and address lines) is printed and mailed by staff instead (engine/mail/postal.py)."""

    recipients: tuple[str, ...]
    subject: str
    body: str
    attachment_ids: tuple[str, ...] = field(default_factory=tuple)
    postal_address: str | None = None


# The letters the running workflow's send_letter steps asked for. A context variable, because SpiffWorkflow calls a
# service task with nothing but its name and parameters (engine/diagrams/sandbox.py).
_requested_letters: ContextVar[list[str] | None] = ContextVar("civicflow_requested_letters", default=None)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collect the letters the diagram's send_letter steps ask for while the block runs the workflow."""
    letters: list[str] = []
    token = _requested_letters.set(letters)
    try:
        yield letters
    finally:
        _requested_letters.reset(token)


def request_letter(operation_name: str, params: dict) -> str:
    """A send_letter service task ran: note the letter it names (the caller queues it); JSON for SpiffWorkflow."""
    letters = _requested_letters.get()
    if operation_name != SEND_LETTER:
        raise ExpressionError(f'Unknown service "{operation_name}"; civicflow diagrams may only use send_letter.')
    if letters is None:
        raise ExpressionError("Mail can only be sent while a request is being saved.")
    name = (params.get("letter") or {}).get("value")
    if not isinstance(name, str) or not name:
        raise ExpressionError('A send_letter step needs a "letter" parameter naming the letter.')
    letters.append(name)
    return json.dumps({"queued": name})


def queue(session: Session, letter: Letter, *, name: str, instance_id: int | None) -> OutboxMail:
    """Write a letter to the outbox in the caller's transaction; the sender delivers it after the commit."""
    now = clock.utcnow()
    # Due at once by any clock: a letter queued by `civicflow timers fire --now <a later time>` is sent by the
    # running sender now, not when the machine's time reaches the pinned one.
    due = min(now, clock.wall_utcnow())
    by_post = letter.postal_address is not None
    # A postal letter's "to" is its address on one line, as the request's page lists it.
    recipients = [", ".join(letter.postal_address.splitlines())] if letter.postal_address else list(letter.recipients)
    mail = OutboxMail(
        instance_id=instance_id,
        letter=name,
        recipients=recipients,
        subject=letter.subject,
        body=letter.body,
        attachment_ids=list(letter.attachment_ids),
        status=MailStatus.POST if by_post else MailStatus.PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=due,
        postal_address=letter.postal_address,
    )
    session.add(mail)
    if not by_post:
        session.info[QUEUED] = True
    return mail


def queue_and_record(session: Session, letter: Letter, *, name: str, instance_id: int, **event) -> OutboxMail:
    """Queue a letter of a request and say so in its history (`mail_queued`, by civicflow); `event` adds the
    task it is about or a comment."""
    mail = queue(session, letter, name=name, instance_id=instance_id)
    audit.append(
        session,
        None,
        "mail_queued",
        instance_id=instance_id,
        detail={
            "letter": name,
            "subject": letter.subject,
            "recipients": 1 if letter.postal_address is not None else len(letter.recipients),
            **({"by": "post"} if letter.postal_address is not None else {}),
        },
        **event,
    )
    return mail


def take_mail_queued(session: Session) -> bool:
    """Whether the session queued a letter since this was last asked: its committer then wakes the sender."""
    return bool(session.info.pop(QUEUED, False))


# The sender: delivers what is due over SMTP, one short transaction per message.

SMTP_TIMEOUT_SECONDS = 10
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
ERROR_CHARS = 500


@dataclass(frozen=True)
class Delivery:
    """What one pass of the sender did: letters sent, put back for a later try, and refused for good."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # Set when the pass stopped early because the mail server could not be reached (or dropped us).
    unreachable: str | None = None


class Undeliverable(Exception):
    """A letter that no retry can send (no recipients, a missing attachment, a malformed header)."""


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the n-th failed attempt: 1 minute, doubling each time, at most an hour."""
    return min(FIRST_RETRY * 2 ** (min(max(attempts, 1), 16) - 1), LONGEST_RETRY)


def pending_count(session: Session) -> int:
    """How many letters are still waiting to be sent, due now or later."""
    return session.execute(
        select(func.count()).select_from(OutboxMail).where(OutboxMail.status == MailStatus.PENDING)
    ).scalar_one()


def _due() -> Select[OutboxMail]:
    """Pending letters whose time has come, the longest-waiting first."""
    return (
        select(OutboxMail)
        .where(OutboxMail.status == MailStatus.PENDING, OutboxMail.next_attempt_at <= clock.utcnow())
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
    )


def _claim_next(session: Session) -> OutboxMail | None:
    """Lock the next due letter for this transaction; on PostgreSQL a letter another sender holds is skipped."""
    begin_write(session)
    return session.scalars(_due().limit(1).with_for_update(skip_locked=True)).first()


def compose(session: Session, mail: OutboxMail, mail_from: str) -> EmailMessage:
    """The email for an outbox row: plain text, attachments byte for byte, a Message-ID stable across retries."""
    if not mail.recipients:
        raise Undeliverable("The letter has no recipients.")
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    written = clock.as_utc(mail.created_at)
    assert written is not None  # as_utc gives None only for None
    try:
        message["From"] = mail_from
        message["To"] = ", ".join(mail.recipients)
        message["Subject"] = mail.subject
        # The moment the letter was written, so that every retry is the same message.
        message["Date"] = format_datetime(written)
        message["Message-ID"] = f"<outbox-{mail.id}@{domain}>"
        # Out-of-office replies and the like must not answer an automatic letter (RFC 3834).
        message["Auto-Submitted"] = "auto-generated"
    except ValueError as exc:  # a header with a line break or an unparseable address
        raise Undeliverable(f"The letter has a malformed header: {exc}") from exc
    message.set_content(mail.body)
    for attachment_id in mail.attachment_ids or []:
        attachment = session.get(Attachment, attachment_id)
        blob = session.get(Blob, attachment.sha256) if attachment is not None else None
        if attachment is None or blob is None:
            raise Undeliverable(f'Attachment "{attachment_id}" is missing.')
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            bytes(blob.data), maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
        )
    return message


def _describe(exc: BaseException) -> str:
    """A short, readable line for last_error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = "refused " + "; ".join(
            f"{address}: {code} {_decoded(reply)}" for address, (code, reply) in exc.recipients.items()
        )
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{exc.smtp_code} {_decoded(exc.smtp_error)}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_CHARS]


def _decoded(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _try_later(mail: OutboxMail, error: str) -> None:
    """Count a failed attempt and schedule the next one; the letter stays pending."""
    mail.attempts += 1
    mail.last_error = error
    mail.next_attempt_at = clock.utcnow() + retry_delay(mail.attempts)


def _give_up(mail: OutboxMail, error: str) -> None:
    mail.attempts += 1
    mail.status = MailStatus.FAILED
    mail.last_error = error


def _send_one(session: Session, smtp: smtplib.SMTP, mail: OutboxMail, settings: Settings) -> tuple[str, bool]:
    """Try one letter on an open connection; (outcome, whether the connection is still usable)."""
    try:
        message = compose(session, mail, settings.mail_from)
    except Undeliverable as exc:
        _give_up(mail, str(exc))
        return "failed", True
    try:
        refused = smtp.send_message(message, from_addr=parseaddr(settings.mail_from)[1], to_addrs=list(mail.recipients))
    except smtplib.SMTPRecipientsRefused as exc:
        # smtplib has reset the transaction; the connection serves the next letter.
        if all(code >= 500 for code, _ in exc.recipients.values()):
            _give_up(mail, _describe(exc))
            return "failed", True
        _try_later(mail, _describe(exc))
        return "retrying", True
    except smtplib.SMTPDataError as exc:
        if exc.smtp_code >= 500:  # the server refuses this message itself: a retry gets the same answer
            _give_up(mail, _describe(exc))
            return "failed", True
        _try_later(mail, _describe(exc))
        return "retrying", True
    except (OSError, smtplib.SMTPException) as exc:
        # Timeout, dropped connection, refused sender, 421...: the server, not the letter; try it later.
        _try_later(mail, _describe(exc))
        return "retrying", False
    mail.attempts += 1
    mail.status = MailStatus.SENT
    mail.sent_at = clock.utcnow()
    if refused:  # delivered to the others; say who did not get it
        mail.last_error = _describe(smtplib.SMTPRecipientsRefused(refused))
    return "sent", True


def _note_unreachable(sessions: Callable[[], Session], error: str) -> int:
    """Record a failed connection on the next due letter, so its attempts and backoff show the outage."""
    with sessions() as session:
        mail = _claim_next(session)
        if mail is None:
            return 0
        _try_later(mail, error)
        session.commit()
        return 1


def deliver_due(sessions: Callable[[], Session], settings: Settings, *, limit: int = 100) -> Delivery:
    """Send up to `limit` due letters, each in its own transaction; failures wait with backoff, nothing is dropped."""
    with sessions() as session:
        # A cheap read first: no SMTP connection and no write lock when nothing is due.
        if session.scalar(_due().with_only_columns(OutboxMail.id).limit(1)) is None:
            return Delivery()
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        # Connected before any row is locked, so an unreachable server never holds the database.
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
    except (OSError, smtplib.SMTPException) as exc:
        error = f"cannot reach the mail server at {where}: {_describe(exc)}"[:ERROR_CHARS]
        return Delivery(retrying=_note_unreachable(sessions, error), unreachable=error)
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    unreachable = None
    try:
        for _ in range(limit):
            with sessions() as session:
                mail = _claim_next(session)
                if mail is None:
                    break
                outcome, usable = _send_one(session, smtp, mail, settings)
                session.commit()
            counts[outcome] += 1
            if not usable:
                unreachable = f"lost the mail server at {where}: {mail.last_error}"[:ERROR_CHARS]
                break
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return Delivery(**counts, unreachable=unreachable)


def letters_of(session: Session, instance_id: int) -> list[OutboxMail]:
    """The letters a request has sent or is sending, oldest first, with their delivery state."""
    return list(
        session.scalars(select(OutboxMail).where(OutboxMail.instance_id == instance_id).order_by(OutboxMail.id))
    )
