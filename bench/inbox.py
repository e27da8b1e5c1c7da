"""The inbox stays one indexed query: the inbox page at 1,000 and at 100,000 instances, on SQLite (and PostgreSQL).

Two databases are built alike: the same people, and the same real requests started and decided through
engine.requests.services, so that the Parks Department Head and the Communications Manager have the same open tasks
in both. One database is then filled to 1,000 instances, the other to 100,000, with bulk inserts that copy
real instances (their state JSON and task rows): mostly finished requests, the running ones waiting for
other departments' heads, the Administrative Lieutenant or their own requesters. The inbox pages of the
two people are timed through the real app (Flask test client, logged in, the nav counts included), the
two databases in interleaved rounds so that machine noise hits both alike.

    .venv/bin/python bench/inbox.py                  # or `make bench`: about a minute on 2 cores
    .venv/bin/python bench/inbox.py --runs 60        # quicker, noisier
    .venv/bin/python bench/inbox.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test   # 2 min more

The last line is `ratio inbox 100k/1k: X.XX`: the worst, over both people, both views and every database
measured, of median(page at 100,000) / median(page at 1,000). The goal is below 1.5.
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
import importlib.util  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import timedelta  # noqa: E402
from importlib.metadata import version  # noqa: E402

from sqlalchemy import event, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.db.connection import make_engine, make_sessionmaker  # noqa: E402
from engine.db.migrate import upgrade  # noqa: E402
from engine.db.models import ProcessInstance, Task  # noqa: E402
from engine.demo import DEPARTMENTS, create_departments  # noqa: E402
from engine.people import users  # noqa: E402
from engine.people.roles import REQUESTER  # noqa: E402
from engine.requests import services  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.time import clock  # noqa: E402

KEY = "new_account_request"
# Throwaway databases, deleted at the end: the key and the password protect nothing.
SECRET = "bench-secret-key-that-is-long-enough-for-hkdf"  # noqa: S105
PASSWORD = "correct horse battery"  # noqa: S105
SIZES = (1_000, 100_000)
CHUNK = 5_000  # filler instances per transaction

# The two people whose inbox is timed, and what it holds at every size (made by real requests).
HEAD_WAITING, HEAD_CLAIMED = 30, 5  # Parks head: open approvals available to them, and taken by them
COMMS_WAITING, COMMS_CLAIMED = 10, 2  # Communications Manager: open written approvals, and taken
COMMS_AS_HEAD = 3  # the Communications Manager also heads Marketing and Communications
EXPECTED = {  # username -> view -> tasks the page must list
    "parks_head": {"available": HEAD_WAITING, "mine": HEAD_CLAIMED},
    "comms": {"available": COMMS_WAITING + COMMS_AS_HEAD, "mine": COMMS_CLAIMED},
}
VIEW_CAPTION = {"available": "Available to me", "mine": "Assigned to me"}

STAFF_PER_DEPARTMENT = 3
HEADS = {
    "parks": "parks_head",
    "communications": "comms",
    "police": "police_chief",
    "finance": "finance_head",
    "public_works": "public_works_head",
    "community_development": "community_development_head",
    "administration": "city_administrator",
}
MEASURED_DEPARTMENTS = ("parks", "communications")
ALL_DEPARTMENTS = tuple(code for code, _name in DEPARTMENTS)
OTHER_DEPARTMENTS = tuple(code for code in ALL_DEPARTMENTS if code not in MEASURED_DEPARTMENTS)

APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "Say who answers messages at weekends."}
REJECT = {"decision": "reject", "comment": "The department already has an account on this platform."}
RESUBMIT = {"action": "resubmit", "audience": "Residents, park users and their families."}
WITHDRAW = {"action": "withdraw", "comment": "We will post on the City's account instead."}
SETUP = "setup"  # the set-up confirmation, with an address of its own each time

# Kinds of request in the filler: (share of every 100 instances, the departments it may belong to, the
# decisions taken so far, by lane). Running ones wait for someone who is NOT measured, so the two inboxes
# stay the same size while the open-task index grows about a hundredfold.
KINDS = {
    "approved": (50, ALL_DEPARTMENTS, [("head", APPROVE), ("comms", APPROVE), ("requester", SETUP)]),
    "approved_after_revision": (
        10,
        ALL_DEPARTMENTS,
        [("head", RETURN), ("requester", RESUBMIT), ("head", APPROVE), ("comms", APPROVE), ("requester", SETUP)],
    ),
    "rejected": (12, ALL_DEPARTMENTS, [("head", REJECT)]),
    "rejected_by_communications": (2, ALL_DEPARTMENTS, [("head", APPROVE), ("comms", REJECT)]),
    "withdrawn": (8, ALL_DEPARTMENTS, [("head", RETURN), ("requester", WITHDRAW)]),
    "waiting_for_head": (6, OTHER_DEPARTMENTS, []),
    "waiting_for_setup": (6, ALL_DEPARTMENTS, [("head", APPROVE), ("comms", APPROVE)]),
    "waiting_for_revision": (4, ALL_DEPARTMENTS, [("head", RETURN)]),
    "waiting_for_lieutenant": (2, ("police",), [("head", APPROVE)]),  # an investigative profile
}


def _start_data(department: str, name: str, manager: str, investigative: bool = False) -> dict:
    return {
        "platform": "facebook",
        "account_name": name,
        "department": department,
        "purpose": "Program announcements and closures.",
        "audience": "Residents and park users.",
        "proposed_managers": [manager],
        "investigative": investigative,
    }


@dataclass
class Template:
    """A real instance to copy: its row, its task rows, and the account name to rename in its state."""

    row: dict
    tasks: list[dict]
    account_name: str


# ---- one database, built the same way at every size ----------------------------------------------


class Database:
    """A migrated database with the people, the real requests, and filler instances up to `size`."""

    def __init__(self, url: str, folder: Path, size: int):
        self.url, self.folder, self.size = url, folder, size
        self.engine = make_engine(url)
        upgrade(self.engine)
        self.settings = Settings.from_env(
            instance_path=folder, database_url=url, secret_key=SECRET, secure_cookies=False
        )
        factory = make_sessionmaker(self.engine)
        self.sessions = lambda: factory(info={"settings": self.settings})
        self.setups = 0
        with self.sessions() as session:
            create_departments(session)
            services.sync_workflows(session)
            session.commit()
            self.actors = self._people(session)
            self.templates = self._templates(session)
            self._inbox_requests(session)
        self.real = self._count()
        began = time.perf_counter()
        self._fill(size - self.real)
        self.fill_seconds = time.perf_counter() - began
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("ANALYZE")  # what autovacuum does after a bulk load

    def _count(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(ProcessInstance))

    def _people(self, session) -> dict[str, users.Actor]:
        people = [("requester", "parks", [], []), ("lieutenant", "police", ["administrative_lieutenant"], [])]
        people += [
            (username, code, ["communications_manager"] if username == "comms" else [], [code])
            for code, username in HEADS.items()
        ]
        people += [
            (f"{code}_staff_{n}", code, [], []) for code in ALL_DEPARTMENTS for n in range(1, STAFF_PER_DEPARTMENT + 1)
        ]
        made = {}
        for username, department, roles, head_of in people:
            made[username] = users.create_user(
                session,
                username,
                PASSWORD,
                name=username.replace("_", " ").title(),
                email=f"{username}@example.org",
                department=department,
                roles=roles,
                head_of=head_of,
            )
        session.commit()
        return {username: users.actor_for(session, user) for username, user in made.items()}

    def _decide(self, session, instance_id: int, actor: users.Actor, data) -> None:
        [task] = session.scalars(select(Task).where(Task.instance_id == instance_id, Task.status == "open"))
        if data == SETUP:
            self.setups += 1
            data = {
                "account_url": f"https://facebook.com/wsp-bench-{self.setups}",
                "marked_as_city": True,
                "links_official_site": True,
                "public_notice_linked": True,
            }
        services.complete_task(session, actor, task.id, data)

    def _request(self, session, department: str, starter: str, name: str, steps, investigative=False) -> int:
        """Start a real request and take its decisions; commit; return its id."""
        requester = self.actors[starter]
        instance = services.start_instance(
            session, requester, KEY, _start_data(department, name, starter, investigative)
        )
        lanes = {"head": self.actors[HEADS[department]], "comms": self.actors["comms"], "requester": requester}
        for lane, data in steps:
            self._decide(session, instance.id, lanes[lane], data)
        session.commit()
        return instance.id

    def _templates(self, session) -> dict[tuple[str, str], Template]:
        """One real request per kind and department, to be copied by the filler."""
        templates = {}
        for kind, (_share, departments, steps) in KINDS.items():
            for department in departments:
                name = f"Template {kind} {department}"
                instance_id = self._request(
                    session,
                    department,
                    f"{department}_staff_1",
                    name,
                    steps,
                    investigative=kind == "waiting_for_lieutenant",
                )
                instance = session.get(ProcessInstance, instance_id)
                row = {column.key: getattr(instance, column.key) for column in ProcessInstance.__table__.columns}
                tasks = [
                    {column.key: getattr(task, column.key) for column in Task.__table__.columns}
                    for task in session.scalars(
                        select(Task).where(Task.instance_id == instance_id).order_by(Task.created_at, Task.id)
                    )
                ]
                templates[kind, department] = Template(row, tasks, name)
        return templates

    def _inbox_requests(self, session) -> None:
        """The measured inboxes: real requests waiting for the Parks head and for the Communications Manager."""
        head, comms = self.actors["parks_head"], self.actors["comms"]
        for n in range(HEAD_WAITING + HEAD_CLAIMED):
            instance_id = self._request(session, "parks", "requester", f"Parks program {n}", [])
            if n < HEAD_CLAIMED:
                [task] = services.open_tasks_of(session, session.get(ProcessInstance, instance_id))
                services.claim_task(session, head, task.id)
                session.commit()
        for n in range(COMMS_WAITING + COMMS_CLAIMED):
            instance_id = self._request(session, "parks", "requester", f"Parks events {n}", [("head", APPROVE)])
            if n < COMMS_CLAIMED:
                [task] = services.open_tasks_of(session, session.get(ProcessInstance, instance_id))
                services.claim_task(session, comms, task.id)
                session.commit()
        for n in range(COMMS_AS_HEAD):
            self._request(session, "communications", "communications_staff_2", f"City news {n}", [])

    # ---- the filler: bulk inserts copying the templates ----

    def _fill(self, count: int) -> None:
        rng = random.Random(20260101)
        cycle = [kind for kind, (share, _departments, _steps) in KINDS.items() for _ in range(share)]
        user_ids = {username: actor.id for username, actor in self.actors.items()}
        with self.engine.connect() as connection:
            first_id = connection.scalar(select(func.max(ProcessInstance.id))) + 1
        began_at = clock.utcnow() - timedelta(minutes=count + 60)  # older than the real requests
        done = 0
        while done < count:
            instances, tasks = [], []
            for n in range(done, min(count, done + CHUNK)):
                if n % len(cycle) == 0:
                    rng.shuffle(cycle)
                kind = cycle[n % len(cycle)]
                departments = KINDS[kind][1]
                department = departments[rng.randrange(len(departments))]
                starter = user_ids[f"{department}_staff_{rng.randrange(STAFF_PER_DEPARTMENT) + 1}"]
                self._copy(
                    self.templates[kind, department],
                    first_id + n,
                    starter,
                    began_at + timedelta(minutes=n),
                    instances,
                    tasks,
                )
            with self.engine.begin() as connection:
                connection.execute(insert(ProcessInstance), instances)
                connection.execute(insert(Task), tasks)
            done += len(instances)
        if self.engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            with self.engine.begin() as connection:
                connection.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('process_instance', 'id'), "
                    "(SELECT max(id) FROM process_instance))"
                )

    @staticmethod
    def _copy(template: Template, instance_id: int, starter: int, started_at, instances: list, tasks: list) -> None:
        """One copy of a template: renamed, its user tasks under fresh ids (in the state too), its own times."""
        name = f"Request {instance_id}"
        state = template.row["state"].replace(template.account_name, name)
        at = started_at
        for source in template.tasks:
            task_id = str(uuid.uuid4())
            state = state.replace(source["id"], task_id)
            requester_task = source["role"] == REQUESTER
            done = source["state"] != "open"
            task = {
                **source,
                "id": task_id,
                "instance_id": instance_id,
                "created_at": at,
                "completed_at": at + timedelta(hours=5) if done else None,
            }
            if requester_task:
                task["assignee_id"] = starter
                task["completed_by_id"] = starter if done else None
            tasks.append(task)
            at += timedelta(hours=6)
        row = template.row
        instances.append(
            {
                **row,
                "id": instance_id,
                "title": row["title"].replace(template.account_name, name),
                "data": {**row["data"], "account_name": name},
                "state": state,
                "started_by_id": starter,
                "started_at": started_at,
                "ended_at": at if row["status"] != "running" else None,
                "version": 1,
            }
        )

    def close(self) -> None:
        """Let go of the engine's connections."""
        self.engine.dispose()


