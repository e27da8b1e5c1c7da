"""Uploaded screenshots: real PNG, JPEG and WebP images kept byte-for-byte; anything else refused with nothing kept;
an upload shown only to its uploader, then to whoever may see the request it became part of."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.db.models import Attachment, AuditEvent, Blob
from engine.errors import Invalid, NotAllowed, NotFound
from engine.records import attachments, audit
from engine.settings import Settings
from tests.helpers import start_request

LIMIT = Settings.max_attachment_bytes  # the default: 5 MB

# ---- real files, made with Pillow ------------------------------------------------------------------

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def image_bytes(fmt: str, size: tuple[int, int] = (320, 200), *, seed: int = 1) -> bytes:
    """A screenshot-like image in a format: noise, so that it does not compress to nothing and each seed differs."""
    width, height = size
    pixels = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(buffer, fmt)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int) -> bytes:
    """A decompression bomb: a PNG of a few dozen bytes whose header claims width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


ACCEPTED_NAMES = "Upload a screenshot saved as PNG, JPEG or WebP."
NOT_AN_IMAGE = f"This file is not an image. {ACCEPTED_NAMES}"
DAMAGED = "The image is damaged or incomplete; save the screenshot again and upload it."
TOO_MANY_PIXELS = "The image has more than 40 million pixels"

