"""The landing page and a health check."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from engine.requests import services
from web.db import get_session

home = Blueprint("home", __name__)


@home.get("/")
def index():
    """What civicflow is and where to log in; logged-in staff go straight to their inbox."""
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    models = services.published_models(get_session())
    return render_template("home/index.html", models=models)


@home.get("/healthz")
def healthz():
    """Liveness for a load balancer: the database answers."""
    services.published_models(get_session())
    return {"status": "ok"}
