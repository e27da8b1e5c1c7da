"""Fixtures: each test's own database, ready with what it asks for, on SQLite and (when asked) PostgreSQL.

Databases. A test that uses the database runs on a SQLite file, then again on PostgreSQL when
CIVICFLOW_TEST_POSTGRES_URL names a server. Its database holds, before the test starts:

- always: the schema, the City's departments and the shipped diagrams of workflows/ (published);
- if the test uses `people`: the nine people of PEOPLE, made in that order;
- if it uses `city`: those, the five of CITY_PEOPLE and the three registry accounts of CITY_ACCOUNTS.

Each of the three is made once per run (per xdist worker), by the same code in the same order as a
test would, and kept as a template: on SQLite a file copied for each test; on PostgreSQL the template's
rows, which are put back into the worker's own database before each test (every row deleted first,
sequences reset). The people's Actors are kept with the template, so `people.requester` is what creating
the requester returned.

The clock. CIVICFLOW_TEST_NOW=2026-12-07T06:59-06:00 pins engine/time/clock.py at that moment for every
test (a test may still move it), and a `civicflow` process that a test starts is pinned there too
(CIVICFLOW_NOW, see tests/helpers.py): the suite then runs as on that day and hour.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine, make_url

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.db.models import Base
from engine.demo import create_departments
from engine.errors import Invalid
from engine.people import passwords, users
from engine.people.users import Actor
from engine.settings import Settings
from engine.time import clock
from engine.versions import shipped
from tests.helpers import PASSWORD, SECRET
from tests.procedures import actor, add_account

PG_URL = os.environ.get("CIVICFLOW_TEST_POSTGRES_URL")
TEST_NOW = "CIVICFLOW_TEST_NOW"
CHEAP_PASSWORD_METHOD = "pbkdf2:sha256:1000"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

# The people of the `people` fixture, in the order they are made: one per lane of the new account
# request, plus outsiders for the refusals.
PEOPLE = (
    ("requester", {"department": "parks"}),
    ("parks_head", {"department": "parks", "head_of": ["parks"]}),
    ("comms", {"department": "communications", "roles": ["communications_manager"], "head_of": ["communications"]}),
    ("lieutenant", {"department": "police", "roles": ["administrative_lieutenant"]}),
    ("officer", {"department": "police"}),
    ("police_chief", {"department": "police", "head_of": ["police"]}),
    ("finance_head", {"department": "finance", "head_of": ["finance"]}),
    ("colleague", {"department": "parks"}),
    ("admin", {"department": "administration", "roles": ["admin"]}),
)
# The `city` fixture's people beyond PEOPLE, then its accounts: (attribute, name, url, department, managers, options).
CITY_PEOPLE = (
    ("moderator", {"department": "communications", "roles": ["social_media_manager"]}),
    ("other_moderator", {"department": "communications", "roles": ["social_media_manager"]}),
    ("attorney", {"department": "administration", "roles": ["city_attorney"]}),
    ("records", {"department": "administration", "roles": ["records_officer"]}),
    ("newbie", {"department": "parks"}),
)
CITY_ACCOUNTS = (
    (
        "facebook",
        "City of West St. Paul",
        "https://facebook.com/cityofwsp",
        "communications",
        ["moderator", "other_moderator"],
        {},
    ),
    ("police_x", "West St. Paul Police", "https://x.com/wsppd", "police", ["officer"], {"platform": "x"}),
    ("profile", "Neighborhood watcher", None, "police", ["officer"], {"platform": "other", "investigative": True}),
)

# What a template holds beyond the schema, from the least to the most.
DIAGRAMS, WITH_PEOPLE, WITH_CITY = "diagrams", "people", "city"


# ---- the clock ---------------------------------------------------------------------------------------


def _test_now() -> datetime | None:
    value = os.environ.get(TEST_NOW, "").strip()
    return clock.moment_from_setting(value, TEST_NOW) if value else None


def pytest_configure(config):
    """Refuse a CIVICFLOW_TEST_NOW that is not a time with its offset before any test runs."""
    try:
        _test_now()
    except Invalid as exc:
        raise pytest.UsageError(f"{TEST_NOW}: {exc.fields[TEST_NOW][0]}")


def pytest_report_header(config):
    """Say so when the run's clock is pinned."""
    moment = _test_now()
    return [f"clock pinned by {TEST_NOW} at {moment:%Y-%m-%dT%H:%M:%SZ}"] if moment else []