# ---- the app, its inbox page, its statements ------------------------------------------------------


class Inbox:
    """The real app on one database, a logged-in test client per measured person."""

    def __init__(self, database: Database):
        from web import create_app

        self.database = database
        self.app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, settings=database.settings)
        self.engine = self.app.extensions["civicflow.engine"]
        self.clients = {}
        for username in EXPECTED:
            client = self.app.test_client()
            response = client.post("/login", data={"username": username, "password": PASSWORD})
            assert response.status_code == 302, (username, response.status_code)
            self.clients[username] = client

    def get(self, username: str, view: str) -> str:
        """One inbox page; it must be a 200."""
        response = self.clients[username].get(f"/inbox?view={view}")
        assert response.status_code == 200, response.status_code
        return response.get_data(as_text=True)

    def check(self) -> None:
        """Each page lists exactly the tasks made for it, at every size."""
        for username, views in EXPECTED.items():
            for view, count in views.items():
                caption = f"{VIEW_CAPTION[view]}: {count} task{'' if count == 1 else 's'}"
                assert caption in self.get(username, view), (self.database.size, username, view, caption)

    def statements(self, username: str, view: str) -> list[tuple[str, object]]:
        """The SQL statements (with their parameters) of one inbox page."""
        seen = []

        def on_execute(_conn, _cursor, statement, parameters, *_args):
            seen.append((statement, parameters))

        event.listen(self.engine, "before_cursor_execute", on_execute)
        try:
            self.get(username, view)
        finally:
            event.remove(self.engine, "before_cursor_execute", on_execute)
        return seen

    def task_statements(self, username: str, view: str) -> list[tuple[str, str, object]]:
        """The page's statements that read the task table: (what it is, SQL, parameters)."""
        found = []
        for statement, parameters in self.statements(username, view):
            if "FILTER (WHERE" in statement:
                found.append(("nav counts (services.count_open_tasks)", statement, parameters))
            elif statement.lstrip().startswith("SELECT count(*)"):
                found.append((f"?view={view} page total (list_tasks, more than a page)", statement, parameters))
            elif "FROM task" in statement:
                found.append((f"?view={view} rows (services.list_tasks)", statement, parameters))
        return found

    def explain(self, statement: str, parameters) -> list[str]:
        """The statement's plan: SQLite's EXPLAIN QUERY PLAN, or PostgreSQL's nodes that read the task table."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                depth, lines = {0: -1}, []
                for node, parent, _unused, detail in rows:
                    depth[node] = depth.get(parent, -1) + 1
                    lines.append("  " * depth[node] + detail)
                return lines
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, parameters
            ).all()
        lines, keep = [], False
        for (line,) in rows:
            if line.lstrip().startswith("->") or not lines and not keep:
                keep = " on task" in line or "ix_task" in line or "BitmapOr" in line
            if keep:
                lines.append(line)
        indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
        return [line[indent:] for line in lines]

    def time_statement(self, statement: str, parameters, runs: int = 30) -> float:
        """The median time of the statement alone, its rows fetched."""
        seconds = []
        with self.engine.connect() as connection:
            for _ in range(runs):
                began = time.perf_counter()
                connection.exec_driver_sql(statement, parameters).all()
                seconds.append(time.perf_counter() - began)
        return statistics.median(seconds)

    def close(self) -> None:
        """Let go of the app's connections."""
        self.engine.dispose()


