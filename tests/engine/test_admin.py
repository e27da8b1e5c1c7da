"""Administrators keep the users and departments: every change is checked, audited, and refused as a whole."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.db.models import ApiToken, AuditEvent, Department, User
from engine.errors import Invalid, NotAllowed, NotAuthenticated, NotFound
from engine.people import directory, users
from engine.requests import services
from tests.helpers import only_open_task, start_request

PASSWORD = "correct horse battery"


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _events(session, action):
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _user(session, username) -> User:
    return session.scalar(select(User).where(User.username == username))


def _department(session, code) -> Department:
    return session.scalar(select(Department).where(Department.code == code))


def _snapshot(session):
    """Everything an administrator's service could change, to prove a refusal changed nothing."""
    people = [
        (u.username, u.display_name, u.email, u.department_id, sorted(u.roles), u.active)
        for u in session.scalars(select(User).order_by(User.id))
    ]
    departments = [(d.code, d.name, d.head_id) for d in session.scalars(select(Department).order_by(Department.id))]
    tokens = [(t.id, t.revoked_at) for t in session.scalars(select(ApiToken).order_by(ApiToken.id))]
    return people, departments, tokens, _count(session, AuditEvent)


@pytest.fixture
def boss(make_user):
    """An administrator."""
    return make_user("boss", department="administration", roles=["admin"], name="Bo Boss")


@pytest.mark.parametrize(
    "call",
    [
        lambda s, a: directory.list_users(s, a),
        lambda s, a: directory.get_user(s, a, a.id),
        lambda s, a: directory.add_user(s, a, username="newbie", password=PASSWORD, display_name="New Bie"),
        lambda s, a: directory.update_user(s, a, a.id, display_name="Renamed"),
        lambda s, a: directory.update_user(s, a, a.id, roles=["admin"]),
        lambda s, a: directory.list_departments(s, a),
        lambda s, a: directory.create_department(s, a, code="library", name="Library"),
        lambda s, a: directory.set_department_head(s, a, _department(s, "parks").id, a.username),
    ],
    ids=[
        "list_users",
        "get_user",
        "create_user",
        "update_user",
        "grant_self_admin",
        "list_departments",
        "create_department",
        "set_department_head",
    ],
)
def test_every_admin_service_refuses_someone_who_is_not_an_administrator(session, make_user, call):
    head = make_user(
        "powerful", department="parks", roles=["communications_manager", "records_officer"], head_of=["parks"]
    )
    before = _snapshot(session)
    with pytest.raises(NotAllowed):
        call(session, head)
    assert _snapshot(session) == before


def test_list_users_shows_department_roles_headships_and_whether_active(session, boss, make_user):
    make_user("dana", department="parks", head_of=["parks", "finance"], name="Dana Head")
    make_user("chris", department="communications", roles=["social_media_manager", "communications_manager"])
    rows = {row.username: row for row in directory.list_users(session, boss)}
    assert [row.username for row in directory.list_users(session, boss)] == ["boss", "chris", "dana"]
    assert rows["dana"].display_name == "Dana Head"
    assert rows["dana"].department_name == "Parks and Recreation"
    assert rows["dana"].head_of == ("finance", "parks")
    assert rows["dana"].roles == ()
    assert rows["chris"].roles == ("communications_manager", "social_media_manager")
    assert rows["boss"].roles == ("admin",)
    assert all(row.active for row in rows.values())


def test_get_user_of_an_unknown_id_is_not_found(session, boss):
    with pytest.raises(NotFound):
        directory.get_user(session, boss, 999_999)


def test_a_created_user_can_log_in_and_the_creation_is_audited_as_the_administrator(session, boss):
    user = directory.add_user(
        session,
        boss,
        username="pat.lee",
        password="a long enough one",
        display_name=" Pat Lee ",
        email="pat@wspmn.gov",
        department="parks",
        roles=["records_officer"],
    )
    session.commit()
    assert users.authenticate(session, "pat.lee", "a long enough one").id == user.id
    row = directory.get_user(session, boss, user.id)
    assert (row.display_name, row.email, row.department_code, row.roles, row.active) == (
        "Pat Lee",
        "pat@wspmn.gov",
        "parks",
        ("records_officer",),
        True,
    )
    [event] = [e for e in _events(session, "user_created") if e.detail["username"] == "pat.lee"]
    assert event.actor == "boss"
    assert event.detail["roles"] == ["records_officer"]


