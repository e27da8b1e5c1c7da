"""Procedure 3, removing content with a screenshot: the record, the mail, the deletion; on both databases."""

import hashlib

import pytest
from lxml import etree
from sqlalchemy import func, select

from engine import procedures
from engine.db.models import Attachment, AuditEvent, Blob, OutboxMail, ProcessInstance, User
from engine.errors import Invalid, NotAllowed
from engine.mail import outbox
from engine.records import attachments
from engine.requests import inbox, services
from engine.settings import REPO_ROOT
from engine.time import clock
from tests.engine.test_attachments import LIMIT
from tests.procedures import act, png_bytes

KEY = "content_removal"


def removal(account_id, screenshot, **changes):
    """A removal record's start data."""
    return {
        "account_id": account_id,
        "stage": "published",
        "content_url": "https://facebook.com/cityofwsp/posts/1",
        "author_name": "J. Doe",
        "content_text": "Buy cheap watches at example.biz!!!",
        "categories": ["spam", "unrelated"],
        "rationale": "A commercial promotion unrelated to City services.",
        "screenshot": screenshot,
        **changes,
    }


def _file(session, who, data, image=None):
    """Upload the screenshot and file the removal in one transaction, as the page does."""
    upload = attachments.store(session, who, "comment.png", image or png_bytes(), limit=LIMIT)
    instance = services.start_instance(session, who, KEY, data(upload.id) if callable(data) else data)
    session.commit()
    return instance


def _counts(session):
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (ProcessInstance, Attachment, Blob, OutboxMail)
    )


def test_the_screenshot_is_mailed_to_the_communications_manager_before_the_deletion_step_opens(
    session, sessions, city, mail_settings, smtp_server
):
    image = png_bytes(120, 80)
    instance = _file(session, city.moderator, lambda shot: removal(city.facebook, shot), image)
    assert instance.title == "Removal on Facebook: City of West St. Paul (content by J. Doe)"
    history = [e.action for e in services.history_of(session, instance)]
    assert history == ["started", "mail_queued"]  # the mail is queued in the same step that opens the deletion
    [task] = services.open_tasks_of(session, instance)
    assert (task.form_key, task.assignee_id) == ("confirm_deletion", city.moderator.id)
    assert outbox.deliver_due(sessions, mail_settings).sent == 1
    [mail] = smtp_server.to("comms@example.org")
    assert mail["Subject"].startswith(f"Removal record {instance.id}: screenshot")
    body = mail.get_body(("plain",)).get_content()
    for words in (
        "Buy cheap watches at example.biz!!!",
        "Commercial promotions or spam",
        "Material unrelated to City government or services",
        "J. Doe",
        "Moderator",
        "https://facebook.com/cityofwsp/posts/1",
        "A commercial promotion unrelated",
    ):
        assert words in body
    [attached] = list(mail.iter_attachments())
    assert attached.get_content_type() == "image/png"
    assert hashlib.sha256(attached.get_content()).hexdigest() == hashlib.sha256(image).hexdigest()
    done = act(session, city.moderator, instance, "confirm_deletion", {"deleted": True, "explanation_posted": True})
    assert (done.status, done.outcome) == ("completed", "removed")
    assert session.get(Attachment, instance.data["screenshot"]).instance_id == instance.id


def test_a_comment_denied_before_publication_is_recorded_the_same_way(session, city):
    instance = _file(session, city.moderator, lambda shot: removal(city.facebook, shot, stage="pre_publication"))
    assert session.scalar(select(func.count()).select_from(OutboxMail)) == 1
    done = act(session, city.moderator, instance, "confirm_deletion", {"deleted": True})
    assert done.outcome == "denied"


def test_keeping_the_content_after_all_needs_a_written_reason(session, city):
    instance = _file(session, city.moderator, lambda shot: removal(city.facebook, shot))
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, city.moderator, task.id, {"deleted": False})
    assert "comment" in refused.value.fields
    session.rollback()
    done = act(
        session,
        city.moderator,
        instance,
        "confirm_deletion",
        {"deleted": False, "comment": "The author removed it first."},
    )
    assert done.outcome == "not_removed"


def test_another_manager_of_the_account_may_take_over_the_deletion_but_nobody_else(session, city):
    instance = _file(session, city.moderator, lambda shot: removal(city.facebook, shot))
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(NotAllowed):
        services.complete_task(session, city.officer, task.id, {"deleted": True})
    session.rollback()
    services.release_task(session, city.moderator, task.id)
    session.commit()
    tasks, _ = inbox.list_tasks(session, city.other_moderator, "available")
    assert [t.id for t in tasks] == [task.id]
    assert inbox.list_tasks(session, city.comms, "available")[0] == []
    services.claim_task(session, city.other_moderator, task.id)
    done = act(session, city.other_moderator, instance, "confirm_deletion", {"deleted": True})
    assert done.outcome == "removed"


