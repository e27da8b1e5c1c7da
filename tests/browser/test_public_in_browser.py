"""The public side in the browser: a member of the public, not logged in, appeals a removal or disputes the policy,
gets a receipt by e-mail with a tracking code, and follows the request on its status page until the City's written
response appears there; the staff answer from the inbox. The status page shows the public facts only. On a phone,
with the keyboard, and to a screen reader."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from engine.procedures.content_removal import CATEGORIES, PLAIN_CATEGORIES
from tests.browser.conftest import PHONE

# Crockford's base32 in five groups of four: what the confirmation, the receipt and the status page show.
TRACKING_CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){4}")
# The form controls in Chromium's accessibility tree.
FIELD_ROLES = {"textbox", "combobox", "checkbox", "radio", "listbox", "spinbutton"}
# Far more than the page's controls before the submit button: a control never reached fails, it is not skipped.
MAX_TABS = 40

APPELLANT = "jo.public@example.net"
ACCOUNT = "Facebook: West St. Paul Police Department"
APPEAL_TITLE = f"Appeal by Jo Public about {ACCOUNT}"
COMMENT = "When will the crosswalk on Robert Street be repainted? It is barely visible at night."
EXPLANATION = "My comment asked about a City service. It is not spam, not a threat and not unrelated to the City."
APPEAL_RESPONSE = "Your comment asked about a City service and should not have been removed; it is reposted today."
APPEAL_FIELDS = {
    "Your name": "Jo Public",
    "Your e-mail address": APPELLANT,
    "Your comment, as you remember it": COMMENT,
    "Why your comment does not fall into any of the removal categories": EXPLANATION,
}
ACCOUNT_LABEL = "The City account your comment was on"

DISPUTANT = "sam.public@example.net"
SECTION = "Rules of Use, the removal categories"
DISPUTE_TITLE = f'Dispute by Sam Public of "{SECTION}"'
BASIS = "The unrelated-material category lets the City remove criticism that the First Amendment protects."
ADVICE = "PRIVILEGED-7Q3: the unrelated-material category is defensible for a limited public forum."
DISPUTE_RESPONSE = "The City keeps the removal categories: its pages are a limited public forum about City matters."
DISPUTE_FIELDS = {
    "Your name": "Sam Public",
    "Your e-mail address": DISPUTANT,
    "The portion of the policy you dispute": SECTION,
    "Why you believe that portion is not lawful": BASIS,
}

# Who worked on the requests (display names and usernames) and the words of the staff history: none may show on
# the public status page. The City's written response is shown as sent, signed by the City.
STAFF = ("Chris Communications", "comms_manager", "Jordan Attorney", "Alex Moderator", "Morgan Officer")
STAFF_HISTORY = (
    "Submitted the request",
    "Took the task",
    "Gave the task back",
    "Reinstated the comment",
    "Advised: no change to the policy",
    "Sent the written response",
    "E-mail queued for sending",
    "Review the appeal and write the response",
    "Restore or repost the content",
    "Consult the City Attorney",
    "Write the City's response",
    "member of the public",
)


def file_publicly(page: Page, kind: str, fields: dict[str, str], account: str | None = None) -> str:
    """From the public index, open the appeal or dispute form, fill it as a member of the public would and send
    it; returns the tracking code the confirmation shows."""
    page.goto("/public/")
    title = {"appeal": "Appeal the removal of your comment", "dispute": "Dispute the City's Social Media Policy"}[kind]
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    if account is not None:
        page.get_by_label(ACCOUNT_LABEL).select_option(label=account)
    page.get_by_role("button", name=f"Send my {kind}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"We received your {kind}")
    code = page.locator(".received .code").inner_text().strip()
    assert TRACKING_CODE.fullmatch(code), code
    return code


def text_of(letter: EmailMessage) -> str:
    """The plain text of a letter that arrived."""
    return letter.get_body(("plain",)).get_content()


def letter_with_subject(letters: list[EmailMessage], subject: str) -> EmailMessage:
    """The one letter with this subject."""
    [letter] = [letter for letter in letters if letter["Subject"] == subject]
    return letter


def status_path(receipt: EmailMessage, code: str) -> str:
    """The status page's link in the receipt, as a path on the live server (the link is under the City's URL)."""
    [link] = re.findall(r"https?://\S+/public/requests/\S+", text_of(receipt))
    assert link.endswith(f"/public/requests/{code}"), link
    return urlsplit(link).path


def current_step(page: Page, label: str) -> None:
    """The status page's steps mark this one, and only it, as the current step."""
    steps = page.get_by_role("list", name="Where it stands")
    expect(steps.get_by_role("listitem")).to_have_count(3)
    expect(steps.locator("[aria-current=step]")).to_have_count(1)
    expect(steps.locator("[aria-current=step] strong")).to_have_text(label)


