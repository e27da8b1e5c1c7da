"""An administrator changes a procedure in the browser: a new step drawn in the editor, published as version 2.

New requests take the new step (its lane's role sees it in the inbox); a request filed before publishing
finishes on version 1. Then: a draft with a problem lists it at its element and cannot be published.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

BEFORE = "Parks Before"
AFTER = "Parks After"
STEP = "Budget check"
COMMENT_LABEL = "Written comment (required to reject or return)"
APPROVAL_COMMENT_LABEL = "Written comment (required to reject)"


def title(name: str) -> str:
    return f'Facebook account "{name}"'


def file_request(web, page: Page, name: str) -> None:
    web.file_account_request(
        page,
        name=name,
        department="Parks and Recreation",
        purpose="Program news for Parks.",
        audience="Residents.",
        managers="requester",
    )
    expect(page.locator(".flash.success")).to_contain_text(f"Your request {title(name)} was submitted.")


def on_screen(page: Page, x: float, y: float) -> tuple[float, float]:
    """Where a point of the diagram (BPMN coordinates) is on the screen, from the canvas's view box."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
        const viewbox = window.civicflowEditor.get('canvas').viewbox();
        const box = document.getElementById('canvas').getBoundingClientRect();
        return [box.left + (x - viewbox.x) * viewbox.scale, box.top + (y - viewbox.y) * viewbox.scale]; }""",
            [x, y],
        )
    )


def confirm_publishing(page: Page, note: str) -> None:
    """What publishing asks for: a note of what changed and why, and the tick that confirms it."""
    page.get_by_label("What changed and why").fill(note)
    page.get_by_label("Publish this draft: new requests follow it from now on").check()


def take_and_decide(
    web, page: Page, name: str, task: str, *, label: str = COMMENT_LABEL, comment: str = "Approved in writing."
) -> None:
    """From "Available to me": take the request's task, approve it in writing, submit."""
    web.open_inbox(page, "Available to me")
    row = page.get_by_role("row").filter(has_text=title(name)).filter(has_text=task)
    row.get_by_role("button", name=f"Take {task} for {title(name)}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(task)
    page.get_by_role("radio", name="Approve").check()
    page.get_by_label(label).fill(comment)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".flash.success")).to_contain_text(f"{task} done for {title(name)}.")


