"""The OpenAPI 3 document served at /api/v1/openapi.json."""

from __future__ import annotations

import copy
from functools import cache

from sqlalchemy.orm import Session

from engine.db.statuses import IncidentStatus, InstanceStatus, PublicStatus
from engine.procedures.fields import (
    BOOLEAN,
    EMAIL,
    FIELD_TYPES,
    IMAGE,
    MULTICHOICE,
    RECORD,
    SECRET,
    URL,
    USERNAMES,
    Field,
)
from engine.requests import public as public_requests
from engine.requests.services import MAX_PER_PAGE
from web.ids import MAX_ID
from web.public import PUBLIC_MAX_BYTES

ERRORS = {
    "400": "Invalid input; `error.fields` names each field",
    "401": "No or bad credentials",
    "403": "Authenticated but not allowed",
    "404": "Not found",
    "409": "Conflict: the task is no longer open, or the request changed concurrently",
    "413": "Body too large",
    "415": "Not JSON",
    "429": "Too many requests from this client; Retry-After says when to try again",
    "503": "Busy with other filings at this moment; send it again after Retry-After seconds",
}
# The answers that say when to try again.
RETRY_AFTER = {
    "429": "Seconds until this client's limit resets",
    "503": "Seconds to wait before sending the filing again",
}
# Record ids, in a path, a query or a body: what the database's integer columns hold (web/ids.py).
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
# The request limit is larger, for screenshots; no JSON body needs more than this (web/api/__init__.py).
MAX_JSON_BYTES = 1024 * 1024
# The longest tracking code public.normalise reads (dashes and spaces included); a longer one is no code.
TYPED_CODE_LENGTH = 64
# A form's list fields take at most this many entries (engine/procedures/fields.py).
MAX_LIST_ENTRIES = 50


def _values(statuses) -> list[str]:
    """An enum's values, as the document lists them."""
    return [status.value for status in statuses]


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


def _error(code: str) -> dict:
    response = {"description": ERRORS[code], **_json(_ref("Error"))}
    if code in RETRY_AFTER:
        response["headers"] = {
            "Retry-After": {"description": RETRY_AFTER[code], "schema": {"type": "integer", "minimum": 1}}
        }
    return response


def _body(schema: dict, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """A JSON request body and the most bytes it may have (OpenAPI has no keyword for it: an extension)."""
    return {
        "required": True,
        "description": f"JSON, at most {max_bytes // 1024} KiB",
        "x-max-bytes": max_bytes,
        **_json(schema),
    }


def _op(summary, ok_status, ok_schema, *, errors=("400", "401", "403", "404"), body=None, params=(), public=False):
    responses = {ok_status: {"description": "Success", **(_json(ok_schema) if ok_schema else {})}}
    for code in errors:
        responses[code] = _error(code)
    op = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = list(params)
    if public:
        op["security"] = []
    return op


def _param(name, where="query", schema=None, required=False):
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema or {"type": "string"}}


PAGE = [
    _param("page", schema={"type": "integer", "minimum": 1, "maximum": 1_000_000}),
    _param("per_page", schema={"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}),
]
DATA_BODY = {"type": "object", "required": ["data"], "properties": {"data": {"type": "object"}}}


def _page_of(item):
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    }


def _obj(**props):
    return {"type": "object", "properties": props}


S, INT, B, T = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "string", "format": "date-time"}
NS, NT = {"type": "string", "nullable": True}, {"type": "string", "format": "date-time", "nullable": True}
NONEMPTY = {"type": "string", "minLength": 1}


def _upload_op():
    """POST /attachments: a multipart body, not JSON, so its request body and 415 are its own."""
    op = _op(
        "Upload a screenshot (PNG, JPEG or WebP, at most 5 MB), kept exactly as sent",
        "201",
        _obj(id=S, sha256=S, content_type=S, size=INT, width=INT, height=INT),
        errors=("400", "401", "413", "415"),
    )
    op["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
    op["responses"]["415"] = {"description": "Not multipart/form-data", **_json(_ref("Error"))}
    return op


def _image_op():
    """GET /attachments/{attachment_id}: the image's bytes, not JSON."""
    op = _op(
        "An uploaded image: to its uploader, or to whoever may see the request it belongs to",
        "200",
        None,
        errors=("401", "403", "404"),
        params=[_param("attachment_id", "path", {"type": "string", "format": "uuid"})],
    )
    op["responses"]["200"] = {
        "description": "The image exactly as uploaded, with nosniff and a sandboxing Content-Security-Policy",
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in ("image/png", "image/jpeg", "image/webp")
        },
    }
    return op