def assert_public_facts_only(page: Page, *secrets: str) -> None:
    """Nothing of the staff (names, usernames, history) nor the given secrets in the page's text or its HTML."""
    shown, html = page.locator("body").inner_text(), page.content()
    leaked = [word for word in (*STAFF, *STAFF_HISTORY, *secrets) if word in shown or word in html]
    assert leaked == []
    # The City Attorney's username, as a word of its own ("City Attorney" in a letter is the City's words).
    assert not re.search(r"\battorney\b", shown + html)


def take_from_pool(web, page: Page, task: str, title: str) -> None:
    """From the "Available to me" inbox view, take the request's task; ends on the task's page."""
    web.open_inbox(page, "Available to me")
    row = page.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text(task)
    row.get_by_role("button", name=f"Take {task} for {title}").click()
    expect(page.locator(".flash.success")).to_have_text(f"You took {task} for {title}.")
    expect(page.get_by_role("heading", level=1)).to_have_text(task)


def announced(page: Page) -> dict[str, str]:
    """Each form control in Chromium's accessibility tree (what a screen reader reads): its id and its name."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        controls = {}
        for node in nodes:
            if node.get("ignored") or node.get("role", {}).get("value") not in FIELD_ROLES:
                continue
            described = cdp.send("DOM.describeNode", {"backendNodeId": node["backendDOMNodeId"]})["node"]
            attributes = dict(zip(described["attributes"][::2], described["attributes"][1::2], strict=True))
            controls[attributes.get("id", "")] = node.get("name", {}).get("value", "")
    finally:
        cdp.detach()
    return controls


def tab_stops(page: Page, until: str) -> list[str]:
    """Press Tab from the top of the page until the button named `until` has the focus; the id (or text) of
    every element the focus went to, in order."""
    page.locator("body").focus()
    stops = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.id, document.activeElement.tagName,"
            " (document.activeElement.textContent || '').trim()]"
        )
        stops.append(focused[0] or f"{focused[1].lower()}:{focused[2][:40]}")
        if focused[1] == "BUTTON" and focused[2] == until:
            return stops
    raise AssertionError(f'"{until}" was not reached with {MAX_TABS} presses of Tab: {stops}')


def refusal(url: str) -> list[str]:
    """What a refused appeal form leaves in the problems a page had: its 400, which Chromium logs too."""
    form = f"{url}/public/appeal"
    return [
        f"400 POST {form}",
        f"Failed to load resource: the server responded with a status of 400 (BAD REQUEST) at {form}",
    ]


def assert_landmarks(page: Page) -> None:
    """One h1, and the content in a main landmark."""
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    expect(page.get_by_role("main")).to_have_count(1)


def test_a_member_of_the_public_appeals_a_removal_and_reads_the_response_in_the_browser(mail_web):
    """The public files an appeal, follows it by the receipt's link; the manager reinstates; the response shows."""
    web = mail_web
    public = web.new_page()
    public.goto("/public/")
    expect(public.get_by_role("heading", level=1)).to_have_text("The City's social media: your rights")
    expect(public.get_by_role("button", name="Log out")).to_have_count(0)
    assert web.console_errors(public) == []
    web.screenshot(public, "public_index_desktop")

    # Beside the form, the removal categories in plain words with the policy's own words.
    public.get_by_role("link", name="Appeal the removal of your comment").click()
    categories = public.get_by_role("complementary", name="What may be removed").locator("ul.categories > li")
    expect(categories).to_have_count(len(CATEGORIES))
    for item, (code, words) in zip(categories.all(), CATEGORIES, strict=True):
        expect(item).to_contain_text(PLAIN_CATEGORIES[code])
        expect(item).to_contain_text(f"The policy's words: “{words}”")
    assert web.console_errors(public) == []
    web.screenshot(public, "public_appeal-form_desktop")

    code = file_publicly(public, "appeal", APPEAL_FIELDS, account=ACCOUNT)
    confirmation = public.get_by_role("status")
    expect(confirmation).to_contain_text(
        f"A receipt with the code and a copy of what you sent is on its way to {APPELLANT}."
    )
    sent = public.locator("dl.record")
    for value in (ACCOUNT, COMMENT, EXPLANATION, "Jo Public"):
        expect(sent).to_contain_text(value)
    expect(confirmation.get_by_role("link", name="the page where you can follow your appeal")).to_have_attribute(
        "href", f"/public/requests/{code}"
    )
    assert web.console_errors(public) == []
    web.screenshot(public, "public_appeal-received_desktop")

    # The receipt: the same code and the status page's link.
    [receipt] = web.mail.to(APPELLANT)
    assert receipt["Subject"] == "Receipt: your appeal of a removed comment"
    text = text_of(receipt)
    assert "Dear Jo Public," in text and f"Your tracking code: {code}" in text
    assert COMMENT in text and EXPLANATION in text and ACCOUNT in text
    status = status_path(receipt, code)

    public.goto(status)
    expect(public.get_by_role("heading", level=1)).to_have_text("Your appeal of a removed comment")
    expect(public.locator(".lede")).to_have_text(f"Tracking code {code}")
    current_step(public, "Received")
    expect(public.get_by_text("The City's written response will appear here once it is sent")).to_be_visible()
    assert web.console_errors(public) == []
    web.screenshot(public, "public_appeal-status-received_desktop")

    # The Communications Manager finds it in the inbox, marked as a web filing by a member of the public.
    comms = web.as_user("comms_manager")
    web.open_inbox(comms, "Available to me")
    row = comms.get_by_role("row").filter(has_text=APPEAL_TITLE)
    asked_by = row.locator("td[data-label='Asked by']")
    expect(asked_by).to_contain_text("Jo Public (member of the public)")
    expect(asked_by).to_contain_text("Received through the web")
    web.screenshot(comms, "public_appeal-inbox_desktop")
    row.get_by_role("link", name="Review the appeal and write the response").click()
    expect(comms.get_by_role("heading", level=1)).to_have_text("Review the appeal and write the response")
    expect(comms.locator(".lede")).to_contain_text("asked by Jo Public (member of the public)")
    expect(comms.locator(".lede")).to_contain_text("Received through the web")
    expect(comms.get_by_role("region", name="The request")).to_contain_text(EXPLANATION)
    comms.get_by_role("button", name="Take this task").click()
    expect(comms.locator(".flash.success")).to_have_text(
        f"You took Review the appeal and write the response for {APPEAL_TITLE}."
    )

    # Taken up by staff: the public sees it acknowledged, and nothing of who took it.
    public.reload()
    current_step(public, "Acknowledged")
    assert_public_facts_only(public)

    comms.get_by_role("radio", name="Reinstate the comment").check()
    comms.get_by_label("The body of the City's written response").fill(APPEAL_RESPONSE)
    comms.get_by_role("button", name="Preview the letter").click()
    expect(comms.locator(".letter-preview")).to_contain_text(APPEAL_RESPONSE)
    comms.get_by_role("button", name="Send this letter").click()
    expect(comms.locator(".flash.success")).to_contain_text(
        f"Review the appeal and write the response done for {APPEAL_TITLE}."
    )
    assert web.console_errors(comms) == []

    # The public reloads: responded, with the City's written response, and nothing of the staff.
    public.reload()
    current_step(public, "Responded")
    letter = public.get_by_role("heading", name="The City's written response")
    expect(letter).to_be_visible()
    expect(public.locator(".card.letter")).to_contain_text(APPEAL_RESPONSE)
    expect(public.locator(".card.letter")).to_contain_text("The City has decided to reinstate your comment.")
    assert_public_facts_only(public)
    assert web.console_errors(public) == []
    web.screenshot(public, "public_appeal-status-responded_desktop")

    # The same response arrives by mail.
    letters = web.mail.to(APPELLANT, count=2)
    response = letter_with_subject(letters, "Your appeal of a removed comment")
    assert APPEAL_RESPONSE in text_of(response) and "reinstate your comment" in text_of(response)
    assert [name for name in STAFF if name in response.as_string()] == []


