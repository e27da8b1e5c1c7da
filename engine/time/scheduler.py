"""The scheduler: timers, the mail sender and the daily digest as interval jobs (docs/architecture.md, "Time, timers").

Every job reads the database (the `timer` and `outbox_mail` tables), so any number of passes can run
anywhere without sharing APScheduler state. `run_dedicated` is the `civicflow scheduler` process: on
PostgreSQL it first takes a session-level advisory lock, so a second scheduler started by mistake
waits and takes over when the first dies (due rows are claimed with FOR UPDATE SKIP LOCKED as well).
`start_embedded` runs the same jobs in a background thread of `civicflow serve` on one machine.

Stopping is clean: once the scheduler stops, a job's session factory opens no further transaction,
so a long pass ends after the request or letter it is in; what it did not reach stays due.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from types import MappingProxyType

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.errors import Invalid
from engine.mail import digest, outbox
from engine.settings import Settings
from engine.time import clock, timers

TIMERS, MAIL_SENDER, DIGEST = "timers", "mail_sender", "digest"
# Seconds between passes of each job.
EVERY = MappingProxyType({TIMERS: 60.0, MAIL_SENDER: 15.0, DIGEST: 300.0})
EMBEDDED, DEDICATED = "embedded", "dedicated"
# The advisory lock of the one dedicated scheduler: "civicflo" as a bigint.
LOCK_KEY = int.from_bytes(b"civicflo", "big")
LOCK_RETRY_SECONDS = 5.0
LOCK_CHECK_SECONDS = 30.0
# After this long, a stopping scheduler says that it waits for a pass to finish its transaction.
STOP_NOTICE_SECONDS = 5.0

log = logging.getLogger("civicflow.scheduler")


class _SkipOverlapNotice(logging.Filter):
    """A pass still running when its next run comes is skipped on purpose (max_instances=1): no warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


# APScheduler logs every run at INFO; the jobs log what they did themselves, so keep only its warnings.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotice())


class Stopping(Exception):
    """The scheduler is stopping: a job may not open another transaction."""