def field_schema(field: Field) -> dict:
    """A form field as the engine checks it (engine/procedures/fields.py), as a JSON schema."""
    if field.type == BOOLEAN:
        schema: dict = {"type": "boolean"}
    elif field.type == RECORD:
        schema = {**ID, **({"enum": [int(choice) for choice in field.choices]} if field.choices else {})}
    elif field.type == IMAGE:
        schema = {"type": "string", "format": "uuid", "description": "POST /attachments gives the id"}
    elif field.type in (MULTICHOICE, USERNAMES):
        items = {"type": "string", **({"enum": list(field.choices)} if field.choices else {})}
        schema = {"type": "array", "items": items, "maxItems": MAX_LIST_ENTRIES, "minItems": int(field.required)}
    else:
        schema = {"type": "string", "maxLength": field.max_length, "minLength": int(field.required)}
        if field.choices:
            schema["enum"] = list(field.choices)
        if field.type in FORMATS:
            schema["format"] = FORMATS[field.type]
    return {"title": field.label, **schema, **({"description": field.hint} if field.hint else {})}


FORMATS = {EMAIL: "email", URL: "uri", SECRET: "password"}


def fields_schema(fields: list[Field], **extra: dict) -> dict:
    """An object of a form's fields: the required ones, each field's limits, and no other field."""
    return {
        "type": "object",
        "required": [field.name for field in fields if field.required],
        "properties": {field.name: field_schema(field) for field in fields} | extra,
        "additionalProperties": False,
    }


def _public_filing(summary):
    """POST /public/appeals or /public/disputes: no token; the body (the public form's fields) is filled in as
    the form is when the document is served (served_document)."""
    return _op(
        summary,
        "201",
        _obj(tracking_code=S),
        errors=("400", "413", "415", "429", "503"),
        public=True,
        body={"type": "object"},
    )


# The public filings, by path, and the kind of request each files.
PUBLIC_FILINGS = {"/public/appeals": "appeal", "/public/disputes": "dispute"}


def served_document(session: Session) -> dict:
    """The document, with the public filings' bodies as their forms are now (the appeal's accounts are the
    registry's)."""
    document = copy.deepcopy(openapi_document())
    for path, kind in PUBLIC_FILINGS.items():
        fields = fields_schema(
            public_requests.procedure_of(kind).public_fields(session),
            received_via={"type": "string", "enum": ["web"]},
        )
        wrapped = {
            "type": "object",
            "required": ["data"],
            "properties": {"data": fields},
            "additionalProperties": False,
        }
        body = _body({"oneOf": [fields, wrapped]}, PUBLIC_MAX_BYTES)
        document["paths"][path]["post"]["requestBody"] = body
    return document


XML_BODY = {"content": {kind: {"schema": {"type": "string"}} for kind in ("application/xml", "text/xml")}}


def _xml_ok(op, description):
    op["responses"]["200"] = {"description": description, **XML_BODY}
    return op


