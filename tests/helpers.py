"""Small helpers shared by the engine tests."""

from engine.requests import services
from tests.conftest import START

KEY = "new_account_request"


def start_request(session, actor, data=START):
    """Start a new account request as the actor and commit."""
    instance = services.start_instance(session, actor, KEY, data)
    session.commit()
    return instance


def only_open_task(session, instance):
    """The instance's single open task."""
    [task] = services.open_tasks_of(session, instance)
    return task
