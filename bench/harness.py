"""What the five benchmarks share: their options, their databases, their timing and bare SpiffWorkflow.

- Options and output: `parser(...)` (--runs, --warmup, --rounds, --postgres), `parse`, `print_header`.
- Databases: `Database` (a migrated database and its sessions), `on_each_database(...)` (a temporary folder of
  SQLite files, and with --postgres throwaway databases on that server, dropped at the end), `create_people`,
  `row_of` (a row for a bulk Core insert), `recording` (the SQL statements and commits of a block), `plan`.
- Timing: `interleaved(...)` (rounds, who goes first rotating, so machine noise hits every series alike),
  `quartiles`, `line`, `print_ratio`, `print_worst`.
- Bare SpiffWorkflow: `BareDiagram` (a shipped diagram parsed once by SpiffWorkflow's own parser) and
  `BARE_ENGINE` (its own script engine, plain eval, no sandbox).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import column, event, func, inspect, select, table, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.diagrams import serialization
from engine.people import passwords, users
from engine.settings import REPO_ROOT, Settings
from engine.time import deadlines
from tests.helpers import START

T = TypeVar("T")

# Throwaway databases, deleted at the end: the key and the password protect nothing.
SECRET = "bench-secret-key-that-is-long-enough-for-hkdf"  # noqa: S105
PASSWORD = "correct horse battery"  # noqa: S105
SIZES = (1_000, 100_000)  # the two sizes of bench.inbox, bench.timers and bench.public
POSTGRES_VARIABLE = "CIVICFLOW_BENCH_POSTGRES_URL"  # the default of --postgres

# Procedure 1 (workflows/new_account_request.bpmn): its start form as tests/conftest.py fills it, and the
# three people of its standard path, as (username, department, roles, head of).
ACCOUNT_REQUEST = "new_account_request"
ACCOUNT_REQUEST_START = START  # the tests' standard request
ACCOUNT_REQUEST_PEOPLE = (
    ("requester", "parks", [], []),
    ("parks_head", "parks", [], ["parks"]),
    ("comms", "communications", ["communications_manager"], ["communications"]),
)


# ---- options -------------------------------------------------------------------------------------


def parser(
    doc: str,
    *,
    runs: int,
    runs_help: str,
    warmup: int,
    warmup_help: str = "warm-up runs per series",
    rounds: int | None = None,
    postgres: bool = True,
) -> argparse.ArgumentParser:
    """The options every benchmark takes; `rounds` None: no --rounds (each round is one run of each series)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs, help=f"{runs_help} (default {runs})")
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"{warmup_help} (default {warmup})")
    if postgres:
        parser.add_argument(
            "--postgres",
            metavar="URL",
            default=os.environ.get(POSTGRES_VARIABLE) or None,
            help=f"also on PostgreSQL, in throwaway databases on this server (default: ${POSTGRES_VARIABLE})",
        )
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """The options; and cheap password hashing (not what is measured) and WARNING logging for the run.

    create_app asks for INFO logging unless logging is set up already; SpiffWorkflow's INFO lines (a line per
    task state change) would then be formatted and printed on every step.
    """
    options = parser.parse_args(argv)
    passwords.Hashing.method = "pbkdf2:sha256:1000"
    logging.basicConfig(level=logging.WARNING)
    return options


def print_header(title: str, *packages: str, note: str = "") -> None:
    """The title; then Python, the named packages' versions, SQLite as civicflow opens it and the CPUs."""
    named = "".join(f", {package} {version(package)}" for package in packages)
    print(title)
    print(
        f"Python {sys.version.split()[0]}{named}, SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL), "
        f"{os.cpu_count()} CPUs{note}"
    )


# ---- databases -----------------------------------------------------------------------------------


class Database:
    """A migrated database (a SQLite file or a PostgreSQL database) with its settings and sessions."""

    def __init__(self, url: str, folder: Path, **settings):
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)
        self.settings = Settings.from_env(instance_path=folder, database_url=url, secret_key=SECRET, **settings)
        self._sessions = make_sessionmaker(self.engine)

    def sessions(self) -> Session:
        """A new session, with the settings in its info as web.db gives them."""
        return self._sessions(info={"settings": self.settings})

    def bulk_loaded(self, *tables: str) -> None:
        """After inserts with explicit ids: PostgreSQL's sequences of `tables` moved past them and an ANALYZE
        (what autovacuum does after a bulk load); SQLite's WAL checkpointed (the whole database in one file)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return
            for name in tables:
                ids = table(name, column("id")).c.id
                sequence = func.pg_get_serial_sequence(name, "id")
                connection.execute(select(func.setval(sequence, select(func.max(ids)).scalar_subquery())))
            connection.exec_driver_sql("ANALYZE")

    def file_size(self) -> str:
        """', file N MiB' on SQLite; nothing on PostgreSQL."""
        if self.engine.dialect.name != "sqlite":
            return ""
        return f", file {Path(make_url(self.url).database).stat().st_size / 2**20:,.0f} MiB"

    def close(self) -> None:
        """Let go of the engine's connections."""
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def create_people(session: Session, people: Iterable[tuple[str, str, list[str], list[str]]]) -> dict[str, users.Actor]:
    """Each (username, department, roles, head of) created with PASSWORD and committed; their actors by username."""
    made = {
        username: users.create_user(
            session,
            username,
            PASSWORD,
            name=username.replace("_", " ").title(),
            email=f"{username}@example.org",
            department=department,
            roles=roles,
            head_of=head_of,
        )
        for username, department, roles, head_of in people
    }
    session.commit()
    return {username: users.actor_for(session, user) for username, user in made.items()}


