"""Engine errors and HTTP errors to responses, in one place: JSON under /api/, pages elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from engine.errors import (
    CivicflowError,
    Conflict,
    Invalid,
    NotAllowed,
    NotAuthenticated,
    NotFound,
)

STATUS = {Invalid: 400, NotAuthenticated: 401, NotAllowed: 403, NotFound: 404, Conflict: 409}
log = logging.getLogger("civicflow.web")


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    """The error format of API.md."""
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


def _status_for(exc: CivicflowError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(CivicflowError)
    def domain_error(exc: CivicflowError):
        status = _status_for(exc)
        if status == 500:
            log.error("engine error on %s: %s", request.path, exc.message)
        body = error_body(exc.code, exc.message, exc.fields)
        if getattr(exc, "problems", None):
            body["error"]["problems"] = exc.problems
        response = jsonify(body)
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="civicflow"'
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not request.path.startswith("/api/"):
            return exc
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                415: "unsupported_media_type", 429: "rate_limited"}.get(exc.code, "http_error")
        response = jsonify(error_body(code, exc.description or exc.name))
        response.status_code = exc.code
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s", request.path)
        if request.path.startswith("/api/"):
            response = jsonify(error_body("internal_error", "Something went wrong on our side; nothing was saved."))
            response.status_code = 500
            return response
        return "Something went wrong on our side; nothing was saved.", 500
