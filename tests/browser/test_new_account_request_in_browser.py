"""A new account request in the browser, as each person in it sees it: approval to the registry, and rejection."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE

NAME = "West St. Paul Parks"
TITLE = f'Facebook account "{NAME}"'
COMMENT_LABEL = "Written comment (required to reject or return)"


def file_parks_request(web) -> Page:
    """The requester files the Parks account request; returns their page, on the new request's page."""
    page = web.as_user("requester")
    web.file_account_request(
        page,
        name=NAME,
        department="Parks and Recreation",
        purpose="Program announcements for Parks and Recreation.",
        audience="Residents and park users.",
        managers="requester",
    )
    expect(page.locator(".flash.success")).to_have_text(
        f"Your request {TITLE} was submitted. It now waits for: Department Head approval (Department Head)."
    )
    return page


def history_items(page: Page):
    """The entries of the request page's history timeline."""
    return page.get_by_role("region", name="History").get_by_role("listitem")


def test_a_new_account_request_goes_from_the_start_form_to_the_registry_in_the_browser(web):
    """Requester files, the parks head and the communications manager approve, the requester confirms set-up."""
    page = file_parks_request(web)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{TITLE} #1")
    expect(page.locator(".lede .badge")).to_have_text("running")
    waiting = page.locator(".card").filter(has=page.get_by_role("heading", name="Waiting for"))
    expect(waiting).to_contain_text("Department Head approval · Department Head of Parks and Recreation")
    web.log_out(page)

    # The Department Head: nothing assigned yet, so the inbox opens where the work is: "Available to me".
    web.log_in(page, "parks_head")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("0 assigned to you · 1 you may take")
    views = page.get_by_role("navigation", name="Inbox views")
    expect(views.locator("[aria-current=page]")).to_contain_text("Available to me")
    row = page.get_by_role("row").filter(has_text=TITLE)
    expect(row).to_contain_text("Department Head approval")
    expect(row).to_contain_text("Pat Requester")
    web.screenshot(page, "new-account-request_inbox_desktop")
    row.get_by_role("button", name=f"Take Department Head approval for {TITLE}").click()
    expect(page.locator(".flash.success")).to_have_text(f"You took Department Head approval for {TITLE}.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Department Head approval")
    expect(page.locator(".card")).to_contain_text("Status: taken by Dana Parks-Head")
    expect(page.locator("dl.record")).to_contain_text(NAME)
    expect(page.get_by_role("radio", name="Approve")).to_be_visible()
    web.screenshot(page, "new-account-request_task_desktop")
    page.get_by_role("radio", name="Approve").check()
    page.get_by_label(COMMENT_LABEL).fill("Parks needs its own channel for program news.")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash.success")).to_have_text(
        f"Department Head approval done for {TITLE}. "
        "It now waits for: Communications Manager written approval (Communications Manager)."
    )

    # The Communications Manager, on a phone.
    phone = web.as_user("comms_manager", PHONE)
    web.open_inbox(phone, "Available to me")
    row = phone.get_by_role("row").filter(has_text=TITLE)
    expect(row).to_contain_text("Communications Manager written approval")
    assert web.overflow(phone) == 0, web.wider_than_window(phone)
    web.screenshot(phone, "new-account-request_inbox_phone")
    row.get_by_role("button", name=re.compile("^Take")).click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Communications Manager written approval")
    decisions = phone.locator("ol.timeline")
    expect(decisions).to_contain_text("Approved · Department Head approval")
    expect(decisions).to_contain_text("Dana Parks-Head (Department Head)")
    expect(decisions).to_contain_text("Parks needs its own channel for program news.")
    assert web.overflow(phone) == 0, web.wider_than_window(phone)
    web.screenshot(phone, "new-account-request_task_phone")
    phone.get_by_role("radio", name="Approve").check()
    phone.get_by_label(COMMENT_LABEL).fill("Approved in writing; follow the style guide.")
    phone.get_by_role("button", name="Submit").click()
    expect(phone.locator(".flash.success")).to_have_text(
        f"Communications Manager written approval done for {TITLE}. "
        "It now waits for: Set up the account and confirm (Requester)."
    )

    # Back to the requester: the set-up is assigned to them, never pooled.
    web.log_out(page)
    web.log_in(page, "requester")
    row = page.get_by_role("row").filter(has_text=TITLE)
    expect(row).to_contain_text("Set up the account and confirm")
    row.get_by_role("link", name="Open Set up the account and confirm").click()
    page.get_by_label("Account address").fill("https://facebook.com/wspparks")
    page.get_by_label("Clearly marked as belonging to the City").check()
    page.get_by_label("Links to the official City website").check()
    page.get_by_label("Displays or links to the public notice").check()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash.success")).to_have_text(
        f"Set up the account and confirm done for {TITLE}. The request is completed: approved."
    )
    expect(page.locator("p.empty")).to_contain_text("Nothing is assigned to you.")

    # The registry lists the account, its manager and who approved them.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Registry").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=NAME, exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Facebook")
    expect(row).to_contain_text("Parks and Recreation")
    expect(row).to_contain_text("active")
    expect(row.get_by_role("cell").nth(5)).to_contain_text(
        re.compile(r"Pat Requester \(Chris Communications \(Communications Manager\), \w{3} \d+, \d{4}\)")
    )
    web.screenshot(page, "new-account-request_registry_desktop")

    # The request's page: completed and approved, who decided what, and the diagram drawn by bpmn-js.
    row.get_by_role("link", name="request #1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{TITLE} #1")
    expect(page.locator(".lede .badge")).to_have_text(["completed", "approved"])
    expect(page.get_by_role("heading", name="Waiting for")).to_have_count(0)
    items = history_items(page)
    expect(items).to_have_count(6)
    for index, texts in enumerate(
        [
            ("Submitted the request", "Pat Requester (Requester)"),
            ("Took the task · Department Head approval", "Dana Parks-Head (Department Head)"),
            (
                "Approved · Department Head approval",
                "Dana Parks-Head (Department Head)",
                "Parks needs its own channel for program news.",
            ),
            (
                "Took the task · Communications Manager written approval",
                "Chris Communications (Communications Manager)",
            ),
            (
                "Approved · Communications Manager written approval",
                "Chris Communications (Communications Manager)",
                "Approved in writing; follow the style guide.",
            ),
            ("Confirmed the set-up · Set up the account and confirm", "Pat Requester (Requester)"),
        ]
    ):
        for text in texts:
            expect(items.nth(index)).to_contain_text(text)
    expect(page.get_by_role("region", name="Record")).to_contain_text("https://facebook.com/wspparks")
    diagram = page.locator("#diagram")
    expect(diagram).to_have_attribute("data-rendered", "true")
    expect(diagram.locator(".bjs-powered-by")).to_be_visible()
    for step in ("department_head_review", "communications_review", "confirm_setup"):
        expect(diagram.locator(f'.djs-element.cf-done[data-element-id="{step}"]')).to_have_count(1)
    expect(diagram.locator(".djs-element.cf-current")).to_have_count(0)
    expect(page.locator("#diagram-status")).to_have_text("")
    assert web.console_errors(page) == []
    web.screenshot(page, "new-account-request_instance_desktop")
    diagram.screenshot(path=web.screenshot_path("new-account-request_diagram_desktop"))

    # The same pages on the Communications Manager's phone: nothing wider than the screen.
    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Registry").click()
    expect(phone.get_by_role("link", name=NAME, exact=True)).to_be_visible()
    assert web.overflow(phone) == 0, web.wider_than_window(phone)
    web.screenshot(phone, "new-account-request_registry_phone")
    phone.goto(page.url)
    expect(phone.locator("#diagram")).to_have_attribute("data-rendered", "true")
    assert web.overflow(phone) == 0, web.wider_than_window(phone)
    web.screenshot(phone, "new-account-request_instance_phone")


