"""The inbox stays one indexed query: the inbox page at 1,000 and at 100,000 instances, on SQLite (and PostgreSQL).

Two databases are built alike: the same people, and the same real requests started and decided through
engine.requests.services, so that the Parks Department Head and the Communications Manager have the same open tasks
in both. One database is then filled to 1,000 instances, the other to 100,000, with bulk inserts that copy
real instances (their state JSON and task rows): mostly finished requests, the running ones waiting for
other departments' heads, the Administrative Lieutenant or their own requesters. The inbox pages of the
two people are timed through the real app (Flask test client, logged in, the nav counts included), the
two databases in interleaved rounds so that machine noise hits both alike.

    .venv/bin/python -m bench.inbox                  # or `make bench`: about a minute on 2 cores
    .venv/bin/python -m bench.inbox --runs 60        # quicker, noisier
    .venv/bin/python -m bench.inbox --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test   # 2 min more

The last line is `ratio inbox 100k/1k: X.XX`: the worst, over both people, both views and every database
measured, of median(page at 100,000) / median(page at 1,000). The goal is below 1.5.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench import harness
from bench.engine import Bare
from engine.db.models import ProcessInstance, Task
from engine.demo import DEPARTMENTS, create_departments
from engine.people import users
from engine.people.roles import REQUESTER
from engine.requests import services
from engine.time import clock
from engine.versions import shipped

KEY = harness.ACCOUNT_REQUEST
SIZES = harness.SIZES
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


class Database(harness.Database):
    """A migrated database with the people, the real requests, and filler instances up to `size`."""

    def __init__(self, url: str, folder: Path, size: int):
        super().__init__(url, folder, secure_cookies=False)
        self.size = size
        self.setups = 0
        with self.sessions() as session:
            create_departments(session)
            shipped.sync_workflows(session)
            session.commit()
            self.actors = self._people(session)
            self.templates = self._templates(session)
            self._inbox_requests(session)
        self.real = self._count()
        began = time.perf_counter()
        self._fill(size - self.real)
        self.bulk_loaded("process_instance")
        self.fill_seconds = time.perf_counter() - began

    def _count(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(ProcessInstance))

    @staticmethod
    def _people(session) -> dict[str, users.Actor]:
        people = [("requester", "parks", [], []), ("lieutenant", "police", ["administrative_lieutenant"], [])]
        people += [
            (username, code, ["communications_manager"] if username == "comms" else [], [code])
            for code, username in HEADS.items()
        ]
        people += [
            (f"{code}_staff_{n}", code, [], []) for code in ALL_DEPARTMENTS for n in range(1, STAFF_PER_DEPARTMENT + 1)
        ]
        return harness.create_people(session, people)

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
                row = harness.row_of(session.get(ProcessInstance, instance_id))
                tasks = [
                    harness.row_of(task)
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

    @staticmethod
    def _copy(template: Template, instance_id: int, starter: int, started_at, instances: list, tasks: list) -> None:
        """One copy of a template: renamed, its user tasks under fresh ids (in the state too), its own times.

        The rows are keyed by column, as Core inserts take them: "state" is the instance's workflow state and a
        task's status.
        """
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
            response = client.post("/login", data={"username": username, "password": harness.PASSWORD})
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
        with harness.recording(self.engine) as seen:
            self.get(username, view)
        return seen.statements

    def task_statements(self, username: str, view: str) -> list[tuple[str, str, object]]:
        """The page's statements that read the task table: (what it is, SQL, parameters)."""
        found = []
        for statement, parameters in self.statements(username, view):
            if "FILTER (WHERE" in statement:
                found.append(("nav counts (inbox.count_open_tasks)", statement, parameters))
            elif statement.lstrip().startswith("SELECT count(*)"):
                found.append((f"?view={view} page total (list_tasks, more than a page)", statement, parameters))
            elif "FROM task" in statement:
                found.append((f"?view={view} rows (inbox.list_tasks)", statement, parameters))
        return found

    def explain(self, statement: str, parameters) -> list[str]:
        """The statement's plan: SQLite's EXPLAIN QUERY PLAN, or PostgreSQL's nodes that read the task table."""
        with self.engine.connect() as connection:
            rows = harness.plan(connection, statement, parameters)
        if self.engine.dialect.name == "sqlite":
            return rows
        lines, keep = [], False
        for line in rows:
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


