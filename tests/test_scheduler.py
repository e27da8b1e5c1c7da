"""The scheduler as real processes: `civicflow scheduler` (one at a time on PostgreSQL, safe to kill) and `serve`.

Requests are started with the clock pinned weeks in the past, so that their review's reminder and
overdue timers are due by the real clock when a scheduler process looks. The tests wait for what the
processes do by polling the database and their logs; time itself is never moved by sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.db.models import AuditEvent, OutboxMail, Timer
from engine.requests import services
from engine.time import clock
from engine.time.reminders import ESCALATION_LETTER, REMINDER_LETTER
from tests.conftest import SECRET, START
from tests.smtp import free_port
from tests.test_cli import civicflow_command

KEY = "new_account_request"
MAIL_FROM = "civicflow@wspmn.example"
# Fully fired: both timers of the Department Head's review (its reminder and its overdue escalation) marked
# fired, a `timer` event for each in the history, and one letter each in the outbox.
FIRED = (2, 2, 1, 1)
UNTOUCHED = (0, 0, 0, 0)
WAIT_SECONDS = 180


def start_due_requests(session, requester, count: int) -> list[int]:
    """Start `count` requests six weeks ago: the review's reminder and escalation are due now."""
    ids = []
    with clock.frozen_at(clock.now() - timedelta(weeks=6)):
        for number in range(count):
            ids.append(services.start_instance(session, requester, KEY, START).id)
            if number % 25 == 24:
                session.commit()
        session.commit()
    return ids


def fired_state(sessions, ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """Per request: (timer rows fired, `timer` history events, reminder letters, escalation letters)."""
    with sessions() as session:
        rows = Counter(
            dict(
                session.execute(
                    select(Timer.instance_id, func.count())
                    .where(Timer.fired_at.is_not(None))
                    .group_by(Timer.instance_id)
                ).all()
            )
        )
        events = Counter(
            dict(
                session.execute(
                    select(AuditEvent.instance_id, func.count())
                    .where(AuditEvent.action == "timer")
                    .group_by(AuditEvent.instance_id)
                ).all()
            )
        )
        letters = Counter(session.execute(select(OutboxMail.instance_id, OutboxMail.letter)).all())
    return {i: (rows[i], events[i], letters[(i, REMINDER_LETTER)], letters[(i, ESCALATION_LETTER)]) for i in ids}


def fired_count(sessions, ids: list[int]) -> int:
    """How many of the requests have had a timer fired."""
    with sessions() as session:
        return session.scalar(
            select(func.count(Timer.instance_id.distinct())).where(
                Timer.instance_id.in_(ids), Timer.fired_at.is_not(None)
            )
        )


def until(condition, what: str, timeout: float = WAIT_SECONDS, *, processes=()):
    """Poll until `condition()` is true (another process is working); fail naming `what`, with the logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for process in processes:
            assert process.running, f"{process.name} exited while waiting for {what}:\n{process.log()}"
        time.sleep(0.05)
    logs = "\n".join(f"--- {p.name}\n{p.log()}" for p in processes)
    pytest.fail(f"{what}: not within {timeout:g} s\n{logs}")


class Process:
    """A `civicflow` command running in the background, its output in a file."""

    def __init__(self, name: str, args: list[str], env: dict, folder: Path):
        self.name = name
        self.path = folder / f"{name}.log"
        self._file = self.path.open("wb")
        self.popen = subprocess.Popen(
            [civicflow_command(), *args], env=env, stdout=self._file, stderr=subprocess.STDOUT
        )

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.popen.poll() is None

    def log(self) -> str:
        """Everything it printed and logged so far."""
        return self.path.read_text(errors="replace")

    def says(self, text: str) -> bool:
        """Whether its output has this text."""
        return text in self.log()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send a signal and wait for the exit; the exit status."""
        if self.running:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=60)
        finally:
            self._file.close()


