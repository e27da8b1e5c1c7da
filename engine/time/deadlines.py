"""Deadlines in business days: when a review is due, when its reminder and its escalation go out.

A review of kind K (settings.deadlines) opened at a moment is due at the close of business on the
K-th business day after the day it arrived (after closing time it arrives the next day). Its
reminder goes out at the start of business `reminder_days_before` business days before that day
(or on the due day's morning when that has already passed); its escalation at the start of the
first business day after the due date, so that both arrive on a day the City is open.

The diagrams ask for these times through sandbox helpers (`reminder_time("appeal_response")` in a
timeDate), which read the deadlines and the moment of the running engine step from a context
variable that the engine's services set; a timer compares with the one clock (engine/time/clock.py).
The same context variable collects the reminders and escalations the step's `send_reminder` and
`escalate` service tasks ask for: SpiffWorkflow calls a service task with nothing but its name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from engine.errors import ExpressionError
from engine.settings import DEFAULT_DEADLINES, Settings
from engine.time import clock
from engine.time.business_days import BusinessCalendar

# The service operators of the steps that follow a reminder or an overdue timer.
SEND_REMINDER = "send_reminder"
ESCALATE = "escalate"
REMINDER_AND_ESCALATION_OPERATORS = frozenset({SEND_REMINDER, ESCALATE})
DEADLINE_KINDS = frozenset(DEFAULT_DEADLINES)
# The timer helpers a diagram may call, each with one quoted deadline kind.
TIMER_HELPERS = ("due_time", "reminder_time", "escalation_time")


@dataclass(frozen=True)
class Deadlines:
    """The City's calendar, zone and business hours, and the business days each kind of review may take."""

    calendar: BusinessCalendar
    zone: ZoneInfo
    day_starts: time
    day_ends: time
    days: tuple[tuple[str, int], ...]
    reminder_days_before: int = 1

    def business_days(self, kind: str) -> int:
        """How many business days a review of this kind may take."""
        for name, count in self.days:
            if name == kind:
                return count
        raise ExpressionError(f'"{kind}" is not a deadline; known: {", ".join(sorted(DEADLINE_KINDS))}.')

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, self.zone).astimezone(UTC)

    def arrival_day(self, start: datetime) -> date:
        """The day a task opened at `start` counts from: after closing time, the next day."""
        local = self.local(start)
        day = local.date()
        if local.time() >= self.day_ends:
            day = date.fromordinal(day.toordinal() + 1)
        return day

    def due_day(self, kind: str, start: datetime) -> date:
        """The business day a review of this kind opened at `start` is due."""
        return self.calendar.add_business_days(self.arrival_day(start), self.business_days(kind))

    def due_at(self, kind: str, start: datetime) -> datetime:
        """When a review of this kind opened at `start` is due: close of business on its due day (UTC)."""
        return self._at(self.due_day(kind, start), self.day_ends)

    def reminder_at(self, kind: str, start: datetime) -> datetime:
        """When its reminder goes out: start of business some business days before the due day."""
        due_day = self.due_day(kind, start)
        day = due_day
        for _ in range(self.reminder_days_before):
            day = self.calendar.previous_business_day(day)
        reminder = self._at(day, self.day_starts)
        if reminder <= self.local(start):
            reminder = self._at(due_day, self.day_starts)
        return reminder

    def escalation_at(self, kind: str, start: datetime) -> datetime:
        """When it is escalated if still open: start of business on the first business day after the due day."""
        return self._at(self.calendar.next_business_day(self.due_day(kind, start)), self.day_starts)

    def local(self, moment: datetime) -> datetime:
        """A stored or aware time in the City's zone."""
        utc = clock.as_utc(moment)
        assert utc is not None  # as_utc gives None only for None
        return utc.astimezone(self.zone)


@lru_cache(maxsize=32)
def _deadlines(
    zone: str,
    day_starts: time,
    day_ends: time,
    friday_after_thanksgiving: bool,
    indigenous_peoples_day: bool,
    closed: frozenset[date],
    open_: frozenset[date],
    days: tuple[tuple[str, int], ...],
    reminder_days_before: int,
) -> Deadlines:
    calendar = BusinessCalendar(
        friday_after_thanksgiving=friday_after_thanksgiving,
        indigenous_peoples_day=indigenous_peoples_day,
        closed=closed,
        open=open_,
    )
    return Deadlines(calendar, ZoneInfo(zone), day_starts, day_ends, days, reminder_days_before)


