"""Procedure 2, adding or removing a social media manager: every path, on both databases."""

import pytest
from sqlalchemy import func, select

from engine.db.models import Account, AccountManager, ProcessInstance
from engine.errors import Invalid, NotAllowed
from engine.records import registry
from engine.records.crypto import encrypt_credentials
from engine.requests import inbox, services
from tests.helpers import SECRET
from tests.procedures import act, actor, open_form_keys

KEY = "manager_change"


def _managers(session, account_id):
    session.expire_all()
    return sorted(m.user.username for m in session.get(Account, account_id).managers if m.removed_at is None)


def _start(session, who, data):
    instance = services.start_instance(session, who, KEY, data)
    session.commit()
    return instance


def test_adding_a_manager_needs_their_head_then_written_approval_and_updates_the_registry(session, city):
    instance = _start(
        session,
        city.requester,
        {
            "account_id": city.facebook,
            "action": "add",
            "manager": "newbie",
            "reason": "Covers the parks events calendar.",
        },
    )
    assert instance.title == "Add Newbie as manager of Facebook: City of West St. Paul"
    # "with permission from their department head": newbie is in parks.
    [task] = services.open_tasks_of(session, instance)
    assert (task.form_key, task.department.code) == ("department_head_review", "parks")
    with pytest.raises(NotAllowed):
        services.complete_task(session, city.finance_head, task.id, {"decision": "approve"})
    session.rollback()
    act(session, city.parks_head, instance, "department_head_review", {"decision": "approve"})
    assert open_form_keys(session, instance) == ["communications_review"]
    act(session, city.comms, instance, "communications_review", {"decision": "approve", "comment": "Approved."})
    assert open_form_keys(session, instance) == ["confirm_access_change"]
    assert "newbie" not in _managers(session, city.facebook)  # not before access is really granted
    done = act(session, city.requester, instance, "confirm_access_change", {"access_changed": True})
    assert (done.status, done.outcome) == ("completed", "approved")
    assert _managers(session, city.facebook) == ["moderator", "newbie", "other_moderator"]
    row = session.scalar(
        select(AccountManager).where(
            AccountManager.account_id == city.facebook, AccountManager.instance_id == instance.id
        )
    )
    assert row.approved_by == "Comms (Communications Manager)"
    assert city.facebook in actor(session, "newbie").managed_account_ids


def test_removing_a_manager_ends_with_access_revoked_and_the_registry_updated(session, city):
    instance = _start(
        session,
        city.moderator,
        {
            "account_id": city.facebook,
            "action": "remove",
            "manager": "other_moderator",
            "reason": "Left the department.",
        },
    )
    act(session, city.comms, instance, "department_head_review", {"decision": "approve"})  # head of communications
    act(session, city.comms, instance, "communications_review", {"decision": "approve"})
    with pytest.raises(Invalid) as refused:
        services.complete_task(
            session,
            city.moderator,
            services.open_tasks_of(session, instance)[0].id,
            {"access_changed": False, "credentials_rotated": False},
        )
    assert "access_changed" in refused.value.fields
    session.rollback()
    assert _managers(session, city.facebook) == ["moderator", "other_moderator"]
    done = act(
        session,
        city.moderator,
        instance,
        "confirm_access_change",
        {"access_changed": True, "credentials_rotated": True},
    )
    assert done.outcome == "approved"
    assert done.data["credentials_rotated"] is True
    assert _managers(session, city.facebook) == ["moderator"]
    assert city.facebook not in actor(session, "other_moderator").managed_account_ids


@pytest.mark.parametrize("reviewer", ["department_head_review", "communications_review"])
def test_a_rejection_needs_written_reasons_and_changes_nothing(session, city, reviewer):
    instance = _start(
        session, city.requester, {"account_id": city.facebook, "action": "add", "manager": "newbie", "reason": "Help."}
    )
    if reviewer == "communications_review":
        act(session, city.parks_head, instance, "department_head_review", {"decision": "approve"})
    who = city.parks_head if reviewer == "department_head_review" else city.comms
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, who, task.id, {"decision": "reject"})
    assert "comment" in refused.value.fields
    session.rollback()
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, who, task.id, {"decision": "return", "comment": "?"})
    assert "decision" in refused.value.fields  # a manager change is approved or refused, not revised
    session.rollback()
    done = act(session, who, instance, reviewer, {"decision": "reject", "comment": "Not trained yet."})
    assert (done.status, done.outcome) == ("completed", "rejected")
    assert _managers(session, city.facebook) == ["moderator", "other_moderator"]