@pytest.fixture
def civicflow_env(settings, tmp_path, smtp_server):
    """The environment of a `civicflow` process: the test's database, mail to the loopback SMTP server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICFLOW_")}
    env.update(
        CIVICFLOW_INSTANCE_PATH=str(tmp_path),
        CIVICFLOW_DATABASE_URL=settings.database_url,
        CIVICFLOW_SECRET_KEY=SECRET,
        CIVICFLOW_SMTP_HOST=smtp_server.host,
        CIVICFLOW_SMTP_PORT=str(smtp_server.port),
        CIVICFLOW_MAIL_FROM=MAIL_FROM,
    )
    return env


@pytest.fixture
def launch(civicflow_env, tmp_path):
    """Start `civicflow ARGS...` in the background: launch(name, *args); every process is ended after the test."""
    started: list[Process] = []

    def start(name: str, *args: str, env: dict | None = None) -> Process:
        process = Process(name, list(args), {**civicflow_env, **(env or {})}, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.running:
            process.stop(signal.SIGKILL)


SCHEDULER = ("scheduler", "--timers-every", "1", "--mail-every", "1")


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_schedulers_on_one_postgres_database_fire_each_timer_once_and_the_second_waits_then_takes_over(
    session, sessions, people, smtp_server, launch
):
    ids = start_due_requests(session, people.requester, 40)
    first, second = launch("first", *SCHEDULER), launch("second", *SCHEDULER)
    both = (first, second)
    holder = until(
        lambda: next((p for p in both if p.says("holding the scheduler lock")), None),
        "one scheduler holds the lock",
        processes=both,
    )
    waiter = second if holder is first else first
    until(lambda: waiter.says("another civicflow scheduler holds the lock; waiting"), "the other waits", processes=both)
    until(lambda: fired_state(sessions, ids) == dict.fromkeys(ids, FIRED), "every timer fired", processes=both)
    # Every letter is sent, once: each request's reminder to the Parks head, its escalation to the
    # Communications Manager.
    until(lambda: len(smtp_server.messages) >= 80, "80 letters sent", processes=both)
    assert len(smtp_server.to("parks_head@example.org")) == 40
    assert len(smtp_server.to("comms@example.org")) == 40
    assert not waiter.says("holding the scheduler lock")

    # The holder stops; the one that waited takes over and fires what comes due afterwards.
    assert holder.stop() == 0
    assert holder.log().rstrip().endswith("stopped")
    more = start_due_requests(session, people.requester, 5)
    until(lambda: waiter.says("holding the scheduler lock"), "the other takes over", processes=(waiter,))
    until(
        lambda: fired_state(sessions, ids + more) == dict.fromkeys(ids + more, FIRED),
        "the new timers fired",
        processes=(waiter,),
    )
    until(lambda: len(smtp_server.messages) >= 90, "90 letters sent", processes=(waiter,))
    assert waiter.stop() == 0
    assert waiter.log().count("another civicflow scheduler holds the lock; waiting") == 1
    assert len(smtp_server.messages) == 90
    assert "Traceback" not in holder.log() + waiter.log()


def test_a_scheduler_killed_during_a_pass_leaves_no_request_half_fired_and_its_restart_fires_the_rest_once(
    session, sessions, people, launch
):
    count = 250  # a pass of a few seconds
    ids = start_due_requests(session, people.requester, count)
    assert set(fired_state(sessions, ids).values()) == {UNTOUCHED}

    first = launch("first", *SCHEDULER)
    until(lambda: fired_count(sessions, ids) >= 20, "the first timers fired", processes=(first,))
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    after_kill = fired_state(sessions, ids)
    fired = [i for i, state in after_kill.items() if state == FIRED]
    untouched = [i for i, state in after_kill.items() if state == UNTOUCHED]
    assert len(fired) + len(untouched) == count, {i: s for i, s in after_kill.items() if s not in (FIRED, UNTOUCHED)}
    assert 0 < len(fired) < count, "the kill came after the pass had finished: more requests are needed"

    again = launch("again", *SCHEDULER)
    until(lambda: fired_state(sessions, ids) == dict.fromkeys(ids, FIRED), "the rest fired", processes=(again,))
    until(lambda: again.says("timers: fired"), "the pass logged", processes=(again,))
    assert again.stop() == 0
    assert f"timers: fired {2 * len(untouched)} timers on {len(untouched)} requests" in again.log()
    assert "Traceback" not in again.log()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_on_sqlite_fires_due_timers_and_sends_their_letters_with_its_embedded_scheduler(
    session, sessions, people, smtp_server, launch
):
    [request_id] = start_due_requests(session, people.requester, 1)
    server = launch("serve", "serve", "--port", str(free_port()))
    until(lambda: fired_state(sessions, [request_id]) == {request_id: FIRED}, "the timers fired", processes=(server,))
    # No other process runs: the server's own mail sender delivers both letters.
    until(lambda: len(smtp_server.messages) >= 2, "two letters sent", processes=(server,))
    [reminder] = smtp_server.to("parks_head@example.org")
    [escalation] = smtp_server.to("comms@example.org")
    # (A subject too long for its first line is folded whole onto the next: what a mail client shows is stripped.)
    assert reminder["Subject"].strip().startswith("Reminder: Department Head approval is due")
    assert escalation["Subject"].strip() == f"Overdue: Department Head approval (request {request_id})"
    assert server.stop() == 0
    output = server.log()
    assert "with the scheduler: timers every 1 min, mail_sender every 15 s, digest every 5 min" in output
    assert "timers: fired 2 timers on 1 request" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_leaves_the_jobs_to_the_dedicated_scheduler_when_told_so(settings, launch):
    server = launch("serve", "serve", "--port", str(free_port()), env={"CIVICFLOW_SCHEDULER": "dedicated"})
    until(lambda: server.says("civicflow serving on"), "serve started", timeout=60, processes=(server,))
    assert server.stop() == 0
    assert "timers, mail and digests are the dedicated scheduler's: run `civicflow scheduler`" in server.log()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_refuses_an_unknown_scheduler_mode_naming_the_setting(settings, civicflow_env):
    result = subprocess.run(
        [civicflow_command(), "serve", "--port", str(free_port())],
        env={**civicflow_env, "CIVICFLOW_SCHEDULER": "both"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert 'CIVICFLOW_SCHEDULER: "both" is neither embedded nor dedicated.' in result.stderr
