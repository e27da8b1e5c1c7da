"""The standard path through the services, end to end, on both databases."""

from engine.records import audit, registry
from engine.requests import inbox, services
from tests.helpers import SETUP, START


def _only_task(session, actor, scope="available"):
    rows, total = inbox.list_tasks(session, actor, scope)
    assert total == 1, [r.form_key for r in rows]
    return rows[0]


def test_standard_path_enters_the_account_in_the_registry(session, people):
    instance = services.start_instance(session, people.requester, "new_account_request", START)
    session.commit()
    head_task = _only_task(session, people.parks_head)
    assert head_task.form_key == "department_head_review"
    services.complete_task(session, people.parks_head, head_task.id, {"decision": "approve"})
    session.commit()
    comms_task = _only_task(session, people.comms)
    services.complete_task(session, people.comms, comms_task.id, {"decision": "approve", "comment": "Fine."})
    session.commit()
    setup_task = _only_task(session, people.requester, "mine")
    done = services.complete_task(session, people.requester, setup_task.id, SETUP)
    session.commit()

    assert (done.id, done.status, done.outcome) == (instance.id, "completed", "approved")
    [account] = registry.list_accounts(session, people.requester)
    assert account.url == "https://facebook.com/wspparks"
    assert [(m.user.username, m.approved_by) for m in account.managers] == [
        ("requester", "Comms (Communications Manager)")
    ]
    assert audit.verify(session).ok