def test_an_investigative_profile_needs_the_lieutenant_not_the_communications_manager(session, city, make_user):
    make_user("detective", department="police")
    instance = _start(
        session,
        city.officer,
        {"account_id": city.profile, "action": "add", "manager": "detective", "reason": "Takes over the case."},
    )
    assert instance.restricted
    act(session, city.police_chief, instance, "department_head_review", {"decision": "approve"})
    assert open_form_keys(session, instance) == ["lieutenant_review"]
    tasks, _ = inbox.list_tasks(session, city.comms, "available")
    assert tasks == []
    with pytest.raises(NotAllowed):
        services.get_instance(session, city.comms, instance.id)
    act(session, city.lieutenant, instance, "lieutenant_review", {"decision": "approve", "comment": "Yes."})
    act(session, city.officer, instance, "confirm_access_change", {"access_changed": True})
    assert "detective" in _managers(session, city.profile)


def test_removing_a_manager_from_an_investigative_profile_rotates_and_keeps_its_password(session, city):
    session.get(Account, city.profile).credentials = encrypt_credentials(SECRET, "watcher-77", "Old-Pass-1!").encode()
    session.commit()
    instance = _start(
        session,
        city.officer,
        {"account_id": city.profile, "action": "remove", "manager": "officer", "reason": "Reassigned."},
    )
    act(session, city.police_chief, instance, "department_head_review", {"decision": "approve"})
    act(session, city.lieutenant, instance, "lieutenant_review", {"decision": "approve"})
    task = services.open_tasks_of(session, instance)[0]
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, city.officer, task.id, {"access_changed": True, "credentials_rotated": False})
    assert set(refused.value.fields) == {"credentials_rotated", "new_password"}
    session.rollback()
    act(
        session,
        city.officer,
        instance,
        "confirm_access_change",
        {"access_changed": True, "credentials_rotated": True, "new_password": "New-Lantern-Pass-9!"},
    )
    assert registry.reveal_credentials(session, city.lieutenant, city.profile) == {
        "username": "watcher-77",
        "password": "New-Lantern-Pass-9!",
    }
    assert "New-Lantern-Pass-9!" not in session.get(ProcessInstance, instance.id).workflow_state
    assert "New-Lantern-Pass-9!" not in str(session.get(ProcessInstance, instance.id).data)
    assert _managers(session, city.profile) == []


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"account_id": 999}, "account_id", '999 is not one of the choices for "Account"'),
        ({"manager": "nobody"}, "manager", 'No active user named "nobody"'),
        ({"manager": "moderator"}, "manager", "already manages"),
        ({"action": "remove", "manager": "newbie"}, "manager", "does not manage"),
        ({"action": "promote"}, "action", "not a valid choice"),
        ({"reason": ""}, "reason", "required"),
    ],
)
def test_bad_requests_are_refused_by_field_and_create_nothing(session, city, data, field, message):
    request = {"account_id": city.facebook, "action": "add", "manager": "newbie", "reason": "Help.", **data}
    with pytest.raises(Invalid) as refused:
        services.start_instance(session, city.requester, KEY, request)
    session.rollback()
    assert message in " ".join(refused.value.fields[field])
    assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0


def test_an_investigative_profile_is_not_in_the_registry_for_non_police_staff(session, city):
    with pytest.raises(Invalid) as refused:
        services.start_instance(
            session,
            city.requester,
            KEY,
            {"account_id": city.profile, "action": "add", "manager": "newbie", "reason": "x"},
        )
    assert refused.value.fields["account_id"] == [f'{city.profile} is not one of the choices for "Account".']
    fields = services.procedures.get(KEY).start_fields(session, city.requester)
    assert str(city.profile) not in fields[0].choices