@pytest.mark.parametrize(
    ("who", "changes", "field", "message"),
    [
        ("officer", {"account_id": "facebook"}, "account_id", "not a social media manager of this account"),
        ("moderator", {"account_id": "police_x"}, "account_id", "not a social media manager of this account"),
        ("moderator", {"categories": []}, "categories", "Choose at least one"),
        ("moderator", {"categories": ["rude"]}, "categories", "Not a valid choice: rude"),
        ("moderator", {"rationale": ""}, "rationale", "required"),
        ("moderator", {"screenshot": "5f0b6a43-8f70-4a5e-9d0c-000000000000"}, "screenshot", "No uploaded image"),
    ],
)
def test_a_bad_removal_is_refused_by_field_and_nothing_is_created(session, city, who, changes, field, message):
    before = _counts(session)
    filer = getattr(city, who)
    changes = {k: getattr(city, v) if k == "account_id" else v for k, v in changes.items()}
    with pytest.raises(Invalid) as refused:
        upload = attachments.store(session, filer, "comment.png", png_bytes(), limit=LIMIT)
        services.start_instance(session, filer, KEY, {**removal(city.facebook, upload.id), **changes})
    session.rollback()
    assert message in " ".join(refused.value.fields[field])
    assert _counts(session) == before


def test_someone_who_manages_no_account_cannot_file_a_removal(session, city):
    with pytest.raises(NotAllowed):
        services.start_instance(session, city.requester, KEY, removal(city.facebook, None))
    assert KEY not in [m.key for m in services.startable_models(session, city.requester)]


def test_a_screenshot_is_evidence_of_one_removal_and_only_its_uploader_may_file_it(session, city):
    first = _file(session, city.moderator, lambda shot: removal(city.facebook, shot))
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.moderator, KEY, removal(city.facebook, first.data["screenshot"]))
    assert f"already part of request {first.id}" in " ".join(refused.value.fields["screenshot"])
    session.rollback()
    upload = attachments.store(session, city.moderator, "mine.png", png_bytes(), limit=LIMIT)
    session.commit()
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.other_moderator, KEY, removal(city.facebook, upload.id))
    assert "screenshot" in refused.value.fields


def test_without_a_communications_manager_address_the_removal_is_refused_and_nothing_is_created(session, city):
    session.scalar(select(User).where(User.username == "comms")).email = None
    session.commit()
    before = _counts(session)
    with pytest.raises(Invalid) as refused:
        _file(session, city.moderator, lambda shot: removal(city.facebook, shot))
    session.rollback()
    assert "no active Communications Manager has an e-mail address" in refused.value.fields["screenshot"][0]
    assert _counts(session) == before


def test_with_the_mail_server_down_the_removal_completes_and_the_mail_waits_then_arrives(
    session, sessions, city, mail_settings, smtp_server
):
    smtp_server.stop()
    instance = _file(session, city.moderator, lambda shot: removal(city.facebook, shot))
    done = act(session, city.moderator, instance, "confirm_deletion", {"deleted": True})
    assert done.outcome == "removed"
    report = outbox.deliver_due(sessions, mail_settings)
    assert (report.sent, report.retrying) == (0, 1)
    session.expire_all()
    [mail] = session.scalars(select(OutboxMail)).all()
    assert (mail.status, mail.attempts) == ("pending", 1) and mail.last_error
    smtp_server.start()
    with clock.frozen_at(clock.as_utc(mail.next_attempt_at)):
        assert outbox.deliver_due(sessions, mail_settings).sent == 1
        assert outbox.deliver_due(sessions, mail_settings).sent == 0
    assert len(smtp_server.to("comms@example.org")) == 1
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "mail_queued", AuditEvent.instance_id == instance.id)
        )
        == 1
    )


def test_the_diagram_and_the_procedure_give_the_removal_one_name():
    bpmn = etree.parse(str(REPO_ROOT / "workflows" / "content_removal.bpmn")).getroot()
    kinds = ("}participant", "}process")
    named = {
        element.get("name") for element in bpmn.iter() if isinstance(element.tag, str) and element.tag.endswith(kinds)
    }
    assert named == {procedures.get("content_removal").name} == {"Remove content (with a screenshot)"}
