"""A timers pass costs what is due, not what waits: timers.fire_due with 100 due among 1,000 and 100,000 waiting.

Two databases are built alike: the same people and 100 real requests started through engine.requests.services
some days ago, so that by the real clock the Department Head's reminder of each is due and its overdue
escalation is not. One database is then filled to 1,000 waiting timers, the other to 100,000, with bulk
inserts that copy a real request (its instance row and its two timer rows, due in the coming weeks).
Each pass is timed from a restored copy of its database (a copied SQLite file; a PostgreSQL database
created from a template), the sizes in interleaved rounds. For scale, bare SpiffWorkflow fires the same
100 workflows in memory: load the JSON state, refresh_timers, do_engine_steps, serialize.

    .venv/bin/python bench/timers.py                 # SQLite: about 2 minutes on 2 cores
    .venv/bin/python bench/timers.py --runs 5        # quicker, noisier
    CIVICFLOW_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/timers.py

The last line is `ratio timers 100k/1k: X.XX`: the worst, over the databases measured, of
median(pass among 100,000) / median(pass among 1,000). The goal is below 1.5.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is in bench/, next to bench/engine.py: run as a script, its folder comes first on sys.path and
# bench/engine.py would shadow the `engine` package. Put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import timedelta  # noqa: E402
from importlib.metadata import version  # noqa: E402

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: E402
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition  # noqa: E402
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import event, func, insert, select  # noqa: E402
from sqlalchemy.engine import Connection, make_url  # noqa: E402

from engine.db.connection import make_engine, make_sessionmaker  # noqa: E402
from engine.db.migrate import upgrade  # noqa: E402
from engine.db.models import ProcessInstance, Timer  # noqa: E402
from engine.demo import create_departments  # noqa: E402
from engine.diagrams import serialization  # noqa: E402
from engine.people import users  # noqa: E402
from engine.requests import services  # noqa: E402
from engine.settings import REPO_ROOT, Settings  # noqa: E402
from engine.time import clock, deadlines, timers  # noqa: E402

KEY = "new_account_request"
DIAGRAM = REPO_ROOT / "workflows" / f"{KEY}.bpmn"
REVIEW = "department_head_review"  # the deadline of the task whose timers are fired
# Throwaway databases, deleted at the end: the key and the password protect nothing.
SECRET = "bench-secret-key-that-is-long-enough-for-hkdf"  # noqa: S105
PASSWORD = "correct horse battery"  # noqa: S105
SIZES = (1_000, 100_000)  # waiting timers
DUE = 100  # requests whose reminder is due: 100 due timers (and 100 escalations that are not)
CHUNK = 5_000  # copied instances per transaction
START = {
    "platform": "facebook",
    "account_name": "West St. Paul Parks",
    "department": "parks",
    "purpose": "Program announcements for Parks and Recreation.",
    "audience": "Residents and park users.",
    "proposed_managers": ["requester"],
}


def started_when(settings: Settings):
    """A moment to file the real requests at: their reminder is due by now, their escalation hours away."""
    calendar, now = deadlines.of(settings), clock.now()
    moment = now - timedelta(days=1)
    while not all(
        calendar.reminder_at(REVIEW, at) <= now - timedelta(minutes=10)
        and calendar.escalation_at(REVIEW, at) >= now + timedelta(hours=3)
        for at in (moment, moment + timedelta(seconds=DUE))
    ):
        moment -= timedelta(hours=1)
        assert moment > now - timedelta(days=60), "no moment found: check the deadlines"
    return moment


# ---- one database, built once, restored before each pass --------------------------------------------


class Database:
    """A migrated database with the people, the 100 real requests and copies up to `size` waiting timers."""

    def __init__(self, kind: str, url: str, folder: Path, size: int, admin_url: str | None):
        self.kind, self.url, self.folder, self.size, self.admin_url = kind, url, folder, size, admin_url
        engine = make_engine(url)
        upgrade(engine)
        self.settings = Settings.from_env(instance_path=folder, database_url=url, secret_key=SECRET)
        factory = make_sessionmaker(engine)
        with factory(info={"settings": self.settings}) as session:
            create_departments(session)
            services.sync_workflows(session)
            requester = self._people(session)
            began = started_when(self.settings)
            ids = []
            for number in range(DUE):
                with clock.frozen_at(began + timedelta(seconds=number)):
                    ids.append(services.start_instance(session, requester, KEY, START).id)
                session.commit()
            self.states = list(
                session.scalars(select(ProcessInstance.workflow_state).where(ProcessInstance.id.in_(ids)))
            )
            template = session.get(ProcessInstance, ids[0])
            self.template = {column.key: getattr(template, column.key) for column in ProcessInstance.__table__.columns}
            self.spec_names = sorted(session.scalars(select(Timer.element_id).where(Timer.instance_id == ids[0])))
        started = time.perf_counter()
        self._fill(engine, (size - len(ids) * len(self.spec_names)) // len(self.spec_names))
        self.fill_seconds = time.perf_counter() - started
        with engine.connect() as connection:
            self.waiting = connection.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None)))
            self.instances = connection.scalar(select(func.count()).select_from(ProcessInstance))
        with factory(info={"settings": self.settings}) as session:
            self.due = timers.due_count(session)
        assert (self.waiting, self.due) == (size, DUE), (self.waiting, self.due)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if kind == "PostgreSQL":
                connection.exec_driver_sql("ANALYZE")  # what autovacuum does after a bulk load
            else:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # the whole database in one file
        engine.dispose()
        self.bytes = Path(make_url(url).database).stat().st_size if kind == "SQLite" else None

    def _people(self, session) -> users.Actor:
        made = {}
        for username, department, roles, head_of in (
            ("requester", "parks", [], []),
            ("parks_head", "parks", [], ["parks"]),
            ("comms", "communications", ["communications_manager"], ["communications"]),
        ):
            made[username] = users.create_user(
                session,
                username,
                PASSWORD,
                name=username.title(),
                email=f"{username}@example.org",
                department=department,
                roles=roles,
                head_of=head_of,
            )
        session.commit()
        return users.actor_for(session, made["requester"])

    def _fill(self, engine, count: int) -> None:
        """Copies of a real request, each with its timers due some day in the coming two months."""
        rng = random.Random(20260302)
        now = clock.utcnow()
        with engine.connect() as connection:
            first_id = connection.scalar(select(func.max(ProcessInstance.id))) + 1
        done = 0
        while done < count:
            instances, timer_rows = [], []
            for instance_id in range(first_id + done, first_id + min(count, done + CHUNK)):
                instances.append({**self.template, "id": instance_id, "version": 1})
                due = now + timedelta(days=1, minutes=rng.randrange(60 * 24 * 60))
                for offset, spec_name in enumerate(self.spec_names):
                    timer_rows.append(
                        {
                            "id": str(uuid.uuid4()),
                            "instance_id": instance_id,
                            "spec_name": spec_name,
                            "due_at": due + timedelta(days=2 * offset),
                            "fired_at": None,
                        }
                    )
            with engine.begin() as connection:
                connection.execute(insert(ProcessInstance), instances)
                connection.execute(insert(Timer), timer_rows)
            done += len(instances)
        if self.kind == "PostgreSQL":  # explicit ids: move the sequence past them
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('process_instance', 'id'), "
                    "(SELECT max(id) FROM process_instance))"
                )

    def restore(self) -> str:
        """A fresh copy of the built database; its URL."""
        if self.kind == "SQLite":
            copy = self.folder / f"run-{self.size}.sqlite3"
            for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copyfile(make_url(self.url).database, copy)
            os.sync()  # the copy on disk now, not written back while the pass commits
            return f"sqlite:///{copy}"
        name = f"{make_url(self.url).database}_run"
        with _admin(self.admin_url) as admin:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # FILE_COPY (PostgreSQL 15+) copies the files between two checkpoints; the default writes the whole
            # copy to the WAL, which the pass would then be flushing behind.
            strategy = " STRATEGY FILE_COPY" if admin.dialect.server_version_info >= (15,) else ""
            admin.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(self.url).database}"{strategy}')
        os.sync()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def describe(self) -> str:
        """What was built."""
        size = f", file {self.bytes / 2**20:,.0f} MiB" if self.bytes else ""
        return (
            f"{self.waiting:,} waiting timers ({self.due} due) on {self.instances:,} requests "
            f"({DUE} real, the rest copied in {self.fill_seconds:.1f} s){size}"
        )


@contextmanager
def _admin(url: str) -> Iterator[Connection]:
    """An AUTOCOMMIT connection to the PostgreSQL server, for CREATE and DROP DATABASE."""
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


# ---- the passes ---------------------------------------------------------------------------------


class Pass:
    """civicflow's timers pass on a restored copy: fire_due timed alone; its statements counted."""

    def __init__(self, database: Database):
        self.database = database
        self.statements: list[tuple[str, object]] = []

    def run(self) -> float:
        """Restore, connect, time timers.fire_due, check it fired the 100 reminders; the seconds."""
        url = self.database.restore()
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        settings = self.database.settings

        def sessions():
            return factory(info={"settings": settings})

        def on_execute(_conn, _cursor, statement, parameters, *_args):
            self.statements.append((statement, parameters))

        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            self.statements = []
            event.listen(engine, "before_cursor_execute", on_execute)
            began = time.perf_counter()
            fired = timers.fire_due(sessions)
            seconds = time.perf_counter() - began
            event.remove(engine, "before_cursor_execute", on_execute)
            assert len(fired) == DUE and all(len(f.timers) == 1 and f.error is None for f in fired), fired[:3]
            self.plan = self._explain(engine)
        finally:
            engine.dispose()
        return seconds

    def _explain(self, engine) -> list[str]:
        """The plan of the pass's last claim (the one that finds nothing more due), as the database has it now."""
        statement, parameters = [s for s in self.statements if "FROM timer JOIN process_instance" in s[0]][-1]
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                return [detail for _node, _parent, _unused, detail in rows]
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, parameters
            ).all()
            connection.rollback()
        return [line for (line,) in rows]


