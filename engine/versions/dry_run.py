"""The dry run before publishing: a new version driven through its paths in memory, every step that fails named.

Publishing (engine/versions/publishing.py) runs it on a diagram that loaded cleanly, before anything is stored. A
SpiffWorkflow workflow of the loaded spec, with civicflow's script engine, is started with data the procedure's
start form accepts; each user task is completed with data its form accepts, every choice and yes/no of the form
tried on some path (so each gateway branch is taken where the data allows); waiting timers are fired. Paths are
explored breadth-first over copies of the workflow (stored and loaded, as a request is between two actions):

- two paths that reach the same steps with the same values of the names the diagram reads are explored once;
- a timer element is fired on the first path that waits for it (its later steps then run once);
- at most MAX_DECISIONS decision points, MAX_TASKS user tasks on one path and MAX_SECONDS in all.

Whatever a step raises (an undefined name, an exception, a budget exceeded) is a Problem at its element: it
refuses the publication. A diagram none of whose paths reaches an end, a path that stops where nothing moves it
on, and an end reached without what the procedure reads there (END_NEEDS) are warnings: they do not block.
Nothing is written to the database; the letters, reminders and escalations the steps ask for are dropped.
"""

from __future__ import annotations

import ast
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from engine import procedures
from engine.diagrams import budget, serialization
from engine.diagrams.expressions import EXPRESSION_ELEMENTS
from engine.diagrams.loading import LoadedSpec
from engine.diagrams.problems import Problem
from engine.diagrams.task_specs import attached_task_spec, form_key_of, is_timer
from engine.diagrams.xml import SPIFF, parse_xml_safely
from engine.errors import CivicflowError
from engine.mail import outbox
from engine.procedures.fields import (
    BOOLEAN,
    CHOICE,
    EMAIL,
    IMAGE,
    MULTICHOICE,
    RECORD,
    SECRET,
    URL,
    USERNAMES,
    Field,
    validate,
)
from engine.requests import incidents
from engine.settings import settings_of
from engine.time import clock, deadlines

MAX_DECISIONS = 400  # decision points (a user task to complete, timers to fire) explored in all
MAX_TASKS = 30  # user tasks completed on one path: a loop (return, revise, resubmit) goes round a few times
MAX_SECONDS = 10.0  # the whole dry run, however slow its steps (each is also held to the step's own budget)
MAX_VARIANTS = 12  # submissions tried per form: each choice once, up to this many

# What each procedure reads when a request ends, besides its own record: the outcome (ProcessInstance.outcome,
# and Procedure.on_end for the accounts and managers), and what its closing letters and status page read from the
# record (the appeal's and the dispute's written decision and response, engine/procedures/<key>.py).
END_NEEDS: dict[str, tuple[str, ...]] = {
    "new_account_request": ("outcome",),
    "manager_change": ("outcome",),
    "content_removal": ("outcome",),
    "removal_appeal": ("outcome", "decision", "response_text"),
    "legality_dispute": ("outcome", "response_text"),
}
# What a procedure's validate_start adds to the record beyond its form (engine/procedures/common.account_facts and
# manager_change): a diagram may read them (`investigative` decides who approves). A tuple: each value on some path.
_ACCOUNT_FACTS: dict[str, Any] = {
    "account_name": "Facebook: City of West St. Paul",
    "department": "communications",
    "investigative": (False, True),
}
# How the City replies to a letter (engine/procedures/common.validate_reply): by e-mail, or by post.
_REPLY_BY = {"reply_by": ("email", "post")}
START_FACTS: dict[str, dict[str, Any]] = {
    "content_removal": _ACCOUNT_FACTS,
    "removal_appeal": {**_ACCOUNT_FACTS, **_REPLY_BY},
    "legality_dispute": _REPLY_BY,
    "manager_change": {**_ACCOUNT_FACTS, "manager_name": "Pat Lee"},
}

# A value each kind of field accepts (a choice field takes its choices in turn).
_TEXT_VALUES = {
    URL: "https://example.org/dry-run",
    EMAIL: "dry.run@example.org",
    SECRET: "dry-run-secret-1",
    IMAGE: "00000000-0000-4000-8000-000000000000",
}
_TEXT = "Written by the dry run before publishing."
_VARIED = (BOOLEAN, CHOICE, MULTICHOICE, RECORD)
_AT = TaskState.READY | TaskState.WAITING | TaskState.STARTED


