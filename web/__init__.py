"""civicflow's web app: the task inbox for city staff and the JSON API, on the same engine services."""

from __future__ import annotations

import logging
import mimetypes

from flask import Blueprint, Flask, send_from_directory
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.settings import REPO_ROOT, Settings
from web import db, errors, ids, present

csrf = CSRFProtect()
# Static files take their Content-Type from the mimetypes module, which the system's own table (/etc/mime.types, the
# Windows registry) can change; browsers run a module script (the editor's) only if it is served as JavaScript.
mimetypes.add_type("text/javascript", ".js")
# bpmn-js, installed from the npm registry by `make assets` (npm ci) and served from here, never from a CDN.
VIEWER_DIR = REPO_ROOT / "node_modules" / "bpmn-js" / "dist"
vendor = Blueprint("vendor", __name__, url_prefix="/vendor")


@vendor.get("/bpmn-js/<path:filename>")
def bpmn(filename):
    """The bpmn-js viewer's script, styles and font (send_from_directory refuses paths outside the folder)."""
    return send_from_directory(VIEWER_DIR, filename, max_age=86400)


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    """Build the app: settings, database, login, CSRF, blueprints, error pages, security headers."""
    app = Flask(__name__, instance_relative_config=True)
    settings = settings or Settings.from_env()
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_NAME="civicflow_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["civicflow.settings"] = settings
    app.extensions["civicflow.viewer"] = (VIEWER_DIR / "bpmn-navigated-viewer.production.min.js").is_file()
    app.jinja_env.add_extension("jinja2.ext.do")
    logging.basicConfig(level=logging.INFO)

    if settings.proxy_count:
        # Behind reverse proxies: the client's address from their X-Forwarded-For (the rate limits, the audit).
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count, x_host=settings.proxy_count
        )
    from web.public import limit_body_size, public_pages

    app.before_request(limit_body_size)  # before CSRFProtect reads a form
    ids.init_app(app)  # the `id` converter, before the blueprints' routes use it
    db.init_app(app, settings)
    csrf.init_app(app)
    errors.init_app(app)
    present.init_app(app)

    from web import login_limits, public, ratelimit
    from web.admin import admin
    from web.api import api
    from web.api import public as public_api
    from web.attachments import attachments
    from web.auth import auth, login_manager
    from web.help import help_pages
    from web.home import home
    from web.inbox import inbox
    from web.incidents import incident_pages
    from web.instances import instances
    from web.pages import nav_counts
    from web.processes import processes
    from web.registry import registry
    from web.requests import requests

    login_manager.init_app(app)
    csrf.exempt(api)  # bearer tokens, never cookies: no cross-site request can carry them
    for blueprint in (api, home, auth, inbox, requests, instances, registry, admin, processes, vendor, public_pages):
        app.register_blueprint(blueprint)
    app.register_blueprint(attachments)
    app.register_blueprint(incident_pages)
    app.register_blueprint(help_pages)
    from web.sso import sso

    app.register_blueprint(sso)  # single sign-on with the City's OpenID provider, when configured
    from web.appeals import appeals
    from web.letters import letter_pages, serve_links_from_here, stop_serving_links

    app.register_blueprint(letter_pages)
    app.register_blueprint(appeals)
    app.before_request(serve_links_from_here)  # mailed links start at the address a request came to
    app.teardown_request(stop_serving_links)
    app.context_processor(nav_counts)
    limiter = ratelimit.init_app(
        app,
        settings,
        app.extensions["civicflow.engine"],
        submissions=[*public.SUBMISSIONS, *public_api.SUBMISSIONS],
        lookups=[*public.LOOKUPS, *public_api.LOOKUPS],
    )
    login_limits.init_app(app, settings, limiter)
    from web.api.openapi import openapi_document

    openapi_document()  # built once as the server starts, not by its first caller (a busy moment, maybe)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
            "form-action 'self'; base-uri 'none'; object-src 'none'",
        )
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")  # pages hold records: no shared caches
        return response

    return app
