"""Procedure 4, an appeal of a removal: entered from a letter, reviewed, answered in writing; both databases."""

import pytest
from sqlalchemy import func, select

from engine import procedures
from engine.db.models import OutboxMail, ProcessInstance
from engine.errors import Conflict, Invalid, NotAllowed
from engine.mail import outbox
from engine.procedures import removal_appeal
from engine.records import attachments
from engine.requests import inbox, services
from tests.engine.test_attachments import LIMIT
from tests.engine.test_content_removal import removal
from tests.procedures import act, open_form_keys, png_bytes

KEY = "removal_appeal"


def appeal(account_id, **changes):
    """An appeal's start data, as staff type it from a letter."""
    return {
        "appellant_name": "Jo Public",
        "appellant_email": "jo.public@example.net",
        "account": account_id,
        "comment_text": "The library hours changed again?",
        "explanation": "My comment was about City services.",
        "received_via": "mail",
        **changes,
    }


def _removal(session, city):
    upload = attachments.store(session, city.moderator, "comment.png", png_bytes(), limit=LIMIT)
    instance = services.start_instance(session, city.moderator, "content_removal", removal(city.facebook, upload.id))
    session.commit()
    return instance


def _start(session, who, data):
    instance = services.start_instance(session, who, KEY, data)
    session.commit()
    return instance


def test_an_upheld_removal_is_answered_in_writing_to_the_appellant(session, sessions, city, mail_settings, smtp_server):
    removed = _removal(session, city)
    instance = _start(session, city.records, appeal(city.facebook, removal_id=removed.id))
    assert instance.title == "Appeal by Jo Public about Facebook: City of West St. Paul"
    assert procedures.get(KEY).linked_records(session, instance) == [removed]
    assert open_form_keys(session, instance) == ["appeal_review"]
    with pytest.raises(NotAllowed):
        services.complete_task(
            session,
            city.moderator,
            services.open_tasks_of(session, instance)[0].id,
            {"decision": "uphold", "response_text": "x"},
        )
    session.rollback()
    response = "Your comment advertised a commercial product, which the policy lists as spam."
    done = act(session, city.comms, instance, "appeal_review", {"decision": "uphold", "response_text": response})
    assert (done.status, done.outcome) == ("completed", "upheld")
    outbox.deliver_due(sessions, mail_settings)
    [letter] = smtp_server.to("jo.public@example.net")
    assert letter["Subject"] == "Your appeal of a removed comment"
    body = letter.get_body(("plain",)).get_content()
    assert "Dear Jo Public" in body and response in body and "uphold the removal" in body


def test_a_reinstatement_sends_the_response_and_asks_the_accounts_managers_to_restore_the_comment(
    session, sessions, city, mail_settings, smtp_server
):
    instance = _start(session, city.requester, appeal(city.facebook, received_via="email"))
    act(
        session,
        city.comms,
        instance,
        "appeal_review",
        {"decision": "reinstate", "response_text": "On review, your comment was about City services."},
    )
    assert open_form_keys(session, instance) == ["restore_content"]
    for who in (city.moderator, city.other_moderator):
        assert [t.form_key for t in inbox.list_tasks(session, who, "available")[0]] == ["restore_content"]
    for who in (city.comms, city.officer):
        assert inbox.list_tasks(session, who, "available")[0] == []
    outbox.deliver_due(sessions, mail_settings)
    assert "reinstate your comment" in smtp_server.to("jo.public@example.net")[0].get_body(("plain",)).get_content()
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, city.moderator, task.id, {"restored": False})
    assert "restored" in refused.value.fields
    session.rollback()
    done = act(
        session,
        city.other_moderator,
        instance,
        "restore_content",
        {"restored": True, "restored_url": "https://facebook.com/cityofwsp/posts/1?c=2"},
    )
    assert (done.status, done.outcome) == ("completed", "reinstated")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"appellant_email": "not an address"}, "appellant_email", "Must be an e-mail address"),
        ({"explanation": "  "}, "explanation", "required"),
        ({"account": 999}, "account", "not one of the choices"),
        ({"removal_id": 999}, "removal_id", "no removal record 999"),
        ({"received_via": "pigeon"}, "received_via", "not a valid choice"),
    ],
)
def test_a_bad_appeal_is_refused_by_field_and_nothing_is_created(session, city, changes, field, message):
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.requester, KEY, appeal(city.facebook, **changes))
    session.rollback()
    assert message in " ".join(refused.value.fields[field])
    assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0