def test_creating_a_user_reports_every_bad_field_at_once_and_creates_nothing(session, boss, make_user):
    make_user("taken")
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.add_user(
            session,
            boss,
            username="taken",
            password="short",
            display_name="  ",
            email="not an address",
            department="atlantis",
            roles=["emperor", "department_head"],
            head_of=["narnia"],
        )
    assert refused.value.fields == {
        "username": ['A user named "taken" already exists.'],
        "password": ["A password needs at least 15 characters: a few words you will remember work well."],
        "display_name": ["This field is required."],
        "email": ["Enter an e-mail address like name@wspmn.gov."],
        "department": ['No department with code "atlantis".'],
        "roles": ['Unknown role "emperor".', "department_head is held by heading a department: use head_of."],
        "head_of": ['No department with code "narnia".'],
    }
    assert _snapshot(session) == before


def test_a_user_refused_only_for_a_bad_email_is_not_created(session, boss):
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.add_user(
            session,
            boss,
            username="pat.lee",
            password=PASSWORD,
            display_name="Pat Lee",
            email="pat@",
            department="parks",
            head_of=["parks"],
        )
    assert set(refused.value.fields) == {"email"}
    session.commit()
    assert _user(session, "pat.lee") is None
    assert _snapshot(session) == before
    assert users.create_user(session, "pat.lee", PASSWORD).username == "pat.lee"  # the name is still free


def test_text_the_database_cannot_store_is_refused_by_field_not_by_a_database_error(session, boss):
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.add_user(
            session,
            boss,
            username="pat.lee",
            password="pass\udc80word123",
            display_name="Pat\x00",
            department="par\x00ks",
            roles=["admin\x00"],
            head_of=["x\x00"],
        )
    assert set(refused.value.fields) == {"password", "display_name", "department", "roles", "head_of"}
    with pytest.raises(Invalid) as refused:
        directory.create_department(session, boss, code="lib\x00", name="Library\x00", head="boss\x00")
    assert set(refused.value.fields) == {"code", "name", "head"}
    assert _snapshot(session) == before


def test_a_new_head_replaces_the_previous_one_and_the_replacement_is_audited(session, boss, make_user):
    make_user("old_head", head_of=["parks"])
    user = directory.add_user(
        session,
        boss,
        username="new_head",
        password=PASSWORD,
        display_name="New Head",
        department="parks",
        head_of=["parks"],
    )
    session.commit()
    assert _department(session, "parks").head_id == user.id
    assert directory.get_user(session, boss, user.id).head_of == ("parks",)
    [event] = _events(session, "department_head_set")
    assert event.detail == {"department": "parks", "head": "new_head", "previous": "old_head"}


def test_updating_a_user_changes_each_field_given_and_audits_before_and_after(session, boss, make_user):
    pat = make_user("pat", department="parks", roles=["records_officer"], name="Pat")
    change = directory.update_user(
        session,
        boss,
        pat.id,
        display_name="Pat Lee",
        email="pat.lee@wspmn.gov",
        department="finance",
        roles=["city_attorney", "social_media_manager"],
    )
    session.commit()
    assert change.name == "Pat Lee"
    assert change.fields == {
        "display_name": ["Pat", "Pat Lee"],
        "email": ["pat@example.org", "pat.lee@wspmn.gov"],
        "department": ["parks", "finance"],
        "roles": [["records_officer"], ["city_attorney", "social_media_manager"]],
    }
    row = directory.get_user(session, boss, pat.id)
    assert (row.display_name, row.email, row.department_code, row.roles) == (
        "Pat Lee",
        "pat.lee@wspmn.gov",
        "finance",
        ("city_attorney", "social_media_manager"),
    )
    [event] = _events(session, "user_updated")
    assert event.actor == "boss"
    assert event.detail["username"] == "pat"
    assert event.detail["changes"]["department"] == ["parks", "finance"]


def test_clearing_email_and_department_leaves_the_user_without_them(session, boss, make_user):
    pat = make_user("pat", department="parks")
    directory.update_user(session, boss, pat.id, email="", department="")
    session.commit()
    row = directory.get_user(session, boss, pat.id)
    assert (row.email, row.department_code) == (None, None)


def test_an_update_that_changes_nothing_is_not_audited(session, boss, make_user):
    pat = make_user("pat", department="parks", roles=["records_officer"], name="Pat")
    before = _snapshot(session)
    change = directory.update_user(
        session,
        boss,
        pat.id,
        display_name="Pat",
        email="pat@example.org",
        department="parks",
        roles=["records_officer"],
        head_of=[],
        active=True,
    )
    assert change.fields == {}
    assert _snapshot(session) == before