def _line(label: str, seconds: list[float], unit: str = "pages") -> str:
    return harness.line(label, seconds, unit, width=46)


def measure(kind: str, inboxes: dict[int, Inbox], runs: int, rounds: int, warmup: int) -> dict[str, tuple]:
    """Time every page on every size in interleaved rounds; print the figures; return the medians per page."""
    series = {
        (size, username, view): (lambda inbox=inbox, username=username, view=view: inbox.get(username, view))
        for size, inbox in inboxes.items()
        for username, views in EXPECTED.items()
        for view in views
    }
    times = harness.interleaved(series, runs, rounds, warmup)
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


def _describe(database: Database) -> str:
    with database.engine.connect() as connection:
        tasks = connection.scalar(select(func.count()).select_from(Task))
        open_tasks = connection.scalar(select(func.count()).select_from(Task).where(Task.status == "open"))
        running = connection.scalar(
            select(func.count()).select_from(ProcessInstance).where(ProcessInstance.status == "running")
        )
    return (
        f"{database.size:,} instances ({database.real} real, the rest copied in {database.fill_seconds:.1f} s): "
        f"{running:,} running, {tasks:,} task rows, {open_tasks:,} open{database.file_size()}"
    )


def run_on(where: harness.Databases, options) -> dict[str, tuple]:
    """Build both databases, check the pages, print the plans, time the pages; return the medians."""
    databases, inboxes = {}, {}
    with ExitStack() as stack:  # closes the apps and the databases at the end
        for size in SIZES:
            databases[size] = stack.enter_context(Database(where.urls[size], where.folder / str(size), size))
            inboxes[size] = stack.enter_context(closing(Inbox(databases[size])))
            inboxes[size].check()
        print(f"-- {where.kind}")
        for size in SIZES:
            print(_describe(databases[size]))
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
        return measure(where.kind, inboxes, options.runs, options.rounds, options.warmup)


def main(argv=None) -> None:
    """Parse the options, build the databases, print the figures; the last line is the worst ratio."""
    parser = harness.parser(
        __doc__,
        runs=200,
        runs_help="timed pages per person, view and size",
        rounds=40,
        warmup=20,
        warmup_help="warm-up pages per series",
    )
    options = harness.parse(parser, argv)

    began = time.perf_counter()
    harness.print_header(
        f"civicflow inbox benchmark: GET /inbox?view=available and ?view=mine through the Flask app, at "
        f"{SIZES[0]:,} and {SIZES[1]:,} instances; {options.runs} pages per series in {options.rounds} "
        f"interleaved rounds after {options.warmup} warm-up pages; medians",
        "SQLAlchemy",
        "Flask",
    )
    results = harness.on_each_database("inbox", SIZES, options.postgres, lambda where: run_on(where, options))
    medians = {label: pair for found in results.values() for label, pair in found.items()}

    bare = Bare().in_memory  # bench.engine's variant (a): one approval in memory
    bare_times = harness.interleaved({"bare": bare}, options.runs, 1, options.warmup)["bare"]
    print(_line("[info] bare SpiffWorkflow, one approval", bare_times, "runs") + "  (bench.engine's (a))")
    print(f"wall time {time.perf_counter() - began:.1f} s")
    ratios = {label: large / small for label, (small, large) in medians.items()}
    for label, ratio in ratios.items():
        harness.print_ratio(f"{label} 100k/1k", ratio)
    worst = max(ratios, key=ratios.get)
    harness.print_ratio(
        f"inbox page at 100k ({worst})/bare approval [info]", medians[worst][1] / statistics.median(bare_times)
    )
    harness.print_worst(ratios, "inbox 100k/1k")


if __name__ == "__main__":
    main()
