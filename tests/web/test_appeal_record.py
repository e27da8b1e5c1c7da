"""An appeal entered by staff from a letter names its writer; an appeal without its removal number is linked
to the removal later, on its task page."""

from __future__ import annotations

from engine.requests import services
from tests.engine.test_content_removal import removal
from tests.engine.test_removal_appeal import appeal
from tests.procedures import png_bytes
from tests.web.pages import csrf_token, login, text_of


def test_a_letter_entered_by_staff_is_asked_by_its_writer_entered_by_the_staff_member(client, city, session):
    instance = services.start_instance(session, city.records, "removal_appeal", appeal(city.facebook))
    session.commit()
    login(client, "comms")
    for path in (f"/instances/{instance.id}", "/instances"):
        shown = text_of(client.get(path))
        assert "Jo Public (entered by" in shown, path


def test_the_reviewer_links_the_removal_on_the_task_page(client, city, session):
    from engine.records import attachments
    from tests.engine.test_attachments import LIMIT

    upload = attachments.store(session, city.moderator, "comment.png", png_bytes(), limit=LIMIT)
    removed = services.start_instance(session, city.moderator, "content_removal", removal(city.facebook, upload.id))
    instance = services.start_instance(session, city.records, "removal_appeal", appeal(city.facebook))
    session.commit()
    task_id = services.open_tasks_of(session, instance)[0].id
    login(client, "comms")
    page = client.get(f"/tasks/{task_id}")
    assert "Link the removal" in text_of(page)

    refused = client.post(
        f"/instances/{instance.id}/removal",
        data={"removal_id": "abc", "next": f"/tasks/{task_id}", "csrf_token": csrf_token(page)},
    )
    assert refused.status_code == 302 and refused.headers["Location"] == f"/tasks/{task_id}"
    assert "Removal record number:" in text_of(client.get(f"/tasks/{task_id}"))

    linked = client.post(
        f"/instances/{instance.id}/removal",
        data={"removal_id": str(removed.id), "next": f"/tasks/{task_id}", "csrf_token": csrf_token(page)},
    )
    assert linked.status_code == 302
    shown = text_of(client.get(f"/tasks/{task_id}"))
    assert f"The appeal is linked to removal record {removed.id}." in shown and "Link the removal" not in shown
    assert "Linked the removal record" in text_of(client.get(f"/instances/{instance.id}"))