class _NoServices(TaskDataEnvironment):
    """Bare SpiffWorkflow's script environment, with a service call that only answers."""

    def call_service(self, context, operation_name=None, operation_params=None, **_kwargs):
        """The reminder step's service: nothing to do in memory."""
        return json.dumps({"called": operation_name})


class Bare:
    """The same 100 workflows in bare SpiffWorkflow: its own parser and script engine, the saved JSON states."""

    def __init__(self, states: list[str]):
        parser = SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_file(str(DIAGRAM))
        self.spec, self.subprocess_specs = parser.get_spec(KEY), parser.get_subprocess_specs(KEY)
        self.script_engine = PythonScriptEngine(environment=_NoServices())
        self.states = states

    def run(self) -> float:
        """Load, refresh_timers, do_engine_steps and serialize each workflow; check one timer fired in each."""
        began = time.perf_counter()
        fired = []
        for saved in self.states:
            dct = json.loads(saved)
            dct.pop(serialization.FORMAT_KEY, None)
            workflow = serialization.SERIALIZER.from_dict(dct, spec=self.spec, subprocess_specs=self.subprocess_specs)
            workflow.script_engine = self.script_engine
            waiting = [
                t
                for t in workflow.get_tasks(state=TaskState.WAITING)
                if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
            ]
            workflow.refresh_timers()
            workflow.do_engine_steps()
            json.dumps(serialization.SERIALIZER.to_dict(workflow), separators=(",", ":"), cls=serialization._ENCODER)
            fired.append(sum(t.state != TaskState.WAITING for t in waiting))
        seconds = time.perf_counter() - began
        assert fired == [1] * len(self.states), fired
        return seconds


