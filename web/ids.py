"""Record ids in addresses: a whole number the database's integer columns hold, or the address names nothing.

The same bound on SQLite and PostgreSQL (whose `integer` ends at 2**31 - 1), so that an address answers alike on
both, and a number no record can have never reaches a query: in a path it is a 404, in the query a 400 naming it.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.routing import IntegerConverter, Map

from engine.errors import Invalid

MAX_ID = 2**31 - 1
# Query arguments that are not record ids: a tracking code may be typed as digits only; the views bound the page.
NOT_IDS = frozenset({"code", "page", "per_page"})


def numbers_up_to(limit: int) -> str:
    """A regular expression of the whole numbers 1 to `limit` as written, without leading zeros."""
    digits = str(limit)
    shorter = [rf"[1-9]\d{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    same_length = [
        f"{digits[:i]}[{low}-{int(digit) - 1}]" + rf"\d{{{len(digits) - i - 1}}}"
        for i, digit in enumerate(digits)
        for low in [1 if i == 0 else 0]
        if int(digit) > low
    ]
    return "(?:" + "|".join([*shorter, *same_length, digits]) + ")"


class IdConverter(IntegerConverter):
    """`<id:name>`: a record's id, 1 to MAX_ID; any other number matches no route, so the answer is a 404.

    The bound is in the pattern, not only in the conversion: werkzeug names an address's other methods (a 405)
    before it converts, so a number that only failed conversion would answer "method not allowed"."""

    regex = numbers_up_to(MAX_ID)

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def out_of_range(name: str) -> Invalid:
    """The refusal of a number no record can have, naming where it was sent."""
    return Invalid(f"{name} is out of range.", {name: [f"Must be a whole number from 1 to {MAX_ID}."]})


def is_beyond_ids(value: str) -> bool:
    """Whether a text is a whole number (ASCII digits) larger than any record's id."""
    digits = value.lstrip("0")
    return value.isascii() and value.isdigit() and (len(digits) > len(str(MAX_ID)) or int(digits or 0) > MAX_ID)


def refuse_huge_query_numbers() -> None:
    """Before any view: a query argument holding a number beyond MAX_ID is refused (400) with its name."""
    if request.routing_exception is not None:
        return  # the address names no view: its 404 or 405 says so first
    for name, value in request.args.items(multi=True):
        if name not in NOT_IDS and is_beyond_ids(value):
            raise out_of_range(name)


def init_app(app: Flask) -> None:
    """Register the `id` converter for every route, and the check of the query's numbers."""
    app.url_map.converters["id"] = IdConverter
    app.before_request(refuse_huge_query_numbers)
