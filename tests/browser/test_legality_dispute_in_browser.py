"""A dispute of the policy's legality in the browser: entered from an e-mail, acknowledged by mail at once, the
City Attorney consulted in confidence, answered by mail, the amendment followed up; the advice stays privileged."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE

DISPUTANT = "sam.citizen@example.net"
SECTION = "Rules of Use, the removal categories"
TITLE = f'Dispute by Sam Citizen of "{SECTION}"'
BASIS = "The categories restrict speech the First Amendment protects in a public forum."
ADVICE = "PRIVILEGED: the categories survive Minnesota case law; a narrower spam clause would be safer."
# Pieces of the advice: not even part of it may show (an excerpt, a truncated preview).
ADVICE_FRAGMENTS = (ADVICE, "Minnesota case law", "narrower spam clause")
RESPONSE = "The City has reviewed the removal categories with its attorney and will narrow the spam category."
AMENDMENT = "Narrow the spam category to commercial solicitation; to the City Council on December 8."


def take_from_pool(web, page: Page, task: str) -> None:
    """From the "Available to me" inbox view, take the dispute's task; ends on the task's page."""
    web.open_inbox(page, "Available to me")
    row = page.get_by_role("row").filter(has_text=TITLE)
    expect(row).to_contain_text(task)
    row.get_by_role("button", name=f"Take {task} for {TITLE}").click()
    expect(page.locator(".flash.success")).to_have_text(f"You took {task} for {TITLE}.")
    expect(page.get_by_role("heading", level=1)).to_have_text(task)


def assert_no_advice(page: Page) -> None:
    """Nothing of the advice in what the page shows, nor anywhere in its HTML (hidden elements, attributes)."""
    shown, html = page.locator("body").inner_text(), page.content()
    assert [fragment for fragment in ADVICE_FRAGMENTS if fragment in shown or fragment in html] == []


def test_a_legality_dispute_is_acknowledged_answered_and_followed_up_in_the_browser(mail_web):
    """Parks staff enter an e-mailed dispute; attorney advises to amend; comms answers and follows up."""
    web = mail_web
    clerk = web.as_user("requester")
    clerk.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
    clerk.get_by_role("link", name="Dispute of the policy's legality").click()
    expect(clerk.get_by_role("heading", level=1)).to_have_text("Dispute of the policy's legality")
    clerk.get_by_label("Disputant's name").fill("Sam Citizen")
    clerk.get_by_label("Disputant's e-mail address").fill(DISPUTANT)
    clerk.get_by_label("The portion of the policy disputed").fill(SECTION)
    clerk.get_by_label("The basis of the dispute").fill(BASIS)
    clerk.get_by_role("radio", name="E-mail").check()
    clerk.get_by_role("button", name="Submit request").click()
    expect(clerk.locator(".flash.success")).to_have_text(
        f"Your request {TITLE} was submitted. It now waits for: Consult the City Attorney (City Attorney)."
    )
    expect(clerk.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^{re.escape(TITLE)} #\d+$"))
    request_url = clerk.url
    dispute_id = re.search(r"(\d+)$", clerk.get_by_role("heading", level=1).inner_text()).group(1)
    assert web.console_errors(clerk) == []
    web.screenshot(clerk, "legality-dispute_entered_desktop")

    # The acknowledgement goes out at once, before anyone has acted on the dispute.
    [acknowledgement] = web.mail.to(DISPUTANT)
    assert acknowledgement["To"] == DISPUTANT
    assert acknowledgement["Subject"] == "We received your dispute of the Social Media Policy"
    text = acknowledgement.get_body(("plain",)).get_content()
    assert "Dear Sam Citizen," in text and SECTION in text and "consult the City Attorney" in text
    assert f"Reference: dispute {dispute_id}" in text

    # The City Attorney takes the consultation from the pool and advises, in confidence, to amend.
    attorney = web.as_user("attorney")
    take_from_pool(web, attorney, "Consult the City Attorney")
    consultation_url = attorney.url
    expect(attorney.get_by_text("The advice is attorney-client privileged")).to_be_visible()
    expect(attorney.get_by_role("region", name="The request")).to_contain_text(BASIS)
    attorney.get_by_label("Advice").fill(ADVICE)
    attorney.get_by_role("radio", name="Amend the policy").check()
    web.screenshot(attorney, "legality-dispute_attorney-task_desktop")
    attorney.get_by_role("button", name="Submit").click()
    expect(attorney.locator(".flash.success")).to_have_text(
        f"Consult the City Attorney done for {TITLE}. "
        "It now waits for: Write the City's response (Communications Manager)."
    )
    assert web.console_errors(attorney) == []

    # The Communications Manager, on a phone, reads the advice and writes the response.
    comms = web.as_user("comms_manager", PHONE)
    take_from_pool(web, comms, "Write the City's response")
    expect(comms.get_by_role("region", name="The request")).to_contain_text(ADVICE)
    decisions = comms.locator("ol.timeline")
    expect(decisions).to_contain_text("Advised: amend the policy · Consult the City Attorney")
    expect(decisions).to_contain_text("Jordan Attorney (City Attorney)")
    comms.get_by_label("The body of the City's written response").fill(RESPONSE)
    assert web.overflow(comms) == 0, web.wider_than_window(comms)
    web.screenshot(comms, "legality-dispute_response-task_phone")
    comms.get_by_role("button", name="Preview the letter").click()
    expect(comms.locator(".letter-preview")).to_contain_text("Dear ")
    assert web.overflow(comms) == 0, web.wider_than_window(comms)
    web.screenshot(comms, "legality-dispute_letter-preview_phone")
    comms.get_by_role("button", name="Send this letter").click()
    expect(comms.locator(".flash.success")).to_have_text(
        f"Write the City's response done for {TITLE}. "
        "It now waits for: Follow up: amend the policy (Communications Manager)."
    )

    # The response letter: the City's words, and not a word of the advice.
    _acknowledgement, response = web.mail.to(DISPUTANT, count=2)
    assert response["Subject"] == "The City's response to your dispute of the Social Media Policy"
    text = response.get_body(("plain",)).get_content()
    assert RESPONSE in text and SECTION in text and f"Reference: dispute {dispute_id}" in text
    assert ADVICE not in response.as_string()

    # The recommendation to amend opened the follow-up; completing it ends the dispute.
    take_from_pool(web, comms, "Follow up: amend the policy")
    comms.get_by_label("The amendment").fill(AMENDMENT)
    comms.get_by_role("button", name="Submit").click()
    expect(comms.locator(".flash.success")).to_have_text(
        f"Follow up: amend the policy done for {TITLE}. The request is completed: responded."
    )
    assert web.console_errors(comms) == []

    clerk.goto(request_url)
    expect(clerk.locator(".lede .badge")).to_have_text(["completed", "responded"])
    expect(clerk.get_by_role("heading", name="Waiting for")).to_have_count(0)
    history = clerk.get_by_role("region", name="History").get_by_role("listitem")
    for step in (
        "Submitted the request",
        "E-mail queued for sending · “We received your dispute",
        # The recommendation is privileged like the advice: the clerk who entered the dispute reads neither.
        "Withheld: attorney-client privileged; only the City Attorney and the Communications Manager may read it"
        " · Consult the City Attorney",
        "Sent the written response · Write the City's response",
        "E-mail queued for sending · “The City's response to your dispute",
        "Proposed an amendment · Follow up: amend the policy",
    ):
        expect(history.filter(has_text=step)).to_have_count(1)
    expect(clerk.locator("#diagram")).to_have_attribute("data-rendered", "true")
    for step in ("attorney_consultation", "dispute_response", "policy_amendment"):
        expect(clerk.locator(f'#diagram .djs-element.cf-done[data-element-id="{step}"]')).to_have_count(1)
    assert len(web.mail.messages) == 2
    assert not [message for message in web.mail.messages if ADVICE in message.as_string()]

    # Privilege: whoever entered the dispute and the Records Officer read neither the advice nor the
    # recommendation given with it (Minn. Stat. 13.393): both are withheld, by name.
    records = web.as_user("records")
    for name, page in (("entered-by", clerk), ("records", records)):
        page.goto(request_url)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"{TITLE} #{dispute_id}")
        record = page.get_by_role("region", name="Record")
        expect(record).not_to_contain_text("Amend the policy")
        expect(record).to_contain_text("Withheld: attorney-client privileged")
        expect(record).to_contain_text(RESPONSE)
        assert_no_advice(page)
        assert web.console_errors(page) == []
        web.screenshot(page, f"legality-dispute_record-{name}_desktop")
        # The attorney's task page shows them the record too: nothing of the advice or the recommendation.
        page.goto(consultation_url)
        expect(page.get_by_role("heading", level=1)).to_have_text("Consult the City Attorney")
        expect(page.get_by_text("Status: completed")).to_be_visible()
        expect(page.get_by_role("region", name="The request")).not_to_contain_text("Amend the policy")
        assert_no_advice(page)
        assert web.console_errors(page) == []

    # The City Attorney and the Communications Manager read the advice on the record.
    for name, page in (("attorney", attorney), ("comms", comms)):
        page.goto(request_url)
        expect(page.get_by_role("region", name="Record")).to_contain_text(ADVICE)
        assert web.console_errors(page) == []
        web.screenshot(page, f"legality-dispute_record-{name}_{'phone' if page is comms else 'desktop'}")
    assert web.overflow(comms) == 0, web.wider_than_window(comms)
