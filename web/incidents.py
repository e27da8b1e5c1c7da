"""Administration → Incidents: the requests held at a failed step of a diagram, and what an administrator does about
each one: open the step in the editor, move the request to a fixed version, retry the step, or cancel the request."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from wtforms import Form, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length

from engine import procedures
from engine.db.models import Incident, ProcessInstance
from engine.db.statuses import IncidentStatus, InstanceStatus
from engine.diagrams.problems import Problem
from engine.errors import Conflict, Invalid, MigrationRefused
from engine.requests import authz, incidents, services
from engine.versions import migration, stored
from forms.validators import Storable
from web.auth import current_actor
from web.db import get_session, transactional
from web.pages import admin_only, show_refusal
from web.present import next_step_message

incident_pages = Blueprint("incidents", __name__, url_prefix="/admin/incidents")
admin_only(incident_pages, "see incidents")
# What set the failing step off (Incident.during), as a sentence ends.
DURING = {
    incidents.STARTED: "as the request was filed",
    incidents.COMPLETED: "right after a task was completed",
    incidents.TIMER: "when a timer fired",
    incidents.RETRIED: "when an administrator retried it",
}
FILTERS = {"": "All", IncidentStatus.OPEN: "Open", IncidentStatus.RESOLVED: "Resolved"}
REASON_LENGTH = 4000


class MoveForm(Form):
    """Move the held request to another version of its procedure."""

    version = SelectField("The version to move it to", coerce=int, validate_choice=True)


class CancelForm(Form):
    """End the held request, with the reason written into its record."""

    reason = TextAreaField(
        "Why the request is cancelled",
        validators=[
            InputRequired(message="Write the reason; it goes in the record."),
            Length(max=REASON_LENGTH),
            Storable(),
        ],
        description="The requester reads it in the request's history.",
        render_kw={"rows": 3},
    )


def problem_words(problem: Problem) -> str:
    """A problem that stops a move, as one line: the step by name and id, then what stops it."""
    if problem.element:
        where = f"“{problem.name}” ({problem.element})" if problem.name else problem.element
        return f"{where}: {problem.message}"
    return problem.message


def _move_choices(incident: Incident) -> list[tuple[int, str]]:
    """The versions the request can be moved to (every one but its own), newest first."""
    instance = incident.instance
    return [
        (version.number, f"Version {version.number}" + (" (in use for new requests)" if version.current else ""))
        for version in stored.versions(get_session(), current_actor(), instance.process_key)
        if version.number != instance.model.number
    ]


def _move_form(incident: Incident, formdata=None) -> MoveForm:
    form = MoveForm(formdata)
    form.version.choices = _move_choices(incident)
    if formdata is None and form.version.choices:
        form.version.data = form.version.choices[0][0]  # the newest: where a fix is published
    return form


def _incident(incident_id: int) -> Incident:
    return incidents.get_incident(get_session(), current_actor(), incident_id)


def _incident_page(
    incident: Incident,
    *,
    move_form: MoveForm | None = None,
    cancel_form: CancelForm | None = None,
    refused: MigrationRefused | None = None,
    status: int = 200,
):
    """One incident in plain words, with the editor's link and the forms to move, retry and cancel."""
    session, actor = get_session(), current_actor()
    instance = incident.instance
    return render_template(
        "incidents/show.html",
        incident=incident,
        instance=instance,
        procedure=procedures.get(instance.process_key),
        during=DURING.get(incident.during, incident.during),
        in_use=stored.version_in_use(session, instance.process_key),
        may_view=authz.may_view(session, actor, instance),
        move_form=move_form or _move_form(incident),
        cancel_form=cancel_form or CancelForm(),
        refused=refused,
        refused_lines=[problem_words(p) for p in refused.problems] if refused else [],
    ), status


