"""The task inbox and the task page: what waits for me, what I may take, and signing off in writing."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

import forms
from engine import procedures
from engine.db.statuses import TaskStatus
from engine.errors import Conflict, Invalid
from engine.requests import authz, services
from engine.requests import inbox as task_inbox
from engine.time import timer_mirror
from web.auth import current_actor
from web.db import get_session, transactional
from web.pages import PER_PAGE, page_count, page_number, show_refusal
from web.present import decisions_of, next_step_message, outcome_category, record_view

inbox = Blueprint("inbox", __name__)
VIEWS = {"mine": "Assigned to me", "available": "Available to me"}


@inbox.before_request
@login_required
def require_login():
    """Every page here is for logged-in staff."""


@inbox.get("/inbox")
def index():
    """Open tasks assigned to me or available to me, with filters by procedure and by overdue.

    Without a chosen view it opens where the work is: what is assigned to me if anything is, else what I may take.
    """
    view = request.args.get("view") or _where_the_work_is()
    if view not in VIEWS:
        abort(404)
    key = request.args.get("process") or None
    names = {p.key: p.name for p in procedures.all_procedures()}
    if key not in names:
        key = None
    overdue = request.args.get("overdue") == "1"
    page = page_number()
    rows, total = task_inbox.list_tasks(
        get_session(), current_actor(), view, key=key, overdue=overdue, page=page, per_page=PER_PAGE
    )
    return render_template(
        "inbox/index.html",
        view=view,
        views=VIEWS,
        rows=rows,
        total=total,
        page=page,
        pages=page_count(total),
        process=key,
        names=names,
        overdue=overdue,
    )


def _where_the_work_is() -> str:
    """The view with work in it: what is assigned to me if anything is, else what I may take."""
    mine, available = task_inbox.count_open_tasks(get_session(), current_actor())
    return "available" if not mine and available else "mine"


def _task_page(task, form=None, general_errors=(), status=200):
    """The task page: the request's record, the decisions so far and, for whoever holds the lane, the form."""
    session = get_session()
    actor = current_actor()
    instance = task.instance
    may_act = task.status == TaskStatus.OPEN and authz.may_act(actor, task, instance)
    if form is None and may_act:
        form = forms.task_form(session, task)(data=_prefill(session, task))
    return render_template(
        "inbox/task.html",
        task=task,
        instance=instance,
        form=form if may_act else None,
        may_act=may_act,
        general_errors=list(general_errors),
        record=record_view(session, current_actor(), instance),
        decisions=decisions_of(session, instance),
        procedure=procedures.get(instance.process_key),
        timers=timer_mirror.task_timers(session, task),
    ), status


def _prefill(session, task) -> dict:
    """A revision form starts from the request as it stands, so an untouched field keeps its value."""
    fields = procedures.get(task.instance.process_key).fields_for(session, task.form_key, task.instance.data)
    names = {field.name for field in fields} - {"action", "comment", "decision"}
    return {name: value for name, value in task.instance.data.items() if name in names}


@inbox.get("/tasks/<task_id>")
def task(task_id):
    """One task with its request and, for whoever may act on it, its form."""
    return _task_page(services.get_task(get_session(), current_actor(), task_id))


@inbox.post("/tasks/<task_id>")
@transactional
def complete(task_id):
    """Submit the task's form: a written decision; back to the inbox saying what happened next."""
    session = get_session()
    actor = current_actor()
    task = services.get_task(session, actor, task_id)
    authz.require_may_act(actor, task, task.instance)
    if task.status != TaskStatus.OPEN:
        flash(f"{task.name} is no longer open: it was {task.status}.", "error")
        return redirect(url_for("inbox.index"))
    form = forms.task_form(session, task)(request.form)
    if not form.validate():
        return _task_page(task, form, status=400)
    name, title = task.name, task.instance.title
    try:
        instance = services.complete_task(session, actor, task_id, forms.to_engine_data(form))
    except Invalid as exc:
        general = show_refusal(form, exc)
        return _task_page(services.get_task(session, actor, task_id), form, general, status=400)
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("inbox.index"))
    flash(f"{name} done for {title}. {next_step_message(session, instance)}", outcome_category(instance))
    return redirect(url_for("inbox.index"))


def _unless_conflict(step, task_id: str, elsewhere: str):
    """Run a task action; if someone else was quicker, roll back and say so on the page at `elsewhere`."""
    session = get_session()
    try:
        return step(session, current_actor(), task_id), None
    except Conflict as exc:
        session.rollback()
        flash(exc.message, "error")
        return None, redirect(elsewhere)


@inbox.post("/tasks/<task_id>/claim")
@transactional
def claim(task_id):
    """Take a task, so others see that it is being worked on."""
    task, refused = _unless_conflict(services.claim_task, task_id, url_for("inbox.index", view="available"))
    if refused:
        return refused
    flash(f"You took {task.name} for {task.instance.title}.", "success")
    return redirect(url_for("inbox.task", task_id=task_id))


@inbox.post("/tasks/<task_id>/release")
@transactional
def release(task_id):
    """Give a claimed task back to everyone who holds its lane."""
    task, refused = _unless_conflict(services.release_task, task_id, url_for("inbox.task", task_id=task_id))
    if refused:
        return refused
    flash(f"You gave back {task.name} for {task.instance.title}; it is available to your colleagues again.", "success")
    return redirect(url_for("inbox.index"))
