"""Procedure 1, a new account request: every path through engine.requests.services, on both databases."""

import pytest
from sqlalchemy import func, select

from engine.db.models import AuditEvent, Base, ProcessInstance, Task
from engine.errors import Invalid, NotFound
from engine.records import registry
from engine.requests import inbox, services
from tests.helpers import INVESTIGATIVE, KEY, SETUP, START, only_open_task, start_request

CREDENTIALS = {"username": "wsp-watcher-7731", "password": "Tr0mbone!Lantern-Quiet-42"}


def _act(session, actor, instance, form_key, data):
    """Complete the instance's one open task, which must have this form key."""
    task = only_open_task(session, instance)
    assert task.form_key == form_key
    done = services.complete_task(session, actor, task.id, data)
    session.commit()
    return done


def _approve_standard(session, people, instance):
    _act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    _act(session, people.comms, instance, "communications_review", {"decision": "approve", "comment": "Ok."})


def _form_keys_ever(session, instance):
    return set(session.scalars(select(Task.form_key).where(Task.instance_id == instance.id)))


def _decisions(session, instance):
    return [(e.actor, e.decision, e.comment) for e in services.history_of(session, instance) if e.action == "completed"]


def _invalid_fields(call):
    with pytest.raises(Invalid) as refused:
        call()
    return refused.value.fields


def _approve_investigative(session, people, instance):
    _act(session, people.police_chief, instance, "department_head_review", {"decision": "approve"})
    _act(session, people.lieutenant, instance, "lieutenant_review", {"decision": "approve", "comment": "Go."})


def _investigative_account(session, people):
    instance = start_request(session, people.officer, INVESTIGATIVE)
    _approve_investigative(session, people, instance)
    return instance, _act(session, people.officer, instance, "confirm_setup", CREDENTIALS)


# ---- the standard path ---------------------------------------------------------------------------


def test_two_approvals_and_the_requesters_confirmation_enter_the_account_with_its_managers(session, people):
    instance = start_request(session, people.requester, {**START, "proposed_managers": ["requester", "colleague"]})
    _approve_standard(session, people, instance)
    assert only_open_task(session, instance).assignee_id == people.requester.id
    done = _act(session, people.requester, instance, "confirm_setup", SETUP)

    assert (done.status, done.outcome) == ("completed", "approved")
    [account] = registry.list_accounts(session, people.requester)
    assert (account.platform, account.name, account.department.code) == ("facebook", "West St. Paul Parks", "parks")
    assert (account.url, account.status, account.investigative) == ("https://facebook.com/wspparks", "active", False)
    assert account.marked_as_city and account.links_official_site and account.public_notice_linked
    comms_approval = [e for e in services.history_of(session, instance) if e.actor == "comms"][0]
    assert sorted((m.user.username, m.approved_by, m.approved_at) for m in account.managers) == [
        ("colleague", "Comms (Communications Manager)", comms_approval.at),
        ("requester", "Comms (Communications Manager)", comms_approval.at),
    ]
    assert done.data["account_id"] == account.id
    assert services.open_tasks_of(session, instance) == []


def test_confirm_setup_refuses_an_account_not_marked_as_the_citys(session, people):
    instance = start_request(session, people.requester)
    _approve_standard(session, people, instance)
    task = only_open_task(session, instance)

    fields = _invalid_fields(
        lambda: services.complete_task(session, people.requester, task.id, {**SETUP, "marked_as_city": False})
    )
    session.rollback()

    assert list(fields) == ["marked_as_city"]
    assert "clearly marked as the City of West St. Paul's" in fields["marked_as_city"][0]
    assert only_open_task(session, instance).form_key == "confirm_setup"
    assert registry.list_accounts(session, people.requester) == []


def test_department_head_rejection_ends_the_request_with_its_written_reasons(session, people):
    instance = start_request(session, people.requester)
    done = _act(
        session,
        people.parks_head,
        instance,
        "department_head_review",
        {"decision": "reject", "comment": "Parks already has one for this."},
    )

    assert (done.status, done.outcome) == ("completed", "rejected")
    assert _decisions(session, instance) == [("parks_head", "reject", "Parks already has one for this.")]
    assert services.open_tasks_of(session, instance) == []
    assert registry.list_accounts(session, people.requester) == []


