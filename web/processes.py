"""Administrators change the procedures in the browser: the editor, uploads and downloads, versions, differences."""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import CombinedMultiDict

from engine import procedures
from engine.diagrams.problems import as_dicts
from engine.diagrams.xml import MAX_DIAGRAM_BYTES
from engine.errors import CivicflowError, Conflict, DiagramError
from engine.people.roles import LANE_ROLES
from engine.requests import authz
from engine.time.deadlines import TIMER_HELPERS
from engine.versions import drafts, migration, publishing, stored
from engine.versions.difference import compare
from forms.processes import PublishForm, RepublishForm, UploadForm
from web.api.processes import XML_TYPES, if_match_revision
from web.auth import current_actor
from web.db import get_session, transactional
from web.errors import error_body, status_for
from web.incidents import problem_words

processes = Blueprint("processes", __name__, url_prefix="/admin/processes")
MAX_VERSION = 2**31  # a version number beyond what the database's integer holds names no version


@processes.before_request
@login_required
def require_admin():
    """Only administrators."""
    authz.require_admin(current_actor(), stored.CHANGE_PROCEDURES)


def _label(code: str) -> str:
    words = code.replace("_", " ")
    return words[:1].upper() + words[1:]


def _choices(key: str) -> dict:
    """What the properties panel offers: the roles as lanes, the procedure's forms, the City's deadlines."""
    settings = get_session().info["settings"]
    return {
        "lanes": [{"name": lane, "role": role} for lane, role in LANE_ROLES.items()],
        "form_keys": [
            {"key": form_key, "label": _label(form_key)} for form_key in sorted(procedures.get(key).editor_form_keys())
        ],
        "deadlines": [
            {"kind": kind, "label": f"{_label(kind)} ({days} business day{'s' if days != 1 else ''})"}
            for kind, days in sorted(settings.deadlines.items())
        ],
        "timer_helpers": list(TIMER_HELPERS),
    }


def _editor_page(
    key: str,
    draft: drafts.Draft,
    *,
    refused: CivicflowError | None = None,
    upload: UploadForm | None = None,
    publish_form: PublishForm | None = None,
    status: int = 200,
):
    """The editor with the draft (or the version in use), its problems, and a refused upload or publish.

    A publication the dry run refused lists what it found as the draft's problems: the page then says the draft
    cannot be published, never that it has no problem.
    """
    procedure = procedures.get(key)
    problems = draft.problems
    if isinstance(refused, DiagramError) and refused.problems and draft.is_draft:
        listed = {(p.element, p.message) for p in problems}
        problems = problems + [p for p in refused.problems if (p.element, p.message) not in listed]
    config = {
        "key": key,
        "name": procedure.name,
        "xml_url": url_for("processes.draft_xml", key=key),
        "save_url": url_for("processes.save_draft", key=key),
        "download_url": url_for("processes.draft_xml", key=key, download=1),
        "versions_url": url_for("processes.versions", key=key),
        "csrf_token": generate_csrf(),
        "revision": draft.revision,
        "problems": as_dicts(problems),
        "publishable": draft.is_draft and not problems,
        "is_draft": draft.is_draft,
        "changes_url": url_for("processes.diff", key=key, to="draft") if draft.is_draft else None,
        **_choices(key),
    }
    return render_template(
        "processes/edit.html",
        procedure=procedure,
        editor=config,
        draft=draft,
        refused=refused,
        upload_form=upload or UploadForm(),
        publish_form=publish_form or PublishForm(data={"revision": draft.revision}),
        publish_form_action=url_for("processes.publish", key=key),
        upload_action=url_for("processes.upload", key=key),
        discard_action=url_for("processes.discard", key=key),
    ), status


@processes.get("/")
def index():
    """Every procedure with the version in use and its draft, if any."""
    session, actor = get_session(), current_actor()
    rows = []
    for procedure in sorted(procedures.all_procedures(), key=lambda p: p.name):
        listed = stored.versions(session, actor, procedure.key)
        current = next((v for v in listed if v.current), None)
        draft = drafts.current_draft(session, actor, procedure.key, with_problems=False)
        rows.append(
            {
                "procedure": procedure,
                "current": current,
                "draft": draft if draft.is_draft else None,
                "count": len(listed),
            }
        )
    return render_template("processes/index.html", rows=rows)


@processes.get("/<key>/edit")
def edit(key):
    """The BPMN editor on the procedure's draft (a new draft starts from the version in use)."""
    return _editor_page(key, drafts.current_draft(get_session(), current_actor(), key))


