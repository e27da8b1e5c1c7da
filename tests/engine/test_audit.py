"""The audit trail: a hash chain that detects edits and deletions, and each request's written history."""

from sqlalchemy import func, select, text

from engine.db.models import AuditEvent
from engine.records import audit
from engine.requests import services
from tests.helpers import SETUP, START


def _complete(session, actor, instance, data):
    [task] = services.open_tasks_of(session, instance)
    services.complete_task(session, actor, task.id, data)
    session.commit()


def _full_request(session, people):
    """A request returned, resubmitted, approved twice and set up: its history has every kind of step."""
    instance = services.start_instance(session, people.requester, "new_account_request", START)
    session.commit()
    _complete(session, people.parks_head, instance, {"decision": "return", "comment": "Add a manager."})
    _complete(
        session,
        people.requester,
        instance,
        {"action": "resubmit", "proposed_managers": ["requester", "colleague"], "comment": "Added."},
    )
    _complete(session, people.parks_head, instance, {"decision": "approve"})
    _complete(session, people.comms, instance, {"decision": "approve", "comment": "Approved in writing."})
    _complete(session, people.requester, instance, SETUP)
    return instance


def _verify_afresh(sessions):
    """Verify from a new session, as `civicflow audit verify` does, so nothing cached hides the change."""
    with sessions() as fresh:
        return audit.verify(fresh)


def _event_ids(session, instance):
    return [e.id for e in services.history_of(session, instance)]


def test_chain_verifies_after_a_full_request(session, sessions, people):
    _full_request(session, people)
    result = _verify_afresh(sessions)
    assert result.ok, result.reason
    assert result.checked == session.scalar(select(func.count()).select_from(AuditEvent))


def test_edited_comment_is_reported_at_that_event(session, sessions, people):
    instance = _full_request(session, people)
    edited = [e for e in services.history_of(session, instance) if e.comment == "Approved in writing."][0]
    session.execute(
        text("UPDATE audit_event SET comment = :comment WHERE id = :id"),
        {"comment": "Approved, reluctantly.", "id": edited.id},
    )
    session.commit()

    result = _verify_afresh(sessions)

    assert (result.ok, result.broken_at) == (False, edited.id)
    assert "edited" in result.reason


def test_deleted_middle_event_is_reported_at_the_next_event(session, sessions, people):
    instance = _full_request(session, people)
    ids = _event_ids(session, instance)
    deleted, following = ids[2], ids[3]
    session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": deleted})
    session.commit()

    result = _verify_afresh(sessions)

    assert (result.ok, result.broken_at) == (False, following)
    assert "deleted" in result.reason


def test_history_lists_each_written_decision_in_order(session, people):
    instance = _full_request(session, people)

    history = [
        (e.action, e.actor, e.actor_name, e.role, e.task, e.decision, e.comment)
        for e in services.history_of(session, instance)
    ]

    assert history == [
        ("started", "requester", "Requester", "requester", None, None, None),
        (
            "completed",
            "parks_head",
            "Parks_Head",
            "department_head",
            "Department Head approval",
            "return",
            "Add a manager.",
        ),
        ("completed", "requester", "Requester", "requester", "Revise or withdraw the request", "resubmit", "Added."),
        ("completed", "parks_head", "Parks_Head", "department_head", "Department Head approval", "approve", None),
        (
            "completed",
            "comms",
            "Comms",
            "communications_manager",
            "Communications Manager written approval",
            "approve",
            "Approved in writing.",
        ),
        ("completed", "requester", "Requester", "requester", "Set up the account and confirm", "confirmed", None),
    ]
    times = [e.at for e in services.history_of(session, instance)]
    assert times == sorted(times)