def test_rejection_without_a_written_comment_is_refused_and_changes_nothing(session, people):
    instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    history = [e.id for e in services.history_of(session, instance)]
    version = instance.version

    fields = _invalid_fields(
        lambda: services.complete_task(session, people.parks_head, task.id, {"decision": "reject"})
    )
    session.rollback()

    assert list(fields) == ["comment"]
    assert only_open_task(session, instance).id == task.id
    assert [e.id for e in services.history_of(session, instance)] == history
    assert session.get(ProcessInstance, instance.id).version == version
    assert instance.status == "running"


def test_communications_manager_rejection_ends_the_request(session, people):
    instance = start_request(session, people.requester)
    _act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    done = _act(
        session,
        people.comms,
        instance,
        "communications_review",
        {"decision": "reject", "comment": "The audience is already served by the City's page."},
    )

    assert (done.status, done.outcome) == ("completed", "rejected")
    assert _decisions(session, instance)[-1] == (
        "comms",
        "reject",
        "The audience is already served by the City's page.",
    )
    assert registry.list_accounts(session, people.requester) == []


def test_returned_request_revised_and_resubmitted_goes_back_to_the_department_head(session, people):
    instance = start_request(session, people.requester)
    _act(
        session,
        people.parks_head,
        instance,
        "department_head_review",
        {"decision": "return", "comment": "Name it after the department."},
    )
    revise = only_open_task(session, instance)
    assert (revise.form_key, revise.assignee_id) == ("revise_request", people.requester.id)

    _act(
        session,
        people.requester,
        instance,
        "revise_request",
        {"action": "resubmit", "account_name": "WSP Parks and Recreation", "comment": "Renamed."},
    )

    assert instance.data["account_name"] == "WSP Parks and Recreation"
    assert instance.data["purpose"] == START["purpose"]
    assert instance.title == 'Facebook account "WSP Parks and Recreation"'
    assert only_open_task(session, instance).form_key == "department_head_review"
    _approve_standard(session, people, instance)
    done = _act(session, people.requester, instance, "confirm_setup", SETUP)
    assert (done.status, done.outcome) == ("completed", "approved")
    assert [a.name for a in registry.list_accounts(session, people.requester)] == ["WSP Parks and Recreation"]


def test_resubmission_to_another_department_goes_to_that_departments_head(session, people):
    instance = start_request(session, people.requester)
    _act(
        session,
        people.parks_head,
        instance,
        "department_head_review",
        {"decision": "return", "comment": "Finance should own this."},
    )
    _act(session, people.requester, instance, "revise_request", {"action": "resubmit", "department": "finance"})

    [available] = inbox.list_tasks(session, people.finance_head, "available")[0]
    assert (available.instance_id, available.form_key) == (instance.id, "department_head_review")
    assert inbox.list_tasks(session, people.parks_head, "available") == ([], 0)


def test_returned_request_withdrawn_ends_without_an_account(session, people):
    instance = start_request(session, people.requester)
    _act(
        session,
        people.parks_head,
        instance,
        "department_head_review",
        {"decision": "return", "comment": "Say who will moderate it."},
    )
    done = _act(
        session,
        people.requester,
        instance,
        "revise_request",
        {"action": "withdraw", "comment": "We will use the City's page."},
    )

    assert (done.status, done.outcome) == ("completed", "withdrawn")
    assert _decisions(session, instance)[-1] == ("requester", "withdraw", "We will use the City's page.")
    assert services.open_tasks_of(session, instance) == []
    assert registry.list_accounts(session, people.requester) == []


def test_communications_manager_return_sends_the_request_back_to_the_requester(session, people):
    instance = start_request(session, people.requester)
    _act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    _act(
        session,
        people.comms,
        instance,
        "communications_review",
        {"decision": "return", "comment": "Explain how the public notice is linked."},
    )
    assert only_open_task(session, instance).form_key == "revise_request"

    _act(
        session,
        people.requester,
        instance,
        "revise_request",
        {"action": "resubmit", "notice_and_link_plan": "Pinned post linking the notice on www.wspmn.gov."},
    )

    assert instance.data["notice_and_link_plan"] == "Pinned post linking the notice on www.wspmn.gov."
    assert only_open_task(session, instance).form_key == "department_head_review"


# ---- the police investigative path ---------------------------------------------------------------


