"""A broken step never loses work, in the browser: a request filed on a version whose new step fails is held; the
administrator follows the link in the mail to the incident, opens the failing step in the editor, fixes its condition
in the properties panel and publishes, moves the request to the fix and retries it; the requester's page shows the
request moving again.

The broken step is an exclusive gateway ("Check the budget") on the flow from the filing, whose condition names a
field no form sets; it is drawn (it has its shape in the diagram), so that the editor can select it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from engine.db.connection import make_engine, make_sessionmaker
from engine.settings import Settings
from tests.editing import draw_step, insert_step, shipped
from tests.helpers import SECRET, publish_unchecked
from tests.procedures import actor

KEY = "new_account_request"
STEP = "Check the budget"
NAME = "Parks Budget"
TITLE = f'Facebook account "{NAME}"'
BROKEN = 'budget_code == "A"'
FIXED = 'platform == "x"'
ADMIN_ADDRESS = "admin@wspmn.example"


def drawn_gateway(condition: str) -> bytes:
    """The shipped diagram with the gateway on Flow_submitted, and its shape and flows drawn where an administrator
    would put them: below the filing, in the Department Head's lane."""
    xml = insert_step(
        shipped(KEY), "Flow_submitted", f'<bpmn:exclusiveGateway id="check" name="{STEP}" />', condition=condition
    )
    return draw_step(
        xml,
        "check",
        (225, 400, 50, 50),
        {
            "Flow_submitted": [(250, 298), (250, 400)],
            "Flow_check": [(250, 450), (250, 530), (325, 530)],
            "Flow_check_otherwise": [(275, 425), (350, 425), (350, 505)],
        },
        isMarkerVisible="true",
    )


def publish_as_admin(database: str, xml: bytes) -> int:
    """Publish the diagram as the demo's administrator, in the live server's database (as the API would)."""
    engine = make_engine(database)
    try:
        settings = Settings.from_env(database_url=database, secret_key=SECRET)
        with make_sessionmaker(engine)(info={"settings": settings}) as session:
            admin = actor(session, "admin")
            number = publish_unchecked(session, admin, KEY, xml)
            return number
    finally:
        engine.dispose()