def test_an_update_with_an_unknown_department_or_role_changes_nothing(session, boss, make_user):
    pat = make_user("pat", department="parks", name="Pat")
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.update_user(
            session,
            boss,
            pat.id,
            display_name="Pat Lee",
            email="pat@wspmn.gov",
            department="atlantis",
            roles=["records_officer", "wizard"],
            head_of=["parks", "narnia"],
        )
    assert refused.value.fields == {
        "department": ['No department with code "atlantis".'],
        "roles": ['Unknown role "wizard".'],
        "head_of": ['No department with code "narnia".'],
    }
    assert _snapshot(session) == before


def test_updating_an_unknown_user_is_not_found(session, boss):
    with pytest.raises(NotFound):
        directory.update_user(session, boss, 999_999, active=False)


def test_an_administrator_cannot_deactivate_themselves(session, boss):
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.update_user(session, boss, boss.id, active=False)
    assert refused.value.fields == {"active": ["You cannot deactivate yourself; ask another administrator."]}
    assert _snapshot(session) == before


def test_an_administrator_cannot_remove_their_own_admin_role(session, boss):
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.update_user(session, boss, boss.id, roles=["records_officer"])
    assert refused.value.fields == {
        "roles": ["You cannot remove your own administrator role; ask another administrator."]
    }
    assert _snapshot(session) == before


def test_an_administrator_can_remove_another_administrators_role(session, boss, make_user):
    other = make_user("other_admin", roles=["admin"])
    directory.update_user(session, boss, other.id, roles=[])
    session.commit()
    assert directory.get_user(session, boss, other.id).roles == ()


def test_deactivating_a_user_revokes_their_tokens_and_they_cannot_log_in(session, boss, make_user):
    pat = make_user("pat")
    token = users.issue_token(session, _user(session, "pat"), timedelta(hours=1))
    session.commit()
    change = directory.update_user(session, boss, pat.id, active=False)
    session.commit()
    assert change.fields == {"active": [True, False]}
    assert change.tokens_revoked == 1
    with pytest.raises(NotAuthenticated):
        users.user_for_token(session, token)
    assert session.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == pat.id)) is not None
    with pytest.raises(NotAuthenticated):
        users.authenticate(session, "pat", PASSWORD)
    assert directory.get_user(session, boss, pat.id).active is False
    [event] = _events(session, "user_deactivated")
    assert event.detail == {
        "username": "pat",
        "changes": {"active": [True, False]},
        "tokens_revoked": 1,
        "tasks_released": 0,
    }


def test_deactivating_a_user_gives_their_taken_tasks_back_to_the_lane(session, boss, people, make_user):
    deputy = make_user("deputy", department="communications", roles=["communications_manager"])
    instance = start_request(session, people.requester)
    services.complete_task(session, people.parks_head, only_open_task(session, instance).id, {"decision": "approve"})
    services.claim_task(session, deputy, only_open_task(session, instance).id)
    session.commit()
    directory.update_user(session, boss, deputy.id, active=False)
    session.commit()
    reopened = only_open_task(session, instance)
    assert reopened.assignee_id is None
    assert _events(session, "user_deactivated")[0].detail["tasks_released"] == 1


def test_a_reactivated_user_can_log_in_again_but_revoked_tokens_stay_revoked(session, boss, make_user):
    pat = make_user("pat")
    token = users.issue_token(session, _user(session, "pat"), timedelta(hours=1))
    directory.update_user(session, boss, pat.id, active=False)
    change = directory.update_user(session, boss, pat.id, active=True)
    session.commit()
    assert change.fields == {"active": [False, True]}
    assert users.authenticate(session, "pat", PASSWORD).username == "pat"
    with pytest.raises(NotAuthenticated):
        users.user_for_token(session, token)
    assert [e.detail["username"] for e in _events(session, "user_reactivated")] == ["pat"]


def test_a_department_head_is_deactivated_only_with_their_headship_cleared(session, boss, make_user):
    dana = make_user("dana", head_of=["parks"], name="Dana")
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.update_user(session, boss, dana.id, active=False)
    assert refused.value.fields == {
        "active": ["Dana heads Parks and Recreation; choose another head (or clear the headship) before deactivating."]
    }
    assert _snapshot(session) == before
    change = directory.update_user(session, boss, dana.id, active=False, head_of=[])
    session.commit()
    assert change.fields == {"active": [True, False], "head_of": [["parks"], []]}
    assert _department(session, "parks").head_id is None


