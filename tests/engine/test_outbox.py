"""The mail outbox's sender against a real SMTP server (aiosmtpd on loopback), on SQLite and PostgreSQL.

Letters are delivered only once committed, wait (with backoff) while the server is down, are delivered
exactly once when it is back, even by two senders at once, and a refused recipient fails for good.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import hashlib
import io
import os
import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from PIL import Image
from sqlalchemy import select

from engine.db.models import Attachment, Blob, OutboxMail
from engine.mail import outbox
from engine.mail.outbox import Delivery, Letter
from engine.time import clock
from tests.helpers import SECRET, civicflow_command
from tests.smtp import free_port

T0 = datetime(2025, 3, 3, 9, 0)  # naive UTC, as stored
MAIL_FROM = "civicflow@wspmn.example"


def queue_letter(
    sessions,
    to=("resident@example.org",),
    subject="Your request was received",
    body="Dear resident,\n\nWe received your request.\n",
    attachment_ids=(),
) -> int:
    """Queue one letter and commit, as a service's caller does; its outbox id."""
    with sessions() as session:
        mail = outbox.queue(
            session, Letter(tuple(to), subject, body, tuple(attachment_ids)), name="request_received", instance_id=None
        )
        session.commit()
        return mail.id


def stored(sessions, mail_id: int) -> OutboxMail:
    """The outbox row as the database has it now."""
    with sessions() as session:
        return session.get(OutboxMail, mail_id)


def message_ids(messages) -> Counter:
    """How many times each Message-ID arrived."""
    return Counter(message["Message-ID"] for message in messages)


def png_bytes() -> bytes:
    """A real PNG image, made by Pillow."""
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    image.putpixel((3, 4), (0, 120, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Picky:
    """An SMTP handler that refuses nobody@... for good (550), busy@... for now (451), and keeps the rest."""

    def __init__(self):
        self.rcpt_attempts: list[str] = []
        self.messages: list[email.message.EmailMessage] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        self.rcpt_attempts.append(address)
        if address.startswith("nobody"):
            return "550 5.1.1 No such mailbox here"
        if address.startswith("busy"):
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class Slow(Picky):
    """Keeps every message, but takes 50 ms over each, so two senders overlap."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def smtp_answering(handler, settings) -> Iterator:
    """A loopback aiosmtpd server with this handler; yields the settings that point at it."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=controller.port, mail_from=MAIL_FROM)
    finally:
        controller.stop()


def test_committed_letter_arrives_with_subject_body_recipients_and_the_png_byte_for_byte(
    sessions, mail_settings, smtp_server, make_user
):
    clerk = make_user("clerk")
    data = png_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    attachment_id = str(uuid.uuid4())
    with sessions() as session:
        session.add(Blob(sha256=sha256, size=len(data), data=data))
        session.flush()
        session.add(
            Attachment(
                id=attachment_id,
                sha256=sha256,
                content_type="image/png",
                size=len(data),
                width=40,
                height=30,
                filename="removed-comment.png",
                uploaded_by_id=clerk.id,
            )
        )
        session.commit()
    with clock.frozen_at(T0):
        mail_id = queue_letter(
            sessions,
            to=("pat@example.org", "lee@example.org"),
            subject="Notice of comment removal",
            body="Your comment was removed.\nSee attached.",
            attachment_ids=[attachment_id],
        )
        assert outbox.deliver_due(sessions, mail_settings) == Delivery(sent=1)

    [message] = smtp_server.messages
    assert message["Subject"] == "Notice of comment removal"
    assert message["From"] == MAIL_FROM
    assert message["To"] == "pat@example.org, lee@example.org"
    assert message["X-Envelope-To"] == "pat@example.org, lee@example.org"
    assert message["Message-ID"] == f"<outbox-{mail_id}@wspmn.example>"
    assert message["Date"].datetime == clock.as_utc(T0)
    assert message.get_body(("plain",)).get_content().splitlines() == ["Your comment was removed.", "See attached."]
    [part] = list(message.iter_attachments())
    assert (part.get_content_type(), part.get_filename()) == ("image/png", "removed-comment.png")
    assert hashlib.sha256(part.get_content()).hexdigest() == sha256
    assert Image.open(io.BytesIO(part.get_content())).getpixel((3, 4)) == (0, 120, 255)
    row = stored(sessions, mail_id)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, T0, None)


def test_letter_queued_in_a_transaction_that_rolled_back_is_never_sent(sessions, mail_settings, smtp_server):
    with sessions() as request:
        outbox.queue(
            request, Letter(("pat@example.org",), "Rolled back", "never"), name="request_received", instance_id=None
        )
        request.flush()
        # The change is written but not committed: a sender running now does not see it...
        assert outbox.deliver_due(sessions, mail_settings) == Delivery()
        request.rollback()
    # ...nor after the rollback, while a committed letter next to it goes out.
    queue_letter(sessions, subject="Committed")
    assert outbox.deliver_due(sessions, mail_settings) == Delivery(sent=1)
    assert outbox.deliver_due(sessions, mail_settings) == Delivery()
    assert [m["Subject"] for m in smtp_server.messages] == ["Committed"]
    with sessions() as session:
        assert session.scalars(select(OutboxMail.subject)).all() == ["Committed"]
        assert outbox.pending_count(session) == 0


def test_mail_waits_while_the_server_is_down_and_is_delivered_once_when_it_is_back(
    sessions, mail_settings, smtp_server
):
    smtp_server.stop()
    with clock.frozen_at(T0):
        mail_id = queue_letter(sessions)
        delivery = outbox.deliver_due(sessions, mail_settings)
    assert (delivery.sent, delivery.retrying, delivery.failed) == (0, 1, 0)
    assert "cannot reach the mail server" in delivery.unreachable
    row = stored(sessions, mail_id)
    assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None)
    assert "Connection refused" in row.last_error
    assert row.next_attempt_at == T0 + timedelta(minutes=1)

    smtp_server.start()
    with clock.frozen_at(T0 + timedelta(seconds=30)):  # back up, but the letter's next try is not due yet
        assert outbox.deliver_due(sessions, mail_settings) == Delivery()
    assert smtp_server.messages == []
    assert stored(sessions, mail_id).attempts == 1

    with clock.frozen_at(T0 + timedelta(minutes=1, seconds=1)):
        assert outbox.deliver_due(sessions, mail_settings) == Delivery(sent=1)
    with clock.frozen_at(T0 + timedelta(hours=2)):
        assert outbox.deliver_due(sessions, mail_settings) == Delivery()
    assert message_ids(smtp_server.messages) == {f"<outbox-{mail_id}@wspmn.example>": 1}
    row = stored(sessions, mail_id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, T0 + timedelta(minutes=1, seconds=1))