def test_a_rejection_needs_a_written_reason_and_the_requester_reads_it_in_the_browser(web):
    """Reject without a comment: error by the field, still waiting; with a reason: the requester sees it."""
    requester = file_parks_request(web)
    request_url = requester.url

    head = web.as_user("parks_head")
    web.open_inbox(head, "Available to me")
    head.get_by_role("row").filter(has_text=TITLE).get_by_role("link", name="Department Head approval").click()
    head.get_by_role("radio", name="Reject").check()
    head.get_by_role("button", name="Submit").click()

    comment = head.get_by_label(COMMENT_LABEL)
    expect(head.locator("#comment-error")).to_have_text("Write the reasons to reject the request.")
    expect(comment).to_have_attribute("aria-invalid", "true")
    expect(comment).to_have_attribute("aria-describedby", "comment-error")
    expect(head.get_by_role("alert")).to_contain_text("nothing was saved")
    expect(head.get_by_role("radio", name="Reject")).to_be_checked()
    web.screenshot(head, "rejection_missing-reason_desktop")

    # Nothing happened: the task still waits in the inbox, and the requester's page still says so.
    web.open_inbox(head, "Available to me")
    expect(head.get_by_role("row").filter(has_text=TITLE)).to_contain_text("Department Head approval")
    requester.reload()
    expect(requester.locator(".lede .badge")).to_have_text("running")
    expect(requester.get_by_role("heading", name="Waiting for")).to_be_visible()
    expect(history_items(requester)).to_have_count(1)

    reason = "Parks already posts on the City's page; one channel is easier for residents."
    head.get_by_role("row").filter(has_text=TITLE).get_by_role("link", name="Department Head approval").click()
    head.get_by_role("radio", name="Reject").check()
    head.get_by_label(COMMENT_LABEL).fill(reason)
    head.get_by_role("button", name="Submit").click()
    expect(head.locator(".flash.success")).to_have_text(
        f"Department Head approval done for {TITLE}. The request is completed: rejected."
    )
    web.open_inbox(head, "Available to me")
    expect(head.locator("p.empty")).to_contain_text("Nothing is waiting for your roles.")

    requester.goto(request_url)
    expect(requester.locator(".lede .badge")).to_have_text(["completed", "rejected"])
    expect(requester.get_by_role("heading", name="Waiting for")).to_have_count(0)
    rejection = history_items(requester).filter(has_text="Rejected")
    expect(rejection).to_contain_text("Rejected · Department Head approval")
    expect(rejection).to_contain_text("Dana Parks-Head (Department Head)")
    expect(rejection.locator("blockquote")).to_have_text(reason)
    expect(requester.locator("#diagram")).to_have_attribute("data-rendered", "true")
    web.screenshot(requester, "rejection_instance_desktop")
