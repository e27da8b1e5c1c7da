"""What one engine step's diagram expressions may spend: CPU time, iterations, and the size of what they make.

A diagram's conditions, scripts and timer values run in the server's own threads (the web server, the
scheduler, the CLI), so one expression must never freeze a worker, hold the SQLite write lock, or fill the
memory. The sandbox (engine/diagrams/sandbox.py) routes everything that can be expensive through here:

- **CPU time** per engine step (`Budget.cpu_seconds`, the thread's own CPU clock): checked whenever an
  expression starts, every 1,024 iterations, and at every function call a script makes.
- **Iterations**: every `for`, comprehension, and builtin that consumes an iterable (`list`, `sum`,
  `sorted`, `zip`, `str.join`...) counts what it takes; a step may take `max_iterations` in all.
- **Sizes**, checked *before* Python allocates: `range`, `*` and `+` on strings and lists, `**`, `<<`,
  `pow`, `%` formatting, format widths, and the string methods that pad or replace produce at most
  `max_items` items or characters, and integers at most `max_int_bits` bits.
- **Saved data**: what a script leaves in the task data may be at most `max_data_bytes` as JSON.

Going over raises BudgetExceeded, an ExpressionError: the step fails at its element and the request is held
with an incident (engine/requests/incidents.py), in the same few milliseconds the check took. Nothing
is left running: every check runs in the expression's own thread, before the expensive work starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from engine.errors import ExpressionError

CHECK_EVERY = 1024  # iterations between two looks at the clock


@dataclass(frozen=True)
class Budget:
    """The limits of one engine step."""

    cpu_seconds: float = 1.0
    max_iterations: int = 1_000_000
    max_items: int = 1_000_000
    max_int_bits: int = 100_000
    max_data_bytes: int = 1_000_000


DEFAULT = Budget()


class BudgetExceeded(ExpressionError):
    """A diagram expression went over its step's budget."""

    code = "budget_exceeded"


class Meter:
    """What the running step has spent so far."""

    def __init__(self, budget: Budget, within: Meter | None = None):
        self.budget = budget
        self.deadline = time.thread_time() + budget.cpu_seconds
        self.seconds = budget.cpu_seconds
        if within is not None and within.deadline < self.deadline:
            # A step run inside a tighter budget (a public filing's) keeps the tighter one.
            self.deadline, self.seconds = within.deadline, within.seconds
        self.iterations = 0

    def check_time(self) -> None:
        """Stop the step if it has used its CPU time."""
        if time.thread_time() > self.deadline:
            raise BudgetExceeded(
                f"The step used more than its {self.seconds:g} s of computing time "
                "(a loop or a calculation too large for a procedure step)."
            )

    def tick(self) -> None:
        """One iteration, or one function call."""
        self.iterations += 1
        if self.iterations > self.budget.max_iterations:
            raise BudgetExceeded(
                f"The step went round its loops more than {self.budget.max_iterations:,} times; "
                "a procedure step works on a handful of values."
            )
        if not self.iterations % CHECK_EVERY:
            self.check_time()

    def counting(self, iterable: Iterable) -> Iterator:
        """The iterable's items, each one counted."""
        for item in iterable:
            self.tick()
            yield item


_meter: ContextVar[Meter | None] = ContextVar("civicflow_expression_meter", default=None)


@contextmanager
def metered(budget: Budget = DEFAULT) -> Iterator[Meter]:
    """Run a step under a budget (the services wrap each engine step; an expression outside one gets its own).

    Inside another budget, the earlier of the two deadlines holds.
    """
    meter = Meter(budget, _meter.get())
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def in_step() -> bool:
    """Whether an expression starting now runs within a step's budget (checked first: it may have run out)."""
    meter = _meter.get()
    if meter is None:
        return False
    meter.check_time()
    return True


def current() -> Meter:
    """The running step's meter (a fresh default one outside any step)."""
    return _meter.get() or Meter(DEFAULT)


# ---- sizes, checked before anything is made -------------------------------------------------------


def too_many(what: str, count: int) -> BudgetExceeded:
    limit = current().budget.max_items
    return BudgetExceeded(f"{what} would have {count:,} items or characters; a step may make at most {limit:,}.")


def check_items(what: str, count: int) -> None:
    """Refuse to make a string or collection of more items than the budget allows."""
    if count > current().budget.max_items:
        raise too_many(what, count)


def check_bits(bits: int) -> None:
    """Refuse to make an integer larger than the budget allows."""
    limit = current().budget.max_int_bits
    if bits > limit:
        raise BudgetExceeded(f"A number of about {bits:,} bits is too large for a procedure step (at most {limit:,}).")


def check_data(context: dict) -> None:
    """Refuse task data larger than the budget allows, as it would be saved."""
    limit = current().budget.max_data_bytes
    try:
        size = len(json.dumps(context, default=str))
    except (TypeError, ValueError):
        return  # what cannot be encoded is refused where the state is saved, with its own message
    if size > limit:
        raise BudgetExceeded(f"The step's data would take {size:,} bytes; a request's data may take at most {limit:,}.")
