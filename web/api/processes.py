"""Administrators change procedures through the API: the draft as BPMN XML, publishing, and the versions."""

from __future__ import annotations

from flask import Response, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from engine.diagrams.problems import as_dicts
from engine.diagrams.xml import MAX_DIAGRAM_BYTES
from engine.errors import Invalid
from engine.requests import authz
from engine.versions import drafts, publishing, stored
from engine.versions.difference import compare
from web.api import api, authenticated, json_body
from web.db import get_session, transactional
from web.ids import MAX_ID

XML_TYPES = ("application/xml", "text/xml", "application/bpmn+xml", "application/octet-stream")


def diagram_body() -> bytes:
    """The request's BPMN XML: 415 for another media type, 413 over the diagram limit (before it is read)."""
    if request.mimetype not in XML_TYPES:
        raise UnsupportedMediaType("Send the BPMN XML with Content-Type: application/xml.")
    if (request.content_length or 0) > MAX_DIAGRAM_BYTES:
        raise RequestEntityTooLarge(f"A diagram may be at most {MAX_DIAGRAM_BYTES // 1024} KiB.")
    data = request.get_data(cache=False)
    if not data.strip():
        raise Invalid("The body is empty; send the BPMN XML.", {"body": ["Send the diagram's XML."]})
    return data


def if_match_revision() -> int | None:
    """The draft revision an If-Match header names ("3" or W/"3"), if any."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    raw = header.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise Invalid('If-Match must be a draft revision such as "3".', {"If-Match": ['Such as "3".']})
    return int(raw)


def draft_json(draft: drafts.Draft) -> dict:
    """A draft as the API reports it (without its XML)."""
    return {
        "key": draft.key,
        "revision": draft.revision,
        "is_draft": draft.is_draft,
        "based_on_version": draft.based_on,
        "updated_by": draft.updated_by,
        "updated_at": draft.updated_at.isoformat() + "+00:00" if draft.updated_at else None,
        "publishable": draft.publishable,
        "problems": as_dicts(draft.problems),
    }


def version_json(version: stored.Version, note: str | None = None) -> dict:
    """One version of a procedure as the version list gives it, with the note of its latest publication."""
    return {
        "version": version.number,
        "version_hash": version.version_hash,
        "name": version.name,
        "source": version.source,
        "created_at": version.created_at.isoformat() + "+00:00",
        "created_by": version.created_by,
        "current": version.current,
        "published_at": version.published_at.isoformat() + "+00:00" if version.published_at else None,
        "published_by": version.published_by,
        "running_requests": version.running,
        "note": note,
    }


@api.get("/processes/<key>/draft")
@authenticated
def get_draft(key):
    """The draft's BPMN XML (or the version in use when there is no draft); JSON with its problems on request."""
    draft = drafts.current_draft(
        get_session(), g.actor, key, with_problems=request.accept_mimetypes.best == "application/json"
    )
    if request.accept_mimetypes.best == "application/json":
        return jsonify({**draft_json(draft), "xml": draft.xml})
    response = Response(draft.xml, mimetype="application/xml")
    response.headers["ETag"] = f'"{draft.revision}"'
    response.headers["X-Civicflow-Revision"] = str(draft.revision)
    return response


@api.put("/processes/<key>/draft")
@transactional
@authenticated
def put_draft(key):
    """Save the body as the procedure's draft; 200 with its problems (which only block publishing)."""
    authz.require_admin(g.actor, stored.CHANGE_PROCEDURES)
    data = diagram_body()
    draft = drafts.save_draft(get_session(), g.actor, key, data, source="api", revision=if_match_revision())
    response = jsonify(draft_json(draft))
    response.headers["ETag"] = f'"{draft.revision}"'
    return response


@api.post("/processes/<key>/publish")
@transactional
@authenticated
def publish(key):
    """Publish the draft, or with {"version": N} an earlier version again; an optional "note" says what changed
    and why (kept with the publication); 400 lists every problem."""
    authz.require_admin(g.actor, stored.CHANGE_PROCEDURES)
    session = get_session()
    body = json_body() if request.content_length else {}
    number, note = body.get("version"), body.get("note")
    if note is not None and not isinstance(note, str):
        raise Invalid("note must be text.", {"note": ["Say what changed and why, as a string."]})
    if number is not None:
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= MAX_ID:
            raise Invalid(
                "version must be a version number.", {"version": [f"Must be a whole number from 1 to {MAX_ID}."]}
            )
        model = publishing.republish(session, g.actor, key, number, note=note)
    else:
        model = publishing.publish(session, g.actor, key, revision=if_match_revision(), note=note)
    return jsonify(
        {
            "key": model.key,
            "version": model.number,
            "version_hash": model.version_hash,
            "published_at": model.last_publication.published_at.isoformat() + "+00:00",
            "published_by": g.actor.display_name,
            "note": publishing.clean_note(note),
        }
    )


@api.get("/processes/<key>/versions")
@authenticated
def list_versions(key):
    """Every version of a procedure, newest first, with who stored and published it and what runs on it."""
    session = get_session()
    listed = stored.versions(session, g.actor, key)
    notes = publishing.version_notes(session, key)
    return jsonify([version_json(v, notes.get(v.number)) for v in listed])


@api.get("/processes/<key>/versions/<id:number>")
@authenticated
def get_version(key, number):
    """One version's BPMN XML."""
    model = stored.version(get_session(), g.actor, key, number)
    return Response(model.bpmn_xml, mimetype="application/xml")


@api.get("/processes/<key>/diff")
@authenticated
def diff(key):
    """What changed from version `from` to version `to` (a number, or "draft")."""
    before, after = request.args.get("from", ""), request.args.get("to", "draft")
    errors = {
        name: ["Must be a version number."]
        for name, value in (("from", before), ("to", after))
        if not value.isdigit() and not (name == "to" and value == "draft")
    }
    if errors:
        raise Invalid("Name two versions to compare.", errors)
    difference = compare(get_session(), g.actor, key, int(before), after)
    return jsonify(difference.as_dict())