@processes.get("/<key>/draft.bpmn")
def draft_xml(key):
    """The draft's XML (or the version in use), for the editor or as a download."""
    draft = drafts.current_draft(get_session(), current_actor(), key, with_problems=False)
    response = Response(draft.xml, mimetype="application/xml")
    if request.args.get("download"):
        name = f"{key}-draft-{draft.revision}.bpmn" if draft.is_draft else f"{key}-version-{draft.based_on}.bpmn"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _json_error(exc: CivicflowError, status: int):
    body = error_body(exc.code, exc.message, exc.fields)
    if isinstance(exc, DiagramError):
        body["error"]["problems"] = as_dicts(exc.problems)
    return jsonify(body), status


@processes.put("/<key>/draft")
@transactional
def save_draft(key):
    """The editor saves the diagram on screen as the draft (XML body, X-CSRFToken, If-Match revision)."""
    if request.mimetype not in XML_TYPES:
        return jsonify(error_body("unsupported_media_type", "Send the diagram as application/xml.")), 415
    if (request.content_length or 0) > MAX_DIAGRAM_BYTES:
        return jsonify(
            error_body("too_large", f"A diagram may be at most {MAX_DIAGRAM_BYTES // 1024} KiB; nothing was saved.")
        ), 413
    try:
        draft = drafts.save_draft(
            get_session(),
            current_actor(),
            key,
            request.get_data(cache=False),
            source="editor",
            revision=if_match_revision(),
        )
    except CivicflowError as exc:
        get_session().rollback()
        return _json_error(exc, status_for(exc))
    return jsonify(
        {
            "revision": draft.revision,
            "problems": as_dicts(draft.problems),
            "publishable": draft.publishable,
            "saved_at": draft.updated_at.isoformat() + "+00:00" if draft.updated_at else None,
        }
    )


@processes.post("/<key>/upload")
@transactional
def upload(key):
    """A .bpmn file becomes the draft; a file that is not a safe, well-formed BPMN document changes nothing."""
    session, actor = get_session(), current_actor()
    form = UploadForm(CombinedMultiDict((request.files, request.form)))
    if not form.validate():
        return _editor_page(key, drafts.current_draft(session, actor, key), upload=form, status=400)
    try:
        draft = drafts.save_draft(session, actor, key, form.file.data.read(MAX_DIAGRAM_BYTES + 1), source="upload")
    except DiagramError as exc:
        session.rollback()
        form.file.errors = [f"{form.file.data.filename} was not saved: {exc.message}"]
        return _editor_page(key, drafts.current_draft(session, actor, key), refused=exc, upload=form, status=400)
    count = len(draft.problems)
    flash(
        f"{form.file.data.filename} is the draft now (revision {draft.revision}). "
        + (
            f"{count} problem{'s' if count != 1 else ''} must be fixed before it can be published."
            if count
            else "It has no problems and can be published."
        ),
        "success" if not count else "warning",
    )
    return redirect(url_for("processes.edit", key=key), 303)


@processes.post("/<key>/publish")
@transactional
def publish(key):
    """Publish the draft: new requests use it; requests already running finish on their own version."""
    session, actor = get_session(), current_actor()
    form = PublishForm(request.form)
    if not form.validate():
        # Asked again, with the note kept: nothing is published without a confirmation and a note.
        return _editor_page(key, drafts.current_draft(session, actor, key), publish_form=form, status=400)
    revision = int(form.revision.data) if form.revision.data else None
    try:
        model = publishing.publish(session, actor, key, revision=revision, note=form.note.data)
    except (DiagramError, Conflict) as exc:
        # The editor comes back with the reason (every problem, or the draft that moved on), not an error page.
        session.rollback()
        return _editor_page(
            key,
            drafts.current_draft(session, actor, key),
            refused=exc,
            publish_form=form,
            status=400 if isinstance(exc, DiagramError) else 409,
        )
    flash(
        f"Version {model.number} of “{procedures.get(key).name}” is published: new requests use it. "
        "Requests already running finish on the version they started with.",
        "success",
    )
    return redirect(url_for("processes.versions", key=key), 303)


@processes.post("/<key>/discard")
@transactional
def discard(key):
    """Throw the draft away; the version in use stays."""
    drafts.discard_draft(get_session(), current_actor(), key)
    flash("The draft is discarded; the editor shows the version in use.", "success")
    return redirect(url_for("processes.edit", key=key), 303)