def row_of(obj) -> dict[str, Any]:
    """A mapped object's row as a bulk Core insert takes it: keyed by Column.key, which is the column's name
    ("state", "spec_name"), not the attribute's (workflow_state, status, element_id)."""
    mapper = inspect(type(obj))
    return {
        column.key: getattr(obj, mapper.get_property_by_column(column).key) for column in mapper.local_table.columns
    }


@dataclass(frozen=True)
class Databases:
    """Where one benchmark runs: the kind, a database URL per key, a temporary folder, the server's URL."""

    kind: str  # "SQLite" or "PostgreSQL"
    urls: dict[Hashable, str]
    folder: Path  # for instance paths and SQLite files; removed at the end
    admin_url: str | None  # PostgreSQL: the server's URL, for CREATE and DROP DATABASE; None on SQLite


def on_each_database(
    name: str, keys: Iterable[Hashable], postgres_url: str | None, run: Callable[[Databases], T]
) -> dict[str, T]:
    """run() on SQLite files in a temporary folder, then (with a URL) on throwaway PostgreSQL databases on that
    server; each empty, one per key. All are deleted at the end, PostgreSQL copies named after them included."""
    keys = tuple(keys)
    folder = Path(tempfile.mkdtemp(prefix=f"civicflow-{name}-bench-"))
    results = {}
    try:
        urls = {key: f"sqlite:///{folder / f'civicflow-{key}.sqlite3'}" for key in keys}
        results["SQLite"] = run(Databases("SQLite", urls, folder, None))
        if postgres_url:
            stem = f"civicflow_{name}_bench_{uuid.uuid4().hex[:8]}"
            names = {key: f"{stem}_{key}" for key in keys}
            try:
                with admin(postgres_url) as connection:
                    for database in names.values():
                        connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
                urls = {
                    key: make_url(postgres_url).set(database=database).render_as_string(hide_password=False)
                    for key, database in names.items()
                }
                results["PostgreSQL"] = run(Databases("PostgreSQL", urls, folder, postgres_url))
            finally:
                _drop_databases(postgres_url, stem)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def _drop_databases(url: str, stem: str) -> None:
    """Drop every database whose name starts with stem (the throwaway ones, and copies made of them)."""
    with admin(url) as connection:
        found = connection.execute(
            text("SELECT datname FROM pg_database WHERE left(datname, :n) = :stem"), {"n": len(stem), "stem": stem}
        ).scalars()
        for database in list(found):
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextmanager
def admin(url: str) -> Iterator[Connection]:
    """An AUTOCOMMIT connection to the PostgreSQL server of url, for CREATE and DROP DATABASE."""
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


@dataclass
class Recording:
    """The SQL statements (with their parameters) and the commits seen on an engine."""

    statements: list[tuple[str, Any]] = field(default_factory=list)
    commits: int = 0

    def sql(self) -> str:
        """'N SQL, M commits'."""
        return f"{len(self.statements)} SQL, {self.commits} commit{'' if self.commits == 1 else 's'}"


@contextmanager
def recording(engine: Engine) -> Iterator[Recording]:
    """Record the SQL statements and commits of the block on `engine`."""
    seen = Recording()

    def on_execute(_conn, _cursor, statement, parameters, *_args):
        seen.statements.append((statement, parameters))

    def on_commit(_conn):
        seen.commits += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def plan(connection: Connection, statement: str, parameters, *, analyze: bool = True) -> list[str]:
    """A statement's plan: SQLite's EXPLAIN QUERY PLAN (indented as a tree), or PostgreSQL's EXPLAIN, with
    ANALYZE (it runs the statement: roll back after a write) or without costs."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        depth, lines = {0: -1}, []
        for node, parent, _unused, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines
    options = "ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF" if analyze else "COSTS OFF"
    return [line for (line,) in connection.exec_driver_sql(f"EXPLAIN ({options}) " + statement, parameters)]


# ---- timing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A series that times itself: run() returns the seconds to count (what it does around them is not)."""

    run: Callable[[], float]