def test_an_appeal_must_name_a_removal_on_the_same_account(session, city):
    removed = _removal(session, city)
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.records, KEY, appeal(city.police_x, removal_id=removed.id))
    assert "is about Facebook: City of West St. Paul" in refused.value.fields["removal_id"][0]  # they may see it
    session.rollback()
    assert session.scalar(select(func.count()).select_from(OutboxMail)) == 1  # only the removal's own mail


def test_investigative_profiles_are_not_among_the_accounts_an_appeal_can_name(session, city):
    [account_field] = [f for f in procedures.get(KEY).start_fields(session, city.officer) if f.name == "account"]
    assert str(city.profile) not in account_field.choices
    assert dict(account_field.choice_labels)[str(city.facebook)] == "Facebook: City of West St. Paul"


def test_linking_a_removal_reveals_nothing_the_filer_may_not_see(session, city):
    upload = attachments.store(session, city.officer, "profile.png", png_bytes(), limit=LIMIT)
    hidden = services.start_instance(session, city.officer, "content_removal", removal(city.profile, upload.id))
    public = _removal(session, city)
    session.commit()
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.requester, KEY, appeal(city.facebook, removal_id=hidden.id))
    assert refused.value.fields["removal_id"] == [f"There is no removal record {hidden.id}."]
    session.rollback()
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.requester, KEY, appeal(city.police_x, removal_id=public.id))
    assert refused.value.fields["removal_id"] == [
        f"Removal record {public.id} is about another account, not this account."
    ]


def test_the_response_letter_greets_signs_and_gives_the_reference_once(
    session, sessions, city, mail_settings, smtp_server
):
    instance = _start(session, city.records, appeal(city.facebook))
    act(
        session,
        city.comms,
        instance,
        "appeal_review",
        {"decision": "uphold", "response_text": "Your comment advertised a product, which the policy lists as spam."},
    )
    outbox.deliver_due(sessions, mail_settings)
    [letter] = smtp_server.to("jo.public@example.net")
    body = letter.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body.startswith("Dear Jo Public,")
    assert body.count("Dear ") == 1 and body.count("Reference: appeal") == 1
    assert body.count("City of West St. Paul\nMarketing and Communications Manager") == 1
    assert body.rstrip().endswith("Marketing and Communications Manager")


@pytest.mark.parametrize(
    "text, says",
    [
        ("Dear Ms. Public,\n\nYour comment was spam.", 'Remove "Dear Ms. Public,"'),
        ("Your comment was spam.\n\nSincerely,\nPat Lee\nCommunications", 'Remove "Sincerely,"'),
        ("Your comment was spam.\n\nKind regards", 'Remove "Kind regards"'),
    ],
)
def test_a_response_that_greets_or_signs_itself_is_refused_naming_the_field(session, city, text, says):
    instance = _start(session, city.records, appeal(city.facebook))
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, city.comms, task.id, {"decision": "uphold", "response_text": text})
    assert says in refused.value.fields["response_text"][0]
    session.rollback()
    assert open_form_keys(session, instance) == ["appeal_review"]


def test_the_procedure_has_one_name_in_the_code_and_the_diagram(session):
    from engine.versions.stored import published_model

    assert procedures.get(KEY).name == "Appeal of a removal"
    assert 'name="Appeal of a removal"' in published_model(session, KEY).bpmn_xml


def test_an_appeal_filed_without_its_removal_number_is_linked_later_and_the_history_says_so(session, city):
    removed = _removal(session, city)
    instance = _start(session, city.records, appeal(city.facebook))
    assert procedures.get(KEY).linked_records(session, instance) == []
    with pytest.raises(Invalid) as refused:
        removal_appeal.link_removal(session, city.comms, instance, str(removed.id + 99))
    assert "removal_id" in refused.value.fields
    session.rollback()
    with pytest.raises(NotAllowed):
        removal_appeal.link_removal(session, city.moderator, instance, str(removed.id))
    session.rollback()

    removal_appeal.link_removal(session, city.comms, instance, str(removed.id))
    session.commit()

    assert procedures.get(KEY).linked_records(session, instance) == [removed]
    [linked] = [e for e in services.history_of(session, instance) if e.action == "removal_linked"]
    assert (linked.actor, linked.detail) == ("comms", {"removal_id": removed.id})
    with pytest.raises(Conflict):
        removal_appeal.link_removal(session, city.comms, instance, str(removed.id))
