"""The installed `civicflow` command on a fresh instance folder: demo, db upgrade, users, audit verify."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from engine.demo import USERS
from engine.settings import Settings
from tests.helpers import SECRET, civicflow_command, civicflow_environment


@pytest.fixture
def civicflow(tmp_path):
    """Run `civicflow ARGS...` on tmp_path as the instance folder, with the default (SQLite) database."""
    env = civicflow_environment(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [civicflow_command(), *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )

    return run


@pytest.fixture
def database(tmp_path):
    """`with database() as db:` the instance's SQLite file, opened directly as an operator could."""

    @contextmanager
    def connect() -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(tmp_path / "civicflow.sqlite3")) as connection, connection:
            yield connection

    return connect


def printed_logins(output: str) -> dict[str, str]:
    """username -> password from the login lines `civicflow demo` prints."""
    lines = output.split("logins", 1)[1].splitlines()[1:]
    return {name: secret for name, secret, _ in (line.split(maxsplit=2) for line in lines if line.strip())}


def login(client, username: str, password: str) -> int:
    """The status of POST /api/v1/auth/token."""
    return client.post("/api/v1/auth/token", json={"username": username, "password": password}).status_code


def token_status(tmp_path, logins: dict[str, str]) -> dict[str, int]:
    """The status of POST /api/v1/auth/token for each login, on an app over the instance's database."""
    from web import create_app

    settings = Settings.from_env(
        instance_path=tmp_path, secret_key=SECRET, database_url=f"sqlite:///{tmp_path / 'civicflow.sqlite3'}"
    )
    app = create_app({"TESTING": True}, settings=settings)
    try:
        client = app.test_client()
        return {name: login(client, name, password) for name, password in logins.items()}
    finally:
        app.extensions["civicflow.engine"].dispose()


def test_demo_prints_a_working_login_for_every_demo_user(civicflow, tmp_path):
    result = civicflow("demo")
    assert result.returncode == 0, result.stderr
    logins = printed_logins(result.stdout)
    assert sorted(logins) == sorted(user[0] for user in USERS)
    assert token_status(tmp_path, logins) == dict.fromkeys(logins, 201)


def test_demo_run_again_replaces_every_password(civicflow, tmp_path):
    first = printed_logins(civicflow("demo").stdout)
    second = printed_logins(civicflow("demo").stdout)
    assert all(first[name] != second[name] for name in first)
    assert token_status(tmp_path, first) == dict.fromkeys(first, 401)
    assert token_status(tmp_path, second) == dict.fromkeys(second, 201)


def test_demo_enters_the_five_accounts_of_the_policys_scope_once(civicflow, database):
    for _ in range(2):
        assert civicflow("demo").returncode == 0
    with database() as db:
        urls = sorted(url for (url,) in db.execute("SELECT url FROM account"))
    assert urls == sorted(
        [
            "https://facebook.com/cityofwsp",
            "https://twitter.com/WestStPaul",
            "https://facebook.com/WestStPaulPD",
            "https://twitter.com/WestStPaulPD",
            "https://vimeo.com/weststpaul",
        ]
    )


