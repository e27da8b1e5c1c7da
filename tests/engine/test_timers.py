"""Reminders and escalations fire by the one clock, on business days, and arrive at a real SMTP server.

Time is moved with engine.time.clock (never by sleeping). The dates run across Thanksgiving 2026 (Thursday
Nov 26 and the Friday after, both closed by default) and the weekend after it.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.db.models import AuditEvent, OutboxMail, Task, Timer
from engine.mail import outbox
from engine.requests import services
from engine.time import clock, timers
from tests.helpers import INVESTIGATIVE, START
from tests.procedures import act

CITY = ZoneInfo("America/Chicago")
KEY = "new_account_request"

DISPUTE = {
    "disputant_name": "Sam Citizen",
    "disputant_email": "sam.citizen@example.net",
    "policy_section": "Rules of Use",
    "basis": "They restrict protected speech.",
    "received_via": "email",
}


def at(*args) -> datetime:
    """A moment in the City's time."""
    return datetime(*args, tzinfo=CITY)


def fire(sessions, *moment) -> list[timers.Fired]:
    with clock.frozen_at(at(*moment)):
        return timers.fire_due(sessions)


def send(sessions, mail_settings, *moment) -> int:
    with clock.frozen_at(at(*moment)):
        return outbox.deliver_due(sessions, mail_settings).sent


def start(session, who, data=START):
    instance = services.start_instance(session, who, KEY, data)
    session.commit()
    return instance


def history(session, instance) -> list[tuple[str, str | None]]:
    session.commit()
    return [(e.action, e.task) for e in services.history_of(session, instance)]


def test_the_reminder_and_the_escalation_arrive_on_the_right_business_day_across_a_holiday_and_a_weekend(
    session, sessions, people, mail_settings, smtp_server
):
    with clock.frozen_at(at(2026, 11, 24, 10, 0)):  # Tuesday before Thanksgiving
        instance = start(session, people.requester)
    [task] = services.open_tasks_of(session, instance)
    # Five business days: Wed 25, Mon 30, Tue Dec 1, Wed 2, Thu 3 (Thanksgiving, the Friday after and the
    # weekend are closed): due Thursday Dec 3 at closing time.
    assert clock.as_utc(task.due_at).astimezone(CITY) == at(2026, 12, 3, 16, 30)

    for moment in [(2026, 11, 26, 9, 0), (2026, 11, 27, 9, 0), (2026, 11, 30, 9, 0), (2026, 12, 2, 7, 59)]:
        assert fire(sessions, *moment) == []
    [reminded] = fire(sessions, 2026, 12, 2, 8, 0)  # the business day before it is due, at opening time
    assert reminded.timers == ("Reminder before the due date",)
    assert send(sessions, mail_settings, 2026, 12, 2, 8, 0) == 1
    [reminder] = smtp_server.to("parks_head@example.org")
    assert reminder["Subject"] == "Reminder: Department Head approval is due Thursday, December 3, 2026 at 4:30 PM"
    body = reminder.get_body(("plain",)).get_content()
    assert f"/tasks/{task.id}" in body and "West St. Paul Parks" in body

    # Overdue after closing time on Thursday; escalated at opening time on the next business day.
    assert fire(sessions, 2026, 12, 3, 17, 0) == []
    assert fire(sessions, 2026, 12, 4, 7, 59) == []
    [escalated] = fire(sessions, 2026, 12, 4, 8, 0)
    assert escalated.timers == ("Overdue",)
    assert send(sessions, mail_settings, 2026, 12, 4, 8, 0) == 1
    [escalation] = smtp_server.to("comms@example.org")
    assert escalation["Subject"] == f"Overdue: Department Head approval (request {instance.id})"
    body = escalation.get_body(("plain",)).get_content()
    assert "was due Thursday, December 3, 2026 at 4:30 PM and is still open" in body
    assert "With: the Department Head of Parks and Recreation" in body
    assert "You receive this as the Communications Manager" in body

    assert history(session, instance)[-5:] == [
        ("timer", "Reminder before the due date"),
        ("mail_queued", "Department Head approval"),
        ("timer", "Overdue"),
        ("escalated", "Department Head approval"),
        ("mail_queued", "Department Head approval"),
    ]
    # The task is still open, still the Department Head's: the timers do not interrupt it.
    session.expire_all()
    assert services.open_tasks_of(session, instance)[0].id == task.id
    assert fire(sessions, 2026, 12, 31, 12, 0) == []  # each timer fires once


