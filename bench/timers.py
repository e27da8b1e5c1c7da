"""A timers pass costs what is due, not what waits: timers.fire_due with 100 due among 1,000 and 100,000 waiting.

Two databases are built alike: the same people and 100 real requests started through engine.requests.services
some days ago, so that by the real clock the Department Head's reminder of each is due and its overdue
escalation is not. One database is then filled to 1,000 waiting timers, the other to 100,000, with bulk
inserts that copy a real request (its instance row and its two timer rows, due in the coming weeks).
Each pass is timed from a restored copy of its database (a copied SQLite file; a PostgreSQL database
created from a template), the sizes in interleaved rounds. For scale, bare SpiffWorkflow fires the same
100 workflows in memory: load the JSON state, refresh_timers, do_engine_steps, serialize.

    .venv/bin/python -m bench.timers                 # SQLite: about 2 minutes on 2 cores
    .venv/bin/python -m bench.timers --runs 5        # quicker, noisier
    .venv/bin/python -m bench.timers --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test   # 1 min more

The last line is `ratio timers 100k/1k: X.XX`: the worst, over the databases measured, of
median(pass among 100,000) / median(pass among 1,000). The goal is below 1.5.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bench import harness
from engine.db.connection import make_engine, make_sessionmaker
from engine.db.models import ProcessInstance, Timer
from engine.demo import create_departments
from engine.diagrams import serialization
from engine.requests import services
from engine.settings import Settings
from engine.time import clock, deadlines, timers
from engine.versions import shipped

KEY = harness.ACCOUNT_REQUEST
REVIEW = "department_head_review"  # the deadline of the task whose timers are fired
SIZES = harness.SIZES  # waiting timers
DUE = 100  # requests whose reminder is due: 100 due timers (and 100 escalations that are not)
CHUNK = 5_000  # copied instances per transaction


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


class Database(harness.Database):
    """A migrated database with the people, the 100 real requests and copies up to `size` waiting timers."""

    def __init__(self, where: harness.Databases, size: int):
        self.kind, self.folder, self.size, self.admin_url = where.kind, where.folder, size, where.admin_url
        super().__init__(where.urls[size], where.folder)
        with self.sessions() as session:
            create_departments(session)
            shipped.sync_workflows(session)
            requester = harness.create_people(session, harness.ACCOUNT_REQUEST_PEOPLE)["requester"]
            began = started_when(self.settings)
            ids = []
            for number in range(DUE):
                with clock.frozen_at(began + timedelta(seconds=number)):
                    ids.append(services.start_instance(session, requester, KEY, harness.ACCOUNT_REQUEST_START).id)
                session.commit()
            self.states = list(
                session.scalars(select(ProcessInstance.workflow_state).where(ProcessInstance.id.in_(ids)))
            )
            self.template = harness.row_of(session.get(ProcessInstance, ids[0]))
            self.element_ids = sorted(session.scalars(select(Timer.element_id).where(Timer.instance_id == ids[0])))
        started = time.perf_counter()
        self._fill((size - len(ids) * len(self.element_ids)) // len(self.element_ids))
        self.bulk_loaded("process_instance")
        self.fill_seconds = time.perf_counter() - started
        with self.engine.connect() as connection:
            self.waiting = connection.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None)))
            self.instances = connection.scalar(select(func.count()).select_from(ProcessInstance))
        with self.sessions() as session:
            self.due = timers.due_count(session)
        assert (self.waiting, self.due) == (size, DUE), (self.waiting, self.due)
        self.size_note = self.file_size()
        self.close()

    def _fill(self, count: int) -> None:
        """Copies of a real request, each with its timers due some day in the coming two months."""
        rng = random.Random(20260302)
        now = clock.utcnow()
        with self.engine.connect() as connection:
            first_id = connection.scalar(select(func.max(ProcessInstance.id))) + 1
        done = 0
        while done < count:
            instances, timer_rows = [], []
            for instance_id in range(first_id + done, first_id + min(count, done + CHUNK)):
                instances.append({**self.template, "id": instance_id, "version": 1})
                due = now + timedelta(days=1, minutes=rng.randrange(60 * 24 * 60))
                for offset, element_id in enumerate(self.element_ids):
                    timer_rows.append(
                        {  # keyed by column: the element id's column is still spec_name
                            "id": str(uuid.uuid4()),
                            "instance_id": instance_id,
                            "spec_name": element_id,
                            "due_at": due + timedelta(days=2 * offset),
                            "fired_at": None,
                        }
                    )
            with self.engine.begin() as connection:
                connection.execute(insert(ProcessInstance), instances)
                connection.execute(insert(Timer), timer_rows)
            done += len(instances)

    def restore(self) -> str:
        """A fresh copy of the built database; its URL."""
        if self.kind == "SQLite":
            copy = self.folder / f"run-{self.size}.sqlite3"
            for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copyfile(make_url(self.url).database, copy)
            os.sync()  # the copy on disk now, not written back while the pass commits
            return f"sqlite:///{copy}"
        name = f"{make_url(self.url).database}_run"  # dropped at the end with the database it copies
        with harness.admin(self.admin_url) as admin:
            admin.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # FILE_COPY (PostgreSQL 15+) copies the files between two checkpoints; the default writes the whole
            # copy to the WAL, which the pass would then be flushing behind.
            strategy = " STRATEGY FILE_COPY" if admin.dialect.server_version_info >= (15,) else ""
            admin.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(self.url).database}"{strategy}')
        os.sync()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def describe(self) -> str:
        """What was built."""
        return (
            f"{self.waiting:,} waiting timers ({self.due} due) on {self.instances:,} requests "
            f"({DUE} real, the rest copied in {self.fill_seconds:.1f} s){self.size_note}"
        )


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

        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            with harness.recording(engine) as seen:
                began = time.perf_counter()
                fired = timers.fire_due(sessions)
                seconds = time.perf_counter() - began
            self.statements = seen.statements
            assert len(fired) == DUE and all(len(f.timers) == 1 and f.error is None for f in fired), fired[:3]
            self.plan = self._explain(engine)
        finally:
            engine.dispose()
        return seconds

    def _explain(self, engine) -> list[str]:
        """The plan of the pass's last claim (the one that finds nothing more due), as the database has it now."""
        statement, parameters = [s for s in self.statements if "FROM timer JOIN process_instance" in s[0]][-1]
        with engine.connect() as connection:
            lines = harness.plan(connection, statement, parameters)
            connection.rollback()  # EXPLAIN ANALYZE ran the claim, FOR UPDATE and all
        return lines


