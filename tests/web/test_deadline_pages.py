"""Due dates on the pages: the inbox says when each task is due, the task page when its reminder and
escalation go out, and the request's history shows the timers that fired and whom they reached."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.time import clock, timers
from tests.helpers import only_open_task, start_request
from tests.web.pages import text_of

CITY = ZoneInfo("America/Chicago")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=CITY)


def test_the_inbox_and_the_task_page_say_when_a_review_is_due_and_when_it_is_reminded(browser_as, session, people):
    with clock.frozen_at(at(2026, 11, 24, 10, 0)):
        instance = start_request(session, people.requester)
    task = only_open_task(session, instance)
    head = browser_as("parks_head")
    with clock.frozen_at(at(2026, 11, 30, 9, 0)):
        inbox = text_of(head.get("/inbox?view=available"))
        page = text_of(head.get(f"/tasks/{task.id}"))
    assert "Due Thu Dec 3" in inbox
    assert "Due: Dec 3, 2026 4:30 PM" in page
    assert (
        "Timers, while the task is open: Reminder before the due date on Dec 2, 2026 8:00 AM · "
        "Overdue on Dec 4, 2026 8:00 AM"
    ) in page
    with clock.frozen_at(at(2026, 12, 3, 9, 0)):
        assert "Due today by 4:30 PM" in text_of(head.get("/inbox?view=available"))
    with clock.frozen_at(at(2026, 12, 7, 9, 0)):
        assert "Overdue since Thu Dec 3" in text_of(head.get("/inbox?view=available"))
        assert "Due: Dec 3, 2026 4:30 PM (overdue)" in text_of(head.get(f"/tasks/{task.id}"))


def test_the_history_shows_the_reminder_and_the_escalation(browser_as, session, sessions, people):
    with clock.frozen_at(at(2026, 11, 24, 10, 0)):
        instance = start_request(session, people.requester)
    with clock.frozen_at(at(2026, 12, 4, 8, 0)):
        timers.fire_due(sessions)
    page = text_of(browser_as("requester").get(f"/instances/{instance.id}"))
    assert "Timer · Reminder before the due date" in page
    assert "E-mail queued for sending · Department Head approval · “Reminder: Department Head approval is due" in page
    assert "Escalated · Department Head approval" in page
    assert "Overdue; escalated to the Communications Manager." in page
    assert "civicflow (Communications Manager)" not in page  # civicflow escalated; it did not act as the role
    # A reminder is not where the request is: it still waits for the Department Head, now overdue.
    with clock.frozen_at(at(2026, 12, 4, 9, 0)):
        page = text_of(browser_as("requester").get(f"/instances/{instance.id}"))
    assert (
        "Waiting for Department Head approval · Department Head of Parks and Recreation · overdue since Thu Dec 3"
    ) in page