def of(settings: Settings) -> Deadlines:
    """The deadlines the settings describe (built once per distinct settings)."""
    return _deadlines(
        settings.timezone,
        settings.day_starts,
        settings.day_ends,
        settings.friday_after_thanksgiving,
        settings.indigenous_peoples_day,
        settings.closed_days,
        settings.open_days,
        tuple(sorted(settings.deadlines.items())),
        settings.reminder_days_before,
    )


def default() -> Deadlines:
    """The deadlines of default settings (a workflow run outside the services, e.g. a test of a diagram)."""
    return of(Settings(database_url="", secret_key="", instance_path=Path()))


# ---- the running engine step: its deadlines, its moment, and the reminders and escalations it asks for -------


@dataclass(frozen=True)
class ReminderOrEscalation:
    """A reminder or escalation a diagram step asked for (its operator), about one user task (its SpiffWorkflow id)."""

    operator: str
    task_id: str
    step: str


@dataclass
class _Step:
    deadlines: Deadlines
    moment: datetime
    requested: list[ReminderOrEscalation]


_step: ContextVar[_Step | None] = ContextVar("civicflow_engine_step", default=None)


@contextmanager
def running(deadlines: Deadlines, moment: datetime) -> Iterator[list[ReminderOrEscalation]]:
    """Run a block of engine steps as of `moment`; yields the reminders and escalations its steps ask for."""
    utc = clock.as_utc(moment)
    assert utc is not None  # as_utc gives None only for None
    step = _Step(deadlines, utc, [])
    token = _step.set(step)
    try:
        yield step.requested
    finally:
        _step.reset(token)


def _current() -> _Step:
    step = _step.get()
    return step if step is not None else _Step(default(), clock.now(), [])


def request_reminder_or_escalation(operator: str, task_id: str, step: str) -> None:
    """A send_reminder or escalate step ran: note it for the service saving the request."""
    current = _step.get()
    if current is None:
        raise ExpressionError("Reminders and escalations can only be sent while a request is being saved.")
    current.requested.append(ReminderOrEscalation(operator, task_id, step))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def due_time(kind: str) -> str:
    """Sandbox helper: when a review of this kind opened now is due (ISO 8601, UTC)."""
    step = _current()
    return _iso(step.deadlines.due_at(_kind(kind), step.moment))


def reminder_time(kind: str) -> str:
    """Sandbox helper: when the reminder of a review of this kind opened now goes out."""
    step = _current()
    return _iso(step.deadlines.reminder_at(_kind(kind), step.moment))


def escalation_time(kind: str) -> str:
    """Sandbox helper: when a review of this kind opened now is escalated if still open."""
    step = _current()
    return _iso(step.deadlines.escalation_at(_kind(kind), step.moment))


def _kind(kind) -> str:
    if not isinstance(kind, str) or kind not in DEADLINE_KINDS:
        raise ExpressionError(f'"{kind}" is not a deadline; known: {", ".join(sorted(DEADLINE_KINDS))}.')
    return kind


def moment() -> datetime:
    """The moment of the running engine step (the clock's now outside one)."""
    return _current().moment


# ---- timers on the one clock ------------------------------------------------------------------------------


class ClockTimeDate(TimeDateEventDefinition):
    """A timeDate timer that fires by civicflow's clock, not the machine's (SpiffWorkflow has no clock hook)."""

    def has_fired(self, my_task):
        """Evaluate the due time once, then fire when the clock has reached it."""
        value = my_task._get_internal_data("event_value")
        if value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            my_task._set_internal_data(event_value=value)
        if TimerEventDefinition.parse_time_or_duration(value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockDuration(DurationTimerEventDefinition):
    """A timeDuration timer ("P2D") counted from civicflow's clock."""

    def has_fired(self, my_task):
        """Fix the due time from the clock once, then fire when the clock has reached it."""
        value = my_task._get_internal_data("event_value")
        if value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            parsed = TimerEventDefinition.parse_iso_duration(expression)
            start = clock.now()
            value = (start + TimerEventDefinition.get_timedelta_from_start(parsed, start)).isoformat()
            my_task._set_internal_data(event_value=value)
        if TimerEventDefinition.get_datetime(value) <= clock.now():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


_CLOCKED = {TimeDateEventDefinition: ClockTimeDate, DurationTimerEventDefinition: ClockDuration}


def on_the_clock(task_spec) -> bool:
    """Make a parsed timer event fire by civicflow's clock; False for a timer kind civicflow cannot run."""
    definition = getattr(task_spec, "event_definition", None)
    if not isinstance(definition, TimerEventDefinition):
        return True
    if type(definition) in _CLOCKED.values():
        return True
    clocked = _CLOCKED.get(type(definition))
    if clocked is None:
        return False
    task_spec.event_definition = clocked(definition.name, definition.expression, description=definition.description)
    return True
