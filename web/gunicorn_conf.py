"""gunicorn's settings for civicflow in production: `gunicorn -c python:web.gunicorn_conf` (README, "Production").

`civicflow serve --production --workers N` runs the same. Options on gunicorn's command line (or in
GUNICORN_CMD_ARGS) win over these: `--bind`, `--workers`, `--threads`. The web workers never run the scheduler's
jobs: timers, mail and the digest are `civicflow scheduler`'s, a process of its own.
"""

from __future__ import annotations

import os

from engine.errors import CivicflowError
from engine.settings import Settings
from engine.time import scheduler as jobs
from web import serving

wsgi_app = "web.serving:production_app()"
bind = ["127.0.0.1:8000"]  # behind the reverse proxy, on this machine
workers = 2
worker_class = "gthread"
threads = 8
# A worker silent this long is restarted; on SIGTERM, requests in progress have this long to finish.
timeout = serving.SLOW_CLIENT_SECONDS
graceful_timeout = serving.SLOW_CLIENT_SECONDS
keepalive = 5
# The request line and headers: gunicorn's defaults, written out; the body's limit is serving.BodyLimit's.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# One line per request on standard output: client, time, method and path (never the query string, which may
# carry a requester's lookup code), status, bytes, milliseconds, user agent.
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
# The workers' heartbeat files in memory, as gunicorn advises: a slow disk would make healthy workers look stuck.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - a memory file system


def on_starting(server) -> None:
    """Before any worker: check the settings, and migrate once (workers migrating at once would collide)."""
    try:
        settings = Settings.from_env()
        mode = jobs.configured_mode(settings)
    except CivicflowError as exc:
        named = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.fields.items())
        raise SystemExit(f"error: {exc.message} {named}") from exc
    serving.prepare_database(settings)
    if mode == jobs.EMBEDDED:
        server.log.warning(
            "CIVICFLOW_SCHEDULER is embedded (or the database is SQLite): the production server never runs the "
            "scheduler in its workers; run `civicflow scheduler` as a process of its own"
        )


def pre_request(worker, req) -> None:
    """Close the connection after a request whose body is over the limit, or chunked, instead of reading on.

    gunicorn reads what a request left unread to find the next one on a kept-alive connection: the 500 MiB a
    refused upload declared, or a chunked body of no declared end. Closing reads none of it.
    """
    settings = getattr(worker.wsgi, "settings", None)  # serving.BodyLimit's
    headers = dict(req.headers)
    declared = headers.get("CONTENT-LENGTH", "")
    over = settings is not None and declared.isdigit() and int(declared) > serving.body_limit(req.path, settings)
    if over or "TRANSFER-ENCODING" in headers:
        req.must_close = True


def post_request(worker, req, environ, resp) -> None:
    """After any 413 (the app's own refusals too), close rather than read the rest of the body."""
    if resp is not None and resp.status_code == 413:
        req.must_close = True