# ---- measuring -----------------------------------------------------------------------------------


def _bench_engine():
    """bench/engine.py as a module (its file name would shadow the `engine` package on import)."""
    if "bench_engine" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_engine", _HERE / "engine.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_engine"]


def _line(label: str, seconds: list[float], unit: str = "pages") -> str:
    return _bench_engine()._line(label, seconds, unit, width=46)


def measure(kind: str, inboxes: dict[int, Inbox], runs: int, rounds: int, warmup: int) -> dict[str, tuple]:
    """Time every page on every size in interleaved rounds; print the figures; return the medians per page."""
    series = {
        (size, username, view): (lambda inbox=inbox, username=username, view=view: inbox.get(username, view))
        for size, inbox in inboxes.items()
        for username, views in EXPECTED.items()
        for view in views
    }
    times = _bench_engine().interleaved(series, runs, rounds, warmup)
    medians = {}
    small, large = SIZES
    for username, views in EXPECTED.items():
        for view, count in views.items():
            statements = {size: len(inboxes[size].statements(username, view)) for size in SIZES}
            for size in SIZES:
                label = f"{username} {view} ({count} tasks), {size:,} inst."
                print(_line(label, times[size, username, view]) + f"  {statements[size]} SQL")
            medians[f"{kind} {username} {view}"] = (
                statistics.median(times[small, username, view]),
                statistics.median(times[large, username, view]),
            )
    return medians


