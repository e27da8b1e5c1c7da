"""Every refusal of the lanes, headships and visibility rules: the right error, and nothing changed."""

import pytest

from engine.db.models import ProcessInstance
from engine.errors import Conflict, NotAllowed
from engine.records import registry
from engine.requests import authz, inbox, services
from tests.engine.test_legality_dispute import dispute
from tests.helpers import SETUP, START, only_open_task, start_request
from tests.procedures import act

INVESTIGATIVE = {
    **START,
    "account_name": "Watcher",
    "department": "police",
    "proposed_managers": ["officer"],
    "investigative": True,
}
APPROVE = {"decision": "approve", "comment": "Approved."}


def _complete(session, actor, instance, data=APPROVE):
    services.complete_task(session, actor, only_open_task(session, instance).id, data)
    session.commit()


def _at_communications_review(session, people):
    instance = start_request(session, people.requester)
    _complete(session, people.parks_head, instance)
    return instance


def _at_requester_task(session, people, decision):
    instance = start_request(session, people.requester)
    _complete(session, people.parks_head, instance, {"decision": decision, "comment": "See my note."})
    if decision == "approve":
        _complete(session, people.comms, instance)
    return instance


def _snapshot(session, instance):
    """What a refusal must leave alone: the open tasks with their assignee, the history, the version."""
    session.expire_all()
    return (
        [(t.id, t.form_key, t.assignee_id) for t in services.open_tasks_of(session, instance)],
        [e.id for e in services.history_of(session, instance)],
        session.get(ProcessInstance, instance.id).version,
    )


def _refused(session, instance, error, call):
    """Assert `call` raises `error` and leaves the instance exactly as it was."""
    before = _snapshot(session, instance)
    with pytest.raises(error):
        call()
    session.rollback()
    assert _snapshot(session, instance) == before


# ---- completing tasks ----------------------------------------------------------------------------


def test_user_without_the_role_cannot_complete_communications_review(session, people):
    instance = _at_communications_review(session, people)
    task = only_open_task(session, instance)
    _refused(session, instance, NotAllowed, lambda: services.complete_task(session, people.colleague, task.id, APPROVE))


def test_head_of_another_department_cannot_complete_department_head_review(session, people):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    _refused(
        session, instance, NotAllowed, lambda: services.complete_task(session, people.finance_head, task.id, APPROVE)
    )


@pytest.mark.parametrize(
    ("decision", "form_key", "data"),
    [
        ("approve", "confirm_setup", SETUP),
        ("return", "revise_request", {"action": "withdraw"}),
    ],
)
def test_colleague_in_the_same_department_cannot_complete_the_requesters_task(
    session, people, decision, form_key, data
):
    instance = _at_requester_task(session, people, decision)
    task = only_open_task(session, instance)
    assert task.form_key == form_key
    _refused(session, instance, NotAllowed, lambda: services.complete_task(session, people.colleague, task.id, data))


@pytest.mark.parametrize("reviewing", ["department_head_review", "communications_review"])
def test_administrator_is_not_an_approver(session, people, reviewing):
    instance = start_request(session, people.requester)
    if reviewing == "communications_review":
        _complete(session, people.parks_head, instance)
    task = only_open_task(session, instance)
    assert task.form_key == reviewing
    _refused(session, instance, NotAllowed, lambda: services.complete_task(session, people.admin, task.id, APPROVE))
    _refused(session, instance, NotAllowed, lambda: services.claim_task(session, people.admin, task.id))


def test_second_completion_of_same_task_is_a_conflict(session, people):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    _complete(session, people.parks_head, instance)
    second = {"decision": "reject", "comment": "Changed my mind."}
    _refused(session, instance, Conflict, lambda: services.complete_task(session, people.parks_head, task.id, second))


def test_completing_a_task_claimed_by_someone_else_is_a_conflict(session, people, make_user):
    deputy = make_user("deputy_comms", department="communications", roles=["communications_manager"])
    instance = _at_communications_review(session, people)
    task = only_open_task(session, instance)
    services.claim_task(session, people.comms, task.id)
    session.commit()
    _refused(session, instance, Conflict, lambda: services.complete_task(session, deputy, task.id, APPROVE))


# ---- claiming and releasing ----------------------------------------------------------------------