def test_investigative_profile_is_approved_by_the_lieutenant_not_the_communications_manager(session, people):
    instance = start_request(session, people.officer, INVESTIGATIVE)
    assert instance.restricted
    _approve_investigative(session, people, instance)
    setup = only_open_task(session, instance)
    assert [f["name"] for f in services.task_form(session, setup)] == ["account_url", "username", "password"]

    done = _act(session, people.officer, instance, "confirm_setup", CREDENTIALS)

    assert (done.status, done.outcome) == ("completed", "approved")
    assert "communications_review" not in _form_keys_ever(session, instance)
    [account] = registry.list_accounts(session, people.lieutenant)
    assert (account.investigative, account.department.code) == (True, "police")
    assert [(m.user.username, m.approved_by) for m in account.managers] == [
        ("officer", "Lieutenant (Administrative Lieutenant)")
    ]


def test_investigative_credentials_are_stored_in_no_database_column_in_clear(session, people):
    _investigative_account(session, people)
    # Every column of every table as stored, including process_instance.state/data, audit_event and account.
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            stored = " ".join(bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview)) else str(v) for v in row)
            assert CREDENTIALS["password"] not in stored, table.name
            assert CREDENTIALS["username"] not in stored, table.name


def test_lieutenant_sees_the_credentials_and_the_reveal_is_logged(session, people):
    _, done = _investigative_account(session, people)
    account_id = done.data["account_id"]

    revealed = registry.reveal_credentials(session, people.lieutenant, account_id)
    session.commit()

    assert revealed == CREDENTIALS
    last = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert (last.action, last.actor, last.detail) == ("credentials_revealed", "lieutenant", {"account_id": account_id})


def test_credentials_are_refused_to_a_user_outside_the_police(session, people):
    _, done = _investigative_account(session, people)
    events = session.scalar(select(func.count()).select_from(AuditEvent))

    # Outside the police, an investigative profile does not exist at all.
    with pytest.raises(NotFound):
        registry.reveal_credentials(session, people.comms, done.data["account_id"])
    session.rollback()

    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


@pytest.mark.parametrize("reused", ["username", "password"])
def test_second_investigative_profile_reusing_a_credential_is_refused(session, people, reused):
    _investigative_account(session, people)
    instance = start_request(session, people.officer, {**INVESTIGATIVE, "account_name": "Second watcher"})
    _approve_investigative(session, people, instance)
    fresh = {"username": "wsp-second-profile", "password": "An0ther!Distinct-Secret-99"}
    task = only_open_task(session, instance)

    fields = _invalid_fields(
        lambda: services.complete_task(session, people.officer, task.id, {**fresh, reused: CREDENTIALS[reused]})
    )
    session.rollback()

    assert list(fields) == [reused]
    assert "unique" in fields[reused][0]
    assert only_open_task(session, instance).form_key == "confirm_setup"
    assert len(registry.list_accounts(session, people.lieutenant)) == 1


# ---- refusals of the start form ------------------------------------------------------------------


def _refused_start(session, actor, data):
    fields = _invalid_fields(lambda: services.start_instance(session, actor, KEY, data))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ProcessInstance)) == 0
    return fields


@pytest.mark.parametrize("department", ["police", "parks"])
def test_investigative_profile_requested_outside_the_police_is_refused(session, people, department):
    fields = _refused_start(session, people.requester, {**INVESTIGATIVE, "department": department})
    assert list(fields) == ["investigative"]


def test_unknown_proposed_manager_is_refused_by_name(session, people):
    data = {**START, "proposed_managers": ["requester", "nobody"]}
    fields = _refused_start(session, people.requester, data)
    assert fields == {"proposed_managers": ["No active user named: nobody."]}


def test_unknown_department_is_refused(session, people):
    fields = _refused_start(session, people.requester, {**START, "department": "aquarium"})
    assert list(fields) == ["department"]


@pytest.mark.parametrize(
    "missing", ["platform", "account_name", "department", "purpose", "audience", "proposed_managers"]
)
def test_missing_start_field_is_refused_by_name(session, people, missing):
    data = {name: value for name, value in START.items() if name != missing}
    fields = _refused_start(session, people.requester, data)
    assert fields == {missing: ["This field is required."]}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("platform", 5),
        ("account_name", ["WSP"]),
        ("purpose", {"text": "x"}),
        ("proposed_managers", "requester"),
        ("proposed_managers", [1, 2]),
        ("investigative", "yes"),
        ("platform", "myspace"),
    ],
)
def test_start_field_of_the_wrong_type_is_refused_by_name(session, people, name, value):
    fields = _refused_start(session, people.requester, {**START, name: value})
    assert list(fields) == [name]
