"""civicflow's web app: the JSON API now, the task inbox on top of the same engine services."""

from __future__ import annotations

import logging

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from engine.settings import Settings
from web import db, errors

csrf = CSRFProtect()


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    """Build the app: settings, database, blueprints, error handlers, security headers."""
    app = Flask(__name__, instance_relative_config=True)
    settings = settings or Settings.from_env()
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["civicflow.settings"] = settings
    logging.basicConfig(level=logging.INFO)

    db.init_app(app, settings)
    csrf.init_app(app)
    errors.init_app(app)

    from web.api import api
    from web.home import home

    csrf.exempt(api)  # bearer tokens, never cookies: no cross-site request can carry them
    app.register_blueprint(api)
    app.register_blueprint(home)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        return response

    return app