def test_claiming_a_task_claimed_by_another_is_a_conflict(session, people, make_user):
    deputy = make_user("deputy_comms", department="communications", roles=["communications_manager"])
    instance = _at_communications_review(session, people)
    task = only_open_task(session, instance)
    services.claim_task(session, people.comms, task.id)
    session.commit()
    _refused(session, instance, Conflict, lambda: services.claim_task(session, deputy, task.id))


def test_releasing_a_task_one_did_not_claim_is_a_conflict(session, people, make_user):
    deputy = make_user("deputy_comms", department="communications", roles=["communications_manager"])
    instance = _at_communications_review(session, people)
    task = only_open_task(session, instance)
    _refused(session, instance, Conflict, lambda: services.release_task(session, deputy, task.id))
    services.claim_task(session, people.comms, task.id)
    session.commit()
    _refused(session, instance, Conflict, lambda: services.release_task(session, deputy, task.id))


def test_claiming_by_someone_ineligible_is_not_allowed(session, people):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    _refused(session, instance, NotAllowed, lambda: services.claim_task(session, people.colleague, task.id))
    _refused(session, instance, NotAllowed, lambda: services.claim_task(session, people.finance_head, task.id))


# ---- seeing requests, accounts and tasks ---------------------------------------------------------


def test_request_is_visible_to_those_involved_only(session, people):
    instance = start_request(session, people.requester)
    for insider in (people.requester, people.parks_head, people.comms):
        assert services.get_instance(session, insider, instance.id).id == instance.id
    for outsider in (people.colleague, people.finance_head, people.admin):
        with pytest.raises(NotAllowed):
            services.get_instance(session, outsider, instance.id)
    assert services.list_instances(session, people.colleague) == ([], 0)


def test_investigative_request_is_hidden_from_the_communications_manager_and_other_heads(session, people):
    instance = start_request(session, people.officer, INVESTIGATIVE)
    _complete(session, people.police_chief, instance)
    for outsider in (people.comms, people.finance_head, people.parks_head):
        with pytest.raises(NotAllowed):
            services.get_instance(session, outsider, instance.id)
        assert services.list_instances(session, outsider) == ([], 0)
    for insider in (people.officer, people.police_chief, people.lieutenant):
        assert services.get_instance(session, insider, instance.id).id == instance.id


def test_registry_hides_investigative_profiles_from_non_police_users(session, people):
    standard = start_request(session, people.requester)
    _complete(session, people.parks_head, standard)
    _complete(session, people.comms, standard)
    _complete(session, people.requester, standard, SETUP)
    profile = start_request(session, people.officer, INVESTIGATIVE)
    _complete(session, people.police_chief, profile)
    _complete(session, people.lieutenant, profile)
    _complete(session, people.officer, profile, {"username": "watcher-1", "password": "Quiet-Lantern-77!"})

    for outsider in (people.requester, people.comms, people.admin, people.finance_head):
        assert [a.name for a in registry.list_accounts(session, outsider)] == ["West St. Paul Parks"]
    for police in (people.officer, people.police_chief, people.lieutenant):
        assert [a.name for a in registry.list_accounts(session, police)] == ["West St. Paul Parks", "Watcher"]


def test_department_head_review_is_available_only_to_the_head_of_that_department(session, people):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    assert inbox.list_tasks(session, people.parks_head, "available") == ([task], 1)
    for other in (
        people.finance_head,
        people.police_chief,
        people.comms,
        people.colleague,
        people.admin,
        people.requester,
        people.lieutenant,
    ):
        assert inbox.list_tasks(session, other, "available") == ([], 0)


# ---- attorney-client privilege ----------------------------------------------------------------------


def test_the_attorneys_recommendation_is_privileged_with_the_advice(session, city, make_user):
    administrator = make_user("casey", department="administration", roles=["city_administrator"])
    instance = services.start_instance(session, city.requester, "legality_dispute", dispute())
    session.commit()
    consultation = {"advice": "Narrow the spam clause.", "recommendation": "amend"}
    act(session, city.attorney, instance, "attorney_consultation", consultation)
    [advised] = [event for event in services.history_of(session, instance) if event.decision == "amend"]
    for reader in (city.attorney, city.comms):
        assert services.record_for(reader, instance)["recommendation"] == "amend"
        assert not authz.withheld_from(reader, instance).hides(advised)
    for outsider in (city.records, administrator, city.requester):
        record = services.record_for(outsider, instance)
        assert "recommendation" not in record and "advice" not in record
        assert record["policy_section"] == "Rules of Use, the removal categories"
        assert authz.withheld_from(outsider, instance).hides(advised)
