"""Engine errors and HTTP errors to responses, in one place: JSON under /api/, pages elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine.errors import (
    Busy,
    CivicflowError,
    Conflict,
    Invalid,
    NotAllowed,
    NotAuthenticated,
    NotFound,
)

STATUS = {Invalid: 400, NotAuthenticated: 401, NotAllowed: 403, NotFound: 404, Conflict: 409, Busy: 503}
log = logging.getLogger("civicflow.web")


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The error format of docs/api.md."""
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


def status_for(exc: CivicflowError) -> int:
    """The HTTP status of an engine error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


HEADINGS = {
    400: "This could not be done",
    401: "Please log in",
    403: "Not yours to open",
    404: "Not found",
    405: "Not allowed here",
    409: "Someone else got there first",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong",
}


TOO_MANY = (
    "Too many requests came from your connection in a short time, so this one was not accepted and "
    "nothing was saved. Please wait a few minutes and try again."
)


TOO_LARGE_FOR_PUBLIC = (
    "What you sent is larger than this form accepts, so nothing was sent. Each text may be "
    "at most 10,000 characters; shorten it and send it again."
)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _same_site_referrer() -> str | None:
    """The page the form was on, when it is a page of this site (never a link to elsewhere)."""
    referrer = request.referrer or ""
    return referrer if referrer.startswith(request.host_url) else None


def error_page(status: int, message: str, back: str | None = None):
    """An HTML error page that says what happened and where to go; nothing was saved."""
    session = g.get("db")
    if session is not None:
        session.rollback()  # the page's own queries (the nav count) must not run in a failed transaction
    return render_template(
        "error.html", heading=HEADINGS.get(status, "This could not be done"), message=message, back=back
    ), status


CSRF_EXPIRED = (
    "The form's security token was missing or has expired, so nothing was saved. Reload the form and submit it again."
)
INTERNAL_ERROR = "Something went wrong on our side; nothing was saved."
# The API's error code for each HTTP error it answers with; any other is "http_error".
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _json_error(status: int, body: dict) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _csrf_error(exc: CSRFError):
    """A form sent without a valid security token: back to the form's page."""
    return error_page(400, CSRF_EXPIRED, back=_same_site_referrer())


def _domain_error(exc: CivicflowError):
    """An engine error, at its status: a page (a login for 401), or the API's JSON."""
    status = status_for(exc)
    if status == 500:
        log.error("engine error on %s: %s", request.path, exc.message)
    if not _is_api():
        if status == 401:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return error_page(status, exc.message)
    body = error_body(exc.code, exc.message, exc.fields)
    if getattr(exc, "problems", None):
        body["error"]["problems"] = [problem.as_dict() for problem in exc.problems]
    response = _json_error(status, body)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="civicflow"'
    if isinstance(exc, Busy):
        response.headers["Retry-After"] = str(exc.retry_after)
        g.retry_after = exc.retry_after  # the rate limiter's headers must not replace it (web/ratelimit.py)
    return response


def _http_error(exc: HTTPException):
    """An HTTP error (not found, too large, rate limited...): a page, or the API's JSON."""
    if exc.response is not None and not _is_api():
        return exc.response  # the page's own answer (the login page's 429 says how long to wait)
    if exc.code == 429:
        exc.description = TOO_MANY
    if exc.code == 413 and request.path.startswith(("/public/", "/api/v1/public/")):
        exc.description = TOO_LARGE_FOR_PUBLIC
    if not _is_api():
        if exc.code is None or exc.code < 400:
            return exc
        response = make_response(error_page(exc.code, exc.description or exc.name))
    else:
        code = HTTP_ERROR_CODES.get(exc.code, "http_error")
        response = _json_error(exc.code, error_body(code, exc.description or exc.name))
    return _with_own_headers(response, exc)


def _with_own_headers(response: Response, exc: HTTPException) -> Response:
    """The error's own headers on the page or JSON that answers it: a 405's Allow names the methods it takes."""
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected(exc: Exception):
    """Anything else: logged, and a 500 that says nothing was saved."""
    log.exception("unexpected error on %s", request.path)
    if _is_api():
        return _json_error(500, error_body("internal_error", INTERNAL_ERROR))
    return error_page(500, INTERNAL_ERROR)


# Flask picks the handler of the most specific class in an error's MRO, whatever the order here.
HANDLERS = (
    (CSRFError, _csrf_error),
    (CivicflowError, _domain_error),
    (HTTPException, _http_error),
    (Exception, _unexpected),
)


def init_app(app: Flask) -> None:
    """Register the handlers."""
    for error_class, handler in HANDLERS:
        app.register_error_handler(error_class, handler)