def _clocked(item) -> Callable[[], float]:
    """A series as a callable returning its seconds: a callable is timed whole, a (setup, run) pair only its run."""
    if isinstance(item, Measured):
        return item.run
    setup, run = item if isinstance(item, tuple) else (None, item)

    def clocked() -> float:
        if setup is not None:
            setup()
        began = time.perf_counter()
        run()
        return time.perf_counter() - began

    return clocked


def interleaved(series: dict, runs: int, rounds: int, warmup: int, *, collect_per_round: bool = False) -> dict:
    """Time each series `runs` times in `rounds` interleaved rounds (who goes first rotates), so that machine
    noise hits them all alike, after `warmup` untimed runs of each; the seconds of every run by key.

    A series is a callable (timed whole), a (setup, run) pair (run timed, setup not), or Measured. The garbage
    is collected before each series' block of a round, or with collect_per_round once per round: with forty
    series a full collection (tens of ms with SpiffWorkflow and SQLAlchemy loaded) per block takes longer
    than the runs.
    """
    clocked = {key: _clocked(item) for key, item in series.items()}
    for run in clocked.values():
        for _ in range(warmup):
            run()
    times: dict = {key: [] for key in series}
    per_round = max(1, runs // rounds)
    keys = list(series)
    for number in range(rounds):
        if collect_per_round:
            gc.collect()
        for key in keys[number % len(keys) :] + keys[: number % len(keys)]:
            if not collect_per_round:
                gc.collect()
            run = clocked[key]
            times[key].extend(run() for _ in range(per_round))
    return times


def quartiles(seconds: list[float]) -> tuple[float, float, float]:
    """The median, first and third quartile (all three the one value when there is one)."""
    median = statistics.median(seconds)
    if len(seconds) < 2:
        return median, median, median
    q1, _, q3 = statistics.quantiles(seconds, n=4)
    return median, q1, q3


def line(label: str, seconds: list[float], unit: str = "runs", width: int = 44) -> str:
    """'label  median N ms  N units/s  (IQR ..., n=N)'."""
    median, q1, q3 = quartiles(seconds)
    return (
        f"{label:<{width}} median {median * 1000:7.3f} ms  {1 / median:6.1f} {unit}/s"
        f"  (IQR {q1 * 1000:.3f}-{q3 * 1000:.3f} ms, n={len(seconds)})"
    )


def print_ratio(what: str, value: float) -> None:
    """'ratio what: X.XX'."""
    print(f"ratio {what}: {value:.2f}")


def print_worst(ratios: dict[str, float], what: str) -> None:
    """'worst: <its label>', then 'ratio what: X.XX' of the largest of the ratios: a benchmark's last line."""
    worst = max(ratios, key=ratios.get)
    print(f"worst: {worst}")
    print_ratio(what, ratios[worst])


# ---- bare SpiffWorkflow --------------------------------------------------------------------------


class _AnsweringEnvironment(TaskDataEnvironment):
    """SpiffWorkflow's default script environment, with a service call that only answers."""

    def call_service(self, context, operation_name=None, operation_params=None, **_kwargs):
        """A letter, a reminder or an escalation: nothing to do in memory."""
        return json.dumps({"called": operation_name})


# SpiffWorkflow's own script engine (plain eval, no sandbox), given the diagrams' deadline helpers.
BARE_ENGINE = PythonScriptEngine(
    environment=_AnsweringEnvironment(
        {
            "due_time": deadlines.due_time,
            "reminder_time": deadlines.reminder_time,
            "escalation_time": deadlines.escalation_time,
        }
    )
)


class BareDiagram:
    """A shipped diagram as bare SpiffWorkflow runs it: parsed once by its own parser, with its XSD validator."""

    def __init__(self, key: str):
        self.key = key
        self.path = REPO_ROOT / "workflows" / f"{key}.bpmn"
        parser = SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_file(str(self.path))
        self.spec, self.subprocess_specs = parser.get_spec(key), parser.get_subprocess_specs(key)

    def start(self, data: dict, script_engine: PythonScriptEngine | None = None) -> BpmnWorkflow:
        """A new workflow, its start event given `data`, run up to its first wait."""
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=script_engine or BARE_ENGINE)
        workflow.get_next_task(state=TaskState.READY).data.update(data)
        workflow.do_engine_steps()
        return workflow

    def load(self, saved: str) -> BpmnWorkflow:
        """A workflow from civicflow's spec-free JSON (engine.diagrams.serialization), on BARE_ENGINE."""
        dct = json.loads(saved)
        dct.pop(serialization.FORMAT_KEY, None)
        workflow = serialization.SERIALIZER.from_dict(dct, spec=self.spec, subprocess_specs=self.subprocess_specs)
        workflow.script_engine = BARE_ENGINE
        return workflow
