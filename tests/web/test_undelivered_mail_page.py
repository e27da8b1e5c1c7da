"""Administrators see the letters that did not go out, and can send a refused one again once its cause is fixed."""

from __future__ import annotations

from sqlalchemy import select

from engine.db.models import AuditEvent, OutboxMail
from engine.mail import outbox
from engine.requests import services
from tests.web.pages import csrf_token, login, text_of

DISPUTE = {
    "disputant_name": "Sam Citizen",
    "disputant_email": "sam.citizen@example.net",
    "policy_section": "Rules of Use",
    "basis": "Too broad.",
    "received_via": "mail",
}


def _refused_letter(session, people):
    """A dispute's acknowledgement refused for good (the mail server answered 5xx to its data)."""
    instance = services.start_instance(session, people.requester, "legality_dispute", DISPUTE)
    session.commit()
    mail = session.scalar(select(OutboxMail))
    mail.status, mail.attempts, mail.last_error = "failed", 1, "554 Transaction failed"
    session.commit()
    return instance, mail


def test_an_administrator_sees_a_refused_letter_and_sends_it_again(
    client, session, sessions, people, mail_settings, smtp_server
):
    instance, mail = _refused_letter(session, people)
    login(client, "admin")
    page = client.get("/admin/mail")
    text = text_of(page)
    assert "We received your dispute of the Social Media Policy" in text
    assert "sam.citizen@example.net" in text and "Refused" in text and "554 Transaction failed" in text
    response = client.post(f"/admin/mail/{mail.id}/send-again", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert outbox.deliver_due(sessions, mail_settings).sent == 1
    assert [m["Subject"] for m in smtp_server.to("sam.citizen@example.net")] == [
        "We received your dispute of the Social Media Policy"
    ]
    assert "Every letter has been sent." in text_of(client.get("/admin/mail"))
    session.expire_all()
    resent = session.scalar(select(AuditEvent).where(AuditEvent.action == "mail_queued", AuditEvent.actor == "admin"))
    assert (resent.instance_id, resent.detail["resent_after"]) == (instance.id, "554 Transaction failed")


def test_only_administrators_see_or_resend_letters_and_a_token_is_required(
    client, session, sessions, people, mail_settings, smtp_server
):
    _, mail = _refused_letter(session, people)
    login(client, "comms")
    assert client.get("/admin/mail").status_code == 403
    assert client.post(f"/admin/mail/{mail.id}/send-again", data={}).status_code in (400, 403)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/inbox"))})
    login(client, "admin")
    assert client.post(f"/admin/mail/{mail.id}/send-again", data={}).status_code == 400  # no CSRF token
    session.expire_all()
    assert session.get(OutboxMail, mail.id).status == "failed"


def test_a_sent_letter_is_never_sent_twice(client, session, sessions, people, mail_settings, smtp_server):
    services.start_instance(session, people.requester, "legality_dispute", DISPUTE)
    session.commit()
    outbox.deliver_due(sessions, mail_settings)
    mail = session.scalar(select(OutboxMail))
    login(client, "admin")
    page = client.get("/admin/mail")
    response = client.post(
        f"/admin/mail/{mail.id}/send-again", data={"csrf_token": csrf_token(page)}, follow_redirects=True
    )
    assert "This letter was already sent." in text_of(response)
    assert outbox.deliver_due(sessions, mail_settings).sent == 0
    assert len(smtp_server.messages) == 1
