"""Single sign-on against a real OpenID provider on loopback (oidc-provider, tests/sso/): the redirect flow with the
provider's own pages, people made and kept up to date from their groups, and every way a sign-in is refused."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import select

from engine.db.models import AuditEvent, Department, User
from engine.errors import Invalid
from engine.settings import Settings
from tests.helpers import PASSWORD
from tests.smtp import free_port
from tests.sso.oidc import running_provider, sign_in
from tests.web.pages import login, text_of

CALLBACK = "http://localhost/login/sso/callback"  # the test client's host


@pytest.fixture
def provider(tmp_path):
    """The local OpenID provider, with the test client registered for the test client's callback."""
    with running_provider(tmp_path, CALLBACK) as running:
        yield running


@pytest.fixture
def sso_app(settings, provider, people):
    """The app with single sign-on through the local provider (the people of PEOPLE keep their passwords)."""
    from web import create_app

    app = create_app({"TESTING": True}, settings=provider.settings_for(settings))
    yield app
    app.extensions["civicflow.engine"].dispose()


def back_from_provider(client, provider, sub: str) -> str:
    """Press "Sign in with ..." and sign in at the provider as `sub`: the callback URL it sends the browser to."""
    start = client.get("/login/sso")
    assert start.status_code == 302, text_of(start)
    back = sign_in(start.headers["Location"], sub, provider.issuer)
    assert back.startswith(CALLBACK + "?"), back
    return back


def sso_sign_in(client, provider, sub: str):
    """The whole sign-in through the provider; the callback's response."""
    back = urlsplit(back_from_provider(client, provider, sub))
    return client.get(f"{back.path}?{back.query}")


@dataclass
class Person:
    """A user as the directory left them."""

    id: int
    display_name: str
    email: str | None
    sso_subject: str | None
    roles: set[str]
    department_code: str | None
    headed: list[str]


def person(sessions, username: str) -> Person:
    """The user, their department and the codes of the departments they head, read afresh."""
    with sessions() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None, f"no user {username}"
        headed = list(s.scalars(select(Department.code).where(Department.head_id == user.id)))
        department = user.department.code if user.department else None
        return Person(user.id, user.display_name, user.email, user.sso_subject, user.roles, department, headed)


def test_the_login_page_offers_the_directory_only_when_it_is_configured(sso_app, client):
    page = sso_app.test_client().get("/login")
    assert "Sign in with City Directory" in text_of(page)
    assert "Sign in with" not in text_of(client.get("/login"))
    assert client.get("/login/sso").status_code == 404


def test_a_first_sign_in_creates_the_person_with_what_their_groups_give(sso_app, provider, sessions):
    client = sso_app.test_client()
    response = sso_sign_in(client, provider, "pat-0001")
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    inbox = client.get("/inbox")
    assert "Welcome, Pat Quinn." in text_of(inbox)
    user = person(sessions, "pat.quinn")
    assert (user.display_name, user.email, user.department_code) == ("Pat Quinn", "pat.quinn@wspmn.example", "parks")
    assert user.sso_subject == f"{provider.issuer} pat-0001"
    assert user.headed == ["parks"] and user.roles == set()
    with sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(2))]
    assert actions == ["directory_access_changed", "user_created"]


def test_roles_follow_the_directory_at_each_sign_in(sso_app, provider, sessions):
    assert sso_sign_in(sso_app.test_client(), provider, "pat-0001").status_code == 302
    first = person(sessions, "pat.quinn")

    provider.set_groups("pat-0001", ["civicflow-admins", "comms"])
    client = sso_app.test_client()
    assert sso_sign_in(client, provider, "pat-0001").status_code == 302
    user = person(sessions, "pat.quinn")
    assert user.id == first.id  # the same person, matched on their subject
    assert user.roles == {"admin", "communications_manager"}
    assert user.department_code == "communications" and user.headed == []
    assert client.get("/admin/users").status_code == 200
    with sessions() as s:
        change = s.scalar(
            select(AuditEvent).where(AuditEvent.action == "directory_access_changed").order_by(AuditEvent.id.desc())
        )
    assert change.detail["before"] == {"roles": [], "department": "parks", "head_of": ["parks"]}
    assert change.detail["after"] == {
        "roles": ["admin", "communications_manager"],
        "department": "communications",
        "head_of": [],
    }


