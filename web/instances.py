"""Requests: the list of those I may see, and one request's status, record, history and diagram."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import login_required
from sqlalchemy import select

from engine import procedures
from engine.db.models import AuditEvent, ProcessInstance, ProcessVersion
from engine.db.statuses import InstanceStatus
from engine.mail import outbox
from engine.people.roles import ADMIN
from engine.requests import incidents, services
from web.auth import current_actor
from web.db import get_session
from web.pages import PER_PAGE, page_count, page_number
from web.present import record_view

instances = Blueprint("instances", __name__, url_prefix="/instances")
STATUSES = tuple(InstanceStatus)


@instances.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@instances.get("")
def index():
    """The requests I may see, newest first, by procedure and status."""
    names = {p.key: p.name for p in procedures.all_procedures()}
    key = request.args.get("process") if request.args.get("process") in names else None
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    page = page_number()
    rows, total = services.list_instances(
        get_session(), current_actor(), key=key, status=status, page=page, per_page=PER_PAGE
    )
    return render_template(
        "instances/index.html",
        rows=rows,
        total=total,
        page=page,
        names=names,
        pages=page_count(total),
        process=key,
        status=status,
        statuses=STATUSES,
    )


@instances.get("/<id:instance_id>")
def show(instance_id):
    """A request: status, record, open tasks, history timeline and its diagram with progress marked."""
    session = get_session()
    instance = services.get_instance(session, current_actor(), instance_id)
    done, current = services.progress_of(instance)
    history = services.history_of(session, instance)
    return render_template(
        "instances/show.html",
        instance=instance,
        record=record_view(session, current_actor(), instance),
        open_tasks=services.open_tasks_of(session, instance),
        history=history,
        **_held_and_versions(session, instance, history),
        letters=outbox.letters_of(session, instance.id),
        procedure=procedures.get(instance.process_key),
        done=done,
        current=current,
        viewer=current_app.extensions["civicflow.viewer"],
    )


def _held_and_versions(session, instance: ProcessInstance, history: list[AuditEvent]) -> dict:
    """What the page says of a held request (and, to an administrator, its incident), the version in use for new
    requests, and each move of the request to another version (when, by whom)."""
    held = instance.status == InstanceStatus.ERROR
    incident = incidents.open_incident(session, instance) if held else None
    return {
        "held": services.held_words(session, instance) if held else None,
        "incident": incident if incident and ADMIN in current_actor().roles else None,
        "in_use": session.scalar(
            select(ProcessVersion.number).where(ProcessVersion.key == instance.process_key, ProcessVersion.published)
        ),
        "moves": [event for event in history if event.action == "migrated"],
    }


@instances.get("/<id:instance_id>/diagram.bpmn")
def diagram(instance_id):
    """The BPMN of the version this request runs on, for the viewer (only to those who may see the request)."""
    session = get_session()
    instance = services.get_instance(session, current_actor(), instance_id)
    xml = session.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.id == instance.model_id))
    if xml is None:
        abort(404)
    return Response(xml, mimetype="application/xml", headers={"Cache-Control": "private, max-age=3600"})