def configured_mode(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """Where the jobs run (CIVICFLOW_SCHEDULER): embedded in serve by default on SQLite, dedicated otherwise."""
    value = environ.get("CIVICFLOW_SCHEDULER", "").strip().lower()
    if not value:
        return EMBEDDED if settings.database_url.startswith("sqlite") else DEDICATED
    if value not in (EMBEDDED, DEDICATED):
        raise Invalid(
            "A setting is not valid.", {"CIVICFLOW_SCHEDULER": [f'"{value}" is neither {EMBEDDED} nor {DEDICATED}.']}
        )
    return value


def describe(every: Mapping[str, float]) -> str:
    """The jobs and their intervals, for the startup line."""
    return ", ".join(f"{name} every {_seconds(seconds)}" for name, seconds in every.items())


def _seconds(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Jobs:
    """The three jobs over a session factory; each logs what it did, and only when it did something."""

    def __init__(self, sessions: Callable[[], Session], settings: Settings, stopping: threading.Event | None = None):
        self.settings = settings
        self.stopping = stopping or threading.Event()
        # Called when a pass has queued letters, so that the sender delivers them now rather than later.
        self.letters_queued: Callable[[], None] = lambda: None
        self._sessions = sessions
        self._running = 0
        self._idle = threading.Condition()
        self._digest_said = False

    def sessions(self) -> Session:
        """A session for the next transaction of a pass, unless the scheduler is stopping."""
        if self.stopping.is_set():
            raise Stopping
        return self._sessions()

    def timers(self) -> None:
        """Fire every due timer (one request per transaction), then escalate promised letters that are late."""
        with self._pass(TIMERS):
            fired = timers.fire_due(self.sessions)
            late = timers.escalate_late_letters(self.sessions)
            done = [f for f in fired if f.error is None]
            failed = len(fired) - len(done)
            if done or failed:
                count = sum(len(f.timers) for f in done)
                log.info(
                    "timers: fired %s on %s%s",
                    _plural(count, "timer"),
                    _plural(len(done), "request"),
                    f"; {_plural(failed, 'request')} could not be fired (see above)" if failed else "",
                )
            if late:
                log.info("timers: escalated %s not sent by their deadline", _plural(len(late), "promised letter"))
            if done or late:
                self.letters_queued()

    def mail_sender(self) -> None:
        """Send the due letters of the outbox; a mail server that cannot be reached is a warning."""
        with self._pass(MAIL_SENDER):
            delivery = outbox.deliver_due(self.sessions, self.settings)
            if delivery.unreachable:
                log.warning(
                    "mail: %s; sent %d, retrying %d, failed %d",
                    delivery.unreachable,
                    delivery.sent,
                    delivery.retrying,
                    delivery.failed,
                )
            elif delivery.sent or delivery.retrying or delivery.failed:
                log.info("mail: sent %d, retrying %d, failed %d", delivery.sent, delivery.retrying, delivery.failed)

    def digest(self) -> None:
        """Write today's digests while they are due (once per person and day); the first pass says what it did."""
        with self._pass(DIGEST):
            moment = clock.now()
            queued = digest.send_due_digests(self.sessions)
            if queued:
                log.info("digest: queued %s", _plural(queued, "digest"))
                self.letters_queued()
            elif not self._digest_said:
                # A scheduler (re)started in the day says why it sends no digest, so that nobody waits for one.
                why = digest.why_not_due(self.settings, moment)
                log.info(
                    "digest: none now: %s",
                    why or "today's were written already (each person gets one a day), or nobody has open tasks",
                )
            self._digest_said = True

    @contextmanager
    def _pass(self, name: str) -> Iterator[None]:
        """Count the pass as running (a stopping scheduler waits for it); log its failure in one place."""
        with self._idle:
            self._running += 1
        try:
            yield
        except Stopping:
            log.info("%s: stopped between two transactions; the rest waits for the next start", name)
        except OperationalError as exc:
            log.error("%s: the database could not be used: %s", name, str(exc.orig or exc).strip())
        except Exception:
            log.exception("%s: the pass failed", name)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no pass is running; False if one still is after `timeout` seconds (None: no limit)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)


class _Stoppable(BaseScheduler):
    """A scheduler whose shutdown first tells its jobs to open no further transaction."""

    jobs: Jobs

    def shutdown(self, wait: bool = True) -> None:
        """Stop the jobs between two transactions, then the scheduler."""
        self.jobs.stopping.set()
        super().shutdown(wait)


class EmbeddedScheduler(_Stoppable, BackgroundScheduler):
    """The jobs in a background thread of `civicflow serve`."""


class DedicatedScheduler(_Stoppable, BlockingScheduler):
    """The jobs in the foreground of `civicflow scheduler`."""


def _add_jobs(scheduler: BaseScheduler, jobs: Jobs, every: Mapping[str, float]) -> None:
    """Each job at its interval, the first pass at once; one pass of a job at a time, missed runs collapsed."""
    now = datetime.now(UTC)
    if MAIL_SENDER in every:

        def letters_queued() -> None:
            if not jobs.stopping.is_set():
                wake(scheduler)

        jobs.letters_queued = letters_queued
    for name, seconds in every.items():
        scheduler.add_job(
            getattr(jobs, name),
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=now,
        )


def _intervals(every: Mapping[str, float] | None, only: tuple[str, ...] | None) -> dict[str, float]:
    chosen = {**EVERY, **(every or {})}
    unknown = set(chosen) - set(EVERY)
    if unknown:
        raise ValueError(f"unknown scheduler jobs: {', '.join(sorted(unknown))}")
    return {name: chosen[name] for name in (only or tuple(EVERY))}


def start_embedded(
    sessions: Callable[[], Session],
    settings: Settings,
    *,
    every: Mapping[str, float] | None = None,
    only: tuple[str, ...] | None = None,
) -> EmbeddedScheduler:
    """Start the jobs (all, or `only` some) in a background scheduler; call .shutdown() to stop it."""
    jobs = Jobs(sessions, settings)
    scheduler = EmbeddedScheduler(timezone=UTC)
    scheduler.jobs = jobs
    _add_jobs(scheduler, jobs, _intervals(every, only))
    scheduler.start()
    return scheduler


def wake(scheduler: BaseScheduler) -> None:
    """Run the mail sender now rather than at its next interval (a request just committed a letter)."""
    try:
        scheduler.modify_job(MAIL_SENDER, next_run_time=datetime.now(UTC))
    except (JobLookupError, SchedulerNotRunningError):
        log.warning("mail: the sender is not running; the letter waits in the outbox")


# ---- the dedicated process ---------------------------------------------------------------------------


def _hold_lock(url: str, stopping: threading.Event) -> Connection | None:
    """Take the scheduler's advisory lock on a connection of its own, waiting while another scheduler has it.

    None if the process was asked to stop while waiting. The lock is the session's: it is held while
    the connection stays open and released by PostgreSQL when the process dies.
    """
    name = f"civicflow scheduler {socket.gethostname()}:{os.getpid()}"[:63]
    engine = make_engine(url, poolclass=NullPool, connect_args={"application_name": name})
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    said = False
    while not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}):
        if not said:
            log.info("another civicflow scheduler holds the lock; waiting")
            said = True
        if stopping.wait(LOCK_RETRY_SECONDS):
            connection.close()
            engine.dispose()
            return None
    log.info("holding the scheduler lock; running the jobs")
    return connection


