"""Removing content in the browser: the manager files the record with a real screenshot upload, the screenshot
arrives by e-mail at the Communications Manager's address, then the manager confirms the deletion."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import DESKTOP, PHONE

ACCOUNT = "Facebook: City of West St. Paul"
TITLE = f"Removal on {ACCOUNT} (content by J. Doe)"
COMMS_ADDRESS = "comms_manager@wspmn.example"
CONTENT = "Buy cheap watches at example.biz!!!"
LINK = "https://facebook.com/cityofwsp/posts/1"
RATIONALE = "A commercial promotion unrelated to City services."
# In the policy's order, which is how the record lists them whatever order they were ticked in.
CATEGORIES = ("Material unrelated to City government or services", "Commercial promotions or spam")
WIDTH, HEIGHT = 480, 200


def screenshot_file(tmp_path: Path) -> Path:
    """A real PNG, drawn with Pillow like a captured comment, saved where the file chooser will pick it."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (245, 246, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 16, WIDTH - 16, HEIGHT - 16), outline=(59, 89, 152), width=3)
    draw.text((32, 36), "J. Doe", fill=(59, 89, 152))
    draw.text((32, 72), CONTENT, fill=(20, 20, 20))
    path = tmp_path / "removed-comment.png"
    image.save(path, format="PNG")
    return path


def fill_removal(page: Page, screenshot: Path) -> None:
    """From the "New request" page, fill the removal record's start form as the manager would, and submit it."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
    page.get_by_role("link", name="Remove content (with a screenshot)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove content (with a screenshot)")
    page.get_by_role("radio", name=ACCOUNT).check()
    page.get_by_role("radio", name="Published, then removed").check()
    page.get_by_label("Link to the content").fill(LINK)
    page.get_by_label("Author's public name").fill("J. Doe")
    page.get_by_label("The content's text, as posted").fill(CONTENT)
    for category in reversed(CATEGORIES):
        page.get_by_role("checkbox", name=category).check()
    page.get_by_label("Rationale").fill(RATIONALE)
    page.get_by_label("Screenshot of the content").set_input_files(screenshot)
    page.get_by_role("button", name="Submit request").click()


def the_screenshot(page: Page) -> Locator:
    """The record's screenshot image, found by its alternative text."""
    return page.get_by_role("img", name=re.compile(r"^Screenshot of the content \(request #\d+\)$"))


def assert_image_loaded(page: Page, image: Locator) -> None:
    """The browser fetched and decoded the image: it has the uploaded picture's real size."""
    expect(image).to_be_visible()
    image.evaluate("img => img.decode()")  # rejects if the image cannot be loaded or decoded
    size = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size == [True, WIDTH, HEIGHT]


def record_value(page: Page, label: str) -> Locator:
    """The value of one row of the request page's record."""
    term = page.get_by_role("region", name="Record").locator("dt", has_text=label)
    return term.locator("xpath=following-sibling::dd[1]")


