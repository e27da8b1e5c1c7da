"""Administrators change a procedure: drafts, publishing, versions, running requests on their own version."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from sqlalchemy import func, select

from engine.db.models import AuditEvent, ProcessDraft, ProcessVersion
from engine.diagrams.problems import Problem
from engine.errors import Conflict, DiagramError, Invalid, NotAllowed
from engine.requests import inbox, services
from engine.versions import drafts, publishing, stored
from engine.versions.difference import difference
from engine.versions.shipped import sync_workflows
from tests.editing import add_step_before, set_attribute, set_text, shipped
from tests.helpers import START
from tests.procedures import act, actor

KEY = "new_account_request"


def edited() -> bytes:
    """The new account request with a Records Officer check before the Communications Manager's approval."""
    return add_step_before(shipped(KEY), "communications_review")


def events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_a_published_draft_is_used_by_new_requests_while_running_ones_finish_on_their_version(
    session, people, make_user
):
    records = make_user("records", department="administration", roles=["records_officer"])
    before = services.start_instance(session, people.requester, KEY, START)
    session.commit()
    draft = drafts.save_draft(session, people.admin, KEY, edited())
    session.commit()
    assert (draft.revision, draft.problems, draft.publishable) == (1, [], True)
    model = publishing.publish(session, people.admin, KEY)
    session.commit()
    assert model.number == 2 and stored.published_model(session, KEY).id == model.id
    after = services.start_instance(session, people.requester, KEY, START)
    session.commit()
    assert (before.model.number, after.model.number) == (1, 2)

    for instance in (before, after):
        act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    # The new step is in the Records Officer's lane for the new request only.
    [new_step] = services.open_tasks_of(session, after)
    assert (new_step.name, new_step.role, new_step.form_key) == (
        "Records check",
        "records_officer",
        "communications_review",
    )
    assert [t.id for t in inbox.list_tasks(session, records, "available")[0]] == [new_step.id]
    [old_step] = services.open_tasks_of(session, before)
    assert old_step.role == "communications_manager"
    act(session, people.comms, before, "communications_review", {"decision": "approve"})
    act(
        session,
        people.requester,
        before,
        "confirm_setup",
        {
            "account_url": "https://facebook.com/wsp-parks-test",
            "marked_as_city": True,
            "links_official_site": True,
            "public_notice_linked": True,
        },
    )
    session.refresh(before)
    assert (before.status, before.outcome, before.model.number) == ("completed", "approved", 1)
    act(session, records, after, "communications_review", {"decision": "approve"})
    assert [t.role for t in services.open_tasks_of(session, after)] == ["communications_manager"]


def test_a_draft_with_problems_is_kept_but_cannot_be_published(session, people):
    broken = set_attribute(edited(), "Lane_department_head", "name", "Deputies")
    draft = drafts.save_draft(session, people.admin, KEY, broken)
    session.commit()
    assert draft.revision == 1 and not draft.publishable
    assert [(p.element, p.name) for p in draft.problems] == [("Lane_department_head", "Deputies")]
    with pytest.raises(DiagramError) as refused:
        publishing.publish(session, people.admin, KEY)
    session.rollback()
    assert refused.value.problems == draft.problems
    assert [v.number for v in stored.versions(session, people.admin, KEY)] == [1]
    assert session.scalar(select(ProcessDraft.revision)) == 1
    assert events(session, "process_published") == []


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<d>&x;</d>', "DOCTYPE"),
        (b"<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'>", "not well-formed"),
        (b"<html><body>not a diagram</body></html>", "not a BPMN 2.0 diagram"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not well-formed"),
    ],
)
def test_what_is_not_a_safe_bpmn_document_is_refused_and_nothing_is_stored(session, people, data, says):
    with pytest.raises(DiagramError) as refused:
        drafts.save_draft(session, people.admin, KEY, data)
    session.rollback()
    assert says in refused.value.message
    assert session.scalar(select(func.count()).select_from(ProcessDraft)) == 0
    assert events(session, "process_draft_saved") == []
    assert "root:" not in str(refused.value.problems)


