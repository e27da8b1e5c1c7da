"""One letter, composed once: the reviewer writes the body, previews the City's letter exactly as it will be sent,
sends it; the mail and the public status page carry that letter, with one greeting and one signature. Letters by
post are PDFs only those who may see the request can open, each reading audited. Every mailed link starts at one
base URL."""

from __future__ import annotations

import dataclasses
import re

from sqlalchemy import func, select

from engine.db.models import AuditEvent, OutboxMail
from engine.db.statuses import MailStatus
from engine.mail import outbox, postal
from engine.requests import public, services
from tests.engine.test_removal_appeal import appeal
from tests.web.pages import csrf_token, error_next_to, login, text_of
from tests.web.test_public_pages import appeal_form, file_through_form, request_id

BODY = "Your comment asked when the library opens, which is a question about City services."
SIGNATURE = "City of West St. Paul Marketing and Communications Manager"


def _review_task(sessions, instance_id) -> str:
    with sessions() as s:
        [task] = services.open_tasks_of(s, s.get(services.ProcessInstance, instance_id))
        return task.id


def _preview(client, task_id, text, decision="reinstate"):
    token = csrf_token(client.get(f"/tasks/{task_id}"))
    data = {"decision": decision, "response_text": text, "csrf_token": token}
    return client.post(f"/tasks/{task_id}/letter-preview", data=data)


def _preview_letter(response) -> str:
    """The letter the preview shows, as its text reads."""
    match = re.search(r'<div class="card letter">(.*?)</div>', response.get_data(as_text=True), flags=re.S)
    assert match, text_of(response)[-600:]
    return match.group(1)


def test_the_reviewer_previews_the_letter_then_sends_exactly_it_and_the_status_page_shows_it(
    app, client, city, sessions, settings, smtp_server, mail_settings
):
    code = file_through_form(client, "appeal", appeal_form(city))
    instance_id = request_id(sessions, code)
    task_id = _review_task(sessions, instance_id)
    login(client, "comms")

    page = client.get(f"/tasks/{task_id}")
    assert "Preview the letter" in text_of(page) and "Send this letter" not in text_of(page)
    assert "you write the body" in text_of(page)

    preview = _preview(client, task_id, BODY)
    assert preview.status_code == 200
    shown = text_of(preview)
    assert "The letter, exactly as it will be sent" in shown and "By e-mail to: jo.public@example.net" in shown
    assert shown.count("Dear Jo Public,") == 1 and shown.count(SIGNATURE) == 1 and BODY in shown
    assert "Send this letter" in shown and "Preview again" in shown
    with sessions() as s:  # a preview writes nothing: the task is open, the City's letter not written
        assert s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.letter != "public_receipt")) == 0
        assert [t.id for t in services.open_tasks_of(s, s.get(services.ProcessInstance, instance_id))] == [task_id]
    previewed = _preview_letter(preview)

    sent = client.post(
        f"/tasks/{task_id}", data={"decision": "reinstate", "response_text": BODY, "csrf_token": csrf_token(preview)}
    )
    assert sent.status_code == 302
    outbox.deliver_due(sessions, mail_settings)
    [mail] = [m for m in smtp_server.to("jo.public@example.net") if m["Subject"] == "Your appeal of a removed comment"]
    body = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.count("Dear ") == 1 and body.count("Marketing and Communications Manager") == 1
    import html

    assert html.unescape(previewed).strip() == body.strip()

    status = app.test_client().get(f"/public/requests/{code}")  # the member of the public, with their code
    letter = html.unescape(re.search(r'<div class="card letter">(.*?)</div>', status.get_data(as_text=True), re.S)[1])
    assert letter.strip() == body.strip()  # the letter as it was sent, stored: not composed again
    assert letter.count("Dear Jo Public,") == 1 and letter.count("Marketing and Communications Manager") == 1


def test_a_body_that_greets_is_refused_next_to_the_field_in_the_preview(client, city, sessions):
    code = file_through_form(client, "appeal", appeal_form(city))
    task_id = _review_task(sessions, request_id(sessions, code))
    login(client, "comms")

    refused = _preview(client, task_id, f"Dear Jo,\n\n{BODY}")

    assert refused.status_code == 400
    assert 'the City\'s letter already begins "Dear Jo Public,"' in error_next_to(refused, "response_text")
    assert "Send this letter" not in text_of(refused)


def test_the_preview_is_for_whoever_may_act_on_the_task(client, city, sessions):
    code = file_through_form(client, "appeal", appeal_form(city))
    task_id = _review_task(sessions, request_id(sessions, code))
    login(client, "moderator")
    token = csrf_token(client.get("/inbox"))
    refused = client.post(
        f"/tasks/{task_id}/letter-preview", data={"decision": "uphold", "response_text": BODY, "csrf_token": token}
    )
    assert refused.status_code in (403, 404)