def _editing_paths() -> dict:
    """Administrators change the procedures: the draft (BPMN XML), publishing, versions and differences."""
    key = _param("key", "path")
    problem = _obj(message=S, element=S, name=S, line=INT)
    draft = _obj(
        key=S,
        revision=INT,
        is_draft=B,
        based_on_version={"type": "integer", "nullable": True},
        updated_by=NS,
        updated_at=NT,
        publishable=B,
        problems={"type": "array", "items": problem},
    )
    put = _op(
        "Save BPMN XML as the procedure's draft (administrators). If-Match: the revision it was made from. "
        "Problems are listed and block publishing only; a DOCTYPE, a document that is not well-formed BPMN "
        "or one over 2 MiB is refused (400, 413) and nothing is stored",
        "200",
        draft,
        errors=("400", "401", "403", "404", "409", "413", "415"),
        params=[key, _param("If-Match", "header")],
    )
    put["requestBody"] = {"required": True, **XML_BODY}
    put["responses"]["415"] = {"description": "Not application/xml", **_json(_ref("Error"))}
    published = _obj(key=S, version=INT, version_hash=S, published_at=T, published_by=S, note=NS)
    publish = _op(
        'Publish the draft (or, with {"version": N}, an earlier version again): new requests use '
        "it, running ones stay on theirs. 400 lists every problem in error.problems",
        "200",
        published,
        errors=("400", "401", "403", "404", "409", "413", "415"),
        params=[key, _param("If-Match", "header")],
    )
    publish["requestBody"] = {
        **_body(_obj(version=ID, note={"type": "string", "maxLength": 500, "description": "What changed and why"})),
        "required": False,
    }
    version = _obj(
        version=INT,
        version_hash=S,
        name=S,
        source=S,
        created_at=T,
        created_by=NS,
        current=B,
        published_at=NT,
        published_by=NS,
        running_requests=INT,
        note=NS,
    )
    change = _obj(property=S, before=NS, after=NS, before_words=NS, after_words=NS, before_id=NS, after_id=NS)
    strings = {"type": "object", "additionalProperties": S}
    element = _obj(id=S, type=S, name=S, label=S, properties=strings, words=strings, ids=strings)
    changed = _obj(id=S, type=S, name=S, label=S, changes={"type": "array", "items": change})
    listed = {"type": "array", "items": element}
    return {
        "/processes/{key}/draft": {
            "get": _xml_ok(
                _op(
                    "The draft's BPMN XML, or the version in use when there is no draft (ETag: its "
                    "revision, 0 for none); JSON with its problems when asked for",
                    "200",
                    None,
                    errors=("401", "403", "404"),
                    params=[key],
                ),
                "The BPMN XML",
            ),
            "put": put,
        },
        "/processes/{key}/publish": {"post": publish},
        "/processes/{key}/versions": {
            "get": _op(
                "Every version, newest first: who stored and published it, what runs on it",
                "200",
                {"type": "array", "items": version},
                errors=("401", "403", "404"),
                params=[key],
            )
        },
        "/processes/{key}/versions/{number}": {
            "get": _xml_ok(
                _op(
                    "One version's BPMN XML",
                    "200",
                    None,
                    errors=("401", "403", "404"),
                    params=[key, _param("number", "path", ID)],
                ),
                "The BPMN XML",
            )
        },
        "/processes/{key}/diff": {
            "get": _op(
                "What changed from one version to another (or the draft), element by element",
                "200",
                _obj(added=listed, removed=listed, changed={"type": "array", "items": changed}, moved=listed),
                errors=("400", "401", "403", "404"),
                params=[
                    key,
                    _param("from", required=True, schema=ID),
                    _param("to", schema={"oneOf": [ID, {"type": "string", "enum": ["draft"]}]}),
                ],
            )
        },
    }


def _recovery_paths() -> dict:
    """Incidents and recovery (administrators): the held requests, moving one to a version, retrying, cancelling."""
    instance_id = _param("instance_id", "path", ID)
    writes = ("400", "401", "403", "404", "409", "413", "415")
    return {
        "/incidents": {
            "get": _op(
                "Requests held at a failed step, newest first (administrators)",
                "200",
                _obj(items={"type": "array", "items": _ref("Incident")}),
                errors=("400", "401", "403"),
                params=[_param("status", schema={"type": "string", "enum": _values(IncidentStatus)})],
            )
        },
        "/incidents/{incident_id}": {
            "get": _op(
                "One incident (administrators)",
                "200",
                _ref("Incident"),
                errors=("401", "403", "404"),
                params=[_param("incident_id", "path", ID)],
            )
        },
        "/instances/{instance_id}/migrate": {
            "post": _op(
                "Move a running or held request to version N of its procedure; 409 with error.problems, "
                "element by element, when it cannot move (nothing changed)",
                "200",
                _ref("Instance"),
                errors=writes,
                body={"type": "object", "required": ["version"], "properties": {"version": ID}},
                params=[instance_id],
            )
        },
        "/instances/{instance_id}/retry": {
            "post": _op(
                "Run a held request's failed step again; if it fails again the request stays held",
                "200",
                _ref("Instance"),
                errors=("401", "403", "404", "409"),
                params=[instance_id],
            )
        },
        "/instances/{instance_id}/cancel": {
            "post": _op(
                "End a held request with a written reason (administrators)",
                "200",
                _ref("Instance"),
                errors=writes,
                body={"type": "object", "required": ["reason"], "properties": {"reason": NONEMPTY}},
                params=[instance_id],
            )
        },
    }


