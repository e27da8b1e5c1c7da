"""Staff pages in Chromium: a person found by typing their name, the request's diagram at a readable size with
its path marked, the inbox opening where the work is, and the help page, on a desktop and a phone."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE

# The diagram's zoom, read from the SVG viewport's transform ("matrix(a 0 0 d x y)": a is the scale).
PERSON = "Pat Requester, Parks and Recreation"
ZOOM = """() => {
    const viewport = document.querySelector('#diagram svg .viewport');
    const matrix = viewport.transform.baseVal.consolidate();
    return Math.round((matrix ? matrix.matrix.a : 1) * 100) / 100;
}"""


def file_manager_change(page: Page) -> str:
    """Add Pat Requester as a manager, found by typing part of their name; returns the request page's address."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
    page.get_by_role("link", name="Add or remove a social media manager").click()
    page.get_by_label("Account").select_option(index=1)
    page.get_by_label("Add as a manager").check()
    page.get_by_label("Find a person by name").fill("reques")
    person = page.get_by_label("The person", exact=True)
    visible = person.evaluate("list => [...list.options].filter(o => !o.hidden && o.value).map(o => o.text)")
    assert visible == [PERSON], visible
    person.select_option(label=PERSON)
    page.get_by_label("Reason").fill("Covers the events calendar.")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator(".flash.success")).to_contain_text("was submitted")
    return page.url


def test_a_person_is_found_by_name_and_the_diagram_is_readable_with_its_path_marked(web):
    requester = web.as_user("requester")
    request_url = file_manager_change(requester)
    expect(requester.get_by_role("heading", level=1)).to_contain_text("Add Pat Requester as manager of")
    expect(requester.locator("#diagram")).to_have_attribute("data-rendered", "true")
    assert requester.evaluate(ZOOM) == 1  # actual size, not shrunk to fit
    assert requester.locator("#diagram .djs-connection.cf-taken").count() >= 1
    assert requester.locator("#diagram .djs-shape.cf-current").count() == 1
    web.screenshot(requester, "staff_request-diagram_desktop")
    requester.get_by_role("button", name="Fit the whole diagram").click()
    assert requester.evaluate(ZOOM) < 1
    requester.get_by_role("button", name="Actual size").click()
    assert requester.evaluate(ZOOM) == 1
    assert web.console_errors(requester) == []

    # The head, on a phone: the inbox opens on the task waiting to be taken, and counts it in words.
    head = web.as_user("parks_head", PHONE)
    head.goto(re.sub(r"/instances/.*", "/inbox", request_url))
    nav = head.get_by_role("navigation", name="Main")
    expect(nav).to_contain_text("0 assigned to you · 1 you may take")
    expect(head.get_by_role("navigation", name="Inbox views").locator("[aria-current=page]")).to_contain_text(
        "Available to me"
    )
    head.get_by_role("row").filter(has_text="Add Pat Requester").get_by_role("link").first.click()
    record = head.get_by_role("region", name="The request").locator("dl.record")
    expect(record.locator("dt", has_text="The person").locator("+ dd")).to_have_text("Pat Requester")
    assert web.overflow(head) == 0, web.wider_than_window(head)
    web.screenshot(head, "staff_manager-change-review_phone")


def test_the_help_page_is_linked_from_every_staff_page(web):
    for viewport, name in ((None, "desktop"), (PHONE, "phone")):
        page = web.as_user("records", viewport) if viewport else web.as_user("records")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Help").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Help")
        contacts = page.get_by_role("region", name="Whom to ask").get_by_role("row")
        expect(contacts.filter(has_text="City Attorney")).to_contain_text("Jordan Attorney")
        assert web.overflow(page) == 0, web.wider_than_window(page)
        web.screenshot(page, f"staff_help_{name}")
        assert web.console_errors(page) == []
