"""An administrator inserts a step between two existing ones in one action, and publishes it.

"Insert a step after this one" in the context pad of "Set up the account and confirm" puts a new user task on its
flow to "Record the approval": what follows moves right, the pool grows, nothing overlaps; the flow ends at the
new task and a new flow leads on. Named and given a form, the draft has no problem and publishes with a note.
"""

from __future__ import annotations

import re
import shutil

from playwright.sync_api import expect

from tests.browser.test_procedure_editor_in_browser import confirm_publishing

KEY = "new_account_request"
STEP = "Check the page name"
NOTE = "The Communications Manager checks the page name before the approval is recorded."


def shapes(page) -> list[dict]:
    """Every shape of the diagram on screen (not flows, labels, lanes or pools), with its bounds."""
    return page.evaluate(
        """() => window.civicflowEditor.get('elementRegistry').filter(e =>
            !e.waypoints && !e.labelTarget && e.parent && !['bpmn:Lane', 'bpmn:Participant'].includes(e.type))
          .map(e => ({id: e.id, name: e.businessObject.name || '', x: e.x, y: e.y, width: e.width,
                      height: e.height, attachedTo: e.host ? e.host.id : null}))"""
    )


def overlapping(listed: list[dict]) -> list[tuple[str, str]]:
    """Pairs of shapes that cover each other (a boundary event on its own task does, by design)."""
    pairs = []
    for i, a in enumerate(listed):
        for b in listed[i + 1 :]:
            if a["attachedTo"] == b["id"] or b["attachedTo"] == a["id"] or (a["attachedTo"] and b["attachedTo"]):
                continue
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            if not apart:
                pairs.append((a["id"], b["id"]))
    return pairs


def test_an_administrator_inserts_a_step_between_two_in_one_action_and_publishes_it(web):
    admin = web.as_user("admin")
    admin.goto(f"/admin/processes/{KEY}/edit")
    expect(admin.locator("#canvas[data-ready=true]")).to_be_visible()
    before = {s["id"]: s for s in shapes(admin)}
    pool_width = admin.evaluate(
        "() => window.civicflowEditor.get('elementRegistry').filter(e => e.type === 'bpmn:Participant')[0].width"
    )

    admin.locator("#prop-element").select_option("confirm_setup")
    entry = admin.locator('.djs-context-pad [data-action="civicflow-insert-step"]')
    expect(entry).to_have_attribute("title", "Insert a step after this one")
    entry.click()

    # The new task is selected, in the flow: the old flow ends at it, a new one leads on to "Record the approval".
    expect(admin.locator("#prop-heading")).to_contain_text("User task")
    new_id = admin.locator("#prop-element").input_value()
    assert new_id not in before
    flows = admin.evaluate(
        """(id) => { const task = window.civicflowEditor.get('elementRegistry').get(id);
          return [task.incoming.map(f => [f.id, f.source.id]), task.outgoing.map(f => [f.target.id])]; }""",
        new_id,
    )
    assert flows == [[["Flow_set_up", "confirm_setup"]], [["record_approved"]]]
    after = {s["id"]: s for s in shapes(admin)}
    assert overlapping(list(after.values())) == []
    new = after[new_id]
    assert new["x"] > before["confirm_setup"]["x"] + before["confirm_setup"]["width"]
    assert after["record_approved"]["x"] > new["x"] + new["width"]  # what follows moved right
    assert after["record_approved"]["x"] == before["record_approved"]["x"] + 150
    assert after["confirm_setup"]["x"] == before["confirm_setup"]["x"]  # what comes before stays
    grown = admin.evaluate(
        "() => window.civicflowEditor.get('elementRegistry').filter(e => e.type === 'bpmn:Participant')[0].width"
    )
    assert grown == pool_width + 150
    # One undo takes the whole insertion back; one redo puts it again.
    admin.locator("#undo").click()
    assert {s["id"]: s for s in shapes(admin)} == before
    admin.locator("#redo").click()
    assert {s["id"]: s for s in shapes(admin)} == after
    admin.locator("#prop-element").select_option(new_id)

    admin.locator("#prop-name").fill(STEP)
    admin.keyboard.press("Tab")
    admin.locator("#prop-form-key").select_option(label="Written approval")
    admin.locator("#prop-deadline").select_option("communications_review")
    expect(admin.locator("#prop-heading")).to_contain_text(STEP)
    admin.locator("#save-draft").click()
    expect(admin.locator("#save-status")).to_contain_text(re.compile(r"Draft saved at \d"))
    expect(admin.locator("#problem-list")).to_have_text("No problems: this draft can be published.")
    admin.get_by_role("button", name="Whole diagram").click()
    web.screenshot(admin, "procedure-editor_inserted-step_desktop")
    # Up close, at actual size: the new step between the two, what follows moved right to make room.
    admin.evaluate(
        """(id) => { const canvas = window.civicflowEditor.get('canvas');
          const task = window.civicflowEditor.get('elementRegistry').get(id);
          window.civicflowEditor.get('selection').select(null);
          const size = canvas.getSize();
          canvas.viewbox({ x: task.x + task.width / 2 - size.width / 2, y: task.y + task.height / 2 - size.height / 2,
                           width: size.width, height: size.height }); }""",
        new_id,
    )
    close_up = web.screenshot_path("procedure-editor_inserted-step-close-up_desktop")
    admin.locator("#canvas").screenshot(path=close_up)
    shutil.copy(close_up, "/tmp/editor-insert.png")

    confirm_publishing(admin, NOTE)
    admin.get_by_role("button", name="Publish", exact=True).click()
    expect(admin.locator(".flash.success")).to_contain_text("Version 2 of “New social media account request”")
    expect(admin.locator("#versions tr.current")).to_contain_text(NOTE)
    web.screenshot(admin, "procedure-editor_published-with-note_desktop")
    admin.get_by_role("link", name="Changes from version 1").click()
    expect(admin.locator("#added")).to_contain_text(f"User task “{STEP}”")
    expect(admin.locator("#added")).to_contain_text(f"Sequence flow “the flow from {STEP} to Record the approval”")
    changed = admin.locator("#changed")
    expect(changed).to_contain_text(f"Sequence flow “the flow from Set up the account and confirm to {STEP}”")
    expect(
        changed.get_by_role("row", name=re.compile(rf"^To Record the approval record_approved {STEP} "))
    ).to_be_visible()
    web.screenshot(admin, "procedure-editor_inserted-step-changes_desktop")
    assert web.console_errors(admin) == []