# name -> (file name as uploaded, bytes, the message the uploader reads)
REFUSED = {
    "text_renamed_png": ("comment.png", b"The comment said things we removed.\n", NOT_AN_IMAGE),
    "html": (
        "shot.png",
        b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>",
        NOT_AN_IMAGE,
    ),
    "svg": ("shot.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', NOT_AN_IMAGE),
    "truncated_png": ("shot.png", (lambda d: d[: len(d) // 2])(image_bytes("PNG")), DAMAGED),
    "truncated_jpeg": ("shot.jpg", (lambda d: d[: len(d) // 2])(image_bytes("JPEG")), DAMAGED),
    "png_with_bad_checksum": (
        "shot.png",
        (lambda d: d[:100] + bytes([d[100] ^ 0xFF]) + d[101:])(image_bytes("PNG")),
        DAMAGED,
    ),
    "empty": ("shot.png", b"", "The file is empty; choose a screenshot to upload."),
    "gif": ("shot.gif", image_bytes("GIF"), f"GIF images are not accepted. {ACCEPTED_NAMES}"),
    "bmp": ("shot.png", image_bytes("BMP"), f"BMP images are not accepted. {ACCEPTED_NAMES}"),
    "bomb_beyond_pillows_own_limit": ("bomb.png", png_declaring(50_000, 50_000), TOO_MANY_PIXELS),
    "bomb_over_40_million_pixels": ("bomb.png", png_declaring(8_000, 6_000), TOO_MANY_PIXELS),
}


def stored_counts(sessions) -> tuple[int, int, int]:
    """Blobs, attachments and audit events, read in a session of their own (what was committed)."""
    with sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(model)) for model in (Blob, Attachment, AuditEvent))


# ---- what is kept ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_screenshots_are_kept_byte_for_byte(session, sessions, people, fmt):
    data = image_bytes(fmt, (320, 200))
    attachment = attachments.store(session, people.requester, f"removed-comment.{fmt.lower()}", data, limit=LIMIT)
    session.commit()

    with sessions() as fresh:
        kept = fresh.get(Attachment, attachment.id)
        assert (kept.content_type, kept.width, kept.height, kept.size) == (CONTENT_TYPES[fmt], 320, 200, len(data))
        assert kept.filename == f"removed-comment.{fmt.lower()}"
        assert kept.uploaded_by_id == people.requester.id and kept.instance_id is None
        stored = attachments.content(fresh, kept)
        assert stored == data
        assert kept.sha256 == hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
        [event] = fresh.scalars(select(AuditEvent).where(AuditEvent.action == "attachment_uploaded")).all()
        assert (event.actor, event.detail) == (
            "requester",
            {"attachment_id": attachment.id, "sha256": kept.sha256, "size": len(data)},
        )
        assert audit.verify(fresh).ok


def test_content_type_is_what_the_image_is_not_what_its_name_says(session, people):
    jpeg = image_bytes("JPEG")
    attachment = attachments.store(session, people.requester, "looks-like.png", jpeg, limit=LIMIT)
    assert attachment.content_type == "image/jpeg"


def test_same_screenshot_uploaded_twice_is_two_attachments_sharing_one_blob(session, sessions, people):
    data = image_bytes("PNG")
    first = attachments.store(session, people.requester, "a.png", data, limit=LIMIT)
    second = attachments.store(session, people.comms, "b.png", data, limit=LIMIT)
    session.commit()
    assert first.id != second.id and first.sha256 == second.sha256
    assert stored_counts(sessions)[:2] == (1, 2)


def test_image_of_exactly_the_limit_is_kept_and_one_byte_over_it_is_refused(session, sessions, people):
    data = image_bytes("PNG", (40, 30))
    assert attachments.store(session, people.requester, "at-limit.png", data, limit=len(data)).size == len(data)
    session.commit()
    before = stored_counts(sessions)
    with pytest.raises(Invalid) as refused:
        attachments.store(session, people.requester, "over.png", data, limit=len(data) - 1)
    session.commit()
    assert refused.value.fields == {
        "file": [f"The file is larger than {len(data) - 1} bytes; upload a smaller screenshot."]
    }
    assert stored_counts(sessions) == before


def test_upload_over_the_limit_says_the_limit_in_mb_and_keeps_nothing(session, sessions, people):
    big = image_bytes("PNG", (700, 700))  # noise: about 1.4 MiB
    assert len(big) > 1024 * 1024
    before = stored_counts(sessions)
    with pytest.raises(Invalid) as refused:
        attachments.store(session, people.requester, "big.png", big, limit=1024 * 1024, field="screenshot")
    session.commit()
    assert refused.value.fields == {"screenshot": ["The file is larger than 1 MB; upload a smaller screenshot."]}
    assert stored_counts(sessions) == before


@pytest.mark.parametrize("case", REFUSED)
def test_file_that_is_not_a_whole_accepted_image_is_refused_and_nothing_is_stored(session, sessions, people, case):
    filename, data, message = REFUSED[case]
    before = stored_counts(sessions)
    with pytest.raises(Invalid) as refused:
        attachments.store(session, people.requester, filename, data, limit=LIMIT, field="screenshot")
    session.commit()  # whatever the refused call left in the session would be committed here
    assert list(refused.value.fields) == ["screenshot"]
    [said] = refused.value.fields["screenshot"]
    assert said.startswith(message)
    assert stored_counts(sessions) == before


def test_decompression_bomb_is_refused_before_its_pixels_are_decoded():
    # 8000 x 6000 is under Pillow's own warning threshold: our limit, not Pillow's, refuses it.
    with pytest.raises(Invalid) as refused:
        attachments.verify_image(png_declaring(8_000, 6_000), limit=5 * 1024 * 1024)
    assert refused.value.fields == {
        "file": ["The image has more than 40 million pixels (8000 by 6000); upload a smaller screenshot."]
    }


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("C:\\Users\\pat\\Desktop\\removed comment.png", "removed comment.png"),
        ("../../etc/passwd.png", "passwd.png"),
        ("evil\x00name\r\n.png", "evilname.png"),
        ("\u202egnp.exe", "gnp.exe"),
        ("", "screenshot"),
        (None, "screenshot"),
        ("..", "screenshot"),
        ("écran capturé.webp", "écran capturé.webp"),
        ("x" * 300 + ".png", "x" * 196 + ".png"),
    ],
)
def test_filename_is_kept_without_path_or_control_characters(session, people, sent, kept):
    attachment = attachments.store(session, people.requester, sent, image_bytes("PNG"), limit=LIMIT)
    session.commit()
    session.expire_all()
    assert session.get(Attachment, attachment.id).filename == kept


# ---- a start form referring to an upload -------------------------------------------------------------


def test_own_unbound_upload_is_accepted_for_a_start_form(session, people):
    attachment = attachments.store(session, people.requester, "shot.png", image_bytes("PNG"), limit=LIMIT)
    assert attachments.unbound_upload(session, people.requester, attachment.id, field="screenshot") is attachment


@pytest.mark.parametrize("attachment_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", 17, None, "\x00"])
def test_start_form_naming_no_upload_is_invalid_on_that_field(session, people, attachment_id):
    with pytest.raises(Invalid) as refused:
        attachments.unbound_upload(session, people.requester, attachment_id, field="screenshot")
    assert refused.value.fields == {"screenshot": ["No uploaded image with this id."]}


def test_someone_elses_upload_cannot_be_used_in_my_request(session, people):
    attachment = attachments.store(session, people.comms, "shot.png", image_bytes("PNG"), limit=LIMIT)
    session.commit()
    with pytest.raises(Invalid) as refused:
        attachments.unbound_upload(session, people.requester, attachment.id, field="screenshot")
    assert refused.value.fields == {"screenshot": ["No uploaded image with this id."]}


def test_upload_already_part_of_a_request_cannot_be_used_again(session, people):
    attachment = attachments.store(session, people.requester, "shot.png", image_bytes("PNG"), limit=LIMIT)
    instance = start_request(session, people.requester)
    attachments.bind(session, attachment.id, instance.id)
    session.commit()
    with pytest.raises(Invalid) as refused:
        attachments.unbound_upload(session, people.requester, attachment.id, field="screenshot")
    assert refused.value.fields == {"screenshot": [f"This image is already part of request {instance.id}."]}


# ---- who may see it ----------------------------------------------------------------------------------


def test_unbound_upload_is_seen_by_its_uploader_only(session, people):
    attachment = attachments.store(session, people.requester, "shot.png", image_bytes("PNG"), limit=LIMIT)
    session.commit()
    assert attachments.viewable(session, people.requester, attachment.id) is attachment
    for outsider in (people.colleague, people.comms, people.parks_head):
        with pytest.raises(NotFound):
            attachments.viewable(session, outsider, attachment.id)


@pytest.mark.parametrize("attachment_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "", "\x00"])
def test_malformed_or_unknown_attachment_id_is_not_found(session, people, attachment_id):
    with pytest.raises(NotFound):
        attachments.viewable(session, people.requester, attachment_id)


def test_attachment_of_a_request_is_seen_by_those_who_may_see_the_request(session, people):
    attachment = attachments.store(session, people.requester, "shot.png", image_bytes("PNG"), limit=LIMIT)
    instance = start_request(session, people.requester)
    attachments.bind(session, attachment.id, instance.id)
    session.commit()

    for reader in (people.requester, people.comms, people.parks_head):  # requester, overseer, reviewer
        assert attachments.viewable(session, reader, attachment.id).instance_id == instance.id
    with pytest.raises(NotAllowed):
        attachments.viewable(session, people.colleague, attachment.id)