def test_an_administrator_repairs_a_held_request_from_the_mail_to_the_editor_and_back(mail_web, tmp_path):
    web = mail_web
    broken = publish_as_admin(f"sqlite:///{tmp_path}/civicflow.sqlite3", drawn_gateway(BROKEN))
    assert broken == 2

    # The requester files: the filing is kept, and the request says it is held.
    requester = web.as_user("requester")
    web.file_account_request(
        requester,
        name=NAME,
        department="Parks and Recreation",
        purpose="Budget news.",
        audience="Residents.",
        managers="requester",
    )
    expect(requester.locator(".flash.warning")).to_contain_text(f"Your request {TITLE} was submitted.")
    expect(requester.locator(".flash.warning")).to_contain_text(f'This request is held at the step "{STEP}"')
    request_url = requester.url
    held = requester.locator("#held")
    expect(held).to_contain_text(
        f'This request is held at the step "{STEP}": a step of the procedure\'s diagram failed, and the '
        "administrators have been told. Nothing written on it is lost"
    )
    expect(held.get_by_role("link")).to_have_count(0)  # the incident is for administrators
    expect(requester.locator("#version-line")).to_have_text("This request follows version 2 of the procedure.")
    expect(requester.locator("dl.record")).to_contain_text(NAME)
    web.screenshot(requester, "incidents_held-request_desktop")

    # The administrator's mail links to the incident.
    [mail] = [m for m in web.mail.to(ADMIN_ADDRESS) if m["Subject"].startswith("Held at a failed step")]
    link = re.search(r"(http://\S+/admin/incidents/\d+)", mail.get_content())[1]
    admin = web.as_user("admin")
    admin.goto(urlsplit(link).path)
    expect(admin.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^Incident \d+: the step “{STEP}” failed$"))
    incident_url = admin.url
    what = admin.locator("#what")
    expect(what).to_contain_text(f"Request #1: {TITLE}")
    expect(what).to_contain_text("The step failed in version 2, the version in use for new requests.")
    expect(admin.locator("#incident-message")).to_contain_text(f'The step "{STEP}" failed')
    expect(admin.locator("#incident-message")).to_contain_text("budget_code")
    expect(admin.locator("#incident-data-names")).to_contain_text("account_name")
    web.screenshot(admin, "incidents_incident_desktop")
    admin.get_by_role("navigation", name="Administration").get_by_role("link", name="Incidents").click()
    expect(admin.locator("#incidents tbody tr")).to_have_count(1)
    expect(admin.locator("#incidents tbody tr")).to_contain_text(STEP)
    web.screenshot(admin, "incidents_list_desktop")
    admin.go_back()

    # The editor opens at the failing step, selected.
    admin.get_by_role("link", name="Open the step in the editor").click()
    expect(admin.locator("#canvas[data-ready=true]")).to_be_visible()
    assert admin.url.endswith(f"/admin/processes/{KEY}/edit?element=check")
    expect(admin.locator("#prop-heading")).to_have_text(f"Exclusive gateway: {STEP}")
    expect(admin.locator("#prop-element")).to_have_value("check")
    assert admin.evaluate("window.civicflowEditor.get('selection').get().map(e => e.id)") == ["check"]
    expect(admin.locator('.djs-element.selected[data-element-id="check"]')).to_have_count(1)
    web.screenshot(admin, "incidents_editor-at-the-step_desktop")

    # The fix: the condition of the flow out of the gateway names a field the form sets.
    admin.locator("#prop-element").select_option("Flow_check")
    condition = admin.locator("#prop-condition")
    expect(condition).to_have_value(BROKEN)
    condition.fill(FIXED)
    admin.keyboard.press("Tab")
    admin.locator("#save-draft").click()
    expect(admin.locator("#save-status")).to_contain_text(re.compile(r"Draft saved at \d"))
    expect(admin.locator("#problem-list")).to_have_text("No problems: this draft can be published.")
    web.screenshot(admin, "incidents_editor-fixed_desktop")
    admin.get_by_label("What changed and why").fill("The condition names a field the form sets.")
    admin.get_by_label("Publish this draft: new requests follow it from now on").check()
    admin.get_by_role("button", name="Publish", exact=True).click()
    expect(admin.locator(".flash.success")).to_contain_text("Version 3 of “New social media account request”")
    expect(admin.locator("#movable")).to_contain_text("Move the 1 running request of version 2 to version 3")
    web.screenshot(admin, "incidents_versions_desktop")

    # Back at the incident: move the request to the fix, then retry the step.
    admin.goto(incident_url)
    expect(admin.get_by_label("The version to move it to")).to_have_value("3")
    admin.get_by_role("button", name="Move the request").click()
    expect(admin.locator(".flash.success")).to_have_text(
        "Request 1 now follows version 3. It is still held: retry the step to move it on."
    )
    admin.get_by_role("button", name="Retry the step").click()
    expect(admin.locator(".flash.success")).to_have_text(
        "The step ran: request 1 moves again. It now waits for: Department Head approval (Department Head)."
    )
    expect(admin.locator("#resolved")).to_contain_text("The step was retried and the request moved on by Ada Admin")
    web.screenshot(admin, "incidents_resolved_desktop")

    # The requester's page: moving again, on version 3, waiting for the Department Head.
    requester.goto(request_url)
    expect(requester.locator("#held")).to_have_count(0)
    expect(requester.locator(".lede .badge")).to_have_text("running")
    waiting = requester.locator(".card").filter(has=requester.get_by_role("heading", name="Waiting for"))
    expect(waiting).to_contain_text("Department Head approval")
    expect(requester.locator("#version-line")).to_have_text(
        re.compile(
            r"^This request follows version 3 of the procedure\. "
            r"Moved from version 2 to version 3 on .+ by Ada Admin\.$"
        )
    )
    history = requester.get_by_role("region", name="History")
    for label in (
        "A step of the diagram failed: the request is held",
        "Moved to another version of the procedure",
        "Retried the failed step",
    ):
        expect(history).to_contain_text(label)
    web.screenshot(requester, "incidents_moving-again_desktop")
    for page in (requester, admin):
        assert web.console_errors(page) == []
