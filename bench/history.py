"""A step of a long-lived request costs what a fresh one does: a Department Head decision on procedure 1.

Two requests of procedure 1 (workflows/new_account_request.bpmn), each step a Department Head decision
(return, so that the request can be resubmitted and decided again):

  fresh: on a request just filed;
  long:  on a request returned and resubmitted 500 times first (1,000 completed user tasks, and one more
         round per timed run: the requester resubmits, untimed, before each).

Each for:

  civicflow: engine.requests.services on a SQLite file (WAL, synchronous=FULL), as bench/engine.py runs them:
             a session and a write transaction per step, complete_task, commit. Its stored state is pruned
             (engine/diagrams/pruning.py), so the long request's state stays as small as a fresh one's.
  bare:      SpiffWorkflow 3.2.0 doing the same work on the state as it keeps it (never pruned): load the
             spec-free JSON, complete the task, do_engine_steps, serialize. Its task tree grows a chain of
             seven tasks a round, and SpiffWorkflow walks that chain recursively (Task.is_descendant_of), so
             this benchmark raises sys.setrecursionlimit for it. Even so it cannot take a step after 1,000
             completed tasks: once the chain is 1,000 deep, its TaskIterator (max_depth=1000) no longer finds
             the READY tasks below, and do_engine_steps stops advancing. Its long request is therefore the
             longest it still runs (BARE_ROUNDS), and the round where it stops is found and printed.

Runs are interleaved in rounds; figures are per-run medians. The last line is `ratio step long/fresh: X.XX`:
median(civicflow long) / median(civicflow fresh). The goal is below 1.5.

    .venv/bin/python -m bench.history                # about a minute on 2 cores, most of it filing the history
    .venv/bin/python -m bench.history --runs 40      # quicker, noisier
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from bench import harness
from engine.db.connection import begin_write
from engine.db.models import ProcessInstance, Task
from engine.db.statuses import TaskStatus
from engine.demo import create_departments
from engine.diagrams import serialization
from engine.requests import services
from engine.versions import shipped

KEY = harness.ACCOUNT_REQUEST
START = harness.ACCOUNT_REQUEST_START
BARE_START = {**START, "investigative": False, "notice_and_link_plan": None}  # as the start form cleans START
RETURN = {"decision": "return", "comment": "Please say who will moderate it."}
RESUBMIT = {"action": "resubmit"}
ROUNDS = 500  # return and resubmit: 1,000 completed user tasks
BARE_ROUNDS = 125  # the longest history bare SpiffWorkflow still runs, with margin (it stops after about 143)
RECURSION_LIMIT = 20_000  # for bare SpiffWorkflow's recursive walks up a chain of 3,500 tasks


# ---- civicflow -------------------------------------------------------------------------------------


class Civicflow(harness.Database):
    """A SQLite file, migrated, with the departments, the shipped diagrams and the three people."""

    def __init__(self, url: str, folder: Path):
        super().__init__(url, folder)
        with self.sessions() as session:
            create_departments(session)
            shipped.sync_workflows(session)
            actors = harness.create_people(session, harness.ACCOUNT_REQUEST_PEOPLE)
        self.requester, self.head = actors["requester"], actors["parks_head"]

    def start(self) -> int:
        """File a request; its id."""
        with self.sessions() as session:
            begin_write(session)
            instance_id = services.start_instance(session, self.requester, KEY, START).id
            session.commit()
        return instance_id

    def open_task(self, instance_id: int) -> tuple[str, str]:
        """The request's one open task: (id, form key)."""
        with self.sessions() as session:
            [(task_id, form_key)] = session.execute(
                select(Task.id, Task.form_key).where(Task.instance_id == instance_id, Task.status == TaskStatus.OPEN)
            ).all()
        return task_id, form_key

    def complete(self, actor, task_id: str, data: dict) -> None:
        """One step as web.db.transactional runs it: a session, a write transaction, complete_task, commit."""
        with self.sessions() as session:
            begin_write(session)
            services.complete_task(session, actor, task_id, data)
            session.commit()

    def resubmit(self, instance_id: int) -> str:
        """The requester resubmits a returned request; the id of the Department Head's task that opens."""
        task_id, form_key = self.open_task(instance_id)
        assert form_key == "revise_request", form_key
        self.complete(self.requester, task_id, RESUBMIT)
        task_id, form_key = self.open_task(instance_id)
        assert form_key == "department_head_review", form_key
        return task_id

    def returned(self, instance_id: int, rounds: int) -> None:
        """Return and resubmit the request `rounds` times."""
        for _ in range(rounds):
            task_id, _form_key = self.open_task(instance_id)
            self.complete(self.head, task_id, RETURN)
            self.resubmit(instance_id)

    def state_size(self, instance_id: int) -> int:
        """Bytes of the request's stored workflow state."""
        with self.sessions() as session:
            instance = session.get(ProcessInstance, instance_id)
            assert instance is not None  # made by start()
            return len(instance.workflow_state)

    def fresh_step(self) -> tuple[Callable[[], None], Callable[[], None]]:
        """(setup, run): file a request (untimed); the Department Head returns it."""
        pending: list[str] = []

        def setup() -> None:
            pending.append(self.open_task(self.start())[0])

        def run() -> None:
            self.complete(self.head, pending.pop(), RETURN)

        return setup, run

    def long_step(self, instance_id: int) -> tuple[Callable[[], None], Callable[[], None]]:
        """(setup, run): the requester resubmits the long request if it was returned (untimed); the Department Head
        returns it."""
        pending: list[str] = []

        def setup() -> None:
            task_id, form_key = self.open_task(instance_id)
            pending.append(task_id if form_key == "department_head_review" else self.resubmit(instance_id))

        def run() -> None:
            self.complete(self.head, pending.pop(), RETURN)

        return setup, run


