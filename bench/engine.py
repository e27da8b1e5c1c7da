"""The 3-user-task approval (procedure 1, standard path): bare SpiffWorkflow 3.2.0 against civicflow on SQLite.

Variants, each one complete approval per run (start, department head approves, Communications Manager
approves, requester confirms the set-up):

  (a)  bare SpiffWorkflow in memory, its own default script engine;
  (b)  bare, persisted: BpmnWorkflowSerializer (SPIFF_CONFIG, full state WITH the spec),
       save after start, then load + complete + save around each user task;
  (b2) informational: (b) with the spec cached, i.e. the spec-free JSON of engine/diagrams/serialization.py;
  (b3) informational: (b2) with civicflow's RestrictedPython script engine: the whole SpiffWorkflow
       part of what civicflow does, without the database;
  (c)  civicflow's services on a fresh SQLite file (WAL, synchronous=FULL): start_instance + commit,
       then per task list_tasks + complete_task + commit, a new session and write transaction per step.

Runs are interleaved in rounds so that machine noise hits all variants alike; figures are per-run
medians. The last line is `ratio civicflow/bare-persisted: X.XX` = median(c) / median(b).

    .venv/bin/python bench/engine.py                 # or `make bench`: about 20 s on 2 cores
    .venv/bin/python bench/engine.py --runs 100      # quicker
    .venv/bin/python bench/engine.py --profile /tmp/civicflow-bench.prof   # where (c)'s time goes
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/engine.py: run as a script, its folder comes first on sys.path and would shadow the
# `engine` package. Put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from importlib.metadata import version  # noqa: E402

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import event  # noqa: E402

from engine.db.connection import begin_write, make_engine, make_sessionmaker  # noqa: E402
from engine.db.migrate import upgrade  # noqa: E402
from engine.demo import create_departments  # noqa: E402
from engine.diagrams import serialization  # noqa: E402
from engine.diagrams.sandbox import SCRIPT_ENGINE  # noqa: E402
from engine.people import users  # noqa: E402
from engine.requests import services  # noqa: E402
from engine.settings import REPO_ROOT, Settings  # noqa: E402
from engine.time import deadlines  # noqa: E402

KEY = "new_account_request"
DIAGRAM = REPO_ROOT / "workflows" / f"{KEY}.bpmn"
ENGINE_DIR = str(REPO_ROOT / "engine")

# As in tests/conftest.py.
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
# What civicflow's start form makes of START (the optional fields filled in), for the bare variants.
BARE_START = {**START, "investigative": False, "notice_and_link_plan": None}
TASK_DATA = {
    "department_head_review": {"decision": "approve"},
    "communications_review": {"decision": "approve", "comment": "Fine."},
    "confirm_setup": SETUP,
}


# ---- bare SpiffWorkflow ----------------------------------------------------------------------------

# SpiffWorkflow's own script engine (plain eval, no sandbox), given the diagram's timer helpers.
BARE_ENGINE = PythonScriptEngine(
    environment=TaskDataEnvironment(
        {
            "due_time": deadlines.due_time,
            "reminder_time": deadlines.reminder_time,
            "escalation_time": deadlines.escalation_time,
        }
    )
)


class Bare:
    """The diagram parsed once; the approval run in memory or around a serializer."""

    def __init__(self):
        parser = SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_file(str(DIAGRAM))
        self.spec = parser.get_spec(KEY)
        self.subprocess_specs = parser.get_subprocess_specs(KEY)
        self.full = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

    def _start(self, script_engine=None) -> BpmnWorkflow:
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=script_engine or BARE_ENGINE)
        workflow.get_next_task(state=TaskState.READY).data.update(BARE_START)
        workflow.do_engine_steps()
        return workflow

    @staticmethod
    def _complete_one(workflow: BpmnWorkflow) -> str:
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        task.data.update(TASK_DATA[task.task_spec.bpmn_id])
        task.run()
        workflow.do_engine_steps()
        return task.task_spec.bpmn_id

    @staticmethod
    def _check(workflow: BpmnWorkflow, done: list[str]) -> None:
        assert workflow.completed and workflow.data.get("outcome") == "approved", workflow.data
        assert done == list(TASK_DATA), done

    def in_memory(self) -> None:
        """(a): everything in memory."""
        workflow = self._start()
        done = []
        while not workflow.completed:
            done.append(self._complete_one(workflow))
        self._check(workflow, done)

    def persisted(self) -> None:
        """(b): the serializer's default JSON, spec included."""
        workflow = self._start()
        saved = self.full.serialize_json(workflow)
        done = []
        while not workflow.completed:
            workflow = self.full.deserialize_json(saved)
            workflow.script_engine = BARE_ENGINE
            done.append(self._complete_one(workflow))
            saved = self.full.serialize_json(workflow)
        self._check(workflow, done)

    def _spec_free_load(self, saved: str, script_engine) -> BpmnWorkflow:
        if script_engine is None:  # serialization.loads would install civicflow's sandbox
            dct = json.loads(saved)
            dct.pop(serialization.FORMAT_KEY, None)
            workflow = serialization.SERIALIZER.from_dict(dct, spec=self.spec, subprocess_specs=self.subprocess_specs)
            workflow.script_engine = BARE_ENGINE
            return workflow
        return serialization.loads(saved, self)  # self has the .spec and .subprocess_specs of a LoadedSpec

    def spec_cached(self, script_engine=None) -> None:
        """(b2), or (b3) with civicflow's sandboxed script engine: engine.diagrams.serialization's JSON, no spec."""
        workflow = self._start(script_engine)
        saved = serialization.dumps(workflow)
        done = []
        while not workflow.completed:
            workflow = self._spec_free_load(saved, script_engine)
            done.append(self._complete_one(workflow))
            saved = serialization.dumps(workflow)
        self._check(workflow, done)

    def sizes(self) -> tuple[int, int]:
        """Bytes of the saved state after the start: full, and without the spec."""
        workflow = self._start()
        return len(self.full.serialize_json(workflow)), len(serialization.dumps(workflow))