def run_dedicated(settings: Settings, *, every: Mapping[str, float] | None = None) -> int:
    """The `civicflow scheduler` process: run the jobs until SIGTERM or SIGINT; the exit status.

    Exits 1 if the connection holding the lock is lost (another scheduler may have taken over; a
    supervisor restarts this one, which then waits for the lock).
    """
    stopping, lost = threading.Event(), threading.Event()
    scheduler: DedicatedScheduler | None = None

    def stop(_signum=None, _frame=None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("stopping")
        if scheduler is not None and scheduler.running:
            _shutdown_soon(scheduler)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    postgres = not settings.database_url.startswith("sqlite")
    lock = _hold_lock(settings.database_url, stopping) if postgres else None
    if postgres and lock is None:
        log.info("stopped")
        return 0
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        factory = make_sessionmaker(engine)
        jobs = Jobs(lambda: factory(info={"settings": settings}), settings, stopping)
        scheduler = DedicatedScheduler(timezone=UTC)
        scheduler.jobs = jobs
        # A signal that came while the scheduler was starting: stop as soon as it runs.

        def stop_if_asked(_event) -> None:
            if stopping.is_set():
                _shutdown_soon(scheduler)

        scheduler.add_listener(stop_if_asked, EVENT_SCHEDULER_STARTED)
        _add_jobs(scheduler, jobs, _intervals(every, None))
        if lock is not None:
            scheduler.add_job(
                _check_lock,
                "interval",
                args=(lock, lost, stop),
                seconds=LOCK_CHECK_SECONDS,
                id="scheduler_lock",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        if not stopping.is_set():
            scheduler.start()  # returns once stopped
        if not jobs.wait_idle(STOP_NOTICE_SECONDS):
            log.info("waiting for the running pass to finish the transaction it is in")
            jobs.wait_idle(None)
    finally:
        engine.dispose()
        if lock is not None:
            lock.close()
            lock.engine.dispose()
    log.info("stopped")
    return 1 if lost.is_set() else 0


def _shutdown_soon(scheduler: BaseScheduler) -> None:
    """Shut the scheduler down from another thread: a signal handler's thread may hold its locks right now."""

    def shutdown() -> None:
        with suppress(SchedulerNotRunningError):
            scheduler.shutdown(wait=False)

    threading.Thread(target=shutdown, name="civicflow-scheduler-stop", daemon=True).start()


def _check_lock(lock: Connection, lost: threading.Event, stop: Callable[[], None]) -> None:
    """Stop the scheduler if the connection that holds its lock is gone."""
    try:
        lock.scalar(text("SELECT 1"))
    except OperationalError as exc:
        log.error(
            "lost the connection holding the scheduler lock (%s); stopping so that a supervisor restarts "
            "this scheduler",
            str(exc.orig or exc).strip(),
        )
        lost.set()
        stop()
