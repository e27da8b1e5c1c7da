"""The administrators' pages: only administrators get in; users and departments are added and changed there."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from engine.db.models import Department, User

PASSWORD = "correct horse battery"


def csrf_of(page) -> str:
    """The CSRF token of the first form on a page."""
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def log_in(client, username, password=PASSWORD):
    """Log in through the login page, as a person does."""
    token = csrf_of(client.get("/login"))
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password})


def field_error(response, field_id) -> str:
    """The message shown next to a field (the text of its error paragraph)."""
    match = re.search(
        rf'<p class="error" id="{re.escape(field_id)}-error">(.*?)</p>', response.get_data(as_text=True), re.S
    )
    assert match, f"no error shown next to {field_id}"
    return unescape(match.group(1)).strip()


def flashes(response) -> list[str]:
    """The flash messages on a page."""
    return [
        unescape(m).strip()
        for m in re.findall(r'<p class="flash [a-z]+">(.*?)</p>', response.get_data(as_text=True), re.S)
    ]


def fresh(session):
    """The test's own session, reading what the app committed since its last look."""
    session.rollback()
    session.expire_all()
    return session


def user_named(session, username) -> User | None:
    return fresh(session).scalar(select(User).where(User.username == username))


def department(session, code) -> Department | None:
    return fresh(session).scalar(select(Department).where(Department.code == code))


def user_count(session) -> int:
    return fresh(session).scalar(select(func.count()).select_from(User))


@pytest.fixture
def boss(make_user):
    """An administrator."""
    return make_user("boss", department="administration", roles=["admin"], name="Bo Boss")


@pytest.fixture
def admin_client(app, boss):
    """A browser session of the administrator."""
    client = app.test_client()
    assert log_in(client, "boss").status_code == 302
    return client


@pytest.fixture
def pat(make_user):
    """A member of Parks staff."""
    return make_user("pat", department="parks", name="Pat Parks")


def admin_urls(session, user_id) -> list[tuple[str, str]]:
    parks = department(session, "parks").id
    return [
        ("GET", "/admin/users"),
        ("POST", "/admin/users"),
        ("GET", f"/admin/users/{user_id}"),
        ("POST", f"/admin/users/{user_id}"),
        ("GET", "/admin/departments"),
        ("POST", "/admin/departments"),
        ("POST", f"/admin/departments/{parks}"),
    ]


# ---- who gets in --------------------------------------------------------------------------------------


def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login_page_from_every_admin_url(client, session, pat):
    token = csrf_of(client.get("/login"))
    for method, url in admin_urls(session, pat.id):
        data = {
            "csrf_token": token,
            "set_active": "0",
            "username": "intruder",
            "password": PASSWORD,
            "display_name": "Intruder",
            "code": "intruders",
            "name": "Intruders",
        }
        response = client.get(url) if method == "GET" else client.post(url, data=data)
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/login"), (method, url)
    assert user_named(session, "intruder") is None
    assert user_named(session, "pat").active
    assert department(session, "intruders") is None


def test_someone_with_every_other_role_and_a_headship_gets_403_on_every_admin_url(app, session, make_user, pat):
    make_user(
        "mighty",
        department="communications",
        head_of=["communications"],
        roles=[
            "communications_manager",
            "administrative_lieutenant",
            "social_media_manager",
            "city_attorney",
            "records_officer",
        ],
    )
    client = app.test_client()
    assert log_in(client, "mighty").status_code == 302
    inbox = client.get("/inbox")
    assert 'href="/admin/users"' not in inbox.get_data(as_text=True)
    token = csrf_of(inbox)
    for method, url in admin_urls(session, pat.id):
        data = {
            "csrf_token": token,
            "set_active": "0",
            "username": "intruder",
            "password": PASSWORD,
            "display_name": "Intruder",
            "code": "intruders",
            "name": "Intruders",
            f"department-{department(session, 'parks').id}-head": "mighty",
        }
        response = client.get(url) if method == "GET" else client.post(url, data=data)
        assert response.status_code == 403, (method, url)
        assert "Only administrators can manage users and departments." in response.get_data(as_text=True)
    assert user_named(session, "intruder") is None
    assert user_named(session, "pat").active
    assert department(session, "intruders") is None
    assert department(session, "parks").head_id is None


def test_the_nav_links_administrators_to_the_users_page(admin_client):
    inbox = admin_client.get("/inbox")
    assert 'href="/admin/users"' in inbox.get_data(as_text=True)
    page = admin_client.get("/admin/users")
    assert page.status_code == 200
    assert "<h1>Users</h1>" in page.get_data(as_text=True)


