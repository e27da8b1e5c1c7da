"""The postal path: a letter that gave no e-mail address is answered by post, as a printed PDF that staff mail;
the letter counts as sent on the day it was mailed. Both databases."""

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from engine import procedures
from engine.db.models import OutboxMail
from engine.db.statuses import MailStatus
from engine.diagrams.loading import load_diagram
from engine.errors import Invalid, NotFound
from engine.mail import letters, outbox, postal
from engine.requests import services
from engine.settings import settings_of
from engine.time import clock, deadlines, timers
from engine.versions.publishing import publish_shipped
from engine.versions.stored import published_model, store_version
from tests.engine.test_legality_dispute import dispute
from tests.engine.test_removal_appeal import appeal
from tests.procedures import act, open_form_keys

ADDRESS = "12 Oak Street\nWest St. Paul, MN 55118"
RESPONSE = "On review, your comment asked about library hours, which is a matter of City services."


def pdf_text(data: bytes, tmp_path) -> str:
    """The text of a PDF as poppler's pdftotext reads it (what a printer would put on paper)."""
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is missing: `make browser` installs poppler-utils"
    path = tmp_path / "letter.pdf"
    path.write_bytes(data)
    return subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _postal_appeal(session, city):
    data = appeal(city.facebook, appellant_email="", appellant_address=ADDRESS, received_via="mail")
    instance = services.start_instance(session, city.records, "removal_appeal", data)
    session.commit()
    return instance


def test_a_postal_appeal_is_answered_by_a_printed_letter_that_staff_mail(
    session, sessions, city, mail_settings, smtp_server, tmp_path
):
    instance = _postal_appeal(session, city)
    assert instance.data["reply_by"] == "post"
    act(session, city.comms, instance, "appeal_review", {"decision": "reinstate", "response_text": RESPONSE})
    assert open_form_keys(session, instance) == ["mail_letter"]
    [letter] = postal.awaiting_post(session, instance.id)
    assert letter.status == MailStatus.POST and letter.recipients == [
        "Jo Public, 12 Oak Street, West St. Paul, MN 55118"
    ]
    # The mail server never sees a letter to a postal address.
    assert outbox.deliver_due(sessions, mail_settings).sent == 0 and smtp_server.messages == []

    text = pdf_text(postal.pdf(session, postal.printable(session, city.comms, letter.id)), tmp_path)
    assert "City of West St. Paul" in text and "1616 Humboldt Avenue" in text
    assert letters.local_date(session, letter.created_at) in text  # "December 7, 2026": the City's date
    assert "Jo Public" in text and "12 Oak Street" in text and "West St. Paul, MN 55118" in text
    assert text.count("Dear Jo Public,") == 1 and "reinstate your comment" in text
    assert "Reference: appeal" in text and text.count("Marketing and Communications Manager") == 1
    assert "library hours" in text
    session.commit()

    mailed_at = clock.now() + timedelta(days=1)
    with clock.frozen_at(mailed_at):
        with pytest.raises(Invalid) as refused:
            services.complete_task(
                session, city.comms, services.open_tasks_of(session, instance)[0].id, {"mailed": False}
            )
        assert "mailed" in refused.value.fields
        session.rollback()
        act(session, city.comms, instance, "mail_letter", {"mailed": True})
    session.refresh(letter)
    assert letter.status == MailStatus.SENT and clock.as_utc(letter.sent_at) == mailed_at
    assert open_form_keys(session, instance) == ["restore_content"]
    mailed = [e for e in services.history_of(session, instance) if e.decision == "mailed"]
    assert len(mailed) == 1 and "Your appeal of a removed comment" in mailed[0].comment


def test_reading_a_postal_letter_is_audited_and_needs_sight_of_its_request(session, city):
    instance = _postal_appeal(session, city)
    act(session, city.comms, instance, "appeal_review", {"decision": "uphold", "response_text": RESPONSE})
    [letter] = postal.awaiting_post(session, instance.id)
    postal.printable(session, city.comms, letter.id)
    printed = [e for e in services.history_of(session, instance) if e.action == "letter_printed"]
    assert [(e.actor, e.detail["mail_id"]) for e in printed] == [("comms", letter.id)]
    with pytest.raises(NotFound):
        postal.printable(session, city.comms, letter.id + 1000)


def test_staff_enter_a_letter_with_an_email_or_a_postal_address_but_not_neither(session, city):
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.records, "removal_appeal", appeal(city.facebook, appellant_email=""))
    assert set(refused.value.fields) == {"appellant_email", "appellant_address"}
    assert "postal address" in refused.value.fields["appellant_email"][0]
    session.rollback()
    too_long = "\n".join(f"Line {n}" for n in range(6))
    with pytest.raises(Invalid) as refused:
        services.start_instance(
            session, city.records, "legality_dispute", dispute(disputant_email="", disputant_address=too_long)
        )
    assert "disputant_address" in refused.value.fields


