"""Keeping the registry: administrators set an account's policy marks and deactivate it; every change audited."""

from __future__ import annotations

from sqlalchemy import select

from engine.db.models import Account, AuditEvent
from tests.web.pages import csrf_token, post_form, text_of

MARKS = {"marked_as_city": "y", "links_official_site": "y", "public_notice_linked": "y", "status": "active"}


def account(sessions, account_id: int) -> Account:
    """The account as it is now (detached)."""
    with sessions() as s:
        row = s.get(Account, account_id)
        s.expunge(row)
        return row


def registry_events(sessions) -> list[tuple[str, str, dict]]:
    """Every audited change to the registry: (who, action, detail), oldest first."""
    with sessions() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action.like("account_%")).order_by(AuditEvent.id))
        return [(row.actor, row.action, row.detail) for row in rows]


def test_an_administrator_fixes_the_public_notice_mark_and_the_change_is_audited(browser_as, city, sessions):
    with sessions() as s:  # as the five seeded accounts are: no public notice linked yet
        s.get(Account, city.facebook).public_notice_linked = False
        s.commit()
    admin = browser_as("admin")
    assert "✗ public notice" in text_of(admin.get("/registry"))
    assert "Change City of West St. Paul" in text_of(admin.get("/registry"))
    page = text_of(admin.get(f"/registry/{city.facebook}"))
    assert "Displays or links to the public notice" in page and "Inactive: kept in the registry" in page

    response = post_form(admin, f"/registry/{city.facebook}", MARKS)
    assert response.status_code == 302
    shown = text_of(admin.get(response.headers["Location"]))
    assert "City of West St. Paul: changed displays or links to the public notice." in shown
    assert "✗ public notice" not in shown
    changed = account(sessions, city.facebook)
    assert (changed.marked_as_city, changed.links_official_site, changed.public_notice_linked) == (True, True, True)
    [(actor, action, detail)] = registry_events(sessions)
    assert (actor, action) == ("admin", "account_updated")
    assert detail["account_id"] == city.facebook and detail["changes"]["public_notice_linked"] == [False, True]


def test_a_deactivated_account_stays_listed_and_is_no_longer_offered_for_new_requests(browser_as, api, city, sessions):
    admin = browser_as("admin")
    response = post_form(admin, f"/registry/{city.police_x}", {"status": "inactive"})
    assert response.status_code == 302
    assert account(sessions, city.police_x).status == "inactive"
    assert [action for _, action, _ in registry_events(sessions)] == ["account_deactivated"]
    listing = text_of(browser_as("requester").get("/registry"))
    assert "West St. Paul Police" in listing and "inactive" in listing

    officer = browser_as("officer")
    assert "West St. Paul Police" not in text_of(officer.get("/requests/new/content_removal"))
    assert "X (Twitter): West St. Paul Police" not in text_of(officer.get("/requests/new/manager_change"))
    refused = post_form(
        officer,
        "/requests/new/manager_change",
        {"account_id": str(city.police_x), "action": "add", "manager": "newbie", "reason": "Help."},
    )
    assert refused.status_code == 400
    answer = api("officer").post(
        "/api/v1/processes/manager_change/instances",
        json={"data": {"account_id": city.police_x, "action": "add", "manager": "newbie", "reason": "Help."}},
    )
    assert answer.status_code == 400
    assert "account_id" in answer.get_json()["error"]["fields"]


def test_only_administrators_keep_the_registry_and_every_change_needs_the_forms_token(
    browser_as, city, sessions, unchanged
):
    for who in ("comms", "records", "requester"):
        page = browser_as(who)
        assert "Change City of West St. Paul" not in text_of(page.get("/registry"))
        assert page.get(f"/registry/{city.facebook}").status_code == 403
        token = csrf_token(page.get("/inbox"))
        with unchanged():
            assert page.post(f"/registry/{city.facebook}", data={**MARKS, "csrf_token": token}).status_code == 403
    with unchanged():
        assert browser_as("admin").post(f"/registry/{city.facebook}", data=MARKS).status_code == 400  # no token
        bad = post_form(browser_as("admin"), f"/registry/{city.facebook}", {"status": "closed"})
    assert bad.status_code == 400 and "Not a valid choice" in text_of(bad)
    assert account(sessions, city.facebook).status == "active"
