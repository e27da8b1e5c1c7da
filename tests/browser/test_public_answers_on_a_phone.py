"""On a phone, a member of the public reads how long the City takes to answer, opens the policy text they dispute
above the dispute form, and, after mistyping a tracking code, finds the lookup again with the error by the field."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import PHONE


def test_on_a_phone_the_dispute_form_opens_the_policy_text_and_says_how_long_the_answer_takes(web):
    page = web.new_page(PHONE)
    page.goto("/public/dispute")
    expect(page.get_by_text("The City acknowledges a dispute within 1 business day")).to_be_visible()
    policy = page.locator("details#policy-text")
    expect(policy).not_to_have_attribute("open", "")
    policy.get_by_text("Read the policy text you may dispute").click()
    expect(policy.get_by_text("By accessing, using or posting to a City social media page")).to_be_visible()
    assert web.overflow(page) <= 0, web.wider_than_window(page)
    web.screenshot(page, "public-dispute-policy-text-phone")
    assert web.console_errors(page) == []


def test_on_a_phone_a_mistyped_code_brings_the_lookup_back_with_the_error_by_the_field(web):
    page = web.new_page(PHONE)
    page.goto("/public/requests")
    page.get_by_label("Tracking code").fill("K7QM-4XPA-9RTD-2WEH-5NBC")
    page.get_by_role("button", name="Show my request").click()
    field = page.get_by_label("Tracking code")
    expect(field).to_have_value("K7QM-4XPA-9RTD-2WEH-5NBC")
    expect(page.locator("#code-error")).to_contain_text("No request has this tracking code.")
    expect(page.get_by_role("button", name="Show my request")).to_be_visible()
    assert web.overflow(page) <= 0, web.wider_than_window(page)
    web.screenshot(page, "public-lookup-not-found-phone")
