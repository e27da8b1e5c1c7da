"""Two people completing the same task at the same moment on PostgreSQL: one wins, the other gets 409."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm.exc import StaleDataError

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.models import AuditEvent, Base, ProcessInstance, Task
from engine.demo import create_departments
from engine.errors import Conflict
from engine.people import users
from engine.records import audit
from engine.requests import inbox, services
from engine.settings import Settings
from engine.versions import shipped
from tests.helpers import SECRET, START

pytestmark = pytest.mark.postgres

RACES = 20
PASSWORD = "correct horse battery"


@pytest.fixture
def pg_settings(postgres_database, tmp_path):
    """Settings on the run's PostgreSQL database, emptied first (never SQLite: this is about row locks)."""
    engine = make_engine(postgres_database)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return Settings.from_env(instance_path=tmp_path, database_url=postgres_database, secret_key=SECRET)


@pytest.fixture
def pg_sessions(pg_settings):
    """Independent sessions on their own connections, as two web workers would have."""
    engine = make_engine(pg_settings.database_url)
    factory = make_sessionmaker(engine)
    yield lambda: factory(info={"settings": pg_settings})
    engine.dispose()


@pytest.fixture
def cast(pg_sessions):
    """The requester and the Parks Department Head, with the departments and diagrams in place."""
    with pg_sessions() as session:
        create_departments(session)
        shipped.sync_workflows(session)
        made = {
            name: users.create_user(session, name, PASSWORD, name=name.title(), department="parks", head_of=head_of)
            for name, head_of in (("requester", []), ("parks_head", ["parks"]))
        }
        made["comms"] = users.create_user(
            session, "comms", PASSWORD, department="communications", roles=["communications_manager"]
        )
        session.commit()
        return {name: users.actor_for(session, user) for name, user in made.items()}


def commit_or_conflict(session) -> None:
    """Commit as web.db.transactional does: a concurrent change found at commit time is a Conflict."""
    try:
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict("The request was changed by someone else at the same moment.") from exc


def start_request(pg_sessions, requester) -> tuple[int, str, int]:
    """A new request waiting for its Department Head: (instance id, head task id, instance version)."""
    with pg_sessions() as session:
        instance = services.start_instance(session, requester, "new_account_request", START)
        session.commit()
        [task] = services.open_tasks_of(session, instance)
        assert task.form_key == "department_head_review"
        return instance.id, task.id, instance.version


def complete_at_the_barrier(pg_sessions, actor, task_id, comment, barrier) -> str:
    """One browser tab: wait for the other, then complete the task; 'won' or 'conflict'."""
    with pg_sessions() as session:
        barrier.wait(timeout=30)
        try:
            services.complete_task(session, actor, task_id, {"decision": "approve", "comment": comment})
            commit_or_conflict(session)
        except Conflict:
            session.rollback()
            return "conflict"
        return "won"


def assert_advanced_once(session, instance_id, head_task_id, version_before, winning_comment) -> None:
    """One completion recorded, one next step opened, the instance saved exactly once more."""
    instance = session.get(ProcessInstance, instance_id)
    assert instance.version == version_before + 1
    rows = session.execute(
        select(Task.form_key, Task.status).where(Task.instance_id == instance_id).order_by(Task.created_at)
    ).all()
    assert sorted(rows) == [("communications_review", "open"), ("department_head_review", "completed")]
    completions = session.scalars(
        select(AuditEvent).where(AuditEvent.task_id == head_task_id, AuditEvent.action == "completed")
    ).all()
    assert [(e.actor, e.decision, e.comment) for e in completions] == [("parks_head", "approve", winning_comment)]


def test_two_threads_completing_the_same_task_exactly_one_wins(pg_sessions, cast):
    with ThreadPoolExecutor(max_workers=2) as pool:
        for race in range(RACES):
            instance_id, task_id, version = start_request(pg_sessions, cast["requester"])
            barrier = threading.Barrier(2)
            comments = (f"Race {race}: first tab.", f"Race {race}: second tab.")
            futures = [
                pool.submit(complete_at_the_barrier, pg_sessions, cast["parks_head"], task_id, comment, barrier)
                for comment in comments
            ]
            results = [f.result(timeout=60) for f in futures]
            assert sorted(results) == ["conflict", "won"], f"race {race}: {results}"
            with pg_sessions() as session:
                assert_advanced_once(session, instance_id, task_id, version, comments[results.index("won")])
    with pg_sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance)) == RACES
        verification = audit.verify(session)
        assert verification.ok, verification


