"""The JSON API of docs/api.md: the same engine services as the inbox, for city systems and scripts."""

from __future__ import annotations

import functools
from datetime import timedelta

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from engine import procedures
from engine.errors import Invalid, NotAuthenticated, NotFound
from engine.people import users
from engine.procedures.fields import UNSTORABLE, is_storable_text
from engine.records import attachments
from engine.records import registry as account_registry
from engine.requests import inbox as task_inbox
from engine.requests import services
from web.api import present
from web.api.openapi import MAX_JSON_BYTES, served_document
from web.attachments import image_response
from web.db import get_session, transactional

api = Blueprint("api", __name__, url_prefix="/api/v1")


def json_body() -> dict:
    """The request's JSON object; 415 for another media type, 413 over 1 MiB, 400 for malformed JSON."""
    if not request.is_json:
        raise UnsupportedMediaType("Send JSON with Content-Type: application/json.")
    if (request.content_length or 0) > MAX_JSON_BYTES or len(request.get_data(cache=True)) > MAX_JSON_BYTES:
        raise RequestEntityTooLarge("A JSON body may be at most 1 MiB.")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the json module's answer to a body nested thousands deep
        body = None
    if body is None:
        raise Invalid("The body is not valid JSON.", {"body": ["Malformed JSON."]})
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object.", {"body": ["Must be an object."]})
    return body


def data_of(body: dict) -> dict:
    """The `data` object of a start or complete body."""
    if "data" not in body:
        raise Invalid("The body needs a data object.", {"data": ["This field is required."]})
    if not isinstance(body["data"], dict):
        raise Invalid("data must be an object.", {"data": ["Must be an object."]})
    return body["data"]


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a whole number.", {name: ["Must be a whole number."]})
    if not low <= value <= high:
        raise Invalid(f"{name} is out of range.", {name: [f"Must be between {low} and {high}."]})
    return value


def paging() -> tuple[int, int]:
    """The page and per_page query arguments."""
    return _int_arg("page", 1, 1, 1_000_000), _int_arg("per_page", 50, 1, services.MAX_PER_PAGE)


@api.before_request
def refuse_nul_in_address():
    """PostgreSQL cannot compare text holding NUL: refuse it in the path and query before any query runs."""
    if "\x00" in request.path:
        raise NotFound("No such address.")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise Invalid("A query argument contains a NUL character.", {name.replace("\x00", ""): [UNSTORABLE]})


def authenticated(view):
    """Require a valid bearer token; the actor is in g.actor."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Send Authorization: Bearer <token> (POST /api/v1/auth/token).")
        session = get_session()
        user = users.user_for_token(session, token.strip())
        g.token = token.strip()
        g.actor = users.actor_for(session, user, remote_addr=request.remote_addr)
        return view(*args, **kwargs)

    return wrapper


@api.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API, with the public forms as they are now."""
    return jsonify(served_document(get_session()))


@api.post("/auth/token")
@transactional
def create_token():
    """Exchange a username and password for a bearer token."""
    body = json_body()
    errors = {
        name: ["Must be a non-empty string."]
        for name in ("username", "password")
        if not isinstance(body.get(name), str) or not body[name] or not is_storable_text(body[name])
    }
    if errors:
        raise Invalid("username and password are required.", errors)
    session = get_session()
    settings = current_app.extensions["civicflow.settings"]
    try:
        user = users.authenticate(session, body["username"], body["password"])
    except NotAuthenticated:
        session.commit()  # keep the failed-login count even though the request fails
        raise
    token = users.issue_token(session, user, timedelta(hours=settings.token_lifetime_hours))
    return jsonify({"token": token}), 201


@api.delete("/auth/token")
@transactional
@authenticated
def revoke_token():
    """Revoke the token this request was made with."""
    users.revoke_token(get_session(), g.token)
    return "", 204


@api.get("/me")
@authenticated
def me():
    """Who the token belongs to."""
    return jsonify(present.me(g.actor))


@api.get("/processes")
@authenticated
def list_processes():
    """The published procedures."""
    return jsonify([present.process(model) for model in services.published_models(get_session())])


@api.get("/processes/<key>/form")
@authenticated
def start_form(key):
    """The fields of a procedure's start form."""
    session = get_session()
    services.published_model(session, key)
    return jsonify({"fields": [f.describe() for f in procedures.get(key).start_fields(session, g.actor)]})


