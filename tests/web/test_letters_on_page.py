"""A request's page says what became of each letter it sent: waiting, sent, or not reachable yet."""

from __future__ import annotations

import time

from engine.mail import outbox
from engine.requests import services
from engine.time import clock
from tests.web.pages import csrf_token, login, text_of

DISPUTE = {
    "disputant_name": "Sam Citizen",
    "disputant_email": "sam.citizen@example.net",
    "policy_section": "Rules of Use",
    "basis": "Too broad.",
    "received_via": "mail",
}
SUBJECT = "We received your dispute of the Social Media Policy"


def _letters_section(client, instance_id) -> str:
    page = text_of(client.get(f"/instances/{instance_id}"))
    return page[page.index("Letters") :]


def test_the_acknowledgement_reads_waiting_then_sent(client, session, sessions, people, mail_settings, smtp_server):
    instance = services.start_instance(session, people.requester, "legality_dispute", DISPUTE)
    session.commit()
    login(client, "requester")
    letters = _letters_section(client, instance.id)
    assert SUBJECT in letters and "to sam.citizen@example.net" in letters and "Waiting to be sent" in letters
    outbox.deliver_due(sessions, mail_settings)
    letters = _letters_section(client, instance.id)
    assert "Sent " in letters and "Waiting" not in letters


def test_a_letter_the_mail_server_could_not_take_yet_says_when_it_is_tried_again(
    client, session, sessions, people, mail_settings, smtp_server
):
    smtp_server.stop()
    with clock.frozen_at(clock.now()):
        instance = services.start_instance(session, people.requester, "legality_dispute", DISPUTE)
        session.commit()
        outbox.deliver_due(sessions, mail_settings)
    login(client, "requester")
    letters = _letters_section(client, instance.id)
    assert "Waiting: the mail server could not be reached (1 attempt); next try" in letters


def test_a_committed_letter_is_sent_at_once_not_at_the_senders_next_interval(
    app, client, settings, people, mail_settings, smtp_server
):
    from web.mailer import start_mail_sender, wake

    factory = app.extensions["civicflow.sessions"]
    sender = start_mail_sender(lambda: factory(info={"settings": settings}), mail_settings, every_seconds=3600)
    app.extensions["civicflow.mail_wake"] = lambda: wake(sender)
    try:
        time.sleep(0.5)  # the sender's first pass (nothing to send) is over; the next is an hour away
        login(client, "requester")
        page = client.get("/requests/new/legality_dispute")
        response = client.post("/requests/new/legality_dispute", data={**DISPUTE, "csrf_token": csrf_token(page)})
        assert response.status_code == 302
        [letter] = smtp_server.wait_for(1, timeout=5)
        assert letter["Subject"] == SUBJECT
    finally:
        sender.shutdown()
