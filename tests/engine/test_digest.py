"""The daily digest: one mail a business morning to each person with open tasks, overdue ones first."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from engine.db.models import Digest
from engine.mail import digest, outbox
from engine.requests import services
from engine.time import clock
from tests.helpers import START
from tests.procedures import act

CITY = ZoneInfo("America/Chicago")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CITY)


def digests(sessions, *moment) -> int:
    with clock.frozen_at(at(*moment)):
        return digest.send_due_digests(sessions)


def start(session, who):
    instance = services.start_instance(session, who, "new_account_request", START)
    session.commit()
    return instance


def test_each_person_with_open_tasks_gets_one_digest_on_a_business_morning(
    session, sessions, people, mail_settings, smtp_server
):
    with clock.frozen_at(at(2026, 11, 16, 10, 0)):
        late = start(session, people.requester)
    with clock.frozen_at(at(2026, 11, 24, 10, 0)):
        fresh = start(session, people.requester)
        act(session, people.parks_head, fresh, "department_head_review", {"decision": "approve"})
    assert digests(sessions, 2026, 11, 26, 7, 30) == 0  # Thanksgiving
    assert digests(sessions, 2026, 11, 28, 7, 30) == 0  # Saturday
    assert digests(sessions, 2026, 11, 30, 6, 59) == 0  # before the digest time
    assert digests(sessions, 2026, 11, 30, 7, 0) == 2  # the Department Head and the Communications Manager
    assert digests(sessions, 2026, 11, 30, 9, 0) == 0  # not twice in a day
    with clock.frozen_at(at(2026, 11, 30, 7, 0)):
        assert outbox.deliver_due(sessions, mail_settings).sent == 2
    [head] = smtp_server.to("parks_head@example.org")
    assert head["Subject"] == "civicflow: 1 open task, 1 overdue"
    body = head.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Your civicflow tasks on Monday, November 30:" in body
    assert f"Overdue (1):\n- Department Head approval (request {late.id}: " in body
    assert f"/tasks/{services.open_tasks_of(session, late)[0].id}" in body
    [comms] = smtp_server.to("comms@example.org")
    assert comms["Subject"] == "civicflow: 1 open task"
    assert "Open (1):\n- Communications Manager" in comms.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert smtp_server.to("requester@example.org") == []  # nothing waits for the requester
    # Everyone was considered once for the day, with or without tasks.
    assert session.scalar(select(func.count()).select_from(Digest)) == session.scalar(
        select(func.count()).select_from(Digest).where(Digest.day == at(2026, 11, 30).date())
    )
    assert digests(sessions, 2026, 12, 1, 7, 0) == 2  # and again the next business day