@dataclass
class DryRun:
    """What the dry run found: problems refuse the publication, warnings do not; and how far it went."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    paths: int = 0  # decision points explored
    ended: int = 0  # paths that reached an end
    tasks: int = 0  # user tasks completed
    seconds: float = 0.0
    cut: bool = False  # a limit stopped the exploration

    def summary(self) -> dict:
        """The dry run in a few numbers and its warnings' words, for the audit trail and the API."""
        return {
            "decision_points": self.paths,
            "ended": self.ended,
            "tasks_completed": self.tasks,
            "seconds": round(self.seconds, 3),
            "limited": self.cut,
            "warnings": [w.message for w in self.warnings],
        }


@dataclass
class _Path:
    """One explored path: its workflow, the record as the services would keep it, its moment and what was done."""

    workflow: BpmnWorkflow
    record: dict
    moment: datetime
    trail: tuple[str, ...] = ()
    tasks: int = 0


def names_read(data: bytes) -> frozenset[str]:
    """Every name the diagram's conditions, scripts, timer values and service parameters read or set."""
    root = parse_xml_safely(data)
    sources = [(node.text or "", EXPRESSION_ELEMENTS[node.tag]) for node in root.iter(*EXPRESSION_ELEMENTS)]
    sources += [(node.get("value") or "", "eval") for node in root.iter(f"{SPIFF}parameter")]
    names: set[str] = set()
    for source, mode in sources:
        try:
            tree = ast.parse(source.strip(), mode=mode)
        except SyntaxError:
            continue  # the sandbox's check refused it already
        names.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
    return frozenset(names)


def _options(field: Field) -> tuple[Any, ...]:
    """The values of a field tried in turn: each choice, yes and no, one record number."""
    if field.type == BOOLEAN:
        return (True, False)
    if field.type == RECORD:
        return tuple(int(c) for c in field.choices[:MAX_VARIANTS]) or (1,)
    if field.type == MULTICHOICE:
        return tuple([c] for c in field.choices[:MAX_VARIANTS])
    return field.choices[:MAX_VARIANTS]


def _fixed_value(field: Field) -> Any:
    """A value a field that is not varied accepts."""
    if field.type == USERNAMES:
        return list(field.choices[:1]) or ["dry.run"]
    if field.type in _VARIED:
        return next(iter(_options(field)), None)
    return _TEXT_VALUES.get(field.type, _TEXT)[: field.max_length]


def submissions(fields: list[Field], reads: frozenset[str]) -> Iterator[dict]:
    """Data the form accepts: one submission per choice of the most varied field the diagram reads, so that each
    choice of each such field is tried once; a field the diagram never reads takes its first choice."""
    varied = {f.name: _options(f) for f in fields if f.type in _VARIED and f.name in reads and _options(f)}
    count = max((len(values) for values in varied.values()), default=1)
    for number in range(count):
        data = {}
        for f in fields:
            options = varied.get(f.name)
            data[f.name] = options[number % len(options)] if options else _fixed_value(f)
        data = {name: value for name, value in data.items() if value is not None}
        try:
            yield validate(fields, data)
        except CivicflowError:
            continue  # a combination the form refuses (a choice field without choices): not a submission


def _start_records(session: Session, procedure: procedures.Procedure, reads: frozenset[str]) -> list[dict]:
    """Start data the start form accepts, with the facts its filing adds; each fact's values on some record."""
    records = list(submissions(procedure.start_fields(session, None), reads))
    facts = START_FACTS.get(procedure.key, {})
    varied = {name: value for name, value in facts.items() if isinstance(value, tuple) and name in reads}
    fixed = {name: value[0] if isinstance(value, tuple) else value for name, value in facts.items()}
    count = max([len(records), *(len(v) for v in varied.values())])
    out = []
    for number in range(count if records else 0):
        record = {**fixed, **records[number % len(records)]}
        record.update({name: values[number % len(values)] for name, values in varied.items()})
        out.append(record)
    return out


def _named(spec) -> str:
    return getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None) or spec.name