# ---- users --------------------------------------------------------------------------------------------


def test_an_administrator_adds_a_user_who_can_then_log_in(app, admin_client, session):
    token = csrf_of(admin_client.get("/admin/users"))
    response = admin_client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "sam.ortiz",
            "display_name": "Sam Ortiz",
            "email": "sam@wspmn.gov",
            "password": "a long enough one",
            "department": "parks",
            "roles": ["records_officer", "city_attorney"],
            "head_of": ["finance"],
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/users"
    listing = admin_client.get("/admin/users")
    assert flashes(listing) == ["Added Sam Ortiz (sam.ortiz); they can log in now."]
    row = re.search(
        r"<tr>\s*<td data-label=\"Name\"><a[^>]*>Sam Ortiz</a>.*?</tr>", listing.get_data(as_text=True), re.S
    ).group(0)
    assert "Parks and Recreation" in row and "City Attorney, Records Officer" in row and ">Finance<" in row
    sam = user_named(session, "sam.ortiz")
    assert (sam.email, sam.department.code, sam.roles) == (
        "sam@wspmn.gov",
        "parks",
        {"records_officer", "city_attorney"},
    )

    browser = app.test_client()
    assert log_in(browser, "sam.ortiz", "a long enough one").status_code == 302
    assert "Sam Ortiz" in browser.get("/inbox").get_data(as_text=True)


def test_a_duplicate_username_a_bad_email_and_an_unknown_department_are_refused_next_to_their_fields(
    admin_client, session, pat
):
    before = user_count(session)
    token = csrf_of(admin_client.get("/admin/users"))
    response = admin_client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "pat",
            "display_name": "Another Pat",
            "email": "pat at parks",
            "password": "a long enough one",
            "department": "atlantis",
            "roles": ["wizard"],
        },
    )
    assert response.status_code == 400
    assert field_error(response, "username") == 'A user named "pat" already exists.'
    assert field_error(response, "email") == "Enter an e-mail address like name@wspmn.gov."
    assert field_error(response, "department") == 'No department with code "atlantis".'
    assert field_error(response, "roles") == 'Unknown role "wizard".'
    page = response.get_data(as_text=True)
    assert 'value="Another Pat"' in page  # what was typed is kept, so only the mistakes need fixing
    assert "a long enough one" not in page  # but never the password
    assert user_count(session) == before
    assert user_named(session, "pat").display_name == "Pat Parks"


def test_a_short_password_and_a_missing_username_are_refused_by_the_form(admin_client, session):
    before = user_count(session)
    token = csrf_of(admin_client.get("/admin/users"))
    response = admin_client.post(
        "/admin/users", data={"csrf_token": token, "username": "", "display_name": "Nobody", "password": "short"}
    )
    assert response.status_code == 400
    assert field_error(response, "username") == "This field is required."
    assert field_error(response, "password") == "A password needs 15 to 256 characters."
    assert user_count(session) == before


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(admin_client, session, pat):
    before = user_count(session)
    parks = department(session, "parks").id
    posts = [
        ("/admin/users", {"username": "sneaky", "display_name": "Sneaky", "password": "a long enough one"}),
        (f"/admin/users/{pat.id}", {"set_active": "0"}),
        ("/admin/departments", {"code": "sneaky", "name": "Sneaky"}),
        (f"/admin/departments/{parks}", {f"department-{parks}-head": "pat"}),
    ]
    for url, data in posts:
        response = admin_client.post(url, data=data)
        assert response.status_code == 400, url
        assert "security token was missing" in response.get_data(as_text=True)
    assert user_count(session) == before
    assert user_named(session, "pat").active
    assert department(session, "sneaky") is None
    assert department(session, "parks").head_id is None


def edit_data(token, **changes):
    """The edit form as the page fills it in for Pat, with some fields changed."""
    data = {
        "csrf_token": token,
        "display_name": "Pat Parks",
        "email": "pat@example.org",
        "department": "parks",
        "roles": [],
        "head_of": [],
        "active": "y",
    }
    return {**data, **changes}