def test_a_removal_with_an_uploaded_screenshot_is_mailed_to_comms_then_deleted_in_the_browser(mail_web, tmp_path):
    """File with a real PNG; the page shows it; the mail with the same bytes arrives; deleting completes it."""
    web = mail_web
    screenshot = screenshot_file(tmp_path)
    uploaded = screenshot.read_bytes()

    manager = web.as_user("sm_manager")
    fill_removal(manager, screenshot)
    expect(manager.locator(".flash.success")).to_have_text(
        f"Your request {TITLE} was submitted. It now waits for: Delete the content and confirm (Social Media Manager)."
    )
    expect(manager.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^{re.escape(TITLE)} #\d+$"))
    request_url = manager.url
    instance_id = re.search(r"(\d+)$", manager.get_by_role("heading", level=1).inner_text()).group(1)
    expect(manager.locator(".lede .badge")).to_have_text("running")
    expect(record_value(manager, "Removal categories")).to_have_text(", ".join(CATEGORIES))
    expect(record_value(manager, "Rationale")).to_have_text(RATIONALE)
    expect(record_value(manager, "The content's text, as posted")).to_have_text(CONTENT)
    image = the_screenshot(manager)
    assert_image_loaded(manager, image)
    # What the page serves is the upload, byte for byte (the request carries the page's login cookie).
    served = manager.request.get(image.get_attribute("src"))
    assert served.ok and served.headers["content-type"] == "image/png"
    assert hashlib.sha256(served.body()).hexdigest() == hashlib.sha256(uploaded).hexdigest()
    history = manager.get_by_role("region", name="History").get_by_role("listitem")
    expect(history.nth(0)).to_contain_text("Submitted the request")
    expect(history.nth(1)).to_contain_text(
        f"E-mail queued for sending · “Removal record {instance_id}: screenshot before deleting content on {ACCOUNT}”"
    )
    expect(manager.locator("#diagram")).to_have_attribute("data-rendered", "true")
    assert web.console_errors(manager) == []
    web.screenshot(manager, "content-removal_filed_desktop")

    # The screenshot reaches the Communications Manager while the deletion still waits for the manager.
    [mail] = web.mail.to(COMMS_ADDRESS)
    assert mail["To"] == COMMS_ADDRESS
    assert mail["Subject"] == f"Removal record {instance_id}: screenshot before deleting content on {ACCOUNT}"
    body = mail.get_body(("plain",)).get_content()
    for words in (CONTENT, LINK, RATIONALE, "J. Doe", "Alex Moderator", *CATEGORIES):
        assert words in body
    [attached] = list(mail.iter_attachments())
    assert (attached.get_content_type(), attached.get_filename()) == ("image/png", "removed-comment.png")
    assert hashlib.sha256(attached.get_content()).hexdigest() == hashlib.sha256(uploaded).hexdigest()
    manager.reload()
    expect(manager.get_by_role("heading", name="Waiting for")).to_be_visible()
    expect(manager.locator(".card").filter(has_text="Waiting for")).to_contain_text(
        "Delete the content and confirm · Social Media Manager"
    )

    # The deletion is assigned to the manager who filed the record.
    web.open_inbox(manager, "Assigned to me")
    row = manager.get_by_role("row").filter(has_text=TITLE)
    expect(row).to_contain_text("Delete the content and confirm")
    row.get_by_role("link", name="Open Delete the content and confirm").click()
    expect(manager.get_by_role("heading", level=1)).to_have_text("Delete the content and confirm")
    assert_image_loaded(manager, the_screenshot(manager))
    web.screenshot(manager, "content-removal_delete-task_desktop")
    manager.get_by_label("The content is deleted").check()
    manager.get_by_label("An explanation was posted in its place").check()
    manager.get_by_role("button", name="Submit").click()
    expect(manager.locator(".flash.success")).to_have_text(
        f"Delete the content and confirm done for {TITLE}. The request is completed: removed."
    )
    expect(manager.locator("p.empty")).to_contain_text("Nothing is assigned to you.")

    manager.goto(request_url)
    expect(manager.locator(".lede .badge")).to_have_text(["completed", "removed"])
    expect(manager.get_by_role("heading", name="Waiting for")).to_have_count(0)
    expect(history.filter(has_text="Deleted the content")).to_contain_text(
        "Deleted the content · Delete the content and confirm"
    )
    expect(record_value(manager, "The content is deleted")).to_have_text("Yes")
    expect(manager.locator('#diagram .djs-element.cf-done[data-element-id="confirm_deletion"]')).to_have_count(1)
    assert web.console_errors(manager) == []
    web.screenshot(manager, "content-removal_completed_desktop")

    # The Communications Manager finds the record among all requests and sees the screenshot, on a phone too.
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        comms = web.as_user("comms_manager", viewport)
        comms.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
        row = comms.get_by_role("row").filter(has=comms.get_by_role("link", name=TITLE))
        expect(row).to_contain_text("Alex Moderator")
        expect(row.locator(".badge")).to_have_text(["completed", "removed"])
        row.get_by_role("link", name=TITLE).click()
        expect(comms.get_by_role("heading", level=1)).to_have_text(f"{TITLE} #{instance_id}")
        assert_image_loaded(comms, the_screenshot(comms))
        expect(record_value(comms, "Removal categories")).to_have_text(", ".join(CATEGORIES))
        expect(comms.locator("#diagram")).to_have_attribute("data-rendered", "true")
        assert web.console_errors(comms) == []
        assert web.overflow(comms) == 0, web.wider_than_window(comms)
        web.screenshot(comms, f"content-removal_record-comms_{name}")
    assert len(web.mail.messages) == 1  # one letter, nothing more, for the whole removal


def test_a_text_file_named_png_is_refused_next_to_the_screenshot_field_and_nothing_is_filed(mail_web, tmp_path):
    """A fake .png: the reason by the screenshot field, the typed fields kept, no request, no mail."""
    web = mail_web
    fake = tmp_path / "comment.png"
    fake.write_text("This is a text file, not a screenshot.\n")

    manager = web.as_user("sm_manager")
    manager.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(manager.locator("p.empty")).to_have_text("No requests to show.")
    fill_removal(manager, fake)

    expect(manager.get_by_role("heading", level=1)).to_have_text("Remove content (with a screenshot)")
    expect(manager.get_by_role("alert")).to_contain_text("nothing was saved")
    field = manager.get_by_label("Screenshot of the content")
    error = manager.locator("#screenshot-error")
    expect(error).to_have_text("This file is not an image. Upload a screenshot saved as PNG, JPEG or WebP.")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", re.compile(r"\bscreenshot-error\b"))
    # The message sits with the field it is about, not somewhere else on the page.
    expect(manager.locator(".field").filter(has=field)).to_contain_text("This file is not an image.")
    # What was typed is still there; only the file has to be chosen again.
    expect(manager.get_by_label("Author's public name")).to_have_value("J. Doe")
    expect(manager.get_by_label("Rationale")).to_have_value(RATIONALE)
    for category in CATEGORIES:
        expect(manager.get_by_role("checkbox", name=category)).to_be_checked()
    expect(manager.get_by_role("radio", name=ACCOUNT)).to_be_checked()
    # The refused form comes back as a 400 page (Chromium logs that status too); nothing else went wrong.
    form_url = manager.url
    assert sorted(web.console_errors(manager)) == [
        f"400 POST {form_url}",
        f"Failed to load resource: the server responded with a status of 400 (BAD REQUEST) at {form_url}",
    ]
    web.screenshot(manager, "content-removal_refused-upload_desktop")

    manager.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(manager.locator("p.empty")).to_have_text("No requests to show.")
    web.open_inbox(manager, "Assigned to me")
    expect(manager.locator("p.empty")).to_contain_text("Nothing is assigned to you.")
    # One pass of the sender now: had anything been queued, it would be sent by the time this returns.
    assert web.mail.deliver_now().sent == 0
    assert web.mail.messages == []