def _due(task) -> datetime | None:
    value = task.internal_data.get("event_value")
    try:
        return clock.as_utc(datetime.fromisoformat(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _end_reached(workflow: BpmnWorkflow) -> str:
    """The name of the end event the request ended at (the last one completed)."""
    ends = [t for t in workflow.get_tasks(state=TaskState.COMPLETED) if isinstance(t.task_spec, EndEvent)]
    if not ends:
        return "its end"
    spec = max(ends, key=lambda t: t.last_state_change).task_spec
    return spec.bpmn_name or spec.bpmn_id


class _Explorer:
    """Breadth-first over the paths of one diagram, within the limits."""

    def __init__(self, session: Session, key: str, loaded: LoadedSpec, reads: frozenset[str]):
        self.session, self.loaded, self.reads = session, loaded, reads
        self.procedure = procedures.get(key)
        self.needs = END_NEEDS.get(key, ("outcome",))
        settings = settings_of(session)
        self.calendar = deadlines.of(settings)
        self.budget = budget.Budget(cpu_seconds=settings.step_cpu_seconds)
        self.result = DryRun()
        self.seen: set[tuple] = set()
        self.fired: set[str] = set()
        self.warned: set[tuple] = set()
        self.began = time.perf_counter()

    # ---- running a step ----------------------------------------------------------------------------------

    def step(self, path: _Path, action: Callable[[], Any]) -> bool:
        """Run a step as the services do; a failure is a problem at its element (once per element)."""
        with outbox.collecting(), deadlines.running(self.calendar, path.moment), budget.metered(self.budget):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - any exception of a step is what the dry run looks for
                self.failed(path, incidents.failure_of(path.workflow, exc))
                return False
        return True

    def failed(self, path: _Path, failure: incidents.Failure) -> None:
        if any(p.element == failure.element_id for p in self.result.problems):
            return
        how = "; then ".join(path.trail) or "as the request is filed"
        text = failure.message.rstrip()
        message = (
            f"{text}{'' if text.endswith(('.', '?', '!')) else '.'} The dry run before publishing got there by: {how}."
        )
        self.result.problems.append(Problem(message, failure.element_id, failure.element_name))

    def warn(self, marker: tuple, message: str, element: str | None = None, name: str | None = None) -> None:
        if marker not in self.warned:
            self.warned.add(marker)
            self.result.warnings.append(Problem(message, element, name))

    # ---- the exploration ---------------------------------------------------------------------------------

    def run(self) -> DryRun:
        """Explore every path within the limits; the result."""
        queue: deque[_Path] = deque()
        moment = clock.now()
        for record in _start_records(self.session, self.procedure, self.reads):
            workflow = serialization.new_workflow(self.loaded)
            workflow.get_next_task(state=TaskState.READY).data.update(record)
            queue.append(_Path(workflow, dict(record), moment))
        while queue:
            if self.result.paths >= MAX_DECISIONS or time.perf_counter() - self.began > MAX_SECONDS:
                self.result.cut = True
                break
            self.advance(queue.popleft(), queue)
        self.conclude()
        self.result.seconds = time.perf_counter() - self.began
        return self.result

    def advance(self, path: _Path, queue: deque[_Path]) -> None:
        """Run the path's engine steps up to its next decision point, and queue each way on from there."""
        workflow = path.workflow
        if not self.step(path, workflow.do_engine_steps):
            return
        if workflow.completed:
            self.ended(path)
            return
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        timers = [t for t in workflow.get_tasks(state=TaskState.WAITING) if is_timer(t.task_spec)]
        if not ready and not timers:
            self.stopped(workflow)
            return
        marker = self.marker(workflow, ready)
        if marker in self.seen:
            return
        self.seen.add(marker)
        self.result.paths += 1
        if path.tasks >= MAX_TASKS:
            self.result.cut = True
            return
        ways: list[Callable[[_Path], bool]] = []
        if timers and (not ready or any(t.task_spec.bpmn_id not in self.fired for t in timers)):
            ways.append(self.fire_timers)
        if ready:
            ways.extend(self.completion(ready[0], data) for data in self.forms(ready[0], path.record))
        copies = [self.copy(path) for _ in ways[1:]] + [path]
        for way, copy in zip(ways, copies, strict=True):
            if way(copy):
                queue.append(copy)

    def marker(self, workflow: BpmnWorkflow, ready: list) -> tuple:
        """Where a path is and the values of what the diagram reads: two paths alike go on alike."""
        at = tuple(sorted((t.task_spec.name, t.state) for t in workflow.get_tasks(state=_AT)))
        data = ready[0].data if ready else workflow.data
        return at, tuple(sorted((name, repr(data.get(name))) for name in self.reads if name in data))

    def copy(self, path: _Path) -> _Path:
        """The path's workflow stored and loaded again, as a request's is between two actions."""
        workflow = serialization.loads(serialization.dumps(path.workflow), self.loaded)
        return _Path(workflow, dict(path.record), path.moment, path.trail, path.tasks)

    def forms(self, task, record: dict) -> list[dict]:
        """The submissions tried at a user task: data its form accepts."""
        try:
            fields = self.procedure.fields_for(self.session, form_key_of(task.task_spec) or "", record)
        except CivicflowError:
            return []  # a form the procedure does not have: the diagram's rules refused it already
        return list(submissions(fields, self.reads))

    def completion(self, task, data: dict) -> Callable[[_Path], bool]:
        """A way on: the task completed with this data, as complete_task does it."""
        spec = task.task_spec
        shown = ", ".join(f"{n} {data[n]!r}" for n in sorted(data) if n in self.reads) or "done"
        words = f'"{_named(spec)}" {shown}'

        def complete(path: _Path) -> bool:
            own = path.workflow.get_task_from_id(task.id)
            own.data.update(data)
            path.record.update(data)
            path.trail, path.tasks = (*path.trail, words), path.tasks + 1
            self.result.tasks += 1
            return self.step(path, own.run)

        return complete

    def fire_timers(self, path: _Path) -> bool:
        """A way on: every waiting timer fires, the path's moment moved to the latest of their due times."""
        timers = [t for t in path.workflow.get_tasks(state=TaskState.WAITING) if is_timer(t.task_spec)]
        for timer in timers:
            timer._set_internal_data(event_fired=True)
            self.fired.add(timer.task_spec.bpmn_id)
        due = [d for d in (_due(t) for t in timers) if d is not None]
        path.moment = max([path.moment, *due])
        names = ", ".join(sorted({f'"{_named(t.task_spec)}"' for t in timers}))
        on = sorted({f'"{_named(a)}"' for a in map(attached_task_spec, (t.task_spec for t in timers)) if a})
        path.trail = (*path.trail, f"the timers{' on ' + ', '.join(on) if on else ''} fire ({names})")
        return self.step(path, path.workflow.refresh_timers)

    # ---- where paths end -----------------------------------------------------------------------------------

    def ended(self, path: _Path) -> None:
        """A path reached its end: does the procedure find there what it reads?"""
        self.result.ended += 1
        data = {**path.record, **path.workflow.data}
        missing = [name for name in self.needs if data.get(name) in (None, "")]
        if missing:
            end = _end_reached(path.workflow)
            self.warn(
                ("needs", end, *missing),
                f'A request that ends at "{end}" has no {" and no ".join(missing)}, which the procedure reads when '
                f"a request ends (the dry run's path: {'; '.join(path.trail) or 'filed'}).",
            )

    def stopped(self, workflow: BpmnWorkflow) -> None:
        """A path waits where nothing moves it on (no task to complete, no timer): it would never end."""
        waiting = [t.task_spec for t in workflow.get_tasks(state=TaskState.WAITING)]
        named = [s for s in waiting if getattr(s, "bpmn_id", None) and not isinstance(s, CatchingEvent)] or [
            s for s in waiting if getattr(s, "bpmn_id", None)
        ]
        spec = named[0] if named else None
        where = f' at "{spec.bpmn_name or spec.bpmn_id}"' if spec is not None else ""
        self.warn(
            ("stopped", spec.bpmn_id if spec is not None else None),
            f"A request would stop{where} with no task to complete and no timer to wait for: it would never end.",
            spec.bpmn_id if spec is not None else None,
            (spec.bpmn_name or None) if spec is not None else None,
        )

    def conclude(self) -> None:
        if self.result.cut:
            self.warn(
                ("cut",),
                f"The dry run stopped at its limit ({self.result.paths} decision points, at most {MAX_TASKS} tasks "
                "on one path): some paths were not tried.",
            )
        if self.result.ended == 0 and not self.result.problems:
            self.warn(
                ("no end",),
                "No path of the dry run reaches an end event: a request of this diagram would never end.",
            )


def dry_run(session: Session, key: str, loaded: LoadedSpec, data: bytes) -> DryRun:
    """Drive a loaded diagram through its paths in memory (nothing is written); what fails, and what is missing."""
    return _Explorer(session, key, loaded, names_read(data)).run()
