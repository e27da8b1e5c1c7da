"""Filing a request: the procedures I may start, and each one's start form."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.exceptions import RequestEntityTooLarge

import forms
from engine import procedures
from engine.errors import Invalid, NotAllowed, NotFound
from engine.records import attachments
from engine.requests import services
from forms.fields import ImageUploadField
from web.auth import current_actor
from web.db import get_session, transactional
from web.pages import show_refusal
from web.present import next_step_message, outcome_category

requests = Blueprint("requests", __name__, url_prefix="/requests")
# The procedures as the policy (and docs/procedures.md) takes them up; a diagram added later comes after them.
POLICY_ORDER = ("new_account_request", "manager_change", "content_removal", "removal_appeal", "legality_dispute")


@requests.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@requests.get("/new")
def new():
    """The procedures the logged-in user may file a request of."""
    models = sorted(
        services.startable_models(get_session(), current_actor()),
        key=lambda m: (POLICY_ORDER.index(m.key) if m.key in POLICY_ORDER else len(POLICY_ORDER), m.key),
    )
    return render_template(
        "requests/new.html", models=models, procedures={m.key: procedures.get(m.key) for m in models}
    )


def _start_page(form, procedure, key, general_errors=(), status=200):
    """The start form, multipart when it carries a file."""
    multipart = any(isinstance(field, ImageUploadField) for field in form)
    return render_template(
        "requests/start.html",
        form=form,
        procedure=procedure,
        key=key,
        general_errors=list(general_errors),
        multipart=multipart,
    ), status


@requests.route("/new/<key>", methods=["GET", "POST"])
@transactional
def start(key):
    """A procedure's start form; on submit the request starts and goes to its first reviewer."""
    session = get_session()
    actor = current_actor()
    procedure = services.startable_procedure(actor, key)
    services.published_model(session, key)
    formdata = CombinedMultiDict((request.files, request.form)) if request.method == "POST" else None
    form = forms.start_form(session, key, actor)(formdata)
    if request.method == "GET":
        return _start_page(form, procedure, key)
    general: list[str] = []
    if form.validate():
        try:
            # The upload is stored in the same transaction as the request: a refused request keeps no image.
            data = forms.to_engine_data(form)
            limit = current_app.extensions["civicflow.settings"].max_attachment_bytes
            for name, upload in forms.uploads(form).items():
                data[name] = attachments.store(
                    session, actor, upload.filename, upload.read(), limit=limit, field=name
                ).id
            instance = services.start_instance(session, actor, key, data)
        except Invalid as exc:
            general = show_refusal(form, exc)
        else:
            flash(
                f"Your request {instance.title} was submitted. {next_step_message(session, instance)}",
                outcome_category(instance),
            )
            return redirect(url_for("instances.show", instance_id=instance.id))
    return _start_page(form, procedure, key, general, status=400)


_TOO_LARGE = (
    "What you sent was larger than this server accepts, so nothing was saved and nothing you typed "
    "could be kept. Fill in the form again with a smaller file."
)


@requests.errorhandler(RequestEntityTooLarge)
def too_large(_exc):
    """An upload over the request limit: the start form again, the reason next to its file field, nothing saved.

    The server refuses such a request before reading it, so what was typed cannot come back with it.
    """
    key = (request.view_args or {}).get("key")
    actor = current_actor()
    try:
        procedure = services.startable_procedure(actor, key) if request.endpoint == "requests.start" else None
    except (NotAllowed, NotFound):
        procedure = None
    if procedure is None:
        return render_template("error.html", heading="Too large", message=_TOO_LARGE, back=None), 413
    form = forms.start_form(get_session(), key, actor)()
    limit = current_app.extensions["civicflow.settings"].max_attachment_bytes
    for field in form:
        if isinstance(field, ImageUploadField):
            field.errors = [attachments.too_large_message(limit)]
    return _start_page(form, procedure, key, [_TOO_LARGE], status=413)