def test_an_administrator_changes_a_users_name_department_roles_and_headships(admin_client, session, pat):
    page = admin_client.get(f"/admin/users/{pat.id}")
    assert 'value="Pat Parks"' in page.get_data(as_text=True)
    response = admin_client.post(
        f"/admin/users/{pat.id}",
        data=edit_data(
            csrf_of(page), display_name="Pat Lee", department="finance", roles=["records_officer"], head_of=["finance"]
        ),
    )
    assert response.status_code == 302
    shown = admin_client.get(response.headers["Location"])
    assert flashes(shown) == ["Changed Pat Lee's full name, department, roles, departments headed."]
    text = shown.get_data(as_text=True)
    assert "<dt>Department</dt><dd>Finance</dd>" in text
    assert "<dt>Roles</dt><dd>Records Officer</dd>" in text
    pat_now = user_named(session, "pat")
    assert (pat_now.display_name, pat_now.department.code, pat_now.roles) == ("Pat Lee", "finance", {"records_officer"})
    assert department(session, "finance").head_id == pat.id


def test_an_edit_naming_an_unknown_department_is_refused_next_to_it_and_changes_nothing(admin_client, session, pat):
    token = csrf_of(admin_client.get(f"/admin/users/{pat.id}"))
    response = admin_client.post(
        f"/admin/users/{pat.id}",
        data=edit_data(token, display_name="Pat Lee", department="atlantis", head_of=["narnia"]),
    )
    assert response.status_code == 400
    assert field_error(response, "department") == 'No department with code "atlantis".'
    assert field_error(response, "head_of") == 'No department with code "narnia".'
    pat_now = user_named(session, "pat")
    assert (pat_now.display_name, pat_now.department.code) == ("Pat Parks", "parks")


def test_an_administrator_cannot_deactivate_themselves_or_drop_their_own_admin_role(admin_client, session, boss):
    page = admin_client.get(f"/admin/users/{boss.id}")
    assert "Deactivate Bo Boss" not in page.get_data(as_text=True)
    data = edit_data(csrf_of(page), display_name="Bo Boss", email="boss@example.org", department="administration")
    del data["active"]
    response = admin_client.post(f"/admin/users/{boss.id}", data=data)
    assert response.status_code == 400
    assert field_error(response, "active") == "You cannot deactivate yourself; ask another administrator."
    assert field_error(response, "roles") == "You cannot remove your own administrator role; ask another administrator."
    me = user_named(session, "boss")
    assert me.active and me.roles == {"admin"}
    assert admin_client.get("/admin/users").status_code == 200


def test_a_deactivated_users_session_ends_and_they_cannot_log_in_again(app, admin_client, session, pat):
    browser = app.test_client()
    assert log_in(browser, "pat").status_code == 302
    assert browser.get("/inbox").status_code == 200

    page = admin_client.get(f"/admin/users/{pat.id}")
    response = admin_client.post(f"/admin/users/{pat.id}", data={"csrf_token": csrf_of(page), "set_active": "0"})
    assert response.status_code == 302
    shown = admin_client.get(response.headers["Location"])
    assert flashes(shown) == ["Pat Parks was deactivated: logged out everywhere; they can no longer log in."]
    assert "Reactivate Pat Parks" in shown.get_data(as_text=True)

    after = browser.get("/inbox")
    assert after.status_code == 302
    assert after.headers["Location"].startswith("/login")
    refused = log_in(app.test_client(), "pat")
    assert refused.status_code == 401
    assert "Wrong username or password." in refused.get_data(as_text=True)
    assert not user_named(session, "pat").active


def test_a_deactivated_user_is_reactivated_with_one_button_and_can_log_in(app, admin_client, session, pat):
    for value in ("0", "1"):
        token = csrf_of(admin_client.get(f"/admin/users/{pat.id}"))
        assert (
            admin_client.post(f"/admin/users/{pat.id}", data={"csrf_token": token, "set_active": value}).status_code
            == 302
        )
    assert flashes(admin_client.get(f"/admin/users/{pat.id}")) == ["Pat Parks was reactivated and can log in again."]
    assert log_in(app.test_client(), "pat").status_code == 302


def test_deactivating_a_department_head_is_refused_with_the_reason(admin_client, session, make_user):
    dana = make_user("dana", head_of=["parks"], name="Dana Head")
    token = csrf_of(admin_client.get(f"/admin/users/{dana.id}"))
    response = admin_client.post(f"/admin/users/{dana.id}", data={"csrf_token": token, "set_active": "0"})
    assert response.status_code == 400
    assert field_error(response, "active") == (
        "Dana Head heads Parks and Recreation; choose another head (or clear the headship) before deactivating."
    )
    assert user_named(session, "dana").active