def test_only_administrators_change_procedures(session, people):
    for attempt in (
        lambda: drafts.save_draft(session, people.comms, KEY, edited()),
        lambda: publishing.publish(session, people.comms, KEY),
        lambda: stored.versions(session, people.comms, KEY),
        lambda: drafts.current_draft(session, people.comms, KEY),
        lambda: publishing.republish(session, people.comms, KEY, 1),
    ):
        with pytest.raises(NotAllowed):
            attempt()
    assert session.scalar(select(func.count()).select_from(ProcessDraft)) == 0


def test_a_save_from_an_older_revision_is_a_conflict_not_an_overwrite(session, people):
    drafts.save_draft(session, people.admin, KEY, edited(), revision=0)
    session.commit()
    with pytest.raises(Conflict, match="revision 1"):
        drafts.save_draft(session, people.admin, KEY, shipped(KEY).replace(b"Parks", b"Parks!"), revision=0)
    session.rollback()
    with pytest.raises(Conflict):
        publishing.publish(session, people.admin, KEY, revision=7)
    session.rollback()
    assert drafts.current_draft(session, people.admin, KEY).xml.encode() == edited()
    model = publishing.publish(session, people.admin, KEY, revision=1)
    assert model.number == 2


def test_an_older_version_can_be_published_again_and_the_publications_say_who_and_when(session, people):
    drafts.save_draft(session, people.admin, KEY, edited())
    publishing.publish(session, people.admin, KEY)
    session.commit()
    with pytest.raises(Conflict, match="already the one in use"):
        publishing.republish(session, people.admin, KEY, 2)
    session.rollback()
    publishing.republish(session, people.admin, KEY, 1)
    session.commit()
    instance = services.start_instance(session, people.requester, KEY, START)
    assert instance.model.number == 1
    listed = stored.versions(session, people.admin, KEY)
    assert [(v.number, v.current, v.published_by, v.source) for v in listed] == [
        (2, False, "Admin", "editor"),
        (1, True, "Admin", "shipped"),
    ]
    assert [
        (p.model.number, p.published_by.username if p.published_by else None)
        for p in stored.publications(session, people.admin, KEY)
    ] == [(1, "admin"), (2, "admin"), (1, None)]
    published = events(session, "process_published")
    assert [(e.actor_name, e.detail["version"], e.detail["republished"]) for e in published] == [
        ("Admin", 2, False),
        ("Admin", 1, True),
    ]
    assert [e.detail["revision"] for e in events(session, "process_draft_saved")] == [1]


def test_publishing_the_version_in_use_again_from_a_draft_is_refused(session, people):
    drafts.save_draft(session, people.admin, KEY, shipped(KEY))
    with pytest.raises(Conflict, match="same as version 1"):
        publishing.publish(session, people.admin, KEY)


def test_the_difference_lists_added_removed_and_changed_elements_in_the_editor_s_terms(session, people):
    changed = set_text(edited(), "Flow_head_approved", "conditionExpression", 'decision == "approve" and True')
    changed = set_attribute(changed, "communications_review", "name", "Communications approval")
    changes = difference(shipped(KEY), changed)
    assert [
        (a["id"], a["type"], a["name"], a["properties"].get("Lane"), a["properties"].get("Form"))
        for a in changes.added
        if a["type"] == "User task"
    ] == [("records_check", "User task", "Records check", "Records Officer", "communications_review")]
    assert {a["id"] for a in changes.added} == {"records_check", "Flow_records_check", "Lane_records_check"}
    assert changes.removed == []
    by_id = {c["id"]: [(d["property"], d["before"], d["after"]) for d in c["changes"]] for c in changes.changed}
    assert by_id["Flow_standard"] == [
        ("To", "Communications Manager written approval (communications_review)", "Records check (records_check)")
    ]
    assert by_id["Flow_head_approved"] == [("Condition", 'decision == "approve"', 'decision == "approve" and True')]
    assert by_id["communications_review"] == [
        ("Name", "Communications Manager written approval", "Communications approval")
    ]
    # In words: a flow without a name by its two ends, a reference by what it points at, with its id beside.
    [to] = next(c["changes"] for c in changes.changed if c["id"] == "Flow_standard")
    assert (to["before_words"], to["before_id"], to["after_words"], to["after_id"]) == (
        "Communications Manager written approval",
        "communications_review",
        "Records check",
        "records_check",
    )
    flow = next(a for a in changes.added if a["id"] == "Flow_records_check")
    assert flow["label"] == "the flow from Records check to Communications approval"
    assert difference(shipped(KEY), shipped(KEY)).empty