class Bare(harness.BareDiagram):
    """The same 100 workflows in bare SpiffWorkflow: its own parser and script engine, the saved JSON states."""

    def __init__(self, states: list[str]):
        super().__init__(KEY)
        self.states = states

    def run(self) -> float:
        """Load, refresh_timers, do_engine_steps and serialize each workflow; check one timer fired in each."""
        began = time.perf_counter()
        fired = []
        for saved in self.states:
            workflow = self.load(saved)
            waiting = [
                t
                for t in workflow.get_tasks(state=TaskState.WAITING)
                if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
            ]
            workflow.refresh_timers()
            workflow.do_engine_steps()
            serialization.dumps(workflow)
            fired.append(sum(t.state != TaskState.WAITING for t in waiting))
        seconds = time.perf_counter() - began
        assert fired == [1] * len(self.states), fired
        return seconds


# ---- measuring ------------------------------------------------------------------------------------


def _line(label: str, seconds: list[float]) -> str:
    median, q1, q3 = harness.quartiles(seconds)
    return (
        f"{label:<44} median {median * 1000:8.1f} ms per pass, {median / DUE * 1000:6.2f} ms per request"
        f"  (IQR {q1 * 1000:.1f}-{q3 * 1000:.1f} ms, n={len(seconds)})"
    )


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def run_on(where: harness.Databases, runs: int, warmup: int) -> tuple[dict[int, float], float]:
    """Build both sizes, time the passes and the bare firing; print; return the medians and bare's median."""
    databases = {}
    for size in SIZES:
        began = time.perf_counter()
        databases[size] = Database(where, size)
        print(f"-- {where.kind}, built in {time.perf_counter() - began:.0f} s: {databases[size].describe()}")
    passes = {size: Pass(databases[size]) for size in SIZES}
    bare = Bare(databases[SIZES[0]].states)
    series = {**{size: harness.Measured(p.run) for size, p in passes.items()}, "bare": harness.Measured(bare.run)}
    times = harness.interleaved(series, runs, runs, warmup)  # a round is one pass of each
    restore = statistics.median([_timed(databases[SIZES[-1]].restore) for _ in range(3)])
    for size in SIZES:
        label = f"{where.kind}, {DUE} due among {size:,} waiting"
        print(_line(label, times[size]) + f"  {len(passes[size].statements)} SQL")
    print(_line("bare SpiffWorkflow, the same 100 in memory", times["bare"]))
    print(f"(restoring the {SIZES[-1]:,} copy before each pass, not timed: {restore:.1f} s)")
    print(f"plan of the last claim at {SIZES[-1]:,} waiting:")
    for line in passes[SIZES[-1]].plan:  # the ids already tried in the pass make a long list: shortened
        print(f"    {line[:150]} ...)" if len(line) > 160 else f"    {line}")
    medians = {size: statistics.median(times[size]) for size in SIZES}
    return medians, statistics.median(times["bare"])


def main(argv=None) -> None:
    """Parse the options, build the databases, print the figures; the last line is the worst ratio."""
    parser = harness.parser(
        __doc__, runs=9, runs_help="timed passes per size", warmup=1, warmup_help="untimed passes per size first"
    )
    options = harness.parse(parser, argv)

    began = time.perf_counter()
    harness.print_header(
        f"civicflow timers benchmark: one pass of timers.fire_due, {DUE} due timers (the Department Head's "
        f"reminder of {DUE} requests) among {SIZES[0]:,} and among {SIZES[1]:,} waiting; {options.runs} passes "
        f"per size from a restored copy, interleaved, after {options.warmup} warm-up; medians",
        "SpiffWorkflow",
        "SQLAlchemy",
    )
    results = harness.on_each_database(
        "timers", SIZES, options.postgres, lambda where: run_on(where, options.runs, options.warmup)
    )
    print(f"wall time {time.perf_counter() - began:.1f} s")
    ratios = {}
    for kind, (medians, bare) in results.items():
        small, large = (medians[size] for size in SIZES)
        harness.print_ratio(f"{kind} civicflow/bare at {SIZES[0]:,}", small / bare)
        harness.print_ratio(f"{kind} civicflow/bare at {SIZES[1]:,}", large / bare)
        ratios[kind] = large / small
        harness.print_ratio(f"{kind} timers 100k/1k", ratios[kind])
    harness.print_worst(ratios, "timers 100k/1k")


if __name__ == "__main__":
    main()