@pytest.fixture(autouse=True)
def run_clock() -> Iterator[None]:
    """Each test starts on the run's clock (pinned at CIVICFLOW_TEST_NOW, or the machine's) and leaves it so."""
    clock.set_now(_test_now())
    yield
    clock.set_now(None)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Tests create many users; scrypt is for production."""
    monkeypatch.setattr(passwords.Hashing, "method", CHEAP_PASSWORD_METHOD)


# ---- what a database holds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """What a template database holds beyond its schema, as the fixtures hand it to a test."""

    level: str
    # people.<name>: made before the city's accounts, so without them (as the `people` fixture always gave).
    people: dict[str, Actor] = field(default_factory=dict)
    # city.<name>: everyone as they are once the accounts are in, and city.<account>: the account's id.
    city: dict[str, Actor | int] = field(default_factory=dict)


def create_person(session, username, *, department="parks", roles=(), head_of=(), name=None) -> Actor:
    """Create a user (password PASSWORD, email <username>@example.org), commit, and return their Actor."""
    session.commit()  # a fresh snapshot: the app may have written since the session last read (a login counts)
    user = users.create_user(
        session,
        username,
        PASSWORD,
        name=name or username.title(),
        email=f"{username}@example.org",
        department=department,
        roles=list(roles),
        head_of=list(head_of),
    )
    session.commit()
    return users.actor_for(session, user)


def seed(session, level: str) -> Seed:
    """Fill a migrated, empty database up to a level, committing as the fixtures always did."""
    create_departments(session)
    shipped.sync_workflows(session)
    session.commit()
    if level == DIAGRAMS:
        return Seed(level)
    people = {username: create_person(session, username, **options) for username, options in PEOPLE}
    if level == WITH_PEOPLE:
        return Seed(level, people)
    for username, options in CITY_PEOPLE:
        create_person(session, username, **options)
    accounts = {
        attribute: add_account(session, name, url, department, managers, **options).id
        for attribute, name, url, department, managers, options in CITY_ACCOUNTS
    }
    everyone = [*people, *(username for username, _ in CITY_PEOPLE)]
    return Seed(level, people, {**{username: actor(session, username) for username in everyone}, **accounts})


def _seed_engine(engine: Engine, level: str, instance_path: Path) -> Seed:
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings.from_env(instance_path=instance_path, database_url=url, secret_key=SECRET)
    with make_sessionmaker(engine)(info={"settings": settings}) as session:
        return seed(session, level)


def _level(request) -> str:
    """The template a test needs: the most that any fixture it uses needs."""
    names = request.fixturenames
    return WITH_CITY if "city" in names else WITH_PEOPLE if "people" in names else DIAGRAMS


SEED = pytest.StashKey[Seed]()


# ---- SQLite: template files, copied for each test ---------------------------------------------------------


class SqliteTemplates:
    """One template file per level, made on first use in this worker's temporary folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._made: dict[str, tuple[Path, Seed]] = {}

    def template(self, level: str) -> tuple[Path, Seed]:
        """The template file of a level and what it holds."""
        if level not in self._made:
            path = self.folder / f"{level}.sqlite3"
            engine = make_engine(f"sqlite:///{path}")
            try:
                upgrade(engine)
                made = _seed_engine(engine, level, self.folder)
                with engine.connect() as connection:
                    # Everything in the main file, none in the WAL: the file alone is the database.
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                engine.dispose()
            self._made[level] = (path, made)
        return self._made[level]


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory) -> SqliteTemplates:
    """This worker's SQLite templates."""
    return SqliteTemplates(tmp_path_factory.mktemp("templates"))


# ---- PostgreSQL: one database per worker, its rows put back before each test ---------------------------


@dataclass
class Snapshot:
    """A template's rows per table and the values of its sequences."""

    rows: dict[str, list[dict]]
    sequences: list[tuple[str, int | None]]
    seed: Seed