def test_a_task_completed_before_its_reminder_gets_none(session, sessions, people, mail_settings, smtp_server):
    with clock.frozen_at(at(2026, 11, 24, 10, 0)):
        instance = start(session, people.requester)
    with clock.frozen_at(at(2026, 11, 25, 11, 0)):
        act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    assert fire(sessions, 2026, 12, 2, 8, 0) == []  # when the Department Head's reminder would have gone
    assert send(sessions, mail_settings, 2026, 12, 2, 8, 0) == 0
    assert smtp_server.messages == []
    assert ("timer", "Reminder before the due date") not in history(session, instance)
    # The Communications Manager's review opened Wednesday the 25th: due Friday Dec 4, reminded Thursday.
    [review] = services.open_tasks_of(session, instance)
    assert clock.as_utc(review.due_at).astimezone(CITY) == at(2026, 12, 4, 16, 30)
    [reminded] = fire(sessions, 2026, 12, 3, 8, 0)
    assert reminded.timers == ("Reminder before the due date",)
    assert fire(sessions, 2026, 12, 4, 8, 0) == []  # nor the Department Head's escalation
    assert send(sessions, mail_settings, 2026, 12, 4, 8, 0) == 1
    assert [m["To"] for m in smtp_server.messages] == ["comms@example.org"]


def test_the_communications_managers_overdue_review_goes_to_the_city_administrator(
    session, sessions, people, make_user, mail_settings, smtp_server
):
    make_user("manager", department="administration", roles=["city_administrator"])
    with clock.frozen_at(at(2026, 11, 2, 9, 0)):
        instance = start(session, people.requester)
        act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    session.commit()
    with clock.frozen_at(at(2026, 11, 2, 9, 0)):
        services.claim_task(session, people.comms, services.open_tasks_of(session, instance)[0].id)
        session.commit()
    fire(sessions, 2026, 11, 12, 8, 0)  # past the reminder (Fri Nov 6) and the escalation (Tue Nov 10)
    assert send(sessions, mail_settings, 2026, 11, 12, 8, 0) == 2
    [reminder] = smtp_server.to("comms@example.org")  # the person who took it
    assert reminder["Subject"].startswith("Reminder: Communications Manager")
    [escalation] = smtp_server.to("manager@example.org")
    assert "You receive this as the City Administrator" in escalation.get_body(("plain",)).get_content()
    assert "With: Comms" in escalation.get_body(("plain",)).get_content()


def test_an_investigative_profile_is_escalated_within_the_police_without_its_name(
    session, sessions, people, mail_settings, smtp_server
):
    with clock.frozen_at(at(2026, 11, 2, 9, 0)):
        instance = start(session, people.officer, INVESTIGATIVE)
    fire(sessions, 2026, 11, 12, 8, 0)
    assert send(sessions, mail_settings, 2026, 11, 12, 8, 0) == 2
    assert len(smtp_server.to("police_chief@example.org")) == 1  # the reminder of the police head's review
    [escalation] = smtp_server.to("lieutenant@example.org")
    assert smtp_server.to("comms@example.org") == []
    for message in smtp_server.messages:
        body = message.get_body(("plain",)).get_content()
        assert "Neighborhood watcher" not in body and "Neighborhood watcher" not in message["Subject"]
        assert f"request {instance.id}" in body


def test_the_timer_table_holds_what_waits_and_only_that(session, sessions, people):
    with clock.frozen_at(at(2026, 11, 24, 10, 0)):
        instance = start(session, people.requester)
    waiting = session.scalars(
        select(Timer).where(Timer.instance_id == instance.id, Timer.fired_at.is_(None)).order_by(Timer.due_at)
    ).all()
    assert [(t.element_id, clock.as_utc(t.due_at).astimezone(CITY)) for t in waiting] == [
        ("department_head_review_reminder", at(2026, 12, 2, 8, 0)),
        ("department_head_review_overdue", at(2026, 12, 4, 8, 0)),
    ]
    with clock.frozen_at(at(2026, 11, 25, 11, 0)):
        act(session, people.parks_head, instance, "department_head_review", {"decision": "approve"})
    session.expire_all()
    waiting = session.scalars(
        select(Timer.element_id).where(Timer.instance_id == instance.id, Timer.fired_at.is_(None))
    ).all()
    assert sorted(waiting) == ["communications_review_overdue", "communications_review_reminder"]