def _describe(database: Database, kind: str) -> str:
    with database.engine.connect() as connection:
        tasks = connection.scalar(select(func.count()).select_from(Task))
        open_tasks = connection.scalar(select(func.count()).select_from(Task).where(Task.status == "open"))
        running = connection.scalar(
            select(func.count()).select_from(ProcessInstance).where(ProcessInstance.status == "running")
        )
    size = ""
    if kind == "SQLite":
        size = f", file {Path(make_url(database.url).database).stat().st_size / 2**20:,.0f} MiB"
    return (
        f"{database.size:,} instances ({database.real} real, the rest copied in {database.fill_seconds:.1f} s): "
        f"{running:,} running, {tasks:,} task rows, {open_tasks:,} open{size}"
    )


def _postgres_databases(admin_url: str):
    """Two throwaway databases on the server of admin_url, and a function that drops them."""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    stem = f"civicflow_bench_{uuid.uuid4().hex[:8]}"
    names = {size: f"{stem}_{size}" for size in SIZES}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    urls = {
        size: make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        for size, name in names.items()
    }
    return urls, drop


def run_on(kind: str, urls: dict[int, str], folder: Path, options) -> dict[str, tuple]:
    """Build both databases, check the pages, print the plans, time the pages; return the medians."""
    databases, inboxes = {}, {}
    try:
        for size in SIZES:
            databases[size] = Database(urls[size], folder / str(size), size)
            inboxes[size] = Inbox(databases[size])
            inboxes[size].check()
        print(f"-- {kind}")
        for size in SIZES:
            print(_describe(databases[size], kind))
        small, large = inboxes[SIZES[0]], inboxes[SIZES[-1]]
        for username in EXPECTED:
            shown = set()
            for view in VIEW_CAPTION:
                pairs = zip(large.task_statements(username, view), small.task_statements(username, view), strict=True)
                for (label, statement, parameters), (_label, small_statement, small_parameters) in pairs:
                    if label in shown:
                        continue
                    shown.add(label)
                    print(
                        f"{username}, {label}: alone {large.time_statement(statement, parameters) * 1000:.3f} ms "
                        f"at {SIZES[-1]:,}, {small.time_statement(small_statement, small_parameters) * 1000:.3f} ms "
                        f"at {SIZES[0]:,}; plan at {SIZES[-1]:,}:"
                    )
                    print("\n".join(f"    {line}" for line in large.explain(statement, parameters)))
        return measure(kind, inboxes, options.runs, options.rounds, options.warmup)
    finally:
        for inbox in inboxes.values():
            inbox.close()
        for database in databases.values():
            database.close()


