"""The scheduler as real processes: `civicflow scheduler` (one at a time on PostgreSQL, safe to kill) and `serve`.

Each test lives at one moment, and so does every process it starts (CIVICFLOW_NOW): the run's
(CIVICFLOW_TEST_NOW), or the machine's time when the test starts. Requests are started six weeks before
it, so that their review's reminder and overdue timers are due. Whether a scheduler starting at that moment
writes the day's digests (on a business day from the digest time until closing) is the engine's rule, and the
tests expect what it says, so they pass at any hour; the digest's own test pins its moments. The tests wait
for what the processes do by polling the database and their logs; time itself is never moved by sleeping.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.db.models import AuditEvent, Digest, OutboxMail, Timer
from engine.mail import digest
from engine.requests import services
from engine.time import clock
from engine.time.reminders import ESCALATION_LETTER, REMINDER_LETTER
from tests.helpers import KEY, SECRET, START, civicflow_command, civicflow_environment
from tests.smtp import free_port

CITY = ZoneInfo("America/Chicago")
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


def digests_due(settings) -> bool:
    """Whether a scheduler starting now writes the day's digests (the engine's rule: a business day, digest time
    to closing)."""
    return digest.timing(settings, clock.now())[0] == digest.DUE


def letter_names(sessions, messages) -> list[str]:
    """The outbox letter each message sent was (reminder, escalation, digest...), by its Message-ID."""
    with sessions() as session:
        names = dict(session.execute(select(OutboxMail.id, OutboxMail.letter)).all())
    return [names[int(message["Message-ID"].strip("<>").split("@")[0].removeprefix("outbox-"))] for message in messages]


def not_digests(sessions, messages):
    """The messages that are not daily digests."""
    return [m for m, name in zip(messages, letter_names(sessions, messages), strict=True) if name != "digest"]


def digest_recipients(sessions) -> list[str]:
    """Everyone a digest was queued for, once per digest."""
    with sessions() as session:
        return sorted(
            address
            for recipients in session.scalars(select(OutboxMail.recipients).where(OutboxMail.letter == "digest"))
            for address in recipients
        )


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


@pytest.fixture(autouse=True)
def one_moment():
    """The test, and every process it starts, at one moment: the run's pinned one, or the machine's time now."""
    with clock.frozen_at(clock.now()):
        yield


@pytest.fixture
def civicflow_env(settings, tmp_path, smtp_server):
    """The environment of a `civicflow` process: the test's database and moment, mail to the loopback SMTP server."""
    return civicflow_environment(
        tmp_path,
        database_url=settings.database_url,
        secret_key=SECRET,
        smtp_host=smtp_server.host,
        smtp_port=str(smtp_server.port),
        mail_from=MAIL_FROM,
    )