def test_an_administrator_adds_a_step_publishes_it_and_only_new_requests_take_it(web):
    requester = web.as_user("requester")
    file_request(web, requester, BEFORE)

    admin = web.as_user("admin")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    admin.get_by_role("navigation", name="Administration").get_by_role("link", name="Procedures").click()
    admin.get_by_role("link", name="New social media account request").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Edit “New social media account request”")
    expect(admin.locator("#canvas[data-ready=true]")).to_be_visible()
    expect(admin.locator(".bjs-powered-by")).to_be_visible()  # bpmn.io's watermark stays
    web.screenshot(admin, "procedure-editor_loaded_desktop")

    # A task from the palette, dropped on the flow from "Police investigative profile?" (no) to the
    # Communications Manager's approval, inside the Department Head's lane: it is inserted into that flow.
    admin.locator('.djs-palette [data-action="create.task"]').click()
    x, y = on_screen(admin, 880, 700)
    admin.mouse.move(x - 30, y - 30)
    admin.mouse.move(x, y, steps=5)
    admin.mouse.click(x, y)
    expect(admin.locator("#prop-heading")).to_contain_text("Task")
    admin.locator("#prop-make-user-task").click()
    expect(admin.locator("#prop-heading")).to_contain_text("User task")
    admin.locator("#prop-name").fill(STEP)
    admin.keyboard.press("Tab")
    admin.locator("#prop-form-key").select_option(label="Written approval")
    admin.locator("#prop-deadline").select_option("department_head_review")
    expect(admin.locator("#prop-task-lane")).to_contain_text("Department Head")
    expect(admin.locator("#prop-heading")).to_contain_text(STEP)

    admin.locator("#save-draft").click()
    expect(admin.locator("#save-status")).to_contain_text(re.compile(r"Draft saved at \d"))
    expect(admin.locator("#problem-list")).to_have_text("No problems: this draft can be published.")
    web.screenshot(admin, "procedure-editor_new-step_desktop")
    confirm_publishing(admin, "A budget check before the Communications Manager's approval.")
    admin.get_by_role("button", name="Publish", exact=True).click()
    expect(admin.locator(".flash.success")).to_contain_text(
        "Version 2 of “New social media account request” is published: new requests use it."
    )
    current = admin.locator("#versions tr.current")
    expect(current).to_contain_text("2")
    expect(current).to_contain_text("in use")
    expect(current).to_contain_text("Admin")  # who published it
    admin.get_by_role("link", name="Changes from version 1").click()
    added = admin.locator("#added")
    expect(added).to_contain_text(f"User task “{STEP}”")
    expect(added.get_by_role("definition").filter(has_text="written_approval")).to_have_text(
        "Written approval written_approval"
    )  # the form by its label, its key beside it
    expect(admin.locator("#changed")).to_contain_text("Sequence flow “no” Flow_standard")
    web.screenshot(admin, "procedure-editor_changes_desktop")

    file_request(web, requester, AFTER)
    head = web.as_user("parks_head")
    for name in (BEFORE, AFTER):
        take_and_decide(web, head, name, "Department Head approval")
    # The new request waits for the new step, in the Department Head's lane; the old one went on as before.
    take_and_decide(web, head, AFTER, STEP, label=APPROVAL_COMMENT_LABEL, comment="Within the Parks budget.")
    expect(head.locator(".flash.success")).to_contain_text(
        "It now waits for: Communications Manager written approval (Communications Manager)."
    )

    comms = web.as_user("comms_manager")
    take_and_decide(web, comms, BEFORE, "Communications Manager written approval")
    requester.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Inbox")).click()
    row = requester.get_by_role("row").filter(has_text=title(BEFORE))
    row.get_by_role("link", name="Open Set up the account and confirm").click()
    requester.get_by_label("Account address").fill("https://facebook.com/wsp-parks-before")
    for label in (
        "Clearly marked as belonging to the City",
        "Links to the official City website",
        "Displays or links to the public notice",
    ):
        requester.get_by_label(label).check()
    requester.get_by_role("button", name="Submit").click()
    expect(requester.locator(".flash.success")).to_contain_text("The request is completed: approved.")

    requester.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    requester.get_by_role("link", name=title(BEFORE)).click()
    expect(requester.locator("main")).to_contain_text(
        "This request follows version 1 of the procedure (a later version is in use for new requests)."
    )
    history = requester.get_by_role("region", name="History")
    expect(history).not_to_contain_text(STEP)
    requester.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    requester.get_by_role("link", name=title(AFTER)).click()
    expect(requester.locator("main")).to_contain_text("This request follows version 2 of the procedure.")
    expect(requester.get_by_role("region", name="History")).to_contain_text(STEP)
    for page in (requester, admin, head, comms):
        assert web.console_errors(page) == []


def test_a_draft_with_a_problem_lists_it_at_its_element_and_is_not_published(web):
    admin = web.as_user("admin")
    admin.goto("/admin/processes/removal_appeal/edit")
    expect(admin.locator("#canvas[data-ready=true]")).to_be_visible()
    admin.locator('.djs-element[data-element-id="appeal_review"]').first.click()
    expect(admin.locator("#prop-form-key")).to_have_value("appeal_review")
    # The lane given another role from the panel; then a new user task with no form and no way out.
    admin.locator("#prop-element").select_option("Lane_communications_manager")
    admin.locator("#prop-lane-role").select_option("City Attorney")
    expect(admin.locator("#prop-heading")).to_contain_text("City Attorney")
    admin.locator('.djs-palette [data-action="create.task"]').click()
    x, y = on_screen(admin, 420, 530)
    admin.mouse.move(x - 30, y - 30)
    admin.mouse.move(x, y, steps=5)
    admin.mouse.click(x, y)
    expect(admin.locator("#prop-heading")).to_contain_text("Task")
    admin.locator("#prop-make-user-task").click()
    expect(admin.locator("#prop-heading")).to_contain_text("User task")
    admin.locator("#prop-name").fill("Loose end")
    admin.keyboard.press("Tab")
    admin.locator("#save-draft").click()
    problems = admin.locator("#problem-list")
    expect(problems).to_contain_text("Loose end")
    expect(problems).to_contain_text("User task has no formKey property (the form it shows).")
    expect(problems).to_contain_text("This element has no way out (no outgoing sequence flow).")
    web.screenshot(admin, "procedure-editor_problems_desktop")
    problems.get_by_role("button", name=re.compile("Loose end")).first.click()
    expect(admin.locator("#prop-name")).to_have_value("Loose end")
    confirm_publishing(admin, "A loose end.")
    admin.get_by_role("button", name="Publish", exact=True).click()
    expect(admin.locator(".error-summary")).to_contain_text("Nothing was changed.")
    expect(admin.locator(".error-summary")).to_contain_text("Loose end")
    admin.goto("/admin/processes/removal_appeal/versions")
    expect(admin.locator("#versions tbody tr")).to_have_count(1)
