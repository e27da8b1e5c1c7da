"""Fixtures for the HTML pages: a logged-in browser-like client per person."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from engine.db.models import Account, AuditEvent, ProcessInstance, Task
from tests.web.pages import login


def snapshot(sessions) -> tuple:
    """What a refused request must leave alone: instances, tasks and claims, the audit trail, the registry."""
    with sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(ProcessInstance)),
            s.execute(
                select(ProcessInstance.id, ProcessInstance.version, ProcessInstance.status).order_by(ProcessInstance.id)
            ).all(),
            s.execute(select(Task.id, Task.status, Task.assignee_id).order_by(Task.id)).all(),
            s.scalar(select(func.count()).select_from(AuditEvent)),
            s.scalar(select(func.count()).select_from(Account)),
        )


@pytest.fixture
def unchanged(sessions):
    """`with unchanged(): ...` fails if the block changed any row that matters."""

    @contextmanager
    def check():
        before = snapshot(sessions)
        yield
        assert snapshot(sessions) == before

    return check


@pytest.fixture
def browser_as(app, people):
    """browser_as("parks_head"): a test client logged in as that person through the login form."""
    clients = {}

    def get(username):
        if username not in clients:
            client = app.test_client()
            response = login(client, username)
            assert response.status_code == 302, response.get_data(as_text=True)[:300]
            clients[username] = client
        return clients[username]

    return get