@api.post("/processes/<key>/instances")
@transactional
@authenticated
def start_instance(key):
    """Start a request."""
    procedures.get(key)  # an unknown procedure is a 404 before its body is read (no query)
    session = get_session()
    instance = services.start_instance(session, g.actor, key, data_of(json_body()))
    return jsonify(present.instance(session, g.actor, instance)), 201


@api.get("/instances")
@authenticated
def list_instances():
    """The requests the caller may see, newest first."""
    page, per_page = paging()
    status = request.args.get("status") or None
    if status and status not in present.STATUSES:
        raise Invalid("Unknown status.", {"status": [f"Use one of: {', '.join(present.STATUSES)}."]})
    session = get_session()
    rows, total = services.list_instances(
        session, g.actor, key=request.args.get("key") or None, status=status, page=page, per_page=per_page
    )
    return jsonify(
        {"items": [present.instance_summary(row) for row in rows], "page": page, "per_page": per_page, "total": total}
    )


@api.get("/instances/<id:instance_id>")
@authenticated
def get_instance(instance_id):
    """One request with its open tasks and its history."""
    session = get_session()
    return jsonify(present.instance(session, g.actor, services.get_instance(session, g.actor, instance_id)))


@api.get("/tasks")
@authenticated
def list_tasks():
    """Open tasks: scope=mine (assigned to me) or scope=available (I may claim)."""
    page, per_page = paging()
    scope = request.args.get("scope", "mine")
    rows, total = task_inbox.list_tasks(
        get_session(), g.actor, scope, key=request.args.get("key") or None, page=page, per_page=per_page
    )
    return jsonify({"items": [present.task(row) for row in rows], "page": page, "per_page": per_page, "total": total})


@api.get("/tasks/<task_id>")
@authenticated
def get_task(task_id):
    """One task with its form."""
    session = get_session()
    task = services.get_task(session, g.actor, task_id)
    return jsonify(present.task(task, form=services.task_form(session, task)))


@api.post("/tasks/<task_id>/claim")
@transactional
@authenticated
def claim_task(task_id):
    """Take a task."""
    return jsonify(present.task(services.claim_task(get_session(), g.actor, task_id)))


@api.post("/tasks/<task_id>/release")
@transactional
@authenticated
def release_task(task_id):
    """Give a task back."""
    return jsonify(present.task(services.release_task(get_session(), g.actor, task_id)))


@api.post("/tasks/<task_id>/complete")
@transactional
@authenticated
def complete_task(task_id):
    """Complete a task with its written decision; 409 if it is no longer open."""
    session = get_session()
    instance = services.complete_task(session, g.actor, task_id, data_of(json_body()))
    return jsonify(present.instance(session, g.actor, instance))


@api.get("/accounts")
@authenticated
def list_accounts():
    """The account registry (investigative profiles only for police roles)."""
    return jsonify([present.account(row) for row in account_registry.list_accounts(get_session(), g.actor)])


@api.post("/accounts/<id:account_id>/credentials")
@transactional
@authenticated
def reveal_credentials(account_id):
    """An investigative profile's credentials, for police roles; the reveal is logged."""
    return jsonify(account_registry.reveal_credentials(get_session(), g.actor, account_id))


@api.post("/attachments")
@transactional
@authenticated
def upload_attachment():
    """Upload a screenshot (multipart field `file`): kept exactly as sent once it proves a PNG, JPEG or WebP image."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("Send the image as multipart/form-data, in the field file.")
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("No file was sent.", {"file": ["Send the image in the multipart field file."]})
    limit = current_app.extensions["civicflow.settings"].max_attachment_bytes
    data = upload.read(limit + 1)  # one byte more than allowed tells "too large" without reading everything
    if len(data) > limit:
        raise RequestEntityTooLarge(attachments.too_large_message(limit))
    attachment = attachments.store(get_session(), g.actor, upload.filename, data, limit=limit)
    return jsonify(
        {
            "id": attachment.id,
            "sha256": attachment.sha256,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "width": attachment.width,
            "height": attachment.height,
        }
    ), 201


@api.get("/attachments/<attachment_id>")
@authenticated
def get_attachment(attachment_id):
    """An uploaded image, to its uploader or to whoever may see the request it belongs to."""
    session = get_session()
    attachment = attachments.viewable(session, g.actor, attachment_id)
    return image_response(attachment, attachments.content(session, attachment))


# On this blueprint too: the public endpoints, administrators' editing of the procedures, and the incidents.
from web.api import incidents, processes, public  # noqa: E402,F401
