"""The public endpoints of docs/api.md: members of the public file appeals and disputes and follow them, no token.

Every one is rate limited per client (web/ratelimit.py); a body is at most web.public.PUBLIC_MAX_BYTES.
"""

from __future__ import annotations

from flask import jsonify

from engine.requests import public
from web.api import api, json_body
from web.db import get_session, transactional
from web.public import one_filing_at_a_time


def _filing() -> dict:
    """The fields of a filing: the body itself, or its "data" object as the staff start takes it."""
    body = json_body()
    if set(body) == {"data"} and isinstance(body["data"], dict):
        return body["data"]
    return body


def _file(kind: str):
    filed = public.submit(get_session(), kind, _filing())
    return jsonify({"tracking_code": filed.code}), 201


@api.post("/public/appeals")
@one_filing_at_a_time
@transactional
def public_appeal():
    """A member of the public appeals the removal of their comment; 201 with the tracking code."""
    return _file("appeal")


@api.post("/public/disputes")
@one_filing_at_a_time
@transactional
def public_dispute():
    """A member of the public disputes the legality of a portion of the policy; 201 with the tracking code."""
    return _file("dispute")


@api.get("/public/requests/<tracking_code>")
def public_status(tracking_code):
    """The public facts of one request, found by its tracking code (404 alike for unknown and malformed)."""
    session = get_session()
    response = jsonify(public.status_of(session, public.find(session, tracking_code)).as_json())
    response.headers.update({"Cache-Control": "no-store", "X-Robots-Tag": "noindex"})
    return response


# The views the rate limits apply to (web/__init__.py).
SUBMISSIONS = ["api.public_appeal", "api.public_dispute"]
LOOKUPS = ["api.public_status"]
