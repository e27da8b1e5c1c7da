"""Filing a request: the procedures I may start, and each one's start form."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required

import forms
from engine import procedures, services
from engine.errors import Invalid
from web.auth import current_actor
from web.db import get_session, transactional
from web.pages import show_errors
from web.present import next_step_message

requests = Blueprint("requests", __name__, url_prefix="/requests")


@requests.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@requests.get("/new")
def new():
    """The procedures the logged-in user may file a request of."""
    models = services.startable_models(get_session(), current_actor())
    return render_template("requests/new.html", models=models,
                           procedures={m.key: procedures.get(m.key) for m in models})


@requests.route("/new/<key>", methods=["GET", "POST"])
@transactional
def start(key):
    """A procedure's start form; on submit the request starts and goes to its first reviewer."""
    session = get_session()
    procedure = services.startable_procedure(current_actor(), key)
    services.published_model(session, key)
    form = forms.start_form(session, key)(request.form if request.method == "POST" else None)
    general: list[str] = []
    if request.method == "POST" and form.validate():
        try:
            instance = services.start_instance(session, current_actor(), key, forms.to_engine_data(form))
        except Invalid as exc:
            session.rollback()
            general = show_errors(form, exc)
        else:
            flash(f"Your request {instance.title} was submitted. {next_step_message(session, instance)}", "success")
            return redirect(url_for("instances.show", instance_id=instance.id))
    status = 400 if request.method == "POST" else 200
    return render_template("requests/start.html", form=form, procedure=procedure, key=key,
                           general_errors=general), status