def test_a_person_in_no_mapped_group_may_only_file_requests(sso_app, provider, sessions):
    client = sso_app.test_client()
    assert sso_sign_in(client, provider, "lee-0002").status_code == 302
    user = person(sessions, "lee")
    assert user.roles == set() and user.headed == [] and user.department_code is None
    assert client.get("/inbox").status_code == 200
    assert client.get("/requests/new").status_code == 200
    assert client.get("/admin/users").status_code == 403


def test_a_username_already_taken_gets_a_number(sso_app, provider, sessions, make_user):
    make_user("pat.quinn")
    assert sso_sign_in(sso_app.test_client(), provider, "pat-0001").status_code == 302
    user = person(sessions, "pat.quinn-2")
    assert user.sso_subject.endswith(" pat-0001")


def test_a_state_this_browser_did_not_start_is_refused_with_a_clear_page(sso_app, provider, sessions):
    client = sso_app.test_client()
    back = urlsplit(back_from_provider(client, provider, "pat-0001"))
    query = dict(parse_qsl(back.query)) | {"state": "a-state-of-the-attacker"}
    response = client.get(f"{back.path}?{urlencode(query)}")
    assert response.status_code == 400
    assert "This sign-in was not started here, or was finished already" in text_of(response)
    assert "Sign in with City Directory" in text_of(response)
    assert client.get("/inbox").status_code == 302  # not signed in
    with sessions() as s:
        assert s.scalar(select(User).where(User.username == "pat.quinn")) is None


def test_a_callback_replayed_in_another_browser_is_refused(sso_app, provider):
    back = urlsplit(back_from_provider(sso_app.test_client(), provider, "pat-0001"))
    response = sso_app.test_client().get(f"{back.path}?{back.query}")
    assert response.status_code == 400
    assert "This sign-in was not started here" in text_of(response)


def test_a_tampered_id_token_is_refused_and_changes_nobody(sso_app, provider, sessions):
    provider.tamper_id_tokens()
    client = sso_app.test_client()
    response = sso_sign_in(client, provider, "pat-0001")
    assert response.status_code == 400
    assert "The sign-in could not be verified, so you are not signed in" in text_of(response)
    assert client.get("/inbox").status_code == 302
    with sessions() as s:
        assert s.scalar(select(User).where(User.sso_subject.is_not(None))) is None


def test_a_deactivated_person_is_refused_at_the_callback(sso_app, provider, sessions):
    assert sso_sign_in(sso_app.test_client(), provider, "pat-0001").status_code == 302
    with sessions() as s:
        s.scalar(select(User).where(User.username == "pat.quinn")).active = False
        s.commit()
    client = sso_app.test_client()
    response = sso_sign_in(client, provider, "pat-0001")
    assert response.status_code == 403
    assert "Your civicflow account is deactivated" in text_of(response)
    assert client.get("/inbox").status_code == 302


def test_a_mapping_to_a_department_civicflow_lacks_is_named_on_the_refusal(settings, provider, people):
    from engine.settings import _sso_groups
    from web import create_app

    groups = _sso_groups("CIVICFLOW_SSO_GROUPS", "parks-heads=department:aquarium")
    app = create_app({"TESTING": True}, settings=provider.settings_for(settings, sso_groups=groups))
    try:
        response = sso_sign_in(app.test_client(), provider, "pat-0001")
    finally:
        app.extensions["civicflow.engine"].dispose()
    assert response.status_code == 403
    assert "It names departments civicflow does not have (aquarium): ask IT to correct it." in text_of(response)


def test_an_unreachable_provider_is_a_clear_page(settings, people):
    import dataclasses

    from web import create_app

    nowhere = dataclasses.replace(
        settings,
        sso_issuer=f"http://127.0.0.1:{free_port()}",
        sso_client_id="civicflow",
        sso_client_secret="secret",
        sso_provider_name="City Directory",
    )
    app = create_app({"TESTING": True}, settings=nowhere)
    try:
        response = app.test_client().get("/login/sso")
    finally:
        app.extensions["civicflow.engine"].dispose()
    assert response.status_code == 502
    assert "City Directory could not be reached, so you are not signed in." in text_of(response)


# ---- Local passwords for administrators only -------------------------------------------------------------------


@pytest.fixture
def admins_only(settings, provider, people):
    """The app with CIVICFLOW_LOCAL_PASSWORDS=admins-only."""
    from web import create_app

    app = create_app({"TESTING": True}, settings=provider.settings_for(settings, local_passwords="admins-only"))
    yield app
    app.extensions["civicflow.engine"].dispose()