# ---- measuring ------------------------------------------------------------------------------------


def _line(label: str, seconds: list[float]) -> str:
    median = statistics.median(seconds)
    q1, _, q3 = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else (median, median, median)
    return (
        f"{label:<44} median {median * 1000:8.1f} ms per pass, {median / DUE * 1000:6.2f} ms per request"
        f"  (IQR {q1 * 1000:.1f}-{q3 * 1000:.1f} ms, n={len(seconds)})"
    )


def interleaved(series: dict, runs: int, warmup: int) -> dict:
    """Run each callable (it returns its own seconds) in rounds, who goes first rotating; seconds by key."""
    for run in series.values():
        for _ in range(warmup):
            run()
    times = {key: [] for key in series}
    keys = list(series)
    for number in range(runs):
        for key in keys[number % len(keys) :] + keys[: number % len(keys)]:
            times[key].append(series[key]())
    return times


def run_on(kind: str, urls: dict[int, str], folder: Path, admin_url: str | None, runs: int, warmup: int):
    """Build both sizes, time the passes and the bare firing; print; return the medians and bare's median."""
    databases = {}
    for size in SIZES:
        began = time.perf_counter()
        databases[size] = Database(kind, urls[size], folder, size, admin_url)
        print(f"-- {kind}, built in {time.perf_counter() - began:.0f} s: {databases[size].describe()}")
    passes = {size: Pass(databases[size]) for size in SIZES}
    bare = Bare(databases[SIZES[0]].states)
    times = interleaved({**{size: p.run for size, p in passes.items()}, "bare": bare.run}, runs, warmup)
    restore = statistics.median([_timed(databases[SIZES[-1]].restore) for _ in range(3)])
    for size in SIZES:
        print(_line(f"{kind}, {DUE} due among {size:,} waiting", times[size]) + f"  {len(passes[size].statements)} SQL")
    print(_line("bare SpiffWorkflow, the same 100 in memory", times["bare"]))
    print(f"(restoring the {SIZES[-1]:,} copy before each pass, not timed: {restore:.1f} s)")
    print(f"plan of the last claim at {SIZES[-1]:,} waiting:")
    for line in passes[SIZES[-1]].plan:  # the ids already tried in the pass make a long list: shortened
        print(f"    {line[:150]} ...)" if len(line) > 160 else f"    {line}")
    medians = {size: statistics.median(times[size]) for size in SIZES}
    return medians, statistics.median(times["bare"])


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def _postgres(admin_url: str) -> tuple[dict[int, str], Callable[[], None]]:
    """Throwaway databases on the server (one per size, each with a `_run` copy); and a function to drop them."""
    stem = f"civicflow_timers_bench_{uuid.uuid4().hex[:8]}"
    names = {size: f"{stem}_{size}" for size in SIZES}
    with _admin(admin_url) as admin:
        for name in names.values():
            admin.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with _admin(admin_url) as admin:
            for name in names.values():
                admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}_run" WITH (FORCE)')
                admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    urls = {
        size: make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        for size, name in names.items()
    }
    return urls, drop