def test_a_member_of_the_public_disputes_the_policy_and_never_sees_the_advice_in_the_browser(mail_web):
    """The public files a dispute, acknowledged at once; attorney advises, manager answers; the advice stays."""
    web = mail_web
    public = web.new_page()
    code = file_publicly(public, "dispute", DISPUTE_FIELDS)
    expect(public.locator("dl.record")).to_contain_text(BASIS)
    assert web.console_errors(public) == []
    web.screenshot(public, "public_dispute-received_desktop")

    # One letter at once: the acknowledgement, carrying the tracking code.
    letters = web.mail.to(DISPUTANT, count=1)
    receipt = acknowledgement = letter_with_subject(letters, "We received your dispute of the Social Media Policy")
    assert f"Your tracking code: {code}" in text_of(receipt)
    assert SECTION in text_of(acknowledgement)

    public.goto(status_path(receipt, code))
    expect(public.get_by_role("heading", level=1)).to_have_text("Your dispute of the City's Social Media Policy")
    current_step(public, "Acknowledged")
    assert web.console_errors(public) == []
    web.screenshot(public, "public_dispute-status-acknowledged_desktop")

    attorney = web.as_user("attorney")
    web.open_inbox(attorney, "Available to me")
    expect(attorney.get_by_role("row").filter(has_text=DISPUTE_TITLE)).to_contain_text(
        "Sam Public (member of the public)"
    )
    take_from_pool(web, attorney, "Consult the City Attorney", DISPUTE_TITLE)
    attorney.get_by_label("Advice").fill(ADVICE)
    attorney.get_by_role("radio", name="No change to the policy").check()
    attorney.get_by_role("button", name="Submit").click()
    expect(attorney.locator(".flash.success")).to_have_text(
        f"Consult the City Attorney done for {DISPUTE_TITLE}. "
        "It now waits for: Write the City's response (Communications Manager)."
    )

    # Advised, not yet answered: the public still waits, and learns nothing of the advice.
    public.reload()
    current_step(public, "Acknowledged")
    assert_public_facts_only(public, ADVICE)

    comms = web.as_user("comms_manager")
    take_from_pool(web, comms, "Write the City's response", DISPUTE_TITLE)
    expect(comms.get_by_role("region", name="The request")).to_contain_text(ADVICE)
    comms.get_by_label("The body of the City's written response").fill(DISPUTE_RESPONSE)
    comms.get_by_role("button", name="Preview the letter").click()
    comms.get_by_role("button", name="Send this letter").click()
    expect(comms.locator(".flash.success")).to_contain_text(f"Write the City's response done for {DISPUTE_TITLE}.")
    assert web.console_errors(attorney) == [] and web.console_errors(comms) == []

    public.reload()
    current_step(public, "Responded")
    expect(public.locator(".card.letter")).to_contain_text(DISPUTE_RESPONSE)
    expect(public.locator(".card.letter")).to_contain_text(SECTION)
    assert_public_facts_only(public, ADVICE, "PRIVILEGED", "defensible for a limited public forum")
    assert web.console_errors(public) == []
    web.screenshot(public, "public_dispute-status-responded_desktop")

    response = letter_with_subject(
        web.mail.to(DISPUTANT, count=2), "The City's response to your dispute of the Social Media Policy"
    )
    assert DISPUTE_RESPONSE in text_of(response) and ADVICE not in response.as_string()


