"""The landing page and a health check."""

from __future__ import annotations

from flask import Blueprint, render_template

from engine import services
from web.db import get_session

home = Blueprint("home", __name__)


@home.get("/")
def index():
    """What civicflow is, which procedures it runs, and where the API lives."""
    models = services.published_models(get_session())
    return render_template("home/index.html", models=models)


@home.get("/healthz")
def healthz():
    """Liveness for a load balancer: the database answers."""
    services.published_models(get_session())
    return {"status": "ok"}