def test_an_unreachable_server_ends_the_pass_after_one_try(sessions, mail_settings, smtp_server):
    smtp_server.stop()
    with clock.frozen_at(T0):
        ids = [queue_letter(sessions, subject=f"Letter {n}") for n in range(5)]
        assert outbox.deliver_due(sessions, mail_settings).retrying == 1
    assert [stored(sessions, i).attempts for i in ids] == [1, 0, 0, 0, 0]
    with sessions() as session:
        assert outbox.pending_count(session) == 5


def test_retry_delay_doubles_from_one_minute_and_stops_at_an_hour(sessions, mail_settings, smtp_server):
    smtp_server.stop()
    with clock.frozen_at(T0):
        mail_id = queue_letter(sessions)
    waits = []
    for _ in range(8):
        now = stored(sessions, mail_id).next_attempt_at
        with clock.frozen_at(now):
            assert outbox.deliver_due(sessions, mail_settings).retrying == 1
        waits.append((stored(sessions, mail_id).next_attempt_at - now) / timedelta(minutes=1))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    row = stored(sessions, mail_id)
    assert (row.status, row.attempts) == ("pending", 8)


def test_refused_recipient_fails_for_good_a_busy_one_waits_and_the_other_letters_still_go(sessions, settings):
    server = Picky()
    with smtp_answering(server, settings) as picky_settings, clock.frozen_at(T0):
        refused = queue_letter(sessions, to=("nobody@example.org",), subject="To nobody")
        busy = queue_letter(sessions, to=("busy@example.org",), subject="To busy")
        partly = queue_letter(sessions, to=("nobody2@example.org", "pat@example.org"), subject="To two")
        fine = queue_letter(sessions, to=("lee@example.org",), subject="To lee")
        assert outbox.deliver_due(sessions, picky_settings) == Delivery(sent=2, retrying=1, failed=1)

        row = stored(sessions, refused)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "550 5.1.1 No such mailbox here" in row.last_error
        row = stored(sessions, busy)
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + timedelta(minutes=1))
        assert "451" in row.last_error
        row = stored(sessions, partly)
        assert row.status == "sent"
        assert "nobody2@example.org: 550" in row.last_error
        assert stored(sessions, fine).status == "sent"
        assert sorted(m["Subject"] for m in server.messages) == ["To lee", "To two"]

        with clock.frozen_at(T0 + timedelta(hours=2)):
            # Only the busy mailbox is tried again; the refused letter is never retried.
            assert outbox.deliver_due(sessions, picky_settings) == Delivery(retrying=1)
        assert server.rcpt_attempts.count("nobody@example.org") == 1
        assert server.rcpt_attempts.count("busy@example.org") == 2
        assert stored(sessions, refused).status == "failed"