def test_a_postal_letter_is_a_pdf_for_those_who_may_see_its_request_and_each_reading_is_audited(
    client, city, session, sessions, browser_as
):
    data = appeal(city.facebook, appellant_email="", appellant_address="12 Oak Street\nWest St. Paul, MN 55118")
    instance = services.start_instance(session, city.records, "removal_appeal", data)
    session.commit()
    login(client, "comms")
    preview = _preview(client, services.open_tasks_of(session, instance)[0].id, BODY, decision="uphold")
    assert "By post, printed and mailed to: Jo Public, 12 Oak Street, West St. Paul, MN 55118" in text_of(preview)
    sent = client.post(
        f"/tasks/{services.open_tasks_of(session, instance)[0].id}",
        data={"decision": "uphold", "response_text": BODY, "csrf_token": csrf_token(preview)},
    )
    assert sent.status_code == 302
    session.rollback()  # a fresh snapshot: the page committed in its own session
    [mail_task] = services.open_tasks_of(session, instance)
    [letter] = postal.awaiting_post(session, instance.id)
    page = client.get(f"/tasks/{mail_task.id}")
    assert mail_task.name == "Mail the letter" and "Your appeal of a removed comment (PDF)" in text_of(page)

    pdf = client.get(f"/letters/{letter.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Cache-Control"] == "private, no-store"
    with sessions() as s:
        readings = s.scalars(select(AuditEvent).where(AuditEvent.action == "letter_printed")).all()
        assert [(e.actor, e.instance_id) for e in readings] == [("comms", instance.id)]

    officer = browser_as("officer")  # a police officer has no sight of an appeal about the City's Facebook
    assert officer.get(f"/letters/{letter.id}.pdf").status_code in (403, 404)
    assert client.get(f"/letters/{letter.id + 99}.pdf").status_code == 404
    assert client.get("/letters/99999999999.pdf").status_code == 404

    mailed = client.post(f"/tasks/{mail_task.id}", data={"mailed": "y", "csrf_token": csrf_token(page)})
    assert mailed.status_code == 302
    session.rollback()  # a fresh snapshot: the page committed in its own session
    assert session.get(OutboxMail, letter.id).status == MailStatus.SENT
    shown = text_of(client.get(f"/instances/{instance.id}"))
    assert "to Jo Public, 12 Oak Street, West St. Paul, MN 55118" in shown and "Sent " in shown


def test_staff_see_a_plain_sentence_for_a_refused_letter_not_the_servers_reply(client, city, session, browser_as):
    instance = services.start_instance(
        session, city.records, "removal_appeal", appeal(city.facebook, appellant_email="jo@example.net")
    )
    session.flush()
    refused = outbox.queue(
        session,
        outbox.Letter(recipients=("jo@example.net",), subject="A refused letter", body="x"),
        name="response_to_appellant",
        instance_id=instance.id,
    )
    refused.status = MailStatus.FAILED
    refused.last_error = "550 5.1.1 /var/spool/postfix/maildrop/ABC123: user unknown"
    session.commit()
    login(client, "comms")
    shown = text_of(client.get(f"/instances/{instance.id}"))
    assert "the mail server refused this letter, and administrators see it under Undelivered letters" in shown
    assert "/var/spool/postfix" not in shown and "550" not in shown
    assert "/var/spool/postfix/maildrop/ABC123" in text_of(browser_as("admin").get("/admin/mail"))


def test_mailed_links_start_at_the_address_the_server_is_reached_at_unless_the_setting_says_otherwise(
    app, client, city, sessions, settings
):
    code = file_through_form_at(client, city, "http://civic.example:8123")
    with sessions() as s:
        [receipt] = s.scalars(select(OutboxMail).where(OutboxMail.instance_id == request_id(sessions, code))).all()
    assert f"http://civic.example:8123/public/requests/{code}" in receipt.body
    assert "127.0.0.1:5000" not in receipt.body

    app.extensions["civicflow.settings"] = dataclasses.replace(settings, base_url="https://flow.wspmn.example")
    code = file_through_form_at(client, city, "http://civic.example:8123")
    with sessions() as s:
        [receipt] = s.scalars(select(OutboxMail).where(OutboxMail.instance_id == request_id(sessions, code))).all()
    assert f"https://flow.wspmn.example/public/requests/{code}" in receipt.body


def file_through_form_at(client, city, base_url: str) -> str:
    """File an appeal through the public form, the browser having reached the server at `base_url`."""
    page = client.get("/public/appeal", base_url=base_url)
    response = client.post(
        "/public/appeal", data={**appeal_form(city), "csrf_token": csrf_token(page)}, base_url=base_url
    )
    assert response.status_code == 303, text_of(response)[-600:]
    received = client.get("/public/received", base_url=base_url)
    return re.search(r'<p class="code"><strong>([^<]+)</strong></p>', received.get_data(as_text=True))[1]


def test_a_public_dispute_gets_one_letter_carrying_its_tracking_code(client, city, sessions):
    from tests.web.test_public_pages import dispute_form

    code = file_through_form(client, "dispute", dispute_form())
    with sessions() as s:
        mails = s.scalars(select(OutboxMail).where(OutboxMail.instance_id == request_id(sessions, code))).all()
    assert [m.subject for m in mails] == ["We received your dispute of the Social Media Policy"]
    assert mails[0].body.count("Dear ") == 1 and f"Your tracking code: {code}" in mails[0].body
    assert public.status_url("", code) in mails[0].body
