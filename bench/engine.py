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

    .venv/bin/python -m bench.engine                 # or `make bench`: about 20 s on 2 cores
    .venv/bin/python -m bench.engine --runs 100      # quicker
    .venv/bin/python -m bench.engine --profile /tmp/civicflow-bench.prof   # where (c)'s time goes
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import event

from bench import harness
from engine.db.connection import begin_write
from engine.demo import create_departments
from engine.diagrams import serialization
from engine.diagrams.sandbox import SCRIPT_ENGINE
from engine.requests import inbox, services
from engine.settings import REPO_ROOT
from engine.versions import shipped

KEY = harness.ACCOUNT_REQUEST
ENGINE_DIR = str(REPO_ROOT / "engine")

START = harness.ACCOUNT_REQUEST_START
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


class Bare(harness.BareDiagram):
    """The diagram parsed once; the approval run in memory or around a serializer."""

    def __init__(self):
        super().__init__(KEY)
        self.full = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

    def _start(self, script_engine=None) -> BpmnWorkflow:
        return self.start(BARE_START, script_engine)

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
            workflow.script_engine = harness.BARE_ENGINE
            done.append(self._complete_one(workflow))
            saved = self.full.serialize_json(workflow)
        self._check(workflow, done)

    def _spec_free_load(self, saved: str, script_engine) -> BpmnWorkflow:
        if script_engine is None:  # serialization.loads would install civicflow's sandbox
            return self.load(saved)
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


class Civicflow(harness.Database):
    """A fresh SQLite file, migrated, with the departments, the shipped diagrams and the three people."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="civicflow-bench-"))
        super().__init__(f"sqlite:///{self.folder / 'civicflow.sqlite3'}", self.folder)
        with self.sessions() as session:
            create_departments(session)
            shipped.sync_workflows(session)
            actors = harness.create_people(session, harness.ACCOUNT_REQUEST_PEOPLE)
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
                rows, _total = inbox.list_tasks(session, actor, scope)
                [task] = [row for row in rows if row.instance_id == instance_id]
                assert task.form_key == form_key, task.form_key
                instance = services.complete_task(session, actor, task.id, data)
                session.commit()
        assert (instance.status, instance.outcome) == ("completed", "approved"), instance.status

    def statements(self) -> tuple[Counter, int]:
        """SQL statements of one run, by kind, and the number of commits."""
        with harness.recording(self.engine) as seen:
            self.run()
        return Counter(statement.split(None, 1)[0].upper() for statement, _ in seen.statements), seen.commits

    def close(self) -> None:
        """Drop the engine and the temporary folder."""
        super().close()
        shutil.rmtree(self.folder, ignore_errors=True)


# ---- measuring -------------------------------------------------------------------------------------


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
        times = harness.interleaved(variants, runs, rounds, warmup)
        kinds, commits = flow.statements()
    finally:
        flow.close()
    full_size, spec_free_size = bare.sizes()
    elapsed = time.perf_counter() - began

    medians = {label.split()[0]: statistics.median(seconds) for label, seconds in times.items()}
    a, b, c = medians["(a)"], medians["(b)"], medians["(c)"]
    timed = len(next(iter(times.values())))
    harness.print_header(
        f"civicflow engine benchmark: {bare.path.name}, standard path (3 user tasks); {timed} runs "
        f"per variant in {rounds} interleaved rounds after {warmup} warm-up runs; per-run medians",
        "SpiffWorkflow",
        "SQLAlchemy",
    )
    for label, seconds in times.items():
        print(harness.line(label, seconds))
    print(f"saved state after the start: {full_size} bytes with the spec, {spec_free_size} without")
    statements = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    print(f"(c) per run: {sum(kinds.values())} SQL statements ({statements}), {commits} commits")
    print(f"wall time {elapsed:.1f} s")
    harness.print_ratio("spec-cached/bare-persisted [info]", medians["(b2)"] / b)
    harness.print_ratio("civicflow/spec-cached [info]", c / medians["(b2)"])
    harness.print_ratio("bare-persisted/bare", b / a)
    harness.print_ratio("civicflow/bare", c / a)
    harness.print_ratio("civicflow/bare-persisted", c / b)


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
    parser = harness.parser(
        __doc__,
        runs=400,
        runs_help="timed runs per variant",
        rounds=20,
        warmup=20,
        warmup_help="warm-up runs per variant",
        postgres=False,
    )
    parser.add_argument("--profile", metavar="PATH", help="profile variant (c) into PATH instead of the benchmark")
    options = harness.parse(parser, argv)
    if options.profile:
        profile(options.profile, options.runs)
    else:
        benchmark(options.runs, options.rounds, options.warmup)


if __name__ == "__main__":
    main()