@cache
def openapi_document() -> dict:
    """The whole document."""
    task_id = _param("task_id", "path", {"type": "string", "format": "uuid"})
    writes = ("400", "401", "403", "404", "409", "413", "415")
    paths = {
        "/auth/token": {
            "post": _op(
                "Exchange username and password for a bearer token",
                "201",
                _obj(token=S),
                errors=("400", "401", "413", "415", "429"),
                public=True,
                body={
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {"username": NONEMPTY, "password": NONEMPTY},
                },
            ),
            "delete": _op("Revoke the token used for this request", "204", None, errors=("401",)),
        },
        "/me": {"get": _op("The caller", "200", _ref("Me"), errors=("401",))},
        "/processes": {
            "get": _op("The published procedures", "200", {"type": "array", "items": _ref("Process")}, errors=("401",))
        },
        "/processes/{key}/form": {
            "get": _op(
                "A procedure's start form", "200", _ref("Form"), errors=("401", "404"), params=[_param("key", "path")]
            )
        },
        "/processes/{key}/instances": {
            "post": _op(
                "Start a request",
                "201",
                _ref("Instance"),
                errors=writes,
                body=DATA_BODY,
                params=[_param("key", "path")],
            )
        },
        "/instances": {
            "get": _op(
                "Requests the caller may see, newest first",
                "200",
                _page_of("InstanceSummary"),
                errors=("400", "401"),
                params=[
                    _param("key"),
                    _param("status", schema={"type": "string", "enum": _values(InstanceStatus)}),
                    *PAGE,
                ],
            )
        },
        "/instances/{instance_id}": {
            "get": _op(
                "One request with tasks and history",
                "200",
                _ref("Instance"),
                errors=("401", "403", "404"),
                params=[_param("instance_id", "path", ID)],
            )
        },
        "/tasks": {
            "get": _op(
                "Open tasks",
                "200",
                _page_of("Task"),
                errors=("400", "401"),
                params=[
                    _param("scope", schema={"type": "string", "enum": ["mine", "available"]}),
                    _param("key"),
                    *PAGE,
                ],
            )
        },
        "/tasks/{task_id}": {
            "get": _op("One task with its form", "200", _ref("Task"), errors=("401", "403", "404"), params=[task_id])
        },
        "/tasks/{task_id}/claim": {
            "post": _op("Claim a task", "200", _ref("Task"), errors=("401", "403", "404", "409"), params=[task_id])
        },
        "/tasks/{task_id}/release": {
            "post": _op(
                "Release a claimed task", "200", _ref("Task"), errors=("401", "403", "404", "409"), params=[task_id]
            )
        },
        "/tasks/{task_id}/complete": {
            "post": _op(
                "Complete a task with a written decision",
                "200",
                _ref("Instance"),
                errors=writes,
                body=DATA_BODY,
                params=[task_id],
            )
        },
        "/accounts": {
            "get": _op("The account registry", "200", {"type": "array", "items": _ref("Account")}, errors=("401",))
        },
        "/accounts/{account_id}/credentials": {
            "post": _op(
                "Reveal an investigative profile's credentials (police roles; logged)",
                "200",
                _obj(username=S, password=S),
                errors=("401", "403", "404"),
                params=[_param("account_id", "path", ID)],
            )
        },
        "/attachments": {"post": _upload_op()},
        "/attachments/{attachment_id}": {"get": _image_op()},
        "/openapi.json": {"get": _op("This document", "200", {"type": "object"}, errors=(), public=True)},
        "/public/appeals": {"post": _public_filing("An appeal of a removed comment, by a member of the public")},
        "/public/disputes": {"post": _public_filing("A dispute of the policy's legality, by a member of the public")},
        "/public/requests/{tracking_code}": {
            "get": _op(
                "The public facts of a request filed by the public: no names, comments or advice",
                "200",
                _obj(
                    kind={"type": "string", "enum": ["appeal", "dispute"]},
                    status={"type": "string", "enum": _values(PublicStatus)},
                    received_at=T,
                    acknowledged_at=NT,
                    responded_at=NT,
                    response=NS,
                ),
                errors=("404", "429"),
                public=True,
                params=[_param("tracking_code", "path", {"type": "string", "maxLength": TYPED_CODE_LENGTH})],
            )
        },
        **_editing_paths(),
        **_recovery_paths(),
    }
    event = _obj(
        at=T,
        actor=S,
        actor_name=S,
        role=NS,
        action={
            "type": "string",
            "enum": [
                "started",
                "claimed",
                "released",
                "completed",
                "timer",
                "escalated",
                "mail_queued",
                "cancelled",
                "incident",
                "retried",
                "migrated",
            ],
        },
        task=NS,
        task_id=NS,
        decision=NS,
        comment=NS,
    )
    task = _obj(
        id=S,
        instance_id=INT,
        process_key=S,
        name=S,
        form_key=S,
        role=S,
        department=NS,
        assignee=NS,
        state=S,
        title=S,
        requested_by=NS,
        created_at=T,
        due_at=NT,
        form=_ref("Form"),
    )
    summary = _obj(id=INT, key=S, version=S, title=S, status=S, outcome=NS, started_by=NS, started_at=T, ended_at=NT)
    instance = {
        "allOf": [
            _ref("InstanceSummary"),
            _obj(
                data={"type": "object"},
                tasks={"type": "array", "items": _ref("Task")},
                history={"type": "array", "items": _ref("Event")},
                version_number=INT,
                incident={**_ref("IncidentBrief"), "nullable": True},
            ),
        ]
    }
    field = _obj(
        name=S,
        type={
            "type": "string",
            "enum": list(FIELD_TYPES),
        },
        required=B,
        label=S,
        hint=S,
        # Record choices are ids (integers); the others are strings.
        choices={"type": "array", "items": {"oneOf": [S, INT]}},
        choice_labels={"type": "object", "additionalProperties": S},
        max_length=INT,
    )
    manager = _obj(username=S, display_name=S, approved_by=S, approved_at=T)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "civicflow API",
            "version": "1",
            "description": "A city's social-media policy procedures as auditable workflows.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _obj(
                    error=_obj(
                        code=S,
                        message=S,
                        fields={"type": "object", "additionalProperties": {"type": "array", "items": S}},
                        problems={"type": "array", "items": _obj(message=S, element=S, name=S, line=INT)},
                    )
                ),
                "Me": _obj(
                    username=S,
                    display_name=S,
                    department=NS,
                    roles={"type": "array", "items": S},
                    heads={"type": "array", "items": S},
                ),
                "Process": _obj(key=S, name=S, version=S, number=INT),
                "Form": _obj(fields={"type": "array", "items": field}),
                "Event": event,
                "Task": task,
                "InstanceSummary": summary,
                "Instance": instance,
                "IncidentBrief": _obj(id=INT, element_id=NS, element_name=NS, message=S, at=T),
                "Incident": {
                    "allOf": [
                        _ref("IncidentBrief"),
                        _obj(
                            instance_id=INT,
                            process_key=S,
                            version=INT,
                            during={"type": "string", "enum": ["started", "completed", "timer", "retried"]},
                            data_names={"type": "array", "items": S},
                            attempts=INT,
                            status={"type": "string", "enum": _values(IncidentStatus)},
                            resolution={"type": "string", "nullable": True, "enum": ["retried", "cancelled", None]},
                            reason=NS,
                        ),
                    ]
                },
                "Account": _obj(
                    id=INT,
                    platform=S,
                    name=S,
                    url=NS,
                    department=S,
                    status=S,
                    investigative=B,
                    marked_as_city=B,
                    links_official_site=B,
                    public_notice_linked=B,
                    has_credentials=B,
                    managers={"type": "array", "items": manager},
                ),
            },
        },
    }
