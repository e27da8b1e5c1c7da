"""How civicflow is served: the request-body limit held at the server, and waitress' and gunicorn's settings.

The app refuses a body over its limit (MAX_CONTENT_LENGTH; 256 KiB on the public pages) before it reads it, but
a server can read and spool the body before the app is called: waitress buffers every body up to 1 GiB by
default, and gunicorn reads what a refused request left unread before the next one on the connection. Here
the same limits hold before anything is read: `BodyLimit` answers 413 to a declared Content-Length over the
limit without reading it, and reads a chunked body only up to the limit; `waitress_options` makes waitress refuse
on the headers; web/gunicorn_conf.py closes a connection after a 413 instead of draining it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.settings import Settings
from engine.versions import shipped
from web.public import PUBLIC_MAX_BYTES

# The paths whose bodies web/public.limit_body_size holds to PUBLIC_MAX_BYTES.
PUBLIC_PATHS = ("/public/", "/api/v1/public/")
# A client that sends nothing for this long loses its connection (a request's headers or body, a keep-alive).
SLOW_CLIENT_SECONDS = 30
# Headers: a request line and a cookie fit many times over; a flood of headers is refused before the app.
MAX_HEADER_BYTES = 64 * 1024
REFUSED = "civicflow.body_refused"  # set in the WSGI environ when a body was refused unread


def body_limit(path: str, settings: Settings) -> int:
    """The most bytes a request's body to this path may have: the public pages' limit, or the app's."""
    return PUBLIC_MAX_BYTES if path.startswith(PUBLIC_PATHS) else settings.max_request_bytes


class BodyLimit:
    """WSGI middleware: a body over its path's limit gets 413 before it is read; a chunked one, at the limit."""

    def __init__(self, app: Flask):
        self.app = app
        self.settings: Settings = app.extensions["civicflow.settings"]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        limit = body_limit(environ.get("PATH_INFO", ""), self.settings)
        declared = environ.get("CONTENT_LENGTH", "").strip()
        if declared.isdigit() and int(declared) > limit:
            return self._refuse(environ, start_response, limit)
        if not declared and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # No length to check: read at most one byte past the limit. (Werkzeug would cut such a body at its
            # limit without a word, and the app would see a truncated form.)
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            if len(body) > limit:
                return self._refuse(environ, start_response, limit)
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.app(environ, start_response)

    def _refuse(self, environ: dict[str, Any], start_response: Callable[..., Any], limit: int) -> Iterable[bytes]:
        """The app's own 413 (its page, or the API's JSON), answered with nothing of the body read."""
        environ[REFUSED] = True
        environ["wsgi.input"] = io.BytesIO()
        refusal = RequestEntityTooLarge(f"The request is larger than {limit // 1024} KiB; nothing of it was read.")
        with self.app.request_context(environ):
            response = self.app.finalize_request(self.app.handle_http_exception(refusal), from_error_handler=True)
        response.headers["Connection"] = "close"  # waitress closes after it; gunicorn by web/gunicorn_conf.py
        return response(environ, start_response)


def prepare_database(settings: Settings) -> None:
    """What `civicflow db upgrade` does: migrate, and load the diagrams of workflows/; once, before the workers."""
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)(info={"settings": settings}) as session:
            shipped.sync_workflows(session)
            session.commit()
    finally:
        engine.dispose()


def _read_at_most(stream: Any, most: int) -> bytes:
    """The first `most` bytes of a stream, or all of it if it is shorter."""
    pieces, left = [], most
    while left > 0:
        piece = stream.read(min(left, 64 * 1024))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def production_app() -> BodyLimit:
    """The app as gunicorn serves it (web/gunicorn_conf.py): settings from the environment, BodyLimit in front."""
    from web import create_app

    return BodyLimit(create_app())


def waitress_options(settings: Settings) -> dict[str, Any]:
    """waitress' limits from the same settings: a body over the app's limit is refused on its headers, unread."""
    return {
        # waitress refuses a Content-Length at or above this, and a chunked body once it reaches it.
        "max_request_body_size": settings.max_request_bytes + 1,
        "max_request_header_size": MAX_HEADER_BYTES,
        "channel_timeout": SLOW_CLIENT_SECONDS,
        # inbuf_overflow stays waitress' 512 KiB: a body between it and the limit above waits in a temporary
        # file of at most the limit's size rather than in memory, one per connection.
    }
