"""Incidents and recovery through the API (docs/api.md): the held requests, moving one to a fixed version, retrying."""

from __future__ import annotations

from flask import g, jsonify, request

from engine.errors import Invalid
from engine.requests import incidents, services
from engine.versions import migration
from web.api import api, authenticated, json_body, present
from web.db import get_session, transactional
from web.ids import MAX_ID


@api.get("/incidents")
@authenticated
def list_incidents():
    """The incidents, newest first (administrators): ?status=open|resolved."""
    rows = incidents.list_incidents(get_session(), g.actor, request.args.get("status") or None)
    return jsonify({"items": [incidents.listed(row) for row in rows]})


@api.get("/incidents/<id:incident_id>")
@authenticated
def get_incident(incident_id):
    """One incident (administrators)."""
    return jsonify(incidents.listed(incidents.get_incident(get_session(), g.actor, incident_id)))


def _version_of(body: dict) -> int:
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_ID:
        raise Invalid("Say which version to move the request to.", {"version": ["A version number, such as 4."]})
    return version


@api.post("/instances/<id:instance_id>/migrate")
@transactional
@authenticated
def migrate_instance(instance_id):
    """Move a running or held request to version N; 409 with error.problems (nothing changed) if it cannot move."""
    session = get_session()
    instance = migration.migrate_instance(session, g.actor, instance_id, _version_of(json_body()))
    return jsonify(present.instance(session, g.actor, instance))


@api.post("/instances/<id:instance_id>/retry")
@transactional
@authenticated
def retry_instance(instance_id):
    """Run a held request's failed step again; if it fails again the request stays held (status error)."""
    session = get_session()
    instance = services.retry_instance(session, g.actor, instance_id)
    return jsonify(present.instance(session, g.actor, instance))


@api.post("/instances/<id:instance_id>/cancel")
@transactional
@authenticated
def cancel_instance(instance_id):
    """End a held request with a written reason (administrators): body {"reason": "..."}."""
    session = get_session()
    instance = services.cancel_instance(session, g.actor, instance_id, json_body().get("reason"))
    return jsonify(present.instance(session, g.actor, instance))