def test_a_new_shipped_diagram_does_not_replace_the_version_an_administrator_published(
    session, people, settings, tmp_path
):
    drafts.save_draft(session, people.admin, KEY, edited())
    publishing.publish(session, people.admin, KEY)
    session.commit()
    workflows = tmp_path / "workflows"
    shutil.copytree(settings.workflows_dir, workflows)
    (workflows / f"{KEY}.bpmn").write_bytes(
        shipped(KEY).replace(b"Communications Manager written approval", b"Communications Manager's written approval")
    )
    session.info["settings"] = dataclasses.replace(settings, workflows_dir=workflows)
    [new] = sync_workflows(session)
    session.commit()
    assert (new.number, new.published, new.source) == (3, False, "shipped")
    assert stored.published_model(session, KEY).number == 2
    assert session.scalar(select(func.count()).select_from(ProcessVersion).where(ProcessVersion.key == KEY)) == 3


def test_another_approver_with_the_written_approval_form_in_a_procedure_that_had_none(session, city):
    """The policy adds the City Attorney's sign-off before an appeal is reviewed: a written approval in their lane."""
    from tests.engine.test_removal_appeal import appeal

    key = "removal_appeal"
    data = add_step_before(
        shipped(key),
        "appeal_review",
        step_id="attorney_sign_off",
        name="City Attorney sign-off",
        lane="City Attorney",
        form_key="written_approval",
    )
    assert drafts.save_draft(session, city.admin, key, data).publishable
    publishing.publish(session, city.admin, key)
    session.commit()
    instance = services.start_instance(session, city.records, key, appeal(city.facebook))
    session.commit()
    [task] = services.open_tasks_of(session, instance)
    assert (task.name, task.role, task.form_key) == ("City Attorney sign-off", "city_attorney", "written_approval")
    assert [f["name"] for f in services.task_form(session, task)] == ["decision", "comment"]
    attorney = actor(session, "attorney")
    with pytest.raises(Invalid) as refused:
        services.complete_task(session, attorney, task.id, {"decision": "reject"})
    session.rollback()
    assert "comment" in refused.value.fields
    act(session, attorney, instance, "written_approval", {"decision": "approve", "comment": "Reviewed."})
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["appeal_review"]
    [completed] = [e for e in events(session, "completed") if e.instance_id == instance.id]
    assert (completed.actor_name, completed.role, completed.decision, completed.comment) == (
        "Attorney",
        "city_attorney",
        "approve",
        "Reviewed.",
    )


def test_requests_running_on_a_version_are_not_held_to_rules_made_stricter_after_it_was_published(
    session, people, monkeypatch
):
    from engine.diagrams import cache, rules

    instance = services.start_instance(session, people.requester, KEY, START)
    session.commit()
    monkeypatch.setattr(cache, "_cache", {})  # a new process: the version is read again
    monkeypatch.setattr(rules, "structure_problems", lambda *args: [Problem("A rule of a later release.")])
    act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["communications_review"]
    drafts.save_draft(session, people.admin, KEY, edited())
    with pytest.raises(DiagramError) as refused:
        publishing.publish(session, people.admin, KEY)
    assert [p.message for p in refused.value.problems] == ["A rule of a later release."]
