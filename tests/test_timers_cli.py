"""`civicflow timers fire --now` and `civicflow digest send --now`: the operator's commands, run as installed."""

from __future__ import annotations

import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.db.models import OutboxMail, Timer
from engine.requests import services
from engine.time import clock
from tests.helpers import INVESTIGATIVE, KEY, SECRET, START, civicflow_command, civicflow_environment

CITY = ZoneInfo("America/Chicago")
SENT_BY = "(sent by the scheduler or `civicflow mail send`)"


@pytest.fixture
def civicflow(settings, tmp_path):
    """Run `civicflow ARGS...` on the test's database."""
    env = civicflow_environment(tmp_path, database_url=settings.database_url, secret_key=SECRET)

    def run(*args: str, now: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [civicflow_command(), *args],
            env={**env, **({clock.NOW_SETTING: now} if now is not None else {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    return run


@pytest.fixture
def requests_of_march_3(session, people):
    """A Parks request and a police investigative one, both filed Tuesday, March 3, 2026 at 10:00.

    The Department Head's five business days end Tuesday, March 10 at 16:30; the reminder is due
    Monday, March 9 at 8:00 and the escalation Wednesday, March 11 at 8:00 (Central Daylight Time
    from March 8).
    """
    with clock.frozen_at(datetime(2026, 3, 3, 10, 0, tzinfo=CITY)):
        parks = services.start_instance(session, people.requester, KEY, START)
        investigative = services.start_instance(session, people.officer, KEY, INVESTIGATIVE)
        session.commit()
    return parks.id, investigative.id


def waiting_timers(sessions) -> int:
    """Timers not fired yet."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None)))


def test_timers_fire_prints_each_request_and_what_fired_and_a_second_run_at_that_time_fires_nothing(
    civicflow, sessions, requests_of_march_3
):
    parks, investigative = requests_of_march_3
    first = civicflow("timers", "fire", "--now", "2026-03-09T08:00")  # the City's time
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "as of Mon 2026-03-09 08:00 CDT (2026-03-09T13:00:00Z)"
    # The investigative request's title could name an undercover profile: only its number is printed.
    assert sorted(lines[1:-1]) == sorted(
        [
            f'request {parks} (Facebook account "West St. Paul Parks"): fired Reminder before the due date',
            f"request {investigative}: fired Reminder before the due date",
        ]
    )
    assert lines[-1] == f"2 timers fired on 2 requests; 2 letters queued {SENT_BY}"
    with sessions() as session:
        letters = session.execute(select(OutboxMail.letter, OutboxMail.recipients).order_by(OutboxMail.id)).all()
    assert sorted((letter, tuple(to)) for letter, to in letters) == [
        ("reminder", ("parks_head@example.org",)),
        ("reminder", ("police_chief@example.org",)),
    ]

    again = civicflow("timers", "fire", "--now", "2026-03-09T08:00")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [f"0 timers fired on 0 requests; 0 letters queued {SENT_BY}"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_timers_fire_takes_a_time_with_an_offset_as_that_moment(civicflow, sessions, requests_of_march_3):
    parks, _ = requests_of_march_3
    early = civicflow("timers", "fire", "--now", "2026-03-09T12:59:59Z")  # 07:59:59 in West St. Paul
    assert early.returncode == 0, early.stderr
    assert early.stdout.splitlines() == [
        "as of Mon 2026-03-09 07:59 CDT (2026-03-09T12:59:59Z)",
        f"0 timers fired on 0 requests; 0 letters queued {SENT_BY}",
    ]
    late = civicflow("timers", "fire", "--now", "2026-03-11T08:00:00-05:00")
    assert late.returncode == 0, late.stderr
    assert (
        f'request {parks} (Facebook account "West St. Paul Parks"): fired Reminder before the due date, '
        "Overdue" in late.stdout.splitlines()
    )
    assert late.stdout.splitlines()[-1] == f"4 timers fired on 2 requests; 4 letters queued {SENT_BY}"
    assert waiting_timers(sessions) == 0


@pytest.mark.parametrize("value", ["next monday", "2026-03-32T08:00", ""])
def test_timers_fire_refuses_a_bad_now_naming_it_and_fires_nothing(civicflow, sessions, requests_of_march_3, value):
    result = civicflow("timers", "fire", "--now", value)
    assert result.returncode == 2
    assert "Invalid value for '--now'" in result.stderr
    assert f'"{value}" is not an ISO 8601 time like 2026-03-02T09:00' in result.stderr
    assert result.stdout == ""
    assert waiting_timers(sessions) == 4


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_digest_send_writes_each_persons_digest_once_a_business_day(civicflow, sessions, requests_of_march_3):
    saturday = civicflow("digest", "send", "--now", "2026-03-07T09:00")
    assert saturday.stdout.splitlines()[-1] == "no digests: Saturday 2026-03-07 is not a business day"
    early = civicflow("digest", "send", "--now", "2026-03-09T06:59")
    assert early.stdout.splitlines()[-1] == "no digests yet: they are written from 07:00 (America/Chicago)"

    monday = civicflow("digest", "send", "--now", "2026-03-09T09:00")
    assert monday.returncode == 0, monday.stderr
    # The two department heads each have one approval waiting.
    assert monday.stdout.splitlines()[-1] == f"2 digests queued {SENT_BY}; each person gets one a day"
    again = civicflow("digest", "send", "--now", "2026-03-09T15:00")
    assert again.stdout.splitlines()[-1] == f"0 digests queued {SENT_BY}; each person gets one a day"
    # A day whose digest time passed while nothing ran: after closing time the day is left out.
    evening = civicflow("digest", "send", "--now", "2026-03-10T16:30")
    assert evening.stdout.splitlines()[-1] == (
        "no digests: they are written until closing time, 16:30 (America/Chicago); the next ones on the next "
        "business morning"
    )
    with sessions() as session:
        assert sorted(tuple(to) for to in session.scalars(select(OutboxMail.recipients))) == [
            ("parks_head@example.org",),
            ("police_chief@example.org",),
        ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_civicflow_now_pins_the_commands_clock_and_a_moment_without_its_offset_is_refused_naming_it(
    civicflow, sessions, requests_of_march_3
):
    saturday = civicflow("digest", "send", now="2026-03-07T09:00-06:00")
    assert saturday.stdout.splitlines() == ["no digests: Saturday 2026-03-07 is not a business day"]
    monday = civicflow("digest", "send", now="2026-03-09T14:00Z")  # 09:00 in West St. Paul
    assert monday.stdout.splitlines() == [f"2 digests queued {SENT_BY}; each person gets one a day"]
    for value in ("2026-03-09T09:00", "next monday"):
        refused = civicflow("digest", "send", now=value)
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            "error: A setting is not valid.",
            f'  CIVICFLOW_NOW: "{value}" is not an ISO 8601 time with its offset, like 2026-12-07T06:59-06:00 or '
            "2026-12-07T12:59Z.",
        ]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 2
