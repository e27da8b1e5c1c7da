"""The City's letters on staff pages: the preview of a letter before it is sent, and postal letters as PDFs."""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from flask_login import login_required

import forms
from engine.errors import Invalid
from engine.mail import letters as city_letters
from engine.mail import postal
from engine.mail import preview as letter_preview
from engine.requests import authz, services
from web.auth import current_actor
from web.db import get_session, transactional
from web.inbox import _task_page
from web.pages import show_refusal

letter_pages = Blueprint("letters", __name__)


@letter_pages.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@letter_pages.app_template_global()
def letter_of(task) -> str | None:
    """The letter a task's form writes the body of (the page then offers its preview), if any."""
    return letter_preview.letter_of(task)


@letter_pages.app_template_global()
def letters_for_the_post(instance_id: int) -> list:
    """A request's letters printed for the post and not yet mailed (the "Mail the letter" task links them)."""
    return postal.awaiting_post(get_session(), instance_id)


@letter_pages.post("/tasks/<task_id>/letter-preview")
def preview(task_id):
    """The task page again, with the letter its form would send composed exactly as it will be sent."""
    session = get_session()
    actor = current_actor()
    task = services.get_task(session, actor, task_id)
    authz.require_may_act(actor, task, task.instance)
    form = forms.task_form(session, task)(request.form)
    if not form.validate():
        return _task_page(task, form, status=400)
    try:
        g.letter_preview = letter_preview.preview(session, actor, task, forms.to_engine_data(form))
    except Invalid as exc:
        return _task_page(task, form, show_refusal(form, exc), status=400)
    finally:
        session.rollback()  # a preview writes nothing, whatever the procedure's checks touched
    return _task_page(task, form)


@letter_pages.get("/letters/<id:mail_id>.pdf")
@transactional
def printable(mail_id):
    """A letter to a postal address, as the PDF staff print and mail; each reading is in the audit trail."""
    session = get_session()
    mail = postal.printable(session, current_actor(), mail_id)
    response = Response(postal.pdf(session, mail), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="letter-{mail.id}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def serve_links_from_here() -> None:
    """Mailed links start at the address this request came to, unless CIVICFLOW_BASE_URL says otherwise."""
    g.base_url_token = city_letters.serve_from(request.host_url)


def stop_serving_links(_exc=None) -> None:
    """Forget this request's address once it is answered."""
    token = g.pop("base_url_token", None)
    if token is not None:
        city_letters.stop_serving(token)
