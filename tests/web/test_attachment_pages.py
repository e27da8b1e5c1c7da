"""Uploading a screenshot through the API and seeing it on its page: kept as sent, refused with a reason naming
the field, served only to those who may see it, and always as an inert image."""

from __future__ import annotations

import hashlib
import io

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.http import parse_options_header
from werkzeug.test import encode_multipart

from engine.records import attachments
from tests.engine.test_attachments import LIMIT, REFUSED, image_bytes, stored_counts
from tests.helpers import start_request
from tests.web.test_api import error_of

UPLOAD_URL = "/api/v1/attachments"
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def multipart(fields: dict) -> dict:
    """A multipart/form-data body built in memory (the test client would spool a big one to an unclosed temp file)."""
    boundary, body = encode_multipart(fields)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(api_as, data: bytes, filename: str = "removed-comment.png", content_type: str = "image/png"):
    """POST the bytes as the multipart field `file`, as a browser or curl -F sends a file."""
    return api_as.post(
        UPLOAD_URL, **multipart({"file": FileStorage(io.BytesIO(data), filename, content_type=content_type)})
    )


def uploaded(api_as, data: bytes, filename: str = "removed-comment.png") -> dict:
    """Upload and return the 201 body."""
    response = upload(api_as, data, filename)
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    return response.get_json()


def assert_served_as_inert_image(response, data: bytes, content_type: str, filename: str) -> None:
    """The bytes exactly as uploaded, typed as the image they are, and nothing a browser would run or sniff."""
    assert response.status_code == 200
    assert response.get_data() == data
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response.headers["Cache-Control"] == "private, no-store"
    disposition, options = parse_options_header(response.headers["Content-Disposition"])
    assert (disposition, options["filename"]) == ("inline", filename)


