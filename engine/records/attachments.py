"""Uploaded screenshots: verified as real PNG, JPEG or WebP images, kept byte-for-byte by sha256, shown only to
those who may see the request they belong to."""

from __future__ import annotations

import hashlib
import io
import ntpath
import posixpath
import threading
import unicodedata
import uuid
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.db.models import Attachment, Blob, ProcessInstance
from engine.errors import Invalid, NotFound
from engine.people.users import Actor
from engine.records import audit
from engine.requests import authz

# Pillow's format name -> the content type we serve; the client's claimed type is never used.
ACCEPTED = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
ACCEPTED_NAMES = "PNG, JPEG or WebP"
# Other image formats, recognised only to say which format was refused (their decoders are never run).
NAMED_REFUSALS = ("GIF", "BMP", "TIFF", "ICO", "AVIF", "PSD")
MAX_PIXELS = 40_000_000
MAX_FILENAME = 200
DEFAULT_FILENAME = "screenshot"
_MIB = 1024 * 1024
# warnings.catch_warnings swaps process-wide state: two threads interleaving could leave "error" installed for
# everyone (waitress serves with threads), so image checks take turns.
_WARNINGS_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImageFacts:
    """What Pillow found in an upload: its real content type and its dimensions."""

    content_type: str
    width: int
    height: int


def sha256_of(data: bytes) -> str:
    """The hex sha256 of some bytes: the key a blob is kept under."""
    return hashlib.sha256(data).hexdigest()


def too_large_message(limit: int) -> str:
    """What to tell someone whose file is over the limit (in MB, as people read file sizes)."""
    megabytes = limit / _MIB
    # Only tests and odd configurations set a limit under a tenth of a megabyte.
    size = f"{megabytes:.3g} MB" if megabytes >= 0.1 else f"{limit} bytes"
    return f"The file is larger than {size}; upload a smaller screenshot."


def _refuse(field: str, message: str) -> Invalid:
    return Invalid(message, {field: [message]})


def verify_image(data: bytes, *, field: str = "file", limit: int) -> ImageFacts:
    """Check that the bytes are one whole PNG, JPEG or WebP image of sensible size; Invalid naming `field` if not."""
    if not data:
        raise _refuse(field, "The file is empty; choose a screenshot to upload.")
    if len(data) > limit:
        raise _refuse(field, too_large_message(limit))
    with _WARNINGS_LOCK, warnings.catch_warnings():
        # Pillow reports truncated data and oversized images as warnings: each one is a refusal here.
        warnings.simplefilter("error")
        return _inspect(data, field)


def _inspect(data: bytes, field: str) -> ImageFacts:
    try:
        # Only the accepted formats' plugins parse and decode; others are merely named (_unaccepted).
        with Image.open(io.BytesIO(data), formats=tuple(ACCEPTED)) as image:
            kind, (width, height) = image.format, image.size
            assert kind is not None  # Pillow names the format of every image it opens from a file
            if width * height > MAX_PIXELS:
                raise _refuse(field, _too_many_pixels(width, height))
            image.verify()
        with Image.open(io.BytesIO(data), formats=(kind,)) as image:
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(field, _too_many_pixels())
    except UnidentifiedImageError:
        raise _refuse(field, _unaccepted(data))
    except Invalid:
        raise
    except Exception:  # noqa: BLE001 -- whatever a decoder raises on damaged data, the answer is the same
        raise _refuse(field, "The image is damaged or incomplete; save the screenshot again and upload it.")
    return ImageFacts(ACCEPTED[kind], width, height)


def _too_many_pixels(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} by {height})" if width else ""
    return f"The image has more than 40 million pixels{size}; upload a smaller screenshot."


def _unaccepted(data: bytes) -> str:
    """Say which image format was refused, or that the file is no image at all."""
    try:
        with Image.open(io.BytesIO(data), formats=NAMED_REFUSALS) as image:
            kind = image.format
    except Exception:  # noqa: BLE001 -- not one of the named formats either
        return f"This file is not an image. Upload a screenshot saved as {ACCEPTED_NAMES}."
    return f"{kind} images are not accepted. Upload a screenshot saved as {ACCEPTED_NAMES}."


