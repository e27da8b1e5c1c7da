"""Fixtures: a real SQLite file and (when CIVICFLOW_TEST_POSTGRES_URL is set) a real PostgreSQL database."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.db.models import Base
from engine.demo import create_departments
from engine.people import users
from engine.requests import services
from engine.settings import Settings

PG_URL = os.environ.get("CIVICFLOW_TEST_POSTGRES_URL")
SECRET = "test-secret-key-that-is-long-enough-for-hkdf"

START = {
    "platform": "facebook",
    "account_name": "West St. Paul Parks",
    "department": "parks",
    "purpose": "Program announcements for Parks and Recreation.",
    "audience": "Residents and park users.",
    "proposed_managers": ["requester"],
}
SETUP = {
    "account_url": "https://facebook.com/wspparks",
    "marked_as_city": True,
    "links_official_site": True,
    "public_notice_linked": True,
}


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Tests create many users; scrypt is for production."""
    monkeypatch.setitem(users.PASSWORD_METHOD, "method", "pbkdf2:sha256:1000")


@pytest.fixture(scope="session")
def postgres_database():
    """A throwaway PostgreSQL database for this test run, migrated once, dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests are off: set CIVICFLOW_TEST_POSTGRES_URL (.ci/run does)")
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"civicflow_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh, migrated database: a SQLite file, then the same test again on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'civicflow.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("postgres_database")
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url, tmp_path):
    """Settings for one test: its own database and instance folder."""
    return Settings.from_env(instance_path=tmp_path, database_url=database_url, secret_key=SECRET)


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd), stopped after the test."""
    from tests.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(settings, smtp_server):
    """The test's settings, with mail going to the loopback SMTP server."""
    return dataclasses.replace(
        settings, smtp_host=smtp_server.host, smtp_port=smtp_server.port, mail_from="civicflow@wspmn.example"
    )


@pytest.fixture
def db_engine(settings):
    """The SQLAlchemy engine of the test database."""
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(db_engine, settings):
    """A factory of sessions that carry the settings, as the app and CLI make them."""
    factory = make_sessionmaker(db_engine)
    return lambda: factory(info={"settings": settings})


@pytest.fixture
def session(sessions):
    """A session with the departments and the shipped diagrams in place."""
    with sessions() as s:
        create_departments(s)
        services.sync_workflows(s)
        s.commit()
        yield s


@pytest.fixture
def make_user(session):
    """Create a user and return their Actor: make_user("pat", department="parks", roles=[...], head_of=[...])."""

    def make(username, *, department="parks", roles=(), head_of=(), name=None):
        user = users.create_user(
            session,
            username,
            "correct horse battery",
            name=name or username.title(),
            email=f"{username}@example.org",
            department=department,
            roles=list(roles),
            head_of=list(head_of),
        )
        session.commit()
        return users.actor_for(session, user)

    return make


@pytest.fixture
def people(make_user):
    """One person per lane of the new account request, plus outsiders for the refusals."""

    class People:
        requester = make_user("requester", department="parks")
        parks_head = make_user("parks_head", department="parks", head_of=["parks"])
        comms = make_user(
            "comms", department="communications", roles=["communications_manager"], head_of=["communications"]
        )
        lieutenant = make_user("lieutenant", department="police", roles=["administrative_lieutenant"])
        officer = make_user("officer", department="police")
        police_chief = make_user("police_chief", department="police", head_of=["police"])
        finance_head = make_user("finance_head", department="finance", head_of=["finance"])
        colleague = make_user("colleague", department="parks")
        admin = make_user("admin", department="administration", roles=["admin"])

    return People


@pytest.fixture
def app(settings):
    """The Flask app on the test database."""
    from web import create_app

    app = create_app({"TESTING": True}, settings=settings)
    yield app
    app.extensions["civicflow.engine"].dispose()


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def api(client, people):
    """Call the API as someone: api("requester").post("/api/v1/...", json=...)."""
    tokens = {}

    class As:
        def __init__(self, username):
            if username not in tokens:
                response = client.post(
                    "/api/v1/auth/token", json={"username": username, "password": "correct horse battery"}
                )
                assert response.status_code == 201, response.get_json()
                tokens[username] = response.get_json()["token"]
            self.headers = {"Authorization": f"Bearer {tokens[username]}"}

        def get(self, path, **kw):
            return client.get(path, headers=self.headers, **kw)

        def post(self, path, **kw):
            return client.post(path, headers=self.headers, **kw)

        def delete(self, path, **kw):
            return client.delete(path, headers=self.headers, **kw)

    return As