def test_an_unknown_user_is_not_found(admin_client):
    assert admin_client.get("/admin/users/999999").status_code == 404


# ---- departments --------------------------------------------------------------------------------------


def test_an_administrator_adds_a_department_with_its_head(admin_client, session, pat):
    token = csrf_of(admin_client.get("/admin/departments"))
    response = admin_client.post(
        "/admin/departments", data={"csrf_token": token, "code": "library", "name": "Public Library", "head": "pat"}
    )
    assert response.status_code == 302
    listing = admin_client.get("/admin/departments")
    assert flashes(listing) == ["Added the department Public Library (library), headed by Pat Parks."]
    assert re.search(
        r'<td data-label="Department">Public Library</td>\s*<td data-label="Code">library</td>\s*'
        r'<td data-label="Head">Pat Parks',
        listing.get_data(as_text=True),
    )
    assert department(session, "library").head.username == "pat"
    assert '<option value="library">Public Library</option>' in admin_client.get("/admin/users").get_data(as_text=True)


BAD_CODE = "Use lowercase letters, digits and underscores, starting with a letter."


@pytest.mark.parametrize(
    ("code", "name", "field", "message"),
    [
        ("parks", "Parks again", "code", 'A department with code "parks" already exists.'),
        ("Public-Works", "Public Works 2", "code", BAD_CODE),
        ("library", "", "name", "This field is required."),
    ],
)
def test_a_department_with_a_bad_code_or_name_is_refused_next_to_the_field(
    admin_client, session, code, name, field, message
):
    count = len(fresh(session).scalars(select(Department)).all())
    token = csrf_of(admin_client.get("/admin/departments"))
    response = admin_client.post("/admin/departments", data={"csrf_token": token, "code": code, "name": name})
    assert response.status_code == 400
    assert field_error(response, field) == message
    assert len(fresh(session).scalars(select(Department)).all()) == count


def test_an_administrator_sets_and_clears_a_departments_head(admin_client, session, pat):
    parks = department(session, "parks").id
    field = f"department-{parks}-head"
    page = admin_client.get("/admin/departments")
    assert f'<label for="{field}">Head of Parks and Recreation</label>' in page.get_data(as_text=True)
    response = admin_client.post(f"/admin/departments/{parks}", data={"csrf_token": csrf_of(page), field: "pat"})
    assert response.status_code == 302
    assert flashes(admin_client.get("/admin/departments")) == [
        "Pat Parks (pat) is now the head of Parks and Recreation."
    ]
    assert department(session, "parks").head_id == pat.id

    response = admin_client.post(f"/admin/departments/{parks}", data={"csrf_token": csrf_of(page), field: ""})
    assert response.status_code == 302
    assert flashes(admin_client.get("/admin/departments")) == [
        "Parks and Recreation has no head now; its department head tasks wait until one is set."
    ]
    assert department(session, "parks").head_id is None


def test_a_deactivated_user_cannot_be_made_head_and_the_message_is_on_that_row(admin_client, session, pat):
    token = csrf_of(admin_client.get(f"/admin/users/{pat.id}"))
    admin_client.post(f"/admin/users/{pat.id}", data={"csrf_token": token, "set_active": "0"})
    parks = department(session, "parks").id
    response = admin_client.post(
        f"/admin/departments/{parks}", data={"csrf_token": token, f"department-{parks}-head": "pat"}
    )
    assert response.status_code == 400
    assert field_error(response, f"department-{parks}-head") == "Pat Parks is deactivated and cannot head a department."
    assert department(session, "parks").head_id is None


# ---- how the pages are built --------------------------------------------------------------------------


class _Structure(HTMLParser):
    """The controls, labels and table cells of a page."""

    def __init__(self):
        super().__init__()
        self.controls, self.labelled, self.cells, self.tables = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.controls.append(attrs.get("id"))
        elif tag == "label":
            self.labelled.add(attrs.get("for"))
        elif tag == "td":
            self.cells.append(attrs.get("data-label"))
        elif tag == "table":
            self.tables.append(attrs.get("class"))


def test_every_field_on_the_admin_pages_has_a_label_and_every_cell_says_what_it_is(admin_client, pat):
    for url in ("/admin/users", f"/admin/users/{pat.id}", "/admin/departments"):
        page = _Structure()
        page.feed(admin_client.get(url).get_data(as_text=True))
        assert page.controls, url
        assert [c for c in page.controls if c is None or c not in page.labelled] == [], url
        assert None not in page.cells, url
        assert all(t == "stack" for t in page.tables), url
