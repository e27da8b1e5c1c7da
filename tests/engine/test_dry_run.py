"""Publishing drives the new version through its paths in memory first: a step that fails on any path refuses it.

Each shipped diagram dry-runs clean and publishes. A step that fails only on some path (after the Department
Head rejects, after the Department Head returns the request, after the reminder timer fires) is named in the
refusal, through the engine and through the API, and nothing is stored. A diagram whose requests never end, or
end without what the procedure reads at the end, is published with a warning. The publication says how many
requests of the version in use could move to the new one.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import procedures
from engine.db.models import AuditEvent, ProcessVersion
from engine.diagrams.loading import load_diagram, workflow_files
from engine.errors import DiagramError
from engine.requests import services
from engine.settings import REPO_ROOT
from engine.versions import drafts, publishing, stored
from engine.versions.dry_run import dry_run
from tests.editing import add_step_before, insert_step, set_attribute, set_text, shipped
from tests.helpers import START

KEY = "new_account_request"
KEYS = [path.stem for path in workflow_files(REPO_ROOT / "workflows")]
STEP = 'id="check" name="Check the budget"'
RAISING = f'<bpmn:scriptTask {STEP}><bpmn:script>raise ValueError("x")</bpmn:script></bpmn:scriptTask>'
GATEWAY = f"<bpmn:exclusiveGateway {STEP} />"
# Where the step goes: a branch only some decisions take, and the path after the Department Head's reminder.
FAILING = {
    "a raising script after the Department Head rejects": (
        insert_step(shipped(KEY), "Flow_head_rejected", RAISING),
        "ValueError: x",
        "\"Department Head approval\" decision 'reject'",
    ),
    "an undefined name in a condition after the Department Head returns the request": (
        insert_step(shipped(KEY), "Flow_head_returned", GATEWAY, condition='budget_code == "A"'),
        "Error evaluating expression 'budget_code == \"A\"'",
        "\"Department Head approval\" decision 'return'",
    ),
    "a raising script after the reminder is sent": (
        insert_step(shipped(KEY), "Flow_department_head_review_reminded", RAISING),
        "ValueError: x",
        'the timers on "Department Head approval" fire',
    ),
}
# The appeal's two ends sent back to its review: no request of it ever ends.
NEVER_ENDS = set_attribute(
    set_attribute(shipped("removal_appeal"), "Flow_upheld_end", "targetRef", "appeal_review"),
    "Flow_reinstated_end",
    "targetRef",
    "appeal_review",
)
# An upheld appeal that never records its outcome.
NO_OUTCOME = set_text(shipped("removal_appeal"), "record_upheld", "script", "noted = True")


def renamed(key: str) -> bytes:
    """The shipped diagram under another process name: a new version with the same steps."""
    return set_attribute(shipped(key), key, "name", "Renamed by the dry-run test")


def version_count(session, key: str = KEY) -> int:
    return session.scalar(select(func.count()).select_from(ProcessVersion).where(ProcessVersion.key == key))


def save(session, admin, xml: bytes, key: str = KEY) -> drafts.Draft:
    draft = drafts.save_draft(session, admin, key, xml)
    session.commit()
    return draft


@pytest.mark.parametrize("key", KEYS)
def test_every_shipped_diagram_dry_runs_clean_and_publishes(session, people, key):
    data = shipped(key)
    procedure = procedures.get(key)
    result = dry_run(session, key, load_diagram(data, key, procedure.editor_form_keys(), procedure.letters), data)
    assert (result.problems, result.warnings, result.cut) == ([], [], False)
    assert result.ended > 0 and result.tasks > 0  # its cost is measured in bench/editor.py, not asserted here

    save(session, people.admin, renamed(key), key)
    published = publishing.publish_with_report(session, people.admin, key)
    session.commit()
    assert (published.model.number, published.model.published, published.warnings) == (2, True, [])
    assert published.movable == publishing.Movable(from_version=1, requests=0, checked=0, movable=0)


@pytest.mark.parametrize("case", FAILING)
def test_a_step_that_fails_on_one_path_refuses_publishing_naming_it_and_nothing_is_stored(session, people, case):
    xml, says, path = FAILING[case]
    draft = save(session, people.admin, xml)
    # Every rule read off the diagram holds, but the draft already lists what its dry run finds (issue 18).
    assert ([p.element for p in draft.problems], draft.publishable) == (["check"], False)

    with pytest.raises(DiagramError) as refused:
        publishing.publish(session, people.admin, KEY)
    session.rollback()
    [problem] = refused.value.problems
    assert (problem.element, problem.name) == ("check", "Check the budget")
    assert problem.message.startswith(f'The step "Check the budget" failed: {says}')
    assert path in problem.message
    assert refused.value.message.startswith("The diagram fails when it runs")
    assert version_count(session) == 1
    assert stored.published_model(session, KEY).number == 1
    assert drafts.current_draft(session, people.admin, KEY).revision == 1  # kept, to be fixed
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "process_published")).all() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_api_refuses_a_diagram_failing_on_the_rejection_path_with_a_400_naming_the_step(client, api, session):
    xml = FAILING["a raising script after the Department Head rejects"][0]
    saved = client.put(
        f"/api/v1/processes/{KEY}/draft", headers=api("admin").headers, data=xml, content_type="application/xml"
    )
    assert saved.status_code == 200 and saved.get_json()["publishable"] is False, saved.get_json()
    assert [p["element"] for p in saved.get_json()["problems"]] == ["check"]  # the dry run's, listed on saving

    answer = api("admin").post(f"/api/v1/processes/{KEY}/publish")
    assert answer.status_code == 400, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_diagram"
    [problem] = error["problems"]
    assert (problem["element"], problem["name"]) == ("check", "Check the budget")
    assert "ValueError: x" in problem["message"] and "decision 'reject'" in problem["message"]
    versions = api("admin").get(f"/api/v1/processes/{KEY}/versions").get_json()
    assert [(v["version"], v["current"]) for v in versions] == [(1, True)]


def test_a_diagram_whose_requests_never_end_is_published_with_a_warning(session, people):
    save(session, people.admin, NEVER_ENDS, "removal_appeal")
    published = publishing.publish_with_report(session, people.admin, "removal_appeal")
    session.commit()
    assert published.model.number == 2
    assert [w.message for w in published.warnings] == [
        "No path of the dry run reaches an end event: a request of this diagram would never end."
    ]
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "process_published")).all()
    assert event.detail["dry_run"]["warnings"] == [w.message for w in published.warnings]
    assert event.detail["dry_run"]["ended"] == 0


def test_an_end_reached_without_the_outcome_is_published_with_a_warning_naming_it(session, people):
    save(session, people.admin, NO_OUTCOME, "removal_appeal")
    published = publishing.publish_with_report(session, people.admin, "removal_appeal")
    session.commit()
    [warning] = published.warnings
    assert warning.message.startswith('A request that ends at "Removal upheld" has no outcome, which the procedure')
    assert "decision 'uphold'" in warning.message


def test_the_publication_counts_the_running_requests_that_could_move_to_the_new_version(session, people):
    for name in ("Parks One", "Parks Two"):
        services.start_instance(session, people.requester, KEY, {**START, "account_name": name})
    session.commit()
    save(session, people.admin, add_step_before(shipped(KEY), "communications_review"))
    published = publishing.publish_with_report(session, people.admin, KEY)
    session.commit()
    assert published.movable == publishing.Movable(from_version=1, requests=2, checked=2, movable=2)
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "process_published")).all()
    assert event.detail["movable"] == {"from_version": 1, "requests": 2, "checked": 2, "movable": 2}


def test_a_stored_version_that_fails_at_run_time_cannot_be_published_again(session, people):
    # Stored and made current below the checks, as the incident tests do to hold requests at a failing step.
    xml = FAILING["a raising script after the Department Head rejects"][0]
    procedure = procedures.get(KEY)
    loaded = load_diagram(xml, KEY, procedure.editor_form_keys(), procedure.letters)
    broken = stored.store_version(session, KEY, xml, loaded, source="upload", created_by_id=people.admin.id)
    publishing.make_current(session, people.admin, broken)
    session.commit()
    publishing.republish(session, people.admin, KEY, 1)
    session.commit()

    with pytest.raises(DiagramError) as refused:
        publishing.republish(session, people.admin, KEY, broken.number)
    assert [(p.element, p.name) for p in refused.value.problems] == [("check", "Check the budget")]