def test_db_upgrade_is_idempotent(civicflow, database):
    first = civicflow("db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "published new_account_request" in first.stdout
    # (key, hash, in use): a version is in use when its procedure's latest publication names it.
    models_query = (
        "SELECT key, version_hash, id = (SELECT model_id FROM process_publication AS p WHERE p.key = process_model.key "
        "ORDER BY p.id DESC LIMIT 1) FROM process_model ORDER BY id"
    )
    with database() as db:
        models = db.execute(models_query).fetchall()
    second = civicflow("db", "upgrade")
    assert second.returncode == 0, second.stderr
    assert "is up to date" in second.stdout and "published" not in second.stdout
    with database() as db:
        assert db.execute(models_query).fetchall() == models
    assert sorted(key for key, _, published in models if published) == [
        "content_removal",
        "legality_dispute",
        "manager_change",
        "new_account_request",
        "removal_appeal",
    ]


def test_users_add_creates_a_user_who_can_log_in(civicflow, database, tmp_path):
    assert civicflow("demo").returncode == 0
    result = civicflow(
        "users",
        "add",
        "jordan",
        "--password",
        "a long enough password",
        "--name",
        "Jordan Lee",
        "--department",
        "parks",
        "--role",
        "social_media_manager",
        "--head-of",
        "finance",
    )
    assert result.returncode == 0, result.stderr
    assert "added jordan (Jordan Lee)" in result.stdout
    with database() as db:
        [(department,)] = db.execute(
            "SELECT d.code FROM user_account u JOIN department d ON d.id = u.department_id WHERE u.username = 'jordan'"
        ).fetchall()
        roles = [
            r
            for (r,) in db.execute(
                "SELECT role FROM user_role JOIN user_account u ON u.id = user_id WHERE u.username = 'jordan'"
            )
        ]
        [(head,)] = db.execute(
            "SELECT u.username FROM department d JOIN user_account u ON u.id = d.head_id WHERE d.code = 'finance'"
        ).fetchall()
    assert (department, roles, head) == ("parks", ["social_media_manager"], "jordan")
    assert token_status(tmp_path, {"jordan": "a long enough password"}) == {"jordan": 201}


@pytest.mark.parametrize(
    ("option", "value"), [("--department", "parking"), ("--head-of", "parking"), ("--role", "mayor")]
)
def test_users_add_refuses_an_unknown_code_naming_it(civicflow, database, option, value):
    assert civicflow("db", "upgrade").returncode == 0
    result = civicflow("users", "add", "jordan", "--password", "a long enough password", option, value)
    assert result.returncode == 2
    assert f'"{value}"' in result.stderr
    with database() as db:
        assert db.execute("SELECT count(*) FROM user_account").fetchone() == (0,)


def test_users_add_refuses_a_taken_username(civicflow):
    assert civicflow("demo").returncode == 0
    result = civicflow("users", "add", "requester", "--password", "a long enough password")
    assert result.returncode == 2
    assert 'A user named "requester" already exists.' in result.stderr


def test_users_set_password_and_unlock_act_as_the_operator_and_are_audited(civicflow, database, tmp_path):
    assert civicflow("demo").returncode == 0
    new = "a lighthouse keeper's quiet ledger"
    set_it = civicflow("users", "set-password", "parks_head", "--password", new)
    assert set_it.returncode == 0, set_it.stderr
    assert "parks_head has a new password" in set_it.stdout
    refused = civicflow("users", "set-password", "parks_head", "--password", "too short")
    assert refused.returncode == 2
    assert "password: A password needs at least 15 characters" in refused.stderr
    unknown = civicflow("users", "unlock", "nobody")
    assert unknown.returncode == 2 and 'No user named "nobody".' in unknown.stderr
    unlocked = civicflow("users", "unlock", "parks_head")
    assert unlocked.returncode == 0 and "parks_head may log in again at once" in unlocked.stdout
    with database() as db:
        actions = [a for (a,) in db.execute("SELECT action FROM audit_event ORDER BY id DESC LIMIT 2")]
        (actor,) = db.execute("SELECT actor_name FROM audit_event ORDER BY id DESC LIMIT 1").fetchone()
    assert actions == ["sign_in_limits_cleared", "password_reset"]
    assert actor.endswith("(command line)")
    assert token_status(tmp_path, {"parks_head": new}) == {"parks_head": 201}


def test_audit_verify_passes_on_an_intact_chain(civicflow):
    assert civicflow("demo").returncode == 0
    result = civicflow("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert f"audit chain intact: {len(USERS)} events" in result.stdout


def test_audit_verify_fails_naming_an_edited_event(civicflow, database):
    assert civicflow("demo").returncode == 0
    with database() as db:
        db.execute("UPDATE audit_event SET actor = 'someone_else' WHERE id = 4")
    result = civicflow("audit", "verify")
    assert result.returncode != 0
    assert "BROKEN at event 4" in result.stderr
    assert "edited" in result.stderr


def test_audit_verify_fails_naming_the_event_after_a_deleted_one(civicflow, database):
    assert civicflow("demo").returncode == 0
    with database() as db:
        db.execute("DELETE FROM audit_event WHERE id = 7")
    result = civicflow("audit", "verify")
    assert result.returncode != 0
    assert "BROKEN at event 8" in result.stderr
