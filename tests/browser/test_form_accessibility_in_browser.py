"""What a screen reader is told about form fields: invalid only when the field has an error, and why."""

from __future__ import annotations

from playwright.sync_api import Page, expect

# The roles of the form controls in Chromium's accessibility tree.
FIELD_ROLES = {"textbox", "combobox", "checkbox", "radio", "listbox"}


def announced(page: Page) -> dict[str, bool]:
    """Each form field's accessible name and whether Chromium's accessibility tree marks it invalid.

    The accessibility tree is what assistive technology reads, so this is what a screen-reader user hears.
    """
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    fields = {}
    for node in nodes:
        if node.get("ignored") or node.get("role", {}).get("value") not in FIELD_ROLES:
            continue
        properties = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
        fields[node["name"]["value"]] = properties.get("invalid", "false") != "false"
    return fields


def test_fields_are_announced_invalid_only_after_an_error_on_the_login_form(web):
    """A fresh login form has no invalid field; after an empty submit both fields are invalid, with their message."""
    page = web.new_page()
    page.goto("/login")
    expect(page.get_by_label("Username")).to_be_visible()
    assert announced(page) == {"Username": False, "Password": False}

    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("nothing was saved")
    assert announced(page) == {"Username": True, "Password": True}
    expect(page.get_by_label("Username")).to_have_attribute("aria-describedby", "username-error")


def test_no_field_of_a_fresh_start_form_is_announced_invalid(web):
    """The new account request's form, before anything is typed, tells a screen reader nothing is wrong."""
    page = web.as_user("requester")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
    page.get_by_role("link", name="New social media account request").click()
    expect(page.get_by_label("Platform")).to_be_visible()
    fields = announced(page)
    assert "Proposed account name or address" in fields, fields
    assert [name for name, invalid in fields.items() if invalid] == []