class PostgresTemplates:
    """This worker's database, reset before each test to the rows of a level's template (made on first use)."""

    def __init__(self, url: str, instance_path: Path):
        self.url = url
        self.instance_path = instance_path
        # One connection, kept: resetting takes a few statements, not a new connection each time.
        self.engine = make_engine(url, pool_size=1, max_overflow=2)
        self._snapshots: dict[str, Snapshot] = {}
        tables = Base.metadata.sorted_tables
        self._tables = tables
        # The foreign keys of a cycle (a department's head is a user of a department): set after the rows.
        self._late = {t.name: [fk.parent.name for fk in t.foreign_keys if fk.use_alter] for t in tables}

    def reset(self, level: str) -> Seed:
        """Put the level's rows back (making its template first if need be); what they hold."""
        if level not in self._snapshots:
            with self.engine.begin() as connection:
                self._empty(connection)
                self._restart_sequences(connection, [])
            self._snapshots[level] = self._snapshot(level)
        snapshot = self._snapshots[level]
        with self.engine.begin() as connection:
            self._empty(connection)
            self._insert(connection, snapshot.rows)
            self._restart_sequences(connection, snapshot.sequences)
        return snapshot.seed

    def _snapshot(self, level: str) -> Snapshot:
        made = _seed_engine(self.engine, level, self.instance_path)
        self.engine.dispose()  # the seeding sessions' connections go; the next reset starts clean
        with self.engine.connect() as connection:
            rows = {t.name: [dict(r._mapping) for r in connection.execute(select(t))] for t in self._tables}
            sequences = connection.execute(
                text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
            ).all()
        return Snapshot(rows, [tuple(s) for s in sequences], made)

    def _empty(self, connection) -> None:
        # A connection a test left behind (a killed process's, a leaked pool's) must not hold a row lock.
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        for table in self._tables:
            for column in self._late[table.name]:
                connection.execute(update(table).where(table.c[column].is_not(None)).values({column: None}))
        for table in reversed(self._tables):
            connection.execute(table.delete())

    def _insert(self, connection, rows: dict[str, list[dict]]) -> None:
        for table in self._tables:
            late = self._late[table.name]
            if rows[table.name]:
                connection.execute(insert(table), [{**row, **dict.fromkeys(late)} for row in rows[table.name]])
        for table in self._tables:
            key = [c.name for c in table.primary_key]
            for column in self._late[table.name]:
                for row in rows[table.name]:
                    if row[column] is not None:
                        where = [table.c[k] == row[k] for k in key]
                        connection.execute(update(table).where(*where).values({column: row[column]}))

    def _restart_sequences(self, connection, sequences: list[tuple[str, int | None]]) -> None:
        values = dict(sequences)
        names = connection.scalars(text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"))
        for name in names:
            value = values.get(name)
            connection.execute(
                text("SELECT setval(CAST(:name AS regclass), :value, :called)"),
                {"name": name, "value": value or 1, "called": value is not None},
            )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """This worker's own PostgreSQL database, migrated once and dropped at the end; its URL."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests are off: set CIVICFLOW_TEST_POSTGRES_URL (.ci/run does)")
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"civicflow_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # A test database need not survive a power cut: commits do not wait for the disk (visibility and
        # locking are unchanged).
        connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_templates(postgres_database, tmp_path_factory) -> Iterator[PostgresTemplates]:
    """The templates of this worker's PostgreSQL database."""
    templates = PostgresTemplates(postgres_database, tmp_path_factory.mktemp("postgres"))
    yield templates
    templates.engine.dispose()


# ---- a test's database -----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """The test's own database, with what its fixtures need in place: a SQLite file, then the same on PostgreSQL."""
    level = _level(request)
    if request.param == "sqlite":
        template, made = request.getfixturevalue("sqlite_templates").template(level)
        path = tmp_path / "civicflow.sqlite3"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
    else:
        templates = request.getfixturevalue("postgres_templates")
        made = templates.reset(level)
        url = templates.url
    request.node.stash[SEED] = made
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
    """A session on the test's database (the departments and the shipped diagrams are in place)."""
    with sessions() as s:
        yield s


@pytest.fixture
def make_user(session):
    """Create a user and return their Actor: make_user("pat", department="parks", roles=[...], head_of=[...])."""

    def make(username, *, department="parks", roles=(), head_of=(), name=None):
        return create_person(session, username, department=department, roles=roles, head_of=head_of, name=name)

    return make


@pytest.fixture
def people(request, session):
    """One person per lane of the new account request, plus outsiders for the refusals (PEOPLE): people.requester."""
    return type("People", (), dict(request.node.stash[SEED].people))


@pytest.fixture
def city(request, session, people):
    """people, plus a moderator, an attorney, a records officer and three accounts (CITY_PEOPLE, CITY_ACCOUNTS).

    facebook: the City's Facebook (communications), managed by moderator;
    police_x: the Police Department's X account, managed by officer;
    profile: an investigative profile of the Police Department, managed by officer.
    Everyone's Actor is as they are with the accounts in place (city.officer manages two).
    """
    return type("City", (), dict(request.node.stash[SEED].city))


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
                response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
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