# ---- bare SpiffWorkflow ----------------------------------------------------------------------------


class Bare(harness.BareDiagram):
    """The diagram parsed once; its state kept as SpiffWorkflow leaves it (spec-free JSON, never pruned)."""

    def __init__(self):
        super().__init__(KEY)

    @staticmethod
    def save(workflow: BpmnWorkflow) -> str:
        """SpiffWorkflow's converters (civicflow's spec-free one), without civicflow's pruning."""
        return serialization.SERIALIZER.serialize_json(workflow)

    @staticmethod
    def decide(workflow: BpmnWorkflow, data: dict) -> str:
        """Complete the one READY user task (found in the task map: get_tasks stops 1,000 deep) and run on."""
        [task] = [t for t in workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual]
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
        return task.task_spec.bpmn_id

    def history(self, rounds: int) -> tuple[str, str, int | None]:
        """The state after the start, after `rounds` rounds, and the round in which the workflow stopped
        advancing (None if it ran ROUNDS rounds)."""
        workflow = self.start(BARE_START)
        fresh, long = self.save(workflow), ""
        for number in range(1, ROUNDS + 1):
            try:
                self.decide(workflow, RETURN)
                self.decide(workflow, {**BARE_START, **RESUBMIT})
            except ValueError:  # no READY user task: the engine did not get there
                return fresh, long, number
            if number == rounds:
                long = self.save(workflow)
        return fresh, long, None

    def step(self, saved: str) -> Callable[[], None]:
        """Load the state, the Department Head returns the request, do_engine_steps, serialize."""

        def run() -> None:
            workflow = self.load(saved)
            assert self.decide(workflow, RETURN) == "department_head_review"
            self.save(workflow)

        return run


# ---- measuring -------------------------------------------------------------------------------------


def benchmark(runs: int, rounds: int, warmup: int) -> None:
    """Build both histories, time the four series in interleaved rounds, print the figures."""
    began = time.perf_counter()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    bare = Bare()
    bare_fresh, bare_long, bare_stopped = bare.history(BARE_ROUNDS)
    built_bare = time.perf_counter() - began

    def run(databases: harness.Databases) -> tuple[dict, tuple[int, int], float]:
        with Civicflow(databases.urls["history"], databases.folder) as flow:
            building = time.perf_counter()
            long_id = flow.start()
            flow.returned(long_id, ROUNDS)
            built = time.perf_counter() - building
            fresh_id = flow.start()
            sizes = flow.state_size(fresh_id), flow.state_size(long_id)
            series = {
                "civicflow, fresh request": flow.fresh_step(),
                f"civicflow, after {2 * ROUNDS:,} completed tasks": flow.long_step(long_id),
                "bare SpiffWorkflow, fresh request": bare.step(bare_fresh),
                f"bare SpiffWorkflow, after {2 * BARE_ROUNDS:,} completed tasks": bare.step(bare_long),
            }
            return harness.interleaved(series, runs, rounds, warmup), sizes, built

    times, (fresh_size, long_size), built = harness.on_each_database("history", ["history"], None, run)["SQLite"]
    elapsed = time.perf_counter() - began

    medians = [statistics.median(seconds) for seconds in times.values()]
    timed = len(next(iter(times.values())))
    harness.print_header(
        f"civicflow history benchmark: {bare.path.name}, a Department Head decision (return) on a fresh request "
        f"and on one returned and resubmitted {ROUNDS} times; {timed} runs per series in {rounds} interleaved "
        f"rounds after {warmup} warm-up runs; per-run medians",
        "SpiffWorkflow",
        "SQLAlchemy",
    )
    for label, seconds in times.items():
        print(harness.line(label, seconds, width=48))
    print(
        f"stored state: civicflow {fresh_size:,} bytes fresh, {long_size:,} after {2 * ROUNDS:,} completed tasks; "
        f"bare {len(bare_fresh):,} fresh, {len(bare_long):,} after {2 * BARE_ROUNDS:,}"
    )
    stopped = f"stopped advancing in round {bare_stopped}" if bare_stopped else f"ran all {ROUNDS} rounds"
    print(
        f"bare SpiffWorkflow, with sys.setrecursionlimit({RECURSION_LIMIT:,}) (at the default 1,000, "
        f"Task.is_descendant_of fails with RecursionError after about 140 rounds): {stopped} of {ROUNDS} "
        f"(its TaskIterator stops 1,000 tasks deep), so it is timed after {BARE_ROUNDS} rounds"
    )
    print(f"histories filed: civicflow {built:.1f} s through its services, bare {built_bare:.1f} s in memory")
    print(f"wall time {elapsed:.1f} s")
    harness.print_ratio(f"bare step {2 * BARE_ROUNDS}/fresh [info]", medians[3] / medians[2])
    harness.print_ratio("step long/fresh", medians[1] / medians[0])


def main(argv=None) -> None:
    """Parse the options and run the benchmark."""
    parser = harness.parser(
        __doc__,
        runs=100,
        runs_help="timed runs per series",
        rounds=10,
        warmup=5,
        warmup_help="warm-up runs per series",
        postgres=False,
    )
    options = harness.parse(parser, argv)
    benchmark(options.runs, options.rounds, options.warmup)


if __name__ == "__main__":
    main()