def test_a_postal_dispute_is_acknowledged_by_post_and_the_consultation_counts_from_the_day_it_was_mailed(
    session, sessions, city, mail_settings, smtp_server, tmp_path
):
    data = dispute(disputant_email="", disputant_address=ADDRESS, received_via="mail")
    instance = services.start_instance(session, city.records, "legality_dispute", data)
    session.commit()
    assert open_form_keys(session, instance) == ["mail_letter"]
    [acknowledgement] = postal.awaiting_post(session, instance.id)
    assert acknowledgement.deliver_by is not None  # "promptly": escalated if it is not mailed by then
    text = pdf_text(postal.pdf(session, acknowledgement), tmp_path)
    assert text.count("Dear Sam Citizen,") == 1 and "consult the City Attorney" in text
    assert "Your tracking code" not in text  # staff entered it: there is no public status page

    mailed_at = clock.now() + timedelta(days=3)
    with clock.frozen_at(mailed_at):
        act(session, city.comms, instance, "mail_letter", {"mailed": True})
    [consultation] = services.open_tasks_of(session, instance)
    calendar = deadlines.of(settings_of(session))
    assert consultation.form_key == "attorney_consultation"
    assert clock.as_utc(consultation.due_at) == calendar.due_at("attorney_consultation", mailed_at)
    session.refresh(acknowledgement)
    assert acknowledgement.status == MailStatus.SENT
    assert outbox.deliver_due(sessions, mail_settings).sent == 0 and smtp_server.messages == []


def test_a_request_with_an_email_address_is_still_answered_by_email(session, city):
    instance = services.start_instance(
        session, city.records, "removal_appeal", appeal(city.facebook, appellant_address=ADDRESS)
    )
    session.commit()
    assert instance.data["reply_by"] == "email"
    act(session, city.comms, instance, "appeal_review", {"decision": "uphold", "response_text": RESPONSE})
    letters = session.query(OutboxMail).filter_by(instance_id=instance.id).all()
    assert [(m.status, m.recipients) for m in letters] == [(MailStatus.PENDING, ["jo.public@example.net"])]


OLD = Path(__file__).parent.parent / "fixtures" / "shipped"


def _in_use_before_the_postal_path(session, key):
    """Put the diagram shipped before the postal path in use, as it was then; it and the version in use now."""
    data = (OLD / f"{key}_before_the_postal_path.bpmn").read_bytes()
    procedure = procedures.get(key)
    current = published_model(session, key)
    old = store_version(
        session,
        key,
        data,
        load_diagram(data, key, procedure.editor_form_keys(), procedure.letters),
        source="shipped",
        created_by_id=None,
    )
    publish_shipped(session, old)
    return old, current


def test_requests_running_on_the_versions_before_the_postal_path_keep_working_after_the_upgrade(
    session, sessions, city, mail_settings, smtp_server
):
    old_appeal, new_appeal = _in_use_before_the_postal_path(session, "removal_appeal")
    old_dispute, new_dispute = _in_use_before_the_postal_path(session, "legality_dispute")
    appeal_on_old = services.start_instance(session, city.records, "removal_appeal", appeal(city.facebook))
    dispute_on_old = services.start_instance(session, city.records, "legality_dispute", dispute())
    publish_shipped(session, new_appeal)  # the upgrade: the shipped diagrams of this release are in use again
    publish_shipped(session, new_dispute)
    session.commit()
    assert (appeal_on_old.model_id, dispute_on_old.model_id) == (old_appeal.id, old_dispute.id)

    act(session, city.comms, appeal_on_old, "appeal_review", {"decision": "uphold", "response_text": RESPONSE})
    act(
        session, city.attorney, dispute_on_old, "attorney_consultation", {"advice": "A.", "recommendation": "no_change"}
    )
    act(session, city.comms, dispute_on_old, "dispute_response", {"response_text": RESPONSE})

    assert (appeal_on_old.status, dispute_on_old.status) == ("completed", "completed")
    outbox.deliver_due(sessions, mail_settings)
    subjects = sorted(m["Subject"] for m in smtp_server.messages)
    assert subjects == [
        "The City's response to your dispute of the Social Media Policy",
        "We received your dispute of the Social Media Policy",
        "Your appeal of a removed comment",
    ]
    assert published_model(session, "removal_appeal").id == new_appeal.id


def test_an_acknowledgement_not_mailed_by_its_deadline_is_escalated_and_one_mailed_in_time_is_not(
    session, sessions, city
):
    late = services.start_instance(
        session, city.records, "legality_dispute", dispute(disputant_email="", disputant_address=ADDRESS)
    )
    in_time = services.start_instance(
        session, city.records, "legality_dispute", dispute(disputant_email="", disputant_address=ADDRESS)
    )
    session.commit()
    [promised] = postal.awaiting_post(session, late.id)
    act(session, city.comms, in_time, "mail_letter", {"mailed": True})

    with clock.frozen_at(clock.as_utc(promised.deliver_by) + timedelta(minutes=1)):
        escalated = timers.escalate_late_letters(sessions)

    assert [fired.instance_id for fired in escalated] == [late.id]