def main(argv=None) -> None:
    """Parse the options, build the databases, print the figures; the last line is the worst ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed passes per size (default 9)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes per size first (default 1)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("CIVICFLOW_BENCH_POSTGRES_URL"),
        help="also on PostgreSQL, in throwaway databases on this server (default: CIVICFLOW_BENCH_POSTGRES_URL)",
    )
    options = parser.parse_args(argv)
    users.PASSWORD_METHOD["method"] = "pbkdf2:sha256:1000"  # password hashing is not what we measure
    logging.basicConfig(level=logging.WARNING)  # SpiffWorkflow logs every task's state change at INFO

    began = time.perf_counter()
    print(
        f"civicflow timers benchmark: one pass of timers.fire_due, {DUE} due timers (the Department Head's "
        f"reminder of {DUE} requests) among {SIZES[0]:,} and among {SIZES[1]:,} waiting; {options.runs} passes "
        f"per size from a restored copy, interleaved, after {options.warmup} warm-up; medians"
    )
    print(
        f"Python {sys.version.split()[0]}, SpiffWorkflow {version('SpiffWorkflow')}, SQLAlchemy "
        f"{version('SQLAlchemy')}, SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL), {os.cpu_count()} CPUs"
    )
    folder = Path(tempfile.mkdtemp(prefix="civicflow-timers-bench-"))
    ratios = {}
    try:
        urls = {size: f"sqlite:///{folder / f'civicflow-{size}.sqlite3'}" for size in SIZES}
        results = {"SQLite": run_on("SQLite", urls, folder, None, options.runs, options.warmup)}
        if options.postgres:
            urls, drop = _postgres(options.postgres)
            try:
                results["PostgreSQL"] = run_on(
                    "PostgreSQL", urls, folder, options.postgres, options.runs, options.warmup
                )
            finally:
                drop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"wall time {time.perf_counter() - began:.1f} s")
    for kind, (medians, bare) in results.items():
        small, large = (medians[size] for size in SIZES)
        print(f"ratio {kind} civicflow/bare at {SIZES[0]:,}: {small / bare:.2f}")
        print(f"ratio {kind} civicflow/bare at {SIZES[1]:,}: {large / bare:.2f}")
        ratios[kind] = large / small
        print(f"ratio {kind} timers 100k/1k: {ratios[kind]:.2f}")
    worst = max(ratios, key=ratios.get)
    print(f"worst: {worst}")
    print(f"ratio timers 100k/1k: {ratios[worst]:.2f}")


if __name__ == "__main__":
    main()