# ---- uploading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_uploaded_screenshot_is_served_back_byte_for_byte(api, browser_as, fmt):
    data = image_bytes(fmt, (320, 200))
    body = uploaded(api("requester"), data, f"removed-comment.{fmt.lower()}")
    assert body == {
        "id": body["id"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_type": CONTENT_TYPES[fmt],
        "size": len(data),
        "width": 320,
        "height": 200,
    }

    from_api = api("requester").get(f"{UPLOAD_URL}/{body['id']}")
    assert_served_as_inert_image(from_api, data, CONTENT_TYPES[fmt], f"removed-comment.{fmt.lower()}")
    page = browser_as("requester").get(f"/attachments/{body['id']}")
    assert_served_as_inert_image(page, data, CONTENT_TYPES[fmt], f"removed-comment.{fmt.lower()}")
    assert hashlib.sha256(page.get_data()).hexdigest() == body["sha256"]


def test_content_type_is_what_the_image_is_not_what_the_client_claims(api):
    body = uploaded(api("requester"), image_bytes("JPEG"), "shot.png")
    assert body["content_type"] == "image/jpeg"
    served = api("requester").get(f"{UPLOAD_URL}/{body['id']}")
    assert served.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("filename", ['say "cheese".png', "écran capturé.png", "semi;colon, comma.png"])
def test_file_name_is_quoted_safely_in_the_header(api, sessions, people, filename):
    with sessions() as s:
        attachment = attachments.store(s, people.requester, filename, image_bytes("PNG"), limit=LIMIT)
        s.commit()
    served = api("requester").get(f"{UPLOAD_URL}/{attachment.id}")
    disposition = served.headers["Content-Disposition"]
    assert disposition.startswith('inline; filename="')
    assert parse_options_header(disposition)[1]["filename"] == filename


@pytest.mark.parametrize("case", [case for case in REFUSED if case != "bomb_over_40_million_pixels"])
def test_file_that_is_not_a_whole_accepted_image_is_400_naming_file_and_nothing_is_stored(api, sessions, case):
    filename, data, message = REFUSED[case]
    before = stored_counts(sessions)
    error = error_of(upload(api("requester"), data, filename), 400, "invalid")
    [said] = error["fields"]["file"]
    assert said.startswith(message)
    assert stored_counts(sessions) == before


def test_upload_without_a_file_field_is_400_naming_file(api, sessions):
    before = stored_counts(sessions)
    as_field = api("requester").post(UPLOAD_URL, **multipart({"file": "not a file", "other": "x"}))
    assert error_of(as_field, 400, "invalid")["fields"] == {"file": ["Send the image in the multipart field file."]}
    wrong_name = api("requester").post(
        UPLOAD_URL, **multipart({"image": FileStorage(io.BytesIO(image_bytes("PNG")), "shot.png")})
    )
    assert error_of(wrong_name, 400, "invalid")["fields"] == {"file": ["Send the image in the multipart field file."]}
    assert stored_counts(sessions) == before


@pytest.mark.parametrize(
    ("payload", "content_type"), [(b'{"file": "aGVsbG8="}', "application/json"), (None, "image/png")]
)
def test_upload_that_is_not_multipart_is_415(api, sessions, payload, content_type):
    before = stored_counts(sessions)
    response = api("requester").post(UPLOAD_URL, data=payload or image_bytes("PNG"), content_type=content_type)
    assert "multipart/form-data" in error_of(response, 415, "unsupported_media_type")["message"]
    assert stored_counts(sessions) == before


def test_image_over_five_mib_is_413_saying_the_limit(api, sessions):
    big = image_bytes("PNG", (1400, 1300))  # noise: about 5.2 MiB, under the 6 MiB request limit
    assert 5 * 1024 * 1024 < len(big) < 6 * 1024 * 1024
    before = stored_counts(sessions)
    error = error_of(upload(api("requester"), big), 413, "too_large")
    assert error["message"] == "The file is larger than 5 MB; upload a smaller screenshot."
    assert stored_counts(sessions) == before


def test_request_over_six_mib_is_a_json_413_not_an_html_page(api, sessions):
    huge = image_bytes("PNG", (1500, 1450))  # noise: about 6.2 MiB
    assert len(huge) > 6 * 1024 * 1024
    before = stored_counts(sessions)
    response = upload(api("requester"), huge)
    error_of(response, 413, "too_large")  # checks application/json and the error shape of docs/api.md
    assert b"<html" not in response.get_data().lower()
    assert stored_counts(sessions) == before


# ---- who may fetch it --------------------------------------------------------------------------------


def test_anonymous_caller_gets_401_from_the_api_and_the_login_page_from_the_site(api, client, sessions):
    body = uploaded(api("requester"), image_bytes("PNG"))
    before = stored_counts(sessions)
    posted = client.post(
        UPLOAD_URL, **multipart({"file": FileStorage(io.BytesIO(image_bytes("PNG", seed=2)), "shot.png")})
    )
    assert error_of(posted, 401, "unauthorized")
    assert error_of(client.get(f"{UPLOAD_URL}/{body['id']}"), 401, "unauthorized")
    page = client.get(f"/attachments/{body['id']}")
    assert page.status_code == 302
    assert page.headers["Location"].startswith(f"/login?next=%2Fattachments%2F{body['id']}")
    assert stored_counts(sessions) == before


def test_someone_elses_unbound_upload_is_not_found_for_others(api, browser_as):
    body = uploaded(api("requester"), image_bytes("PNG"))
    error_of(api("colleague").get(f"{UPLOAD_URL}/{body['id']}"), 404, "not_found")
    error_of(api("comms").get(f"{UPLOAD_URL}/{body['id']}"), 404, "not_found")
    page = browser_as("colleague").get(f"/attachments/{body['id']}")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert image_bytes("PNG") not in page.get_data()


@pytest.mark.parametrize("attachment_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "%00"])
def test_unknown_or_malformed_attachment_id_is_404(api, browser_as, attachment_id):
    error_of(api("requester").get(f"{UPLOAD_URL}/{attachment_id}"), 404, "not_found")
    assert browser_as("requester").get(f"/attachments/{attachment_id}").status_code == 404


def test_attachment_of_a_request_is_served_to_those_who_may_see_that_request(api, browser_as, sessions, people):
    data = image_bytes("PNG")
    body = uploaded(api("requester"), data, "shot.png")
    with sessions() as s:
        instance = start_request(s, people.requester)
        attachments.bind(s, body["id"], instance.id)
        s.commit()
    for reader in ("requester", "comms", "parks_head"):
        assert_served_as_inert_image(
            browser_as(reader).get(f"/attachments/{body['id']}"), data, "image/png", "shot.png"
        )
    error_of(api("colleague").get(f"{UPLOAD_URL}/{body['id']}"), 403, "forbidden")
    page = browser_as("colleague").get(f"/attachments/{body['id']}")
    assert page.status_code == 403
    assert data not in page.get_data()
