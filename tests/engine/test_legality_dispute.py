"""Procedure 5, a dispute of the policy's legality: acknowledged at once, the City Attorney consulted in
confidence, answered in writing; on both databases."""

import pytest
from sqlalchemy import func, select

from engine.db.models import AuditEvent, OutboxMail, ProcessInstance
from engine.errors import Invalid, NotAllowed
from engine.mail import outbox
from engine.requests import inbox, services
from tests.procedures import act, open_form_keys

KEY = "legality_dispute"
ADVICE = "PRIVILEGED: the categories survive Minnesota case law; a narrower spam clause would be safer."
RESPONSE = "The City has reviewed the removal categories with its attorney and keeps them as written."


def dispute(**changes):
    """A dispute's start data, as staff type it from an e-mail."""
    return {
        "disputant_name": "Sam Citizen",
        "disputant_email": "sam.citizen@example.net",
        "policy_section": "Rules of Use, the removal categories",
        "basis": "They restrict protected speech.",
        "received_via": "email",
        **changes,
    }


def _start(session, who):
    instance = services.start_instance(session, who, KEY, dispute())
    session.commit()
    return instance


def test_the_disputant_is_acknowledged_at_once_and_the_city_attorney_is_consulted(
    session, sessions, city, mail_settings, smtp_server
):
    instance = _start(session, city.requester)
    assert [e.action for e in services.history_of(session, instance)] == ["started", "mail_queued"]
    assert outbox.deliver_due(sessions, mail_settings).sent == 1
    [acknowledgement] = smtp_server.to("sam.citizen@example.net")
    assert acknowledgement["Subject"] == "We received your dispute of the Social Media Policy"
    body = acknowledgement.get_body(("plain",)).get_content()
    assert "Rules of Use, the removal categories" in body and "consult the City Attorney" in body
    assert open_form_keys(session, instance) == ["attorney_consultation"]
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(NotAllowed):
        services.complete_task(session, city.comms, task.id, {"advice": "x", "recommendation": "no_change"})
    session.rollback()
    assert [t.id for t in inbox.list_tasks(session, city.attorney, "available")[0]] == [task.id]


def test_the_attorneys_advice_reaches_only_the_attorney_and_the_communications_manager(
    session, sessions, city, mail_settings, smtp_server
):
    instance = _start(session, city.requester)
    act(session, city.attorney, instance, "attorney_consultation", {"advice": ADVICE, "recommendation": "no_change"})
    act(session, city.comms, instance, "dispute_response", {"response_text": RESPONSE})
    session.expire_all()
    instance = session.get(ProcessInstance, instance.id)
    assert (instance.status, instance.outcome) == ("completed", "responded")
    assert services.record_for(city.attorney, instance)["advice"] == ADVICE
    assert services.record_for(city.comms, instance)["advice"] == ADVICE
    for who in (city.records, city.requester):  # the Records Officer oversees; the requester entered the letter
        services.get_instance(session, who, instance.id)
        assert "advice" not in services.record_for(who, instance)
        assert "recommendation" not in services.record_for(who, instance)  # privileged with the advice
    events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id)).all()
    assert not [e for e in events if ADVICE in f"{e.comment} {e.detail}"]
    outbox.deliver_due(sessions, mail_settings)
    letters = smtp_server.to("sam.citizen@example.net")
    assert len(letters) == 2
    assert RESPONSE in letters[1].get_body(("plain",)).get_content()
    assert not [m for m in smtp_server.messages if ADVICE in m.as_string()]
    assert not [m for m in session.scalars(select(OutboxMail)) if ADVICE in m.body]


def test_a_recommendation_to_amend_opens_a_follow_up_after_the_response(session, city):
    instance = _start(session, city.requester)
    act(session, city.attorney, instance, "attorney_consultation", {"advice": ADVICE, "recommendation": "amend"})
    act(session, city.comms, instance, "dispute_response", {"response_text": RESPONSE})
    assert open_form_keys(session, instance) == ["policy_amendment"]
    done = act(
        session,
        city.comms,
        instance,
        "policy_amendment",
        {"amendment_summary": "Narrow the spam category; to the City Council on December 8."},
    )
    assert (done.status, done.outcome) == ("completed", "responded")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"disputant_email": "sam@"}, "disputant_email", "Must be an e-mail address"),
        ({"policy_section": ""}, "policy_section", "required"),
        ({"basis": "x" * 20001}, "basis", "At most 20000 characters"),
        ({"nickname": "Sammy"}, "nickname", "Unknown field"),
    ],
)
def test_a_bad_dispute_is_refused_by_field_and_nothing_is_created(session, city, changes, field, message):
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.requester, KEY, dispute(**changes))
    session.rollback()
    assert message in " ".join(refused.value.fields[field])
    assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    assert session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_the_response_letter_greets_and_signs_once(session, sessions, city, mail_settings, smtp_server):
    instance = _start(session, city.requester)
    act(session, city.attorney, instance, "attorney_consultation", {"advice": ADVICE, "recommendation": "no_change"})
    act(session, city.comms, instance, "dispute_response", {"response_text": RESPONSE})
    outbox.deliver_due(sessions, mail_settings)
    [response] = [m for m in smtp_server.to("sam.citizen@example.net") if "response" in m["Subject"]]
    body = response.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.count("Dear Sam Citizen,") == 1 and body.count("Dear ") == 1
    assert body.count("Marketing and Communications Manager") == 1 and body.count("Reference: dispute") == 1
    assert RESPONSE in body