def test_with_local_passwords_off_staff_are_refused_and_an_administrator_gets_in(admins_only):
    staff = login(admins_only.test_client(), "parks_head")
    assert staff.status_code == 401
    assert "Wrong username or password." in text_of(staff)
    assert login(admins_only.test_client(), "admin").status_code == 302


def test_with_local_passwords_off_the_token_endpoint_refuses_staff_alike(admins_only):
    client = admins_only.test_client()
    staff = client.post("/api/v1/auth/token", json={"username": "parks_head", "password": PASSWORD})
    wrong = client.post("/api/v1/auth/token", json={"username": "parks_head", "password": "not the password at all"})
    assert staff.status_code == wrong.status_code == 401
    assert staff.get_json() == wrong.get_json()
    admin = client.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORD})
    assert admin.status_code == 201


# ---- The settings ----------------------------------------------------------------------------------------------


def test_the_group_mapping_is_read_and_its_mistakes_name_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("CIVICFLOW_SSO_ISSUER", "https://login.microsoftonline.com/tenant/v2.0/")
    monkeypatch.setenv("CIVICFLOW_SSO_CLIENT_ID", "client")
    monkeypatch.setenv("CIVICFLOW_SSO_CLIENT_SECRET", "secret")
    monkeypatch.setenv("CIVICFLOW_SSO_GROUPS", "admins=admin, parks = department:Parks, parks=head:parks")
    settings = Settings.from_env(instance_path=tmp_path, secret_key="x")
    assert settings.sso_issuer == "https://login.microsoftonline.com/tenant/v2.0"
    assert dict(settings.sso_groups) == {"admins": ("admin",), "parks": ("department:parks", "head:parks")}
    for value, message in [
        ("admins=administrator", '"admins=administrator": "administrator" is not a role'),
        ("heads=department_head", "(a department head is named with head:<code>)"),
        ("parks=division:parks", '"parks=division:parks": use a role code, department:<code> or head:<code>.'),
        ("just-a-group", '"just-a-group" is not group=grant'),
    ]:
        monkeypatch.setenv("CIVICFLOW_SSO_GROUPS", value)
        with pytest.raises(Invalid) as refused:
            Settings.from_env(instance_path=tmp_path, secret_key="x")
        assert message in " ".join(refused.value.fields["CIVICFLOW_SSO_GROUPS"])


def test_single_sign_on_needs_its_client_and_admins_only_needs_single_sign_on(monkeypatch, tmp_path):
    monkeypatch.setenv("CIVICFLOW_SSO_ISSUER", "https://login.microsoftonline.com/tenant/v2.0")
    monkeypatch.setenv("CIVICFLOW_SSO_CLIENT_ID", "client")
    with pytest.raises(Invalid) as refused:
        Settings.from_env(instance_path=tmp_path, secret_key="x")
    assert list(refused.value.fields) == ["CIVICFLOW_SSO_CLIENT_SECRET"]
    monkeypatch.setenv("CIVICFLOW_SSO_ISSUER", "http://directory.example")
    monkeypatch.setenv("CIVICFLOW_SSO_CLIENT_SECRET", "secret")
    with pytest.raises(Invalid) as refused:
        Settings.from_env(instance_path=tmp_path, secret_key="x")
    assert "is not an https URL" in refused.value.fields["CIVICFLOW_SSO_ISSUER"][0]
    for variable in ("CIVICFLOW_SSO_ISSUER", "CIVICFLOW_SSO_CLIENT_ID", "CIVICFLOW_SSO_CLIENT_SECRET"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("CIVICFLOW_LOCAL_PASSWORDS", "admins-only")
    with pytest.raises(Invalid) as refused:
        Settings.from_env(instance_path=tmp_path, secret_key="x")
    assert "admins-only needs single sign-on" in refused.value.fields["CIVICFLOW_LOCAL_PASSWORDS"][0]
    monkeypatch.setenv("CIVICFLOW_LOCAL_PASSWORDS", "nobody")
    with pytest.raises(Invalid) as refused:
        Settings.from_env(instance_path=tmp_path, secret_key="x")
    assert '"nobody" is not one of all, admins-only.' in refused.value.fields["CIVICFLOW_LOCAL_PASSWORDS"]