@incident_pages.get("")
def index():
    """The incidents, open ones first (then the newest), or only the open or the resolved ones."""
    chosen = request.args.get("status", "")
    chosen = chosen if chosen in FILTERS else ""
    rows = incidents.list_incidents(get_session(), current_actor(), chosen or None)
    rows.sort(key=lambda row: (row.status != IncidentStatus.OPEN, -row.id))
    return render_template(
        "incidents/index.html",
        rows=rows,
        chosen=chosen,
        filters=FILTERS,
        during=DURING,
        names={p.key: p.name for p in procedures.all_procedures()},
        viewable=_viewable({row.instance_id for row in rows}),
    )


def _viewable(instance_ids: set[int]) -> set[int]:
    """Which of these requests the administrator may open (an administrator is not a reviewer of every request)."""
    if not instance_ids:
        return set()
    clause = authz.visible_instances_clause(current_actor())
    query = select(ProcessInstance.id).where(ProcessInstance.id.in_(sorted(instance_ids)), clause)
    return set(get_session().scalars(query))


@incident_pages.get("/<id:incident_id>")
def show(incident_id):
    """One incident: which step failed, what it said, the data names it had, which version; and what to do."""
    return _incident_page(_incident(incident_id))


def _still_open(incident: Incident) -> bool:
    """Whether the incident can still be acted on; if not, say so (the page shows how it was resolved)."""
    if incident.status == IncidentStatus.OPEN:
        return True
    flash(f"Incident {incident.id} is already resolved; nothing was changed.", "error")
    return False


@incident_pages.post("/<id:incident_id>/move")
@transactional
def move(incident_id):
    """Move the held request to the version chosen; a refusal lists what stops it, having changed nothing."""
    session = get_session()
    incident = _incident(incident_id)
    form = _move_form(incident, request.form)
    if not _still_open(incident):
        return redirect(url_for("incidents.show", incident_id=incident_id))
    if not form.validate():
        return _incident_page(incident, move_form=form, status=400)
    try:
        instance = migration.migrate_instance(session, current_actor(), incident.instance_id, form.version.data)
    except MigrationRefused as exc:
        session.rollback()
        return _incident_page(_incident(incident_id), move_form=form, refused=exc, status=409)
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("incidents.show", incident_id=incident_id))
    held = " It is still held: retry the step to move it on." if instance.status == InstanceStatus.ERROR else ""
    flash(f"Request {instance.id} now follows version {instance.model.number}.{held}", "success")
    return redirect(url_for("incidents.show", incident_id=incident_id))


@incident_pages.post("/<id:incident_id>/retry")
@transactional
def retry(incident_id):
    """Run the failed step again; if it fails again the request stays held, and the page says what it said."""
    session = get_session()
    incident = _incident(incident_id)
    if not _still_open(incident):
        return redirect(url_for("incidents.show", incident_id=incident_id))
    try:
        instance = services.retry_instance(session, current_actor(), incident.instance_id)
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("incidents.show", incident_id=incident_id))
    if instance.status == InstanceStatus.ERROR:
        again = incidents.open_incident(session, instance)
        said = f" It said: {again.message}" if again else ""
        flash(f"The step failed again; request {instance.id} stays held.{said}", "warning")
    else:
        flash(f"The step ran: request {instance.id} moves again. {next_step_message(session, instance)}", "success")
    return redirect(url_for("incidents.show", incident_id=incident_id))


@incident_pages.post("/<id:incident_id>/cancel")
@transactional
def cancel(incident_id):
    """End the held request with the written reason: its open tasks and timers close."""
    session = get_session()
    incident = _incident(incident_id)
    if not _still_open(incident):
        return redirect(url_for("incidents.show", incident_id=incident_id))
    form = CancelForm(request.form)
    if not form.validate():
        return _incident_page(incident, cancel_form=form, status=400)
    try:
        instance = services.cancel_instance(session, current_actor(), incident.instance_id, form.reason.data)
    except Invalid as exc:
        show_refusal(form, exc)
        return _incident_page(_incident(incident_id), cancel_form=form, status=400)
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("incidents.show", incident_id=incident_id))
    flash(
        f"Request {instance.id} is cancelled: its open tasks are closed, and the reason is in its history.", "success"
    )
    return redirect(url_for("incidents.show", incident_id=incident_id))
