"""The landing page and a health check."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.requests import services
from web.db import get_session

home = Blueprint("home", __name__)
log = logging.getLogger("civicflow.web")


@home.get("/")
def index():
    """What civicflow is and where to log in; logged-in staff go straight to their inbox."""
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    models = services.published_models(get_session())
    return render_template("home/index.html", models=models)


@home.get("/healthz")
def healthz():
    """For a load balancer or a monitor: 200 when the database answers, 503 when it does not."""
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        # What went wrong goes to the log; the answer says only that the database is not answering.
        log.warning("health check: the database does not answer: %s", str(exc.orig or exc).strip())
        return {"status": "unavailable", "reason": "the database does not answer"}, 503
    return {"status": "ok"}
