"""The task page works with the keyboard alone (Tab, Space, Enter), and the focused control is visibly marked."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

TITLE = 'Facebook account "West St. Paul Parks"'
# Far more than the page's controls before the form: a control that is never reached fails, it is not skipped.
MAX_TABS = 40


def tab_to(page: Page, target: Locator) -> int:
    """Press Tab until the target has the focus; returns how many presses it took."""
    for presses in range(1, MAX_TABS + 1):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return presses
    raise AssertionError(f"{target} was not reached with {MAX_TABS} presses of Tab")


def assert_focus_visible(target: Locator) -> None:
    """The focused control matches :focus-visible and draws an outline that can be seen."""
    expect(target).to_be_focused()
    style = target.evaluate("""element => {
        const s = getComputedStyle(element);
        return {visible: element.matches(':focus-visible'), style: s.outlineStyle, width: s.outlineWidth};
    }""")
    assert style["visible"], style
    assert style["style"] != "none" and style["width"] != "0px", style


def test_a_reviewer_takes_and_approves_a_task_with_the_keyboard_alone(web):
    """Skip link, Take, the decision radios, the comment and Submit: all by Tab, Space and Enter, focus visible."""
    requester = web.as_user("requester")
    web.file_account_request(
        requester,
        name="West St. Paul Parks",
        department="Parks and Recreation",
        purpose="Program announcements.",
        audience="Residents.",
        managers="requester",
    )
    expect(requester.locator(".flash.success")).to_contain_text("was submitted")

    page = web.as_user("parks_head")
    web.open_inbox(page, "Available to me")
    page.get_by_role("row").filter(has_text=TITLE).get_by_role("link", name="Department Head approval").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Department Head approval")

    # The first Tab on a new page reaches the skip link; Enter jumps past the navigation to the content.
    skip = page.get_by_role("link", name="Skip to content")
    page.keyboard.press("Tab")
    assert_focus_visible(skip)
    page.keyboard.press("Enter")
    take = page.get_by_role("button", name="Take this task")
    tab_to(page, take)
    assert_focus_visible(take)
    page.keyboard.press("Enter")
    expect(page.locator(".flash.success")).to_have_text(f"You took Department Head approval for {TITLE}.")

    approve = page.get_by_role("radio", name="Approve")
    tab_to(page, approve)
    assert_focus_visible(approve)
    web.screenshot(page, "keyboard_task_radio-focused_desktop")
    page.keyboard.press("Space")
    expect(approve).to_be_checked()

    comment = page.get_by_label("Written comment (required to reject or return)")
    page.keyboard.press("Tab")
    assert_focus_visible(comment)
    page.keyboard.type("Approved from the keyboard.")

    submit = page.get_by_role("button", name="Submit")
    page.keyboard.press("Tab")
    assert_focus_visible(submit)
    web.screenshot(page, "keyboard_task_submit-focused_desktop")
    page.keyboard.press("Enter")
    expect(page.locator(".flash.success")).to_have_text(
        f"Department Head approval done for {TITLE}. "
        "It now waits for: Communications Manager written approval (Communications Manager)."
    )

    requester.reload()
    expect(
        requester.get_by_role("region", name="History").get_by_role("listitem").filter(has_text="Approved")
    ).to_contain_text("Approved from the keyboard.")