# ---- civicflow -------------------------------------------------------------------------------------


class Civicflow:
    """A fresh SQLite file, migrated, with the departments, the shipped diagrams and the three people."""

    def __init__(self):
        users.PASSWORD_METHOD["method"] = "pbkdf2:sha256:1000"  # password hashing is not what we measure
        self.folder = Path(tempfile.mkdtemp(prefix="civicflow-bench-"))
        self.url = f"sqlite:///{self.folder / 'civicflow.sqlite3'}"
        self.engine = make_engine(self.url)
        upgrade(self.engine)
        settings = Settings.from_env(
            instance_path=self.folder, database_url=self.url, secret_key="bench-secret-key-that-is-long-enough-for-hkdf"
        )
        factory = make_sessionmaker(self.engine)
        self.sessions = lambda: factory(info={"settings": settings})
        with self.sessions() as session:
            create_departments(session)
            services.sync_workflows(session)
            people = {}
            for username, department, roles, head_of in (
                ("requester", "parks", [], []),
                ("parks_head", "parks", [], ["parks"]),
                ("comms", "communications", ["communications_manager"], ["communications"]),
            ):
                user = users.create_user(
                    session,
                    username,
                    "correct horse battery",
                    name=username.title(),
                    email=f"{username}@example.org",
                    department=department,
                    roles=roles,
                    head_of=head_of,
                )
                people[username] = user
            session.commit()
            actors = {name: users.actor_for(session, user) for name, user in people.items()}
        self.requester = actors["requester"]
        self.steps = [
            (actors["parks_head"], "available", "department_head_review"),
            (actors["comms"], "available", "communications_review"),
            (actors["requester"], "mine", "confirm_setup"),
        ]
        self.count = 0

    def run(self) -> None:
        """(c): one approval, a session and a write transaction per step, as web.db.transactional does."""
        self.count += 1
        with self.sessions() as session:
            begin_write(session)
            instance_id = services.start_instance(session, self.requester, KEY, START).id
            session.commit()
        for actor, scope, form_key in self.steps:
            data = TASK_DATA[form_key]
            if form_key == "confirm_setup":  # the registry takes each address once
                data = {**data, "account_url": f"{data['account_url']}-{self.count}"}
            with self.sessions() as session:
                begin_write(session)
                rows, _total = services.list_tasks(session, actor, scope)
                [task] = [row for row in rows if row.instance_id == instance_id]
                assert task.form_key == form_key, task.form_key
                instance = services.complete_task(session, actor, task.id, data)
                session.commit()
        assert (instance.status, instance.outcome) == ("completed", "approved"), instance.status

    def statements(self) -> tuple[Counter, int]:
        """SQL statements of one run, by kind, and the number of commits."""
        kinds: Counter = Counter()
        commits = [0]

        def on_execute(_conn, _cursor, statement, *_args):
            kinds[statement.split(None, 1)[0].upper()] += 1

        def on_commit(_conn):
            commits[0] += 1

        event.listen(self.engine, "before_cursor_execute", on_execute)
        event.listen(self.engine, "commit", on_commit)
        try:
            self.run()
        finally:
            event.remove(self.engine, "before_cursor_execute", on_execute)
            event.remove(self.engine, "commit", on_commit)
        return kinds, commits[0]

    def close(self) -> None:
        """Drop the engine and the temporary folder."""
        self.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)