@pytest.fixture
def launch(civicflow_env, tmp_path):
    """Start `civicflow ARGS...` in the background: launch(name, *args); every process is ended after the test.

    The process lives at the test's moment when it starts (CIVICFLOW_NOW), unless env= says another.
    """
    started: list[Process] = []

    def start(name: str, *args: str, env: dict | None = None) -> Process:
        moment = {clock.NOW_SETTING: clock.now().isoformat()}
        process = Process(name, list(args), {**civicflow_env, **moment, **(env or {})}, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.running:
            process.stop(signal.SIGKILL)


SCHEDULER = ("scheduler", "--timers-every", "1", "--mail-every", "1")


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_two_schedulers_on_one_postgres_database_fire_each_timer_once_and_the_second_waits_then_takes_over(
    session, sessions, settings, people, smtp_server, launch
):
    # At a moment the day's digests are due, the holder writes the Parks head's (40 approvals wait), once.
    digests = ["parks_head@example.org"] if digests_due(settings) else []
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
    until(lambda: holder.says("digest: "), "the digest's first pass", processes=both)
    # Every letter is sent, once: each request's reminder to the Parks head, its escalation to the
    # Communications Manager.
    until(lambda: len(smtp_server.messages) >= 80 + len(digests), "every letter sent", processes=both)
    letters = not_digests(sessions, smtp_server.messages)
    assert len([m for m in letters if "parks_head@example.org" in m["X-Envelope-To"]]) == 40
    assert len([m for m in letters if "comms@example.org" in m["X-Envelope-To"]]) == 40
    assert digest_recipients(sessions) == digests
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
    until(lambda: len(smtp_server.messages) >= 90 + len(digests), "the new letters sent", processes=(waiter,))
    # The one that took over writes no second digest for the day (nor any, if none was due).
    until(lambda: waiter.says("digest: none now: "), "the new holder's digest pass", processes=(waiter,))
    assert waiter.stop() == 0
    assert waiter.log().count("another civicflow scheduler holds the lock; waiting") == 1
    assert len(not_digests(sessions, smtp_server.messages)) == 90
    assert len(smtp_server.messages) == 90 + len(digests)
    assert digest_recipients(sessions) == digests
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


MONDAY = datetime(2026, 12, 7, tzinfo=CITY)  # a business day


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_scheduler_started_in_the_day_writes_the_days_digests_once_and_none_before_the_time_or_after_closing(
    session, sessions, people, smtp_server, launch
):
    """The digest goes out each morning the City is open: a scheduler that was down at 07:00 writes it when it
    starts, a restart the same day writes none again, and one started after closing time leaves the day out."""
    with clock.frozen_at(MONDAY.replace(hour=9)):
        start_due_requests(session, people.requester, 1)

    def scheduler_at(moment: datetime, says: str) -> None:
        process = launch(f"scheduler-{moment:%a-%H%M}", *SCHEDULER, env={clock.NOW_SETTING: moment.isoformat()})
        until(lambda: process.says(says), says, processes=(process,))
        if "queued" in says:
            until(lambda: digest_recipients(sessions) and len(smtp_server.messages) >= 3, "the digest sent")
        assert process.stop() == 0
        assert "Traceback" not in process.log()

    scheduler_at(MONDAY.replace(hour=6, minute=59), "digest: none now: they are written from 07:00 (America/Chicago)")
    scheduler_at(MONDAY.replace(hour=9), "digest: queued 1 digest")
    scheduler_at(
        MONDAY.replace(hour=10),
        "digest: none now: today's were written already (each person gets one a day), or nobody has open tasks",
    )
    scheduler_at(
        MONDAY.replace(day=8, hour=17),
        "digest: none now: they are written until closing time, 16:30 (America/Chicago); "
        "the next ones on the next business morning",
    )
    # Monday's digest went to the one person with a task waiting (the Parks head), once; everyone was
    # considered once on Monday, and nobody on Tuesday evening.
    assert digest_recipients(sessions) == ["parks_head@example.org"]
    assert [
        m["Subject"] for m in smtp_server.to("parks_head@example.org") if m["Subject"].startswith("civicflow:")
    ] == ["civicflow: 1 open task, 1 overdue"]
    with sessions() as s:
        assert s.execute(select(Digest.day, func.count()).group_by(Digest.day)).all() == [(MONDAY.date(), 9)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_on_sqlite_fires_due_timers_and_sends_their_letters_with_its_embedded_scheduler(
    session, sessions, settings, people, smtp_server, launch
):
    digests = ["parks_head@example.org"] if digests_due(settings) else []
    [request_id] = start_due_requests(session, people.requester, 1)
    server = launch("serve", "serve", "--port", str(free_port()))
    until(lambda: fired_state(sessions, [request_id]) == {request_id: FIRED}, "the timers fired", processes=(server,))
    # No other process runs: the server's own mail sender delivers both letters (and the day's digest, if due).
    until(lambda: len(smtp_server.messages) >= 2 + len(digests), "the letters sent", processes=(server,))
    letters = not_digests(sessions, smtp_server.messages)
    [reminder] = [m for m in letters if "parks_head@example.org" in m["X-Envelope-To"]]
    [escalation] = [m for m in letters if "comms@example.org" in m["X-Envelope-To"]]
    assert digest_recipients(sessions) == digests
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