def test_a_deactivated_user_cannot_be_made_a_head(session, boss, make_user):
    pat = make_user("pat", name="Pat")
    directory.update_user(session, boss, pat.id, active=False)
    session.commit()
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.update_user(session, boss, pat.id, head_of=["parks"])
    assert refused.value.fields == {"head_of": ["Pat is deactivated and cannot head a department."]}
    with pytest.raises(Invalid) as refused:
        directory.set_department_head(session, boss, _department(session, "parks").id, "pat")
    assert refused.value.fields == {"head": ["Pat is deactivated and cannot head a department."]}
    assert _snapshot(session) == before


def test_head_of_moves_headships_and_takes_departments_from_their_previous_heads(session, boss, make_user):
    pat = make_user("pat", head_of=["parks"])
    make_user("fin", head_of=["finance"])
    change = directory.update_user(session, boss, pat.id, head_of=["finance", "police"])
    session.commit()
    assert change.fields == {"head_of": [["parks"], ["finance", "police"]]}
    assert _department(session, "parks").head_id is None
    assert _department(session, "finance").head_id == pat.id
    assert directory.get_user(session, boss, pat.id).head_of == ("finance", "police")
    [event] = _events(session, "user_updated")
    assert event.detail["replaced_heads"] == {"finance": "fin"}


def test_list_departments_names_each_head(session, boss, make_user):
    make_user("dana", head_of=["parks"], name="Dana")
    rows = {d.code: d for d in directory.list_departments(session, boss)}
    assert rows["parks"].head.display_name == "Dana"
    assert rows["finance"].head is None
    assert len(rows) == 7


def test_a_created_department_can_be_chosen_for_a_user_at_once_and_is_audited(session, boss, make_user):
    make_user("lib_head", name="Libby")
    department = directory.create_department(session, boss, code="library_2", name=" Library ", head="lib_head")
    session.commit()
    assert (department.code, department.name, department.head.username) == ("library_2", "Library", "lib_head")
    user = directory.add_user(
        session, boss, username="reader", password=PASSWORD, display_name="Reader", department="library_2"
    )
    assert user.department.code == "library_2"
    [event] = _events(session, "department_created")
    assert event.detail == {"code": "library_2", "name": "Library", "head": "lib_head"}


@pytest.mark.parametrize(
    ("code", "name", "head", "fields"),
    [
        ("parks", "Parks again", "", {"code": ['A department with code "parks" already exists.']}),
        (
            "Parks-2",
            "Parks",
            None,
            {"code": ["Use lowercase letters, digits and underscores, starting with a letter."]},
        ),
        ("2parks", "Parks", None, {"code": ["Use lowercase letters, digits and underscores, starting with a letter."]}),
        ("", "", None, {"code": ["This field is required."], "name": ["This field is required."]}),
        ("x" * 65, "y" * 201, None, {"code": ["At most 64 characters."], "name": ["At most 200 characters."]}),
        ("library", "Library", "nobody", {"head": ['No user named "nobody".']}),
    ],
    ids=["duplicate", "capitals_and_dash", "leading_digit", "empty", "too_long", "unknown_head"],
)
def test_a_department_with_a_bad_field_is_refused_and_not_created(session, boss, code, name, head, fields):
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.create_department(session, boss, code=code, name=name, head=head)
    assert refused.value.fields == fields
    assert _snapshot(session) == before


def test_setting_and_clearing_a_head_is_audited_and_setting_the_same_head_changes_nothing(session, boss, make_user):
    make_user("dana", name="Dana")
    parks = _department(session, "parks")
    change = directory.set_department_head(session, boss, parks.id, "dana")
    session.commit()
    assert (change.name, change.fields) == ("Parks and Recreation", {"head": [None, "dana"]})
    assert directory.list_users(session, boss)[1].head_of == ("parks",)
    before = _snapshot(session)
    assert directory.set_department_head(session, boss, parks.id, "dana").fields == {}
    assert _snapshot(session) == before
    change = directory.set_department_head(session, boss, parks.id, "")
    session.commit()
    assert change.fields == {"head": ["dana", None]}
    assert _department(session, "parks").head_id is None
    assert [e.detail for e in _events(session, "department_head_set")] == [
        {"department": "parks", "head": "dana", "previous": None}
    ]
    assert [e.detail for e in _events(session, "department_head_cleared")] == [
        {"department": "parks", "head": None, "previous": "dana"}
    ]


def test_setting_an_unknown_head_or_the_head_of_an_unknown_department_is_refused(session, boss):
    before = _snapshot(session)
    with pytest.raises(Invalid) as refused:
        directory.set_department_head(session, boss, _department(session, "parks").id, "nobody")
    assert refused.value.fields == {"head": ['No user named "nobody".']}
    with pytest.raises(NotFound):
        directory.set_department_head(session, boss, 999_999, "boss")
    assert _snapshot(session) == before