def main(argv=None) -> None:
    """Parse the options, build the databases, print the figures; the last line is the worst ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed pages per person, view and size (default 200)")
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up pages per series (default 20)")
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, in throwaway databases on this server")
    options = parser.parse_args(argv)
    users.PASSWORD_METHOD["method"] = "pbkdf2:sha256:1000"  # password hashing is not what we measure
    # create_app asks for INFO logging unless logging is set up already; SpiffWorkflow's INFO lines would
    # then be formatted and printed on every step of the bare run (three times slower).
    logging.basicConfig(level=logging.WARNING)

    began = time.perf_counter()
    print(
        f"civicflow inbox benchmark: GET /inbox?view=available and ?view=mine through the Flask app, at "
        f"{SIZES[0]:,} and {SIZES[1]:,} instances; {options.runs} pages per series in {options.rounds} "
        f"interleaved rounds after {options.warmup} warm-up pages; medians"
    )
    print(
        f"Python {sys.version.split()[0]}, SQLAlchemy {version('SQLAlchemy')}, Flask {version('Flask')}, "
        f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL), {os.cpu_count()} CPUs"
    )
    folder = Path(tempfile.mkdtemp(prefix="civicflow-inbox-bench-"))
    medians = {}
    try:
        urls = {size: f"sqlite:///{folder / f'civicflow-{size}.sqlite3'}" for size in SIZES}
        medians |= run_on("SQLite", urls, folder, options)
        if options.postgres:
            urls, drop = _postgres_databases(options.postgres)
            try:
                medians |= run_on("PostgreSQL", urls, folder, options)
            finally:
                drop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    bare = _bench_engine().Bare().in_memory  # bench/engine.py's variant (a): one approval in memory
    bare_times = _bench_engine().interleaved({"bare": bare}, options.runs, 1, options.warmup)["bare"]
    print(_line("[info] bare SpiffWorkflow, one approval", bare_times, "runs") + "  (bench/engine.py (a))")
    print(f"wall time {time.perf_counter() - began:.1f} s")
    ratios = {label: large / small for label, (small, large) in medians.items()}
    for label, ratio in ratios.items():
        print(f"ratio {label} 100k/1k: {ratio:.2f}")
    worst = max(ratios, key=ratios.get)
    print(
        f"ratio inbox page at 100k ({worst})/bare approval [info]: "
        f"{medians[worst][1] / statistics.median(bare_times):.2f}"
    )
    print(f"worst: {worst}")
    print(f"ratio inbox 100k/1k: {ratios[worst]:.2f}")


if __name__ == "__main__":
    main()