def test_the_loser_of_a_race_can_see_the_request_moved_on(pg_sessions, cast):
    instance_id, task_id, _ = start_request(pg_sessions, cast["requester"])
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(complete_at_the_barrier, pg_sessions, cast["parks_head"], task_id, "Fine.", barrier)
            for _ in range(2)
        ]
        assert sorted(f.result(timeout=60) for f in futures) == ["conflict", "won"]
    with pg_sessions() as session, pytest.raises(Conflict, match="no longer open"):
        services.complete_task(session, cast["parks_head"], task_id, {"decision": "approve"})
    with pg_sessions() as session:
        [comms_task] = inbox.list_tasks(session, cast["comms"], "available")[0]
        assert comms_task.instance_id == instance_id


# ---- two OS processes against a real server ------------------------------------------------------


def civicflow_command() -> str:
    """The installed console script of this virtualenv."""
    beside_python = Path(sys.executable).with_name("civicflow")
    found = str(beside_python) if beside_python.exists() else shutil.which("civicflow")
    assert found, "the civicflow console script is not installed"
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(method, url, body=None, token=None) -> tuple[int, dict]:
    """A JSON request with the standard library only (the same in the test and in the spawned processes)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http only
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback test server
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def post_complete_at_the_barrier(url, token, barrier, results) -> None:
    """Run in a spawned process: wait for the other process, then POST .../complete."""
    barrier.wait(timeout=60)
    decision = {"decision": "approve", "comment": f"Process {os.getpid()}."}
    status, body = http("POST", url, {"data": decision}, token)
    results.put((status, body.get("error", {}).get("code")))


@pytest.fixture
def server(pg_settings, cast, tmp_path):
    """`civicflow serve` on a free port, on the test's PostgreSQL database."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICFLOW_")}
    env.update(
        CIVICFLOW_DATABASE_URL=pg_settings.database_url,
        CIVICFLOW_INSTANCE_PATH=str(tmp_path),
        CIVICFLOW_SECRET_KEY=SECRET,
    )
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [civicflow_command(), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if http("GET", f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("civicflow serve did not answer within 15 seconds")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_two_processes_posting_complete_at_once_get_one_200_and_one_409(server, pg_sessions):
    tokens = {}
    for name in ("requester", "parks_head"):
        status, body = http("POST", f"{server}/api/v1/auth/token", {"username": name, "password": PASSWORD})
        assert status == 201, body
        tokens[name] = body["token"]
    spawn = multiprocessing.get_context("spawn")
    for _ in range(3):
        status, instance = http(
            "POST", f"{server}/api/v1/processes/new_account_request/instances", {"data": START}, tokens["requester"]
        )
        assert status == 201, instance
        [task] = instance["tasks"]
        barrier, results = spawn.Barrier(2), spawn.Queue()
        url = f"{server}/api/v1/tasks/{task['id']}/complete"
        workers = [
            spawn.Process(target=post_complete_at_the_barrier, args=(url, tokens["parks_head"], barrier, results))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=90) for _ in workers)
        for worker in workers:
            worker.join(timeout=30)
        assert outcomes == [(200, None), (409, "conflict")]
        status, after = http("GET", f"{server}/api/v1/instances/{instance['id']}", token=tokens["parks_head"])
        assert [t["form_key"] for t in after["tasks"]] == ["communications_review"]
        assert [e["action"] for e in after["history"]] == ["started", "completed"]
    with pg_sessions() as session:
        assert audit.verify(session).ok


def test_thirty_concurrent_wrong_passwords_check_no_more_than_the_limit(pg_settings, cast):
    """Sign-in attempts are counted before the password is checked, one atomic statement each (web/login_limits.py)."""
    from web import create_app

    app = create_app({"TESTING": True}, settings=pg_settings)
    try:

        def attempt(_):
            wrong = {"username": "parks_head", "password": "a wrong one, all at once"}
            return app.test_client().post("/api/v1/auth/token", json=wrong).status_code

        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(attempt, range(30)))
    finally:
        app.extensions["civicflow.engine"].dispose()
    assert answers.count(401) == 5  # checked, as the limit allows
    assert answers.count(429) == 25  # refused before the password was looked at