def test_the_public_pages_fit_a_phone_and_tell_a_screen_reader_what_is_on_them(web):
    """On a phone: no sideways scrolling; named controls, an error summary, no honeypot to reach; status steps."""
    public = web.new_page(PHONE)
    public.goto("/public/")
    assert_landmarks(public)
    assert web.overflow(public) == 0, web.wider_than_window(public)
    web.screenshot(public, "public_index_phone")

    public.get_by_role("link", name="Appeal the removal of your comment").click()
    expect(public.get_by_role("heading", level=1)).to_have_text("Appeal the removal of your comment")
    assert_landmarks(public)
    assert web.overflow(public) == 0, web.wider_than_window(public)
    web.screenshot(public, "public_appeal-form_phone")

    # Every control a screen reader reaches has a name; the honeypot is in the page but not in the tree.
    assert announced(public) == {
        "appellant_name": "Your name",
        "appellant_email": "Your e-mail address",
        "account": ACCOUNT_LABEL,
        "comment_text": "Your comment, as you remember it",
        "explanation": "Why your comment does not fall into any of the removal categories",
        "removal_id": "Removal number, if the City gave you one",
    }
    honeypot = public.locator("input[name=website]")
    expect(honeypot).to_have_count(1)
    expect(public.get_by_role("textbox", name="Leave this field empty")).to_have_count(0)
    assert "Leave this field empty" not in public.locator("form").aria_snapshot()
    for label in (*APPEAL_FIELDS, ACCOUNT_LABEL, "Removal number, if the City gave you one"):
        expect(public.get_by_label(label, exact=True)).to_be_visible()

    # Tab goes from the top of the page through every field to the button, never to the honeypot.
    stops = tab_stops(public, "Send my appeal")
    fields = ["appellant_name", "appellant_email", "account", "comment_text", "explanation", "removal_id"]
    assert [stop for stop in stops if stop in fields] == fields, stops
    assert "website" not in stops, stops
    assert honeypot.evaluate("element => element !== document.activeElement")

    # An empty form comes back with a summary that names every missing field and links to it.
    public.get_by_role("button", name="Send my appeal").click()
    summary = public.get_by_role("alert")
    expect(summary).to_contain_text("Please correct the fields marked below; nothing was sent.")
    expect(summary.get_by_role("link")).to_have_text(
        [
            "Your name",
            "Your e-mail address",
            ACCOUNT_LABEL,
            "Your comment, as you remember it",
            "Why your comment does not fall into any of the removal categories",
        ]
    )
    expect(summary.get_by_role("link", name="Your name")).to_have_attribute("href", "#appellant_name")
    expect(public.get_by_label("Your name", exact=True)).to_have_attribute("aria-invalid", "true")
    assert_landmarks(public)
    assert web.overflow(public) == 0, web.wider_than_window(public)
    # The refused form comes back as a 400 page (Chromium logs that status too); nothing else went wrong.
    refused = refusal(web.url)
    assert sorted(web.console_errors(public)) == refused
    web.screenshot(public, "public_appeal-form-errors_phone")

    code = file_publicly(public, "appeal", APPEAL_FIELDS, account=ACCOUNT)
    assert_landmarks(public)
    assert web.overflow(public) == 0, web.wider_than_window(public)
    web.screenshot(public, "public_appeal-received_phone")

    public.get_by_role("link", name="the page where you can follow your appeal").click()
    expect(public.get_by_role("heading", level=1)).to_have_text("Your appeal of a removed comment")
    assert_landmarks(public)
    steps = public.get_by_role("list", name="Where it stands")
    assert steps.evaluate("element => element.tagName") == "OL"
    expect(steps.get_by_role("listitem")).to_have_count(3)
    expect(steps.get_by_role("listitem").nth(0)).to_have_attribute("aria-current", "step")
    for later in (1, 2):
        expect(steps.get_by_role("listitem").nth(later)).not_to_have_attribute("aria-current", re.compile(".*"))
    assert web.overflow(public) == 0, web.wider_than_window(public)
    web.screenshot(public, "public_appeal-status_phone")

    # The footer's other pages: the notice, and the lookup by a code typed carelessly (lower case, no dashes).
    public.get_by_role("navigation", name="For the public").get_by_role("link", name="Public notice").click()
    expect(public.get_by_role("heading", level=1)).to_have_text(
        "Public notice: the City of West St. Paul on social media"
    )
    assert_landmarks(public)
    assert web.overflow(public) == 0, web.wider_than_window(public)
    web.screenshot(public, "public_notice_phone")
    public.get_by_role("navigation", name="For the public").get_by_role("link", name="Follow your request").click()
    assert_landmarks(public)
    assert announced(public) == {"code": "Tracking code"}
    public.get_by_label("Tracking code").fill(code.replace("-", "").lower())
    public.get_by_role("button", name="Show my request").click()
    expect(public).to_have_url(f"{web.url}/public/requests/{code}")
    current_step(public, "Received")
    assert web.overflow(public) == 0, web.wider_than_window(public)
    assert sorted(web.console_errors(public)) == refused