# ---- measuring -------------------------------------------------------------------------------------


def _time_block(run, count: int, into: list[float]) -> None:
    gc.collect()
    for _ in range(count):
        began = time.perf_counter()
        run()
        into.append(time.perf_counter() - began)


def interleaved(series: dict, runs: int, rounds: int, warmup: int) -> dict:
    """Time each of several callables `runs` times in interleaved rounds (who goes first rotates), so that
    machine noise hits them all alike; returns the seconds of every run by key."""
    for run in series.values():
        _time_block(run, warmup, [])
    times: dict = {key: [] for key in series}
    per_round = max(1, runs // rounds)
    keys = list(series)
    for number in range(rounds):
        for key in keys[number % len(keys) :] + keys[: number % len(keys)]:
            _time_block(series[key], per_round, times[key])
    return times


def _line(label: str, seconds: list[float], unit: str = "runs", width: int = 44) -> str:
    median = statistics.median(seconds)
    q1, _, q3 = statistics.quantiles(seconds, n=4)
    return (
        f"{label:<{width}} median {median * 1000:7.3f} ms  {1 / median:6.1f} {unit}/s"
        f"  (IQR {q1 * 1000:.3f}-{q3 * 1000:.3f} ms, n={len(seconds)})"
    )


def benchmark(runs: int, rounds: int, warmup: int) -> None:
    """Warm up, time `runs` runs of every variant in interleaved rounds, print the figures."""
    began = time.perf_counter()
    bare = Bare()
    flow = Civicflow()
    variants = {
        "(a)  bare, in memory": bare.in_memory,
        "(b)  bare, persisted (full JSON with spec)": bare.persisted,
        "(b2) bare, persisted, spec cached [info]": bare.spec_cached,
        "(b3) (b2) + civicflow's sandbox [info]": lambda: bare.spec_cached(SCRIPT_ENGINE),
        "(c)  civicflow services, SQLite file": flow.run,
    }
    try:
        times = interleaved(variants, runs, rounds, warmup)
        kinds, commits = flow.statements()
    finally:
        flow.close()
    full_size, spec_free_size = bare.sizes()
    elapsed = time.perf_counter() - began

    medians = {label.split()[0]: statistics.median(seconds) for label, seconds in times.items()}
    a, b, c = medians["(a)"], medians["(b)"], medians["(c)"]
    timed = len(next(iter(times.values())))
    print(
        f"civicflow engine benchmark: {DIAGRAM.name}, standard path (3 user tasks); {timed} runs "
        f"per variant in {rounds} interleaved rounds after {warmup} warm-up runs; per-run medians"
    )
    print(
        f"Python {sys.version.split()[0]}, SpiffWorkflow {version('SpiffWorkflow')}, "
        f"SQLAlchemy {version('SQLAlchemy')}, SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL), "
        f"{os.cpu_count()} CPUs"
    )
    for label, seconds in times.items():
        print(_line(label, seconds))
    print(f"saved state after the start: {full_size} bytes with the spec, {spec_free_size} without")
    statements = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    print(f"(c) per run: {sum(kinds.values())} SQL statements ({statements}), {commits} commits")
    print(f"wall time {elapsed:.1f} s")
    print(f"ratio spec-cached/bare-persisted [info]: {medians['(b2)'] / b:.2f}")
    print(f"ratio civicflow/spec-cached [info]: {c / medians['(b2)']:.2f}")
    print(f"ratio bare-persisted/bare: {b / a:.2f}")
    print(f"ratio civicflow/bare: {c / a:.2f}")
    print(f"ratio civicflow/bare-persisted: {c / b:.2f}")


# ---- profiling (c) ---------------------------------------------------------------------------------


class _Split:
    """Wall time of (c) spent in SQLite's C calls and in SpiffWorkflow; the rest is Python around them."""

    def __init__(self, flow: Civicflow):
        self.flow = flow
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()

    def _timed(self, owner, name: str, label: str):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - began
                self.calls[label] += 1

        return original, timed

    def measure(self, runs: int) -> float:
        """Run (c) `runs` times with the meters on; the total wall time."""
        engine = self.flow.engine
        patches = [
            (engine.dialect, "do_commit", "SQLite COMMIT, fsync included (C)"),
            (services, "_run", "SpiffWorkflow: task.run + do_engine_steps"),
            (serialization, "dumps", "SpiffWorkflow: serialize (serialization.dumps)"),
            (serialization, "loads", "SpiffWorkflow: deserialize (serialization.loads)"),
            (serialization, "new_workflow", "SpiffWorkflow: new workflow"),
        ]
        originals = []
        for owner, name, label in patches:
            original, timed = self._timed(owner, name, label)
            originals.append((owner, name, original, name in vars(owner)))
            setattr(owner, name, timed)

        def before(conn, *_args):
            conn.info["bench_began"] = time.perf_counter()

        def after(conn, *_args):
            self.seconds["SQLite statements (C)"] += time.perf_counter() - conn.info["bench_began"]
            self.calls["SQLite statements (C)"] += 1

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        began = time.perf_counter()
        try:
            for _ in range(runs):
                self.flow.run()
        finally:
            total = time.perf_counter() - began
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            for owner, name, original, own in originals:
                if own:
                    setattr(owner, name, original)
                else:  # the meter was an instance attribute shadowing a method: drop it
                    delattr(owner, name)
        return total

    def report(self, runs: int, total: float) -> None:
        """Print the split, per run."""
        print(f"(c) wall-time split over {runs} runs: {total / runs * 1000:.2f} ms per run (mean)")
        rest = total
        for label, seconds in self.seconds.most_common():
            rest -= seconds
            print(
                f"  {label:<46} {seconds / runs * 1000:6.2f} ms  {100 * seconds / total:5.1f}%"
                f"  {self.calls[label] / runs:4.0f} calls/run"
            )
        print(
            f"  {'the rest: SQLAlchemy and civicflow in Python':<46} {rest / runs * 1000:6.2f} ms"
            f"  {100 * rest / total:5.1f}%"
        )


def profile(path: str, runs: int) -> None:
    """Split (c)'s wall time, then cProfile it into `path` and print civicflow's own functions."""
    flow = Civicflow()
    try:
        for _ in range(20):
            flow.run()
        split = _Split(flow)
        split.report(runs, split.measure(runs))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(runs):
            flow.run()
        profiler.disable()
    finally:
        flow.close()
    profiler.dump_stats(path)
    print(f"\ncProfile of {runs} more runs of (c), saved in {path} (cProfile inflates Python-heavy code).")
    for title, order, restrictions in (
        ("civicflow's own functions, by cumulative time", "cumulative", (ENGINE_DIR, 30)),
        ("all functions, by own time", "tottime", (20,)),
    ):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(*restrictions)
        print(f"-- {title}")
        print(
            "\n".join(
                line
                for line in out.getvalue().splitlines()
                if line.strip()
                and not line.lstrip().startswith(("List reduced", "Ordered by", "ncalls"))
                and "function calls" not in line
            )
        )


def main(argv=None) -> None:
    """Parse the options and run the benchmark (or the profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="timed runs per variant (default 400)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up runs per variant (default 20)")
    parser.add_argument("--profile", metavar="PATH", help="profile variant (c) into PATH instead of the benchmark")
    options = parser.parse_args(argv)
    if options.profile:
        profile(options.profile, options.runs)
    else:
        benchmark(options.runs, options.rounds, options.warmup)


if __name__ == "__main__":
    main()
