"""A letter received on paper, answered on paper, in the browser: a clerk enters the appeal with a postal address,
the Communications Manager previews the City's letter and sends it, prints the PDF and records it mailed."""

from __future__ import annotations

import shutil
import subprocess

from playwright.sync_api import expect

from tests.browser.conftest import PHONE

TITLE = "Appeal by Jo Public about Facebook: City of West St. Paul"
REVIEW = "Review the appeal and write the response"
BODY = "Your comment asked when the library opens on Sundays, which is a question about City services."


def take(web, page, task: str) -> None:
    """Take the appeal's task from the "Available to me" inbox; ends on the task's page."""
    web.open_inbox(page, "Available to me")
    row = page.get_by_role("row").filter(has_text=TITLE).filter(has_text=task)
    row.get_by_role("button", name=f"Take {task} for {TITLE}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(task)


def test_a_letter_received_on_paper_is_answered_by_a_printed_letter_in_the_browser(mail_web, tmp_path):
    web = mail_web
    clerk = web.as_user("requester")
    clerk.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
    clerk.get_by_role("link", name="Appeal of a removal").click()
    expect(clerk.get_by_role("heading", level=1)).to_have_text("Appeal of a removal")
    clerk.get_by_label("Appellant's name").fill("Jo Public")
    clerk.get_by_label("Account the comment was on").select_option(label="Facebook: City of West St. Paul")
    clerk.get_by_label("The removed comment, as the appellant gives it").fill("When does the library open?")
    clerk.get_by_label("The appellant's explanation").fill("My comment asked about City services.")
    clerk.get_by_role("radio", name="Letter").check()
    clerk.get_by_role("button", name="Submit request").click()  # neither address: the form says what is missing
    expect(clerk.locator("#appellant_email-error")).to_contain_text("Give an e-mail address or a postal address")
    expect(clerk.locator("#appellant_address-error")).to_contain_text("Give an e-mail address or a postal address")
    clerk.get_by_label("Appellant's postal address").fill("12 Oak Street\nWest St. Paul, MN 55118")
    clerk.get_by_role("radio", name="Letter").check()
    clerk.get_by_role("button", name="Submit request").click()
    expect(clerk.locator(".flash.success")).to_contain_text(f"Your request {TITLE} was submitted.")
    expect(clerk.locator(".lede").first).to_contain_text("Jo Public (entered by")

    comms = web.as_user("comms_manager")
    take(web, comms, REVIEW)
    comms.get_by_role("radio", name="Uphold the removal").check()
    comms.get_by_label("The body of the City's written response").fill(f"Dear Jo,\n\n{BODY}")
    comms.get_by_role("button", name="Preview the letter").click()
    expect(comms.locator("#response_text-error")).to_contain_text('already begins "Dear Jo Public,"')
    comms.get_by_label("The body of the City's written response").fill(BODY)
    comms.get_by_role("button", name="Preview the letter").click()
    preview = comms.locator(".letter-preview")
    expect(preview).to_contain_text("By post, printed and mailed to: Jo Public, 12 Oak Street, West St. Paul, MN 55118")
    expect(preview.locator(".letter")).to_contain_text("Dear Jo Public,")
    expect(preview.locator(".letter")).to_contain_text(BODY)
    assert preview.locator(".letter").inner_text().count("Dear ") == 1
    # The refused preview answered 400, as a refused form does; nothing else failed.
    assert [e for e in web.console_errors(comms) if "/letter-preview" not in e] == []
    web.screenshot(comms, "letters_preview_desktop")
    comms.get_by_role("button", name="Send this letter").click()
    expect(comms.locator(".flash.success")).to_contain_text(f"{REVIEW} done for {TITLE}.")

    phone = web.as_user("comms_manager", PHONE)
    take(web, phone, "Mail the letter")
    link = phone.get_by_role("link", name="Your appeal of a removed comment (PDF)")
    expect(link).to_be_visible()
    assert web.overflow(phone) == 0, web.wider_than_window(phone)
    web.screenshot(phone, "letters_mail-the-letter_phone")
    pdf = phone.request.get(link.get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    (tmp_path / "letter.pdf").write_bytes(pdf.body())
    text = subprocess.run(
        [shutil.which("pdftotext") or "pdftotext", "-layout", str(tmp_path / "letter.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert text.count("Dear Jo Public,") == 1 and "12 Oak Street" in text and BODY[:40] in text
    phone.get_by_label("The letter is printed, signed, in its window envelope and in the post").check()
    phone.get_by_role("button", name="Submit").click()
    expect(phone.locator(".flash.success")).to_contain_text(f"Mail the letter done for {TITLE}.")
    assert web.console_errors(phone) == []
