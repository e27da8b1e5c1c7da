"""An administrator uploads a diagram whose step fails only after a rejection: the editor lists it as a problem
(the dry run's) and never says it can be published; Publish is refused, naming the step and the path the dry run
took to it, and nothing is published."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.editing import draw_step, insert_step, shipped

KEY = "new_account_request"
STEP = "Check the budget"


def failing_after_rejection() -> bytes:
    """A script that raises, on the flow the Department Head's "reject" takes (and only there), drawn on that flow
    between the Department Head's decision and the rejection, where an administrator would put it."""
    xml = insert_step(
        shipped(KEY),
        "Flow_head_rejected",
        f'<bpmn:scriptTask id="check" name="{STEP}"><bpmn:script>raise ValueError("No budget code.")</bpmn:script>'
        "</bpmn:scriptTask>",
    )
    return draw_step(
        xml,
        "check",
        (860, 490, 100, 80),
        {"Flow_head_rejected": [(665, 530), (860, 530)], "Flow_check": [(960, 530), (1165, 530)]},
    )


def test_publishing_a_diagram_that_fails_after_a_rejection_is_refused_naming_the_step(web):
    admin = web.as_user("admin")
    admin.goto(f"/admin/processes/{KEY}/edit")
    expect(admin.locator("#canvas[data-ready=true]")).to_be_visible()
    admin.locator("#file").set_input_files(
        files=[{"name": "budget-check.bpmn", "mimeType": "application/xml", "buffer": failing_after_rejection()}]
    )
    admin.get_by_role("button", name="Upload as the draft").click()
    expect(admin.locator(".flash.warning")).to_contain_text("1 problem must be fixed before it can be published.")
    expect(admin.locator("#canvas[data-ready=true]")).to_be_visible()
    problems = admin.locator("#problem-list")
    expect(problems).to_contain_text("1 problem must be fixed and saved before this draft can be published:")
    expect(problems).to_contain_text("ValueError: No budget code.")
    expect(problems).not_to_contain_text("No problems")

    admin.get_by_label("What changed and why").fill("A budget check after a rejection.")
    admin.get_by_label("Publish this draft: new requests follow it from now on").check()
    admin.get_by_role("button", name="Publish", exact=True).click()
    refusal = admin.locator(".error-summary")
    expect(refusal).to_contain_text("The diagram fails when it runs")
    expect(refusal).to_contain_text("Nothing was changed.")
    expect(refusal.get_by_role("listitem")).to_have_count(1)
    expect(refusal.get_by_role("listitem")).to_contain_text(
        re.compile(r'Check the budget \(check\): The step "Check the budget" failed: ValueError: No budget code\.')
    )
    expect(refusal).to_contain_text("\"Department Head approval\" decision 'reject'")
    expect(problems).to_contain_text("ValueError: No budget code.")
    expect(problems).not_to_contain_text("No problems")
    web.screenshot(admin, "dry-run_refused_desktop")

    admin.goto(f"/admin/processes/{KEY}/versions")
    expect(admin.locator("#versions tbody tr")).to_have_count(1)
    # The refused publication is a 400 (and Chromium logs the page's status): nothing else went wrong.
    assert [e for e in web.console_errors(admin) if "400" not in e] == []
