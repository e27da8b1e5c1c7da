"""A police investigative profile in the browser: Police Chief, then Administrative Lieutenant; hidden from others."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

NAME = "Neighborhood watcher 7"
TITLE = f'Facebook investigative profile "{NAME}"'


def take_and_approve(web, page: Page, task: str, comment: str) -> None:
    """From the "Available to me" inbox view, take the request's task and approve it with a comment."""
    web.open_inbox(page, "Available to me")
    row = page.get_by_role("row").filter(has_text=TITLE)
    expect(row).to_contain_text(task)
    row.get_by_role("button", name=f"Take {task} for {TITLE}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(task)
    page.get_by_role("radio", name="Approve").check()
    page.get_by_label("Written comment (required to reject or return)").fill(comment)
    page.get_by_role("button", name="Submit").click()


def assert_nothing_for_comms(web, comms: Page, request_url: str) -> None:
    """The Communications Manager's inbox, request list and the request's own page show nothing of the profile."""
    web.open_inbox(comms, "Available to me")
    expect(comms.locator("p.empty")).to_have_text("Nothing is waiting for your roles.")
    expect(comms.get_by_text(NAME)).to_have_count(0)
    web.open_inbox(comms, "Assigned to me")
    expect(comms.get_by_text(NAME)).to_have_count(0)
    comms.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(comms.locator("p.empty")).to_have_text("No requests to show.")
    comms.goto(request_url)
    expect(comms.get_by_role("heading", level=1)).to_have_text("Not yours to open")
    expect(comms.get_by_text("You may not see this request.")).to_be_visible()
    expect(comms.get_by_text(NAME)).to_have_count(0)


def test_an_investigative_profile_goes_to_the_chief_then_the_lieutenant_and_never_to_comms_in_the_browser(web):
    """Officer files, Chief and Lieutenant approve, officer sets it up; comms never sees it, nor the registry entry."""
    officer = web.as_user("police_officer")
    web.file_account_request(
        officer,
        name=NAME,
        department="Police Department",
        purpose="Monitoring public posts for an open investigation.",
        audience="None: not a public account.",
        managers="police_officer",
        investigative=True,
    )
    expect(officer.locator(".flash.success")).to_have_text(
        f"Your request {TITLE} was submitted. It now waits for: Department Head approval (Department Head)."
    )
    expect(officer.locator(".card")).to_contain_text("Department Head approval · Department Head of Police Department")
    request_url = officer.url

    comms = web.as_user("comms_manager")
    assert_nothing_for_comms(web, comms, request_url)

    chief = web.as_user("police_chief")
    take_and_approve(web, chief, "Department Head approval", "Approved for the investigation.")
    expect(chief.locator(".flash.success")).to_have_text(
        f"Department Head approval done for {TITLE}. "
        "It now waits for: Administrative Lieutenant approval (Administrative Lieutenant)."
    )

    assert_nothing_for_comms(web, comms, request_url)

    lieutenant = web.as_user("lieutenant")
    take_and_approve(web, lieutenant, "Administrative Lieutenant approval", "Approved; credentials in the registry.")
    expect(lieutenant.locator(".flash.success")).to_have_text(
        f"Administrative Lieutenant approval done for {TITLE}. "
        "It now waits for: Set up the account and confirm (Requester)."
    )

    officer.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Inbox")).click()
    officer.get_by_role("row").filter(has_text=TITLE).get_by_role(
        "link", name="Open Set up the account and confirm"
    ).click()
    officer.get_by_label("Profile address (if any)").fill("https://facebook.com/neighborhood.watcher.7")
    officer.get_by_label("Username").fill("watcher7")
    officer.get_by_label("Password").fill("a-unique-profile-password")
    officer.get_by_role("button", name="Submit").click()
    expect(officer.locator(".flash.success")).to_have_text(
        f"Set up the account and confirm done for {TITLE}. The request is completed: approved."
    )

    officer.goto(request_url)
    history = officer.get_by_role("region", name="History").get_by_role("listitem")
    expect(history.filter(has_text="Approved · Department Head approval")).to_contain_text(
        "Sam Chief (Department Head)"
    )
    expect(history.filter(has_text="Approved · Administrative Lieutenant approval")).to_contain_text(
        "Lee Lieutenant (Administrative Lieutenant)"
    )
    expect(officer.get_by_role("region", name="Record")).not_to_contain_text("a-unique-profile-password")

    lieutenant.get_by_role("navigation", name="Main").get_by_role("link", name="Registry").click()
    profiles = lieutenant.get_by_role("table").filter(has=lieutenant.get_by_role("columnheader", name="Credentials"))
    expect(lieutenant.get_by_role("heading", name="Police investigative profiles")).to_be_visible()
    row = profiles.get_by_role("row").filter(has=lieutenant.get_by_role("link", name=NAME, exact=True))
    expect(row).to_contain_text("Police Department")
    expect(row.get_by_role("cell").nth(5)).to_contain_text(
        re.compile(r"Morgan Officer \(Lee Lieutenant \(Administrative Lieutenant\), \w{3} \d+, \d{4}\)")
    )
    expect(row.get_by_role("button", name=f"Show credentials of {NAME}")).to_be_visible()
    web.screenshot(lieutenant, "investigative-profile_registry-lieutenant_desktop")

    comms.get_by_role("navigation", name="Main").get_by_role("link", name="Registry").click()
    expect(comms.get_by_role("heading", level=1)).to_have_text("Account registry")
    expect(comms.get_by_role("link", name="West St. Paul Police Department").first).to_be_visible()
    expect(comms.get_by_text(NAME)).to_have_count(0)
    expect(comms.get_by_role("heading", name="Police investigative profiles")).to_have_count(0)
    expect(comms.get_by_role("columnheader", name="Credentials")).to_have_count(0)
    web.screenshot(comms, "investigative-profile_registry-comms_desktop")