def test_two_senders_at_once_deliver_each_of_20_letters_exactly_once(sessions, settings):
    server = Slow()
    with smtp_answering(server, settings) as slow_settings:
        ids = [queue_letter(sessions, to=(f"resident{n}@example.org",), subject=f"Letter {n}") for n in range(20)]
        start = threading.Barrier(2)

        def sender() -> Delivery:
            start.wait()
            return outbox.deliver_due(sessions, slow_settings)

        with ThreadPoolExecutor(max_workers=2) as pool:
            deliveries = [future.result() for future in [pool.submit(sender) for _ in range(2)]]

    assert sum(d.sent for d in deliveries) == 20
    assert message_ids(server.messages) == {f"<outbox-{i}@wspmn.example>": 1 for i in ids}
    with sessions() as session:
        assert outbox.pending_count(session) == 0
        assert set(session.scalars(select(OutboxMail.attempts))) == {1}


@pytest.fixture
def civicflow_env(settings, tmp_path, smtp_server):
    """The environment of the `civicflow` command: the test's database, mail to the loopback server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICFLOW_")}
    env.update(
        CIVICFLOW_INSTANCE_PATH=str(tmp_path),
        CIVICFLOW_DATABASE_URL=settings.database_url,
        CIVICFLOW_SECRET_KEY=SECRET,
        CIVICFLOW_SMTP_HOST=smtp_server.host,
        CIVICFLOW_SMTP_PORT=str(smtp_server.port),
        CIVICFLOW_MAIL_FROM=MAIL_FROM,
        # serve sends mail itself here, on PostgreSQL too (there the default is a dedicated scheduler).
        CIVICFLOW_SCHEDULER="embedded",
    )
    return env


def test_mail_send_command_delivers_what_is_due_and_says_what_waits(sessions, smtp_server, civicflow_env):
    queue_letter(sessions, subject="First")
    queue_letter(sessions, subject="Second")
    later = queue_letter(sessions, subject="Later")
    with sessions() as session:
        session.get(OutboxMail, later).next_attempt_at = clock.utcnow() + timedelta(hours=1)
        session.commit()

    def mail_send() -> subprocess.CompletedProcess:
        return subprocess.run(
            [civicflow_command(), "mail", "send"],
            env=civicflow_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    result = mail_send()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sent 2, retrying 0, failed 0, still waiting 1"
    assert sorted(m["Subject"] for m in smtp_server.messages) == ["First", "Second"]

    smtp_server.stop()
    queue_letter(sessions, subject="While down")
    result = mail_send()
    assert result.returncode == 1
    assert result.stdout.strip() == "sent 0, retrying 1, failed 0, still waiting 2"
    assert f"cannot reach the mail server at {smtp_server.host}:{smtp_server.port}" in result.stderr
    assert len(smtp_server.messages) == 2


def test_serve_sends_queued_mail_and_stops_cleanly_on_sigterm(sessions, smtp_server, civicflow_env):
    mail_id = queue_letter(sessions, subject="Sent by the server")
    server = subprocess.Popen(
        [civicflow_command(), "serve", "--port", str(free_port())],
        env=civicflow_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        arrived = smtp_server.wait_for(1, timeout=60)
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=60)
    assert [m["Subject"] for m in arrived] == ["Sent by the server"]
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stored(sessions, mail_id).status == "sent"


def test_mail_sender_started_in_process_delivers_a_letter_committed_while_it_runs(sessions, mail_settings, smtp_server):
    from web.mailer import start_mail_sender

    sender = start_mail_sender(sessions, mail_settings, every_seconds=0.2)
    try:
        mail_id = queue_letter(sessions, subject="While running")
        arrived = smtp_server.wait_for(1)
    finally:
        sender.shutdown()
    assert [m["Subject"] for m in arrived] == ["While running"]
    assert stored(sessions, mail_id).status == "sent"