@processes.get("/<key>/versions")
def versions(key):
    """Every version with who stored and published it, the publications, and a comparison form."""
    session, actor = get_session(), current_actor()
    listed = stored.versions(session, actor, key)
    draft = drafts.current_draft(session, actor, key, with_problems=False)
    return render_template(
        "processes/versions.html",
        procedure=procedures.get(key),
        versions=listed,
        publications=stored.publications(session, actor, key),
        draft=draft if draft.is_draft else None,
        movable=_movable(key, listed),
        notes=publishing.publication_notes(session, key),
        version_notes=publishing.version_notes(session, key),
        max_note=publishing.MAX_NOTE,
    )


def _movable(key: str, listed: list[stored.Version]) -> dict[int, int]:
    """How many running or held requests each version not in use has (those with none are left out)."""
    if not any(version.current for version in listed):
        return {}
    session = get_session()
    counts = {v.number: migration.movable_count(session, key, v.number) for v in listed if not v.current}
    return {number: count for number, count in counts.items() if count}


def _refused_words(instance_id: int, problems: list) -> str:
    return f"Request {instance_id} stays where it is: " + "; ".join(problem_words(p) for p in problems)


@processes.post("/<key>/versions/<id:number>/move")
@transactional
def move_requests(key, number):
    """Move every running or held request of a version that can move to the version posted (the one in use)."""
    session, actor = get_session(), current_actor()
    target = request.form.get("to", "")
    if not (target.isdigit() and int(target) < MAX_VERSION and number < MAX_VERSION):
        flash("Say which version to move the requests to; nothing was moved.", "error")
        return redirect(url_for("processes.versions", key=key), 303)
    try:
        moved, refused = migration.migrate_all(session, actor, key, number, int(target))
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("processes.versions", key=key), 303)
    if moved:
        count = f"{len(moved)} request{'s' if len(moved) != 1 else ''}"
        ids = ", ".join(f"#{i}" for i in moved)
        flash(f"Moved {count} of version {number} to version {target}: {ids}.", "success")
    for instance_id, problems in refused.items():
        flash(_refused_words(instance_id, problems), "error")
    if not moved and not refused:
        flash(f"Version {number} has no running or held request to move.", "info")
    return redirect(url_for("processes.versions", key=key), 303)


@processes.get("/<key>/versions/<id:number>.bpmn")
def version_xml(key, number):
    """One version's XML, as a download."""
    model = stored.version(get_session(), current_actor(), key, number)
    response = Response(model.bpmn_xml, mimetype="application/xml")
    response.headers["Content-Disposition"] = f'attachment; filename="{key}-version-{number}.bpmn"'
    return response


@processes.post("/<key>/versions/<id:number>/publish")
@transactional
def republish(key, number):
    """Make an earlier version the one new requests use again (confirmed, with a note of why)."""
    session = get_session()
    form = RepublishForm(request.form)
    if not form.validate():
        flash(
            f"Version {number} was not published again: " + " ".join(e for f in form for e in f.errors),
            "error",
        )
        return redirect(url_for("processes.versions", key=key), 303)
    try:
        publishing.republish(session, current_actor(), key, number, note=form.note.data)
    except DiagramError as exc:
        session.rollback()
        flash(
            f"Version {number} cannot be published again: {exc.message} "
            + " ".join(p.message for p in exc.problems[:5]),
            "error",
        )
        return redirect(url_for("processes.versions", key=key), 303)
    flash(f"Version {number} is published again: new requests use it.", "success")
    return redirect(url_for("processes.versions", key=key), 303)


@processes.get("/<key>/diff")
def diff(key):
    """What changed between two versions (or a version and the draft), element by element."""
    session, actor = get_session(), current_actor()
    listed = stored.versions(session, actor, key)
    current = next((v.number for v in listed if v.current), listed[0].number if listed else 1)
    before = request.args.get("from", "")
    after = request.args.get("to", "draft")
    before_number = int(before) if before.isdigit() else max(current - 1, 1)
    after_value: int | str = int(after) if after.isdigit() else "draft" if after == "draft" else current
    draft = drafts.current_draft(session, actor, key, with_problems=False)
    if after_value == "draft" and not draft.is_draft:
        after_value = current
    difference = compare(session, actor, key, before_number, after_value)
    return render_template(
        "processes/diff.html",
        procedure=procedures.get(key),
        versions=listed,
        before=before_number,
        after=after_value,
        difference=difference,
        has_draft=draft.is_draft,
    )
