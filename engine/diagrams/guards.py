"""The guarded operations and builtins the sandbox gives diagram expressions (engine/diagrams/budget.py's limits).

The sandbox's compiler turns `a * b`, `a ** b`, `a + b`, `a << b`, `a % b` and `x += y` into calls of
`binop`/`inplace`, f-string format specs into `format_value`, every iteration into `guarded_iter`, and
every function body into a `tick`; the builtins that consume iterables count what they take. Each checks the
size of what it would make before Python makes it.
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Callable, Iterable
from numbers import Number
from typing import Any

from RestrictedPython.Guards import safer_getattr
from RestrictedPython.PrintCollector import PrintCollector

from engine.diagrams import budget
from engine.diagrams.budget import BudgetExceeded, check_bits, check_items

log = logging.getLogger("civicflow.diagram")

_SEQUENCES = (str, bytes, list, tuple)


def _int_bits(value) -> int:
    return value.bit_length() if isinstance(value, int) else 0


def _mul(left, right):
    if isinstance(left, _SEQUENCES) and isinstance(right, int):
        check_items("Repeating a string or list", len(left) * max(right, 0))
    elif isinstance(right, _SEQUENCES) and isinstance(left, int):
        check_items("Repeating a string or list", len(right) * max(left, 0))
    elif isinstance(left, int) and isinstance(right, int):
        check_bits(_int_bits(left) + _int_bits(right))
    return left * right


def _pow(base, exponent, modulus=None):
    if modulus is None and isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        check_bits(max(_int_bits(base) - 1, 1) * exponent if abs(base) > 1 else 1)
    return pow(base, exponent, modulus)


def _add(left, right):
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        check_items("Joining two strings or lists", len(left) + len(right))
    return left + right


def _lshift(left, right):
    if isinstance(left, int) and isinstance(right, int):
        check_bits(_int_bits(left) + max(right, 0))
    return left << right


_WIDTH = re.compile(r"%[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")


def _width_of(digits: str | None) -> int:
    if digits == "*":
        raise BudgetExceeded("A width of * in %-formatting is not available in diagram expressions; write it out.")
    return int(digits) if digits else 0


def _mod(left, right):
    if isinstance(left, str):
        for width, precision in _WIDTH.findall(left):
            check_items("A formatted value", max(_width_of(width), _width_of(precision)))
    return left % right


_BINARY = {
    "*": _mul,
    "**": _pow,
    "+": _add,
    "<<": _lshift,
    "%": _mod,
    "-": operator.sub,
    "/": operator.truediv,
    "//": operator.floordiv,
    ">>": operator.rshift,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "@": operator.matmul,
}


def binop(op: str, left, right):
    """`left op right`, its result's size checked first."""
    return _BINARY[op](left, right)


def inplace(op: str, target, value):
    """`target op= value` (RestrictedPython's `_inplacevar_`): the same checks as the operator."""
    return _BINARY[op.removesuffix("=")](target, value)


_SPEC_WIDTH = re.compile(r"(\d+)(?:\.(\d+))?")


def format_value(value, conversion: int, spec: str):
    """An f-string's `{value!r:>10}`: the width and precision in its spec are checked first."""
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("s"):
        value = str(value)
    elif conversion == ord("a"):
        value = ascii(value)
    for width, precision in _SPEC_WIDTH.findall(spec):
        check_items("A formatted value", max(int(width), int(precision or 0)))
    return format(value, spec)


def tick() -> None:
    """A function of a script was called: it counts, and the clock is looked at."""
    budget.current().tick()


def guarded_iter(iterable):
    """RestrictedPython's `_getiter_`: every `for` and comprehension counts its rounds."""
    return budget.current().counting(iterable)


def apply(function: Callable, *args, **kwargs):
    """RestrictedPython's `_apply_` (calls with `*args` or `**kwargs`)."""
    return function(*args, **kwargs)


