"""Every diagram of tests/fixtures/foreign through the upload paths: saved with its problems listed, or refused
with a reason, never a 500; a correct one is published and used by new requests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.db.models import ProcessDraft
from tests.web.pages import csrf_token

FOREIGN = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "foreign").glob("*.bpmn"))
KEY = "removal_appeal"


def _put(client, api, data: bytes):
    return client.put(
        f"/api/v1/processes/{KEY}/draft", headers=api("admin").headers, data=data, content_type="application/xml"
    )


@pytest.mark.parametrize("path", FOREIGN, ids=[p.stem for p in FOREIGN])
def test_a_foreign_diagram_through_the_api_is_saved_with_its_problems_or_refused_never_a_500(
    client, api, path, sessions, city
):
    saved = _put(client, api, path.read_bytes())
    assert saved.status_code in (200, 400), saved.get_data(as_text=True)[:500]
    body = saved.get_json()
    if saved.status_code == 400:  # not a safe, well-formed BPMN document: nothing stored
        assert body["error"]["code"] == "invalid_diagram" and body["error"]["problems"]
        with sessions() as session:
            assert session.scalar(select(ProcessDraft.id)) is None
        return
    published = api("admin").post(f"/api/v1/processes/{KEY}/publish")
    if path.name.startswith("ok_"):
        assert body["problems"] == [] and body["publishable"]
        assert published.status_code == 200, published.get_json()
        started = api("records").post(
            f"/api/v1/processes/{KEY}/instances",
            json={
                "data": {
                    "appellant_name": "Jo Public",
                    "appellant_email": "jo@example.net",
                    "account": city.facebook,
                    "comment_text": "A question about City services.",
                    "explanation": "It was on topic.",
                    "received_via": "mail",
                }
            },
        )
        assert started.status_code == 201, started.get_json()
        assert (
            started.get_json()["version"]
            == api("admin").get(f"/api/v1/processes/{KEY}/versions").get_json()[0]["version_hash"]
        )
    else:
        assert body["problems"] and not body["publishable"]
        assert all(p["message"] for p in body["problems"])
        assert published.status_code == 400
        assert published.get_json()["error"]["problems"] == body["problems"]


@pytest.mark.parametrize("path", FOREIGN, ids=[p.stem for p in FOREIGN])
def test_a_foreign_diagram_through_the_upload_form_never_gives_a_500(browser_as, path):
    admin = browser_as("admin")
    page = admin.get(f"/admin/processes/{KEY}/edit")
    response = admin.post(
        f"/admin/processes/{KEY}/upload",
        data={"csrf_token": csrf_token(page), "file": (path.open("rb"), path.name)},
        content_type="multipart/form-data",
    )
    assert response.status_code in (303, 400), response.get_data(as_text=True)[:500]
    if response.status_code == 303:
        page = admin.get(response.headers["Location"])
        assert page.status_code == 200
        assert f"{path.name} is the draft now" in page.get_data(as_text=True)
    else:
        assert "was not saved" in response.get_data(as_text=True)