def test_review_tasks_have_due_dates_and_other_tasks_none(session, people):
    with clock.frozen_at(at(2026, 11, 2, 9, 0)):
        instance = start(session, people.requester)
        act(
            session,
            people.parks_head,
            instance,
            "department_head_review",
            {"decision": "return", "comment": "Say who answers comments."},
        )
    session.expire_all()
    [revise] = services.open_tasks_of(session, instance)
    assert revise.form_key == "revise_request" and revise.due_at is None
    reviews = session.scalars(
        select(Task).where(Task.instance_id == instance.id, Task.form_key == "department_head_review")
    ).all()
    assert all(t.due_at is not None for t in reviews)


def test_a_dispute_is_acknowledged_the_same_day_even_before_a_holiday_weekend(
    session, sessions, city, mail_settings, smtp_server
):
    with clock.frozen_at(at(2027, 7, 2, 15, 45)):  # Friday; Independence Day observed on Monday the 5th
        instance = services.start_instance(session, city.requester, "legality_dispute", DISPUTE)
        session.commit()
    assert send(sessions, mail_settings, 2027, 7, 2, 15, 45) == 1
    [acknowledgement] = smtp_server.to("sam.citizen@example.net")
    assert "July 2, 2027" in acknowledgement.get_body(("plain",)).get_content()
    row = session.scalar(select(OutboxMail).where(OutboxMail.instance_id == instance.id))
    assert clock.as_utc(row.sent_at).astimezone(CITY).date() == at(2027, 7, 2).date()
    # Its deadline, one business day: Tuesday after the holiday; it was kept, so nothing is escalated.
    assert clock.as_utc(row.deliver_by).astimezone(CITY) == at(2027, 7, 6, 16, 30)
    with clock.frozen_at(at(2027, 7, 7, 9, 0)):
        assert timers.escalate_late_letters(sessions) == []


def test_an_acknowledgement_not_sent_by_its_deadline_is_escalated_once(
    session, sessions, city, mail_settings, smtp_server
):
    smtp_server.stop()
    with clock.frozen_at(at(2027, 7, 2, 15, 45)):
        instance = services.start_instance(session, city.requester, "legality_dispute", DISPUTE)
        session.commit()
    assert send(sessions, mail_settings, 2027, 7, 2, 15, 45) == 0  # the mail server is down
    with clock.frozen_at(at(2027, 7, 6, 16, 29)):
        assert timers.escalate_late_letters(sessions) == []
    with clock.frozen_at(at(2027, 7, 6, 16, 30)):
        [late] = timers.escalate_late_letters(sessions)
        assert timers.escalate_late_letters(sessions) == []
    assert late.instance_id == instance.id
    events = [e for e in services.history_of(session, instance) if e.action == "escalated"]
    assert len(events) == 1
    assert "was not sent by Tuesday, July 6, 2027 at 4:30 PM" in events[0].comment
    assert "could not be delivered yet" in events[0].comment
    letters = session.scalars(select(OutboxMail.letter).where(OutboxMail.instance_id == instance.id)).all()
    assert sorted(letters) == ["acknowledgement_to_disputant", "escalation"]


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_passes_at_once_fire_each_timer_once_even_without_the_schedulers_lock(session, sessions, people):
    with clock.frozen_at(at(2026, 11, 2, 9, 0)):
        ids = [start(session, people.requester).id for _ in range(30)]
    barrier = threading.Barrier(2)

    def one_pass():
        barrier.wait()
        return timers.fire_due(sessions)

    with clock.frozen_at(at(2026, 11, 12, 8, 0)), ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(one_pass), pool.submit(one_pass)]]
    fired = [(f.instance_id, name) for result in results for f in result for name in f.timers]
    assert sorted(fired) == sorted((i, name) for i in ids for name in ("Reminder before the due date", "Overdue"))
    assert all(results), "both passes took a share (SKIP LOCKED let each skip the other's rows)"
    session.expire_all()
    events = session.scalars(select(AuditEvent.instance_id).where(AuditEvent.action == "timer")).all()
    assert sorted(events) == sorted(ids * 2)
    assert (
        session.scalar(
            select(func.count()).select_from(OutboxMail).where(OutboxMail.letter.in_(["reminder", "escalation"]))
        )
        == 60
    )
