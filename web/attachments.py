"""Uploaded screenshots, served only to those who may see them, and never as something a browser would run."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response
from flask_login import login_required
from werkzeug.http import quote_header_value

from engine.db.models import Attachment
from engine.records import attachments as engine_attachments
from web.auth import current_actor
from web.db import get_session

attachments = Blueprint("attachments", __name__)


@attachments.before_request
@login_required
def require_login():
    """Every image here is for logged-in staff."""


def content_disposition(filename: str) -> str:
    """`inline` with the file's name, quoted; a non-ASCII name also in RFC 6266's UTF-8 form (as Flask's send_file)."""
    try:
        filename.encode("ascii")
        return f"inline; filename={quote_header_value(filename, allow_token=False)}"
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii").strip()
        encoded = quote(filename, safe="!#$&+^`|~")
        return (
            f"inline; filename={quote_header_value(simple or engine_attachments.DEFAULT_FILENAME, False)}; "
            f"filename*=UTF-8''{encoded}"
        )


def image_response(attachment: Attachment, data: bytes) -> Response:
    """The image's bytes with the type Pillow found, in a sandbox: nothing in it can run or be sniffed as HTML."""
    response = Response(data, mimetype=attachment.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = content_disposition(attachment.filename)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # Evidence of a request: no shared cache may keep it, and the browser does not keep a copy either.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@attachments.get("/attachments/<attachment_id>")
def show(attachment_id):
    """One uploaded image, to its uploader before it is part of a request, then to whoever may see that request."""
    session = get_session()
    attachment = engine_attachments.viewable(session, current_actor(), attachment_id)
    return image_response(attachment, engine_attachments.content(session, attachment))