class StepLog(PrintCollector):
    """`print` in a script writes to the step's log (civicflow.diagram), never to the server's output."""

    def _call_print(self, *objects, **kwargs):
        kwargs.pop("file", None)
        kwargs.pop("flush", None)
        text = kwargs.get("sep", " ").join(str(o) for o in objects)
        check_items("A printed line", len(text))
        log.info("diagram print: %s", text[:2000])


def guarded_range(*args):
    """`range`, at most the budget's items long."""
    values = range(*args)
    check_items("A range", len(values))
    return values


def _counted(iterable: Iterable):
    return budget.current().counting(iterable)


def _consumer(function: Callable) -> Callable:
    """A builtin that takes one iterable first (list, sorted, sum...), made to count what it takes."""

    def guarded(*args, **kwargs):
        if args and not isinstance(args[0], Number):
            args = (_counted(args[0]), *args[1:])
        return function(*args, **kwargs)

    guarded.__name__ = function.__name__
    return guarded


def _sum(iterable, start=0):
    if not isinstance(start, Number):
        raise BudgetExceeded("sum() adds numbers only; join lists or strings with a comprehension or str.join.")
    return sum(_counted(iterable), start)


def _min_max(function: Callable) -> Callable:
    def guarded(*args, **kwargs):
        if len(args) == 1:
            return function(_counted(args[0]), **kwargs)
        return function(*args, **kwargs)

    guarded.__name__ = function.__name__
    return guarded


def _zip(*iterables, strict=False):
    return zip(*(_counted(i) for i in iterables), strict=strict)


def _dict(*args, **kwargs):
    if args and not isinstance(args[0], dict):
        args = (_counted(args[0]),)
    return dict(*args, **kwargs)


def builtins() -> dict[str, Any]:
    """The builtins that make or consume collections, guarded."""
    return {
        "range": guarded_range,
        "pow": _pow,
        "sum": _sum,
        "min": _min_max(min),
        "max": _min_max(max),
        "list": _consumer(list),
        "tuple": _consumer(tuple),
        "set": _consumer(set),
        "sorted": _consumer(sorted),
        "any": _consumer(any),
        "all": _consumer(all),
        "enumerate": _consumer(enumerate),
        "zip": _zip,
        "dict": _dict,
    }


# ---- string methods that make long strings ------------------------------------------------------


def _padding(method: str, text: str) -> Callable:
    bound = getattr(text, method)

    def guarded(width, *args):
        if isinstance(width, int):
            check_items(f"str.{method}()", width)
        return bound(width, *args)

    return guarded


def _expandtabs(text: str) -> Callable:
    def guarded(tabsize=8):
        check_items("str.expandtabs()", len(text) * max(int(tabsize), 1))
        return text.expandtabs(tabsize)

    return guarded


def _replace(text: str) -> Callable:
    def guarded(old, new, count=-1):
        if isinstance(old, str) and isinstance(new, str):
            found = text.count(old) if old else len(text) + 1
            if count >= 0:
                found = min(found, count)
            check_items("str.replace()", len(text) + found * max(len(new) - len(old), 0))
        return text.replace(old, new, count)

    return guarded


def _join(text: str) -> Callable:
    def guarded(iterable):
        parts = list(_counted(iterable))
        check_items("str.join()", sum(len(p) for p in parts if isinstance(p, str)) + len(text) * len(parts))
        return text.join(parts)

    return guarded


_STRING_METHODS: dict[str, Callable[[str, str], Callable]] = {
    "ljust": lambda text, name: _padding(name, text),
    "rjust": lambda text, name: _padding(name, text),
    "center": lambda text, name: _padding(name, text),
    "zfill": lambda text, name: _padding(name, text),
    "expandtabs": lambda text, _name: _expandtabs(text),
    "replace": lambda text, _name: _replace(text),
    "join": lambda text, _name: _join(text),
}


def guarded_getattr(obj, name: str, default=None):
    """RestrictedPython's safer getattr, with the string methods that make long strings checked."""
    if isinstance(obj, str) and name in _STRING_METHODS:
        return _STRING_METHODS[name](obj, name)
    return safer_getattr(obj, name, default)