def clean_filename(filename: str | None) -> str:
    """The name to keep and show: its last path part, without control characters, at most 200 characters."""
    name = ntpath.basename(posixpath.basename(filename or ""))  # browsers on Windows once sent C:\...\shot.png
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs")).strip()
    if name in ("", ".", ".."):
        return DEFAULT_FILENAME
    if len(name) > MAX_FILENAME:
        stem, dot, suffix = name.rpartition(".")
        keep = f"{dot}{suffix}" if stem and len(suffix) <= 10 else ""  # keep a short extension
        name = name[: MAX_FILENAME - len(keep)].rstrip() + keep
    return name


def _keep_blob(session: Session, digest: str, data: bytes) -> None:
    """Store the bytes once; an identical upload reuses them."""
    if session.get(Blob, digest) is not None:
        return
    try:
        with session.begin_nested():
            session.add(Blob(sha256=digest, size=len(data), data=data))
    except IntegrityError:
        # The same bytes were stored by a concurrent upload a moment ago: identical by definition, so reuse them.
        pass


def store(
    session: Session, actor: Actor, filename: str | None, data: bytes, *, limit: int, field: str = "file"
) -> Attachment:
    """Verify an uploaded image of at most `limit` bytes (settings.max_attachment_bytes) and keep it, exactly as
    received, as a new attachment of the actor."""
    facts = verify_image(data, field=field, limit=limit)
    digest = sha256_of(data)
    _keep_blob(session, digest, data)
    attachment = Attachment(
        id=str(uuid.uuid4()),
        sha256=digest,
        content_type=facts.content_type,
        size=len(data),
        width=facts.width,
        height=facts.height,
        filename=clean_filename(filename),
        uploaded_by_id=actor.id,
    )
    session.add(attachment)
    session.flush()
    audit.append(
        session,
        actor,
        "attachment_uploaded",
        detail={"attachment_id": attachment.id, "sha256": digest, "size": len(data)},
    )
    return attachment


def _by_id(session: Session, attachment_id) -> Attachment | None:
    """The attachment of an id as sent (any spelling of a UUID), or None for an unknown or malformed one."""
    try:
        canonical = str(uuid.UUID(str(attachment_id)))
    except ValueError:
        return None
    return session.get(Attachment, canonical)


def unbound_upload(session: Session, actor: Actor, attachment_id: str, *, field: str) -> Attachment:
    """The actor's own upload that no request uses yet (a start form refers to it); Invalid naming `field` if not."""
    attachment = _by_id(session, attachment_id) if isinstance(attachment_id, str) else None
    if attachment is None or attachment.uploaded_by_id != actor.id:
        # Someone else's upload is answered like a missing one: its existence is not theirs to learn.
        raise _refuse(field, "No uploaded image with this id.")
    if attachment.instance_id is not None:
        raise _refuse(field, f"This image is already part of request {attachment.instance_id}.")
    return attachment


def bind(session: Session, attachment_id: str, instance_id: int) -> Attachment:
    """Make the attachment part of a request, once that request exists."""
    attachment = _by_id(session, attachment_id)
    if attachment is None:
        raise NotFound("No such attachment.")
    attachment.instance_id = instance_id
    session.flush()
    return attachment


def viewable(session: Session, actor: Actor, attachment_id: str) -> Attachment:
    """An attachment the actor may see: their own unbound upload, or one of a request they may see."""
    attachment = _by_id(session, attachment_id)
    if attachment is None:
        raise NotFound("No such attachment.")
    if attachment.instance_id is None:
        if attachment.uploaded_by_id != actor.id:
            raise NotFound("No such attachment.")
        return attachment
    authz.require_may_view(session, actor, session.get_one(ProcessInstance, attachment.instance_id))
    return attachment


def content(session: Session, attachment: Attachment) -> bytes:
    """The attachment's bytes, exactly as uploaded."""
    return session.get_one(Blob, attachment.sha256).data
