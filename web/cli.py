"""The `civicflow` command: database, demo, server, scheduler, users, audit, mail, timers and digests (docs/api.md)."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from engine.db.connection import make_engine, make_sessionmaker
from engine.db.migrate import upgrade
from engine.db.models import OutboxMail, ProcessInstance
from engine.errors import CivicflowError
from engine.mail import outbox
from engine.records import audit
from engine.settings import Settings
from engine.time import clock
from engine.time import scheduler as jobs
from engine.versions import shipped

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except CivicflowError as exc:
        _fail(exc)


def _sessions():
    settings = _settings()
    engine = make_engine(settings.database_url)
    return settings, engine, make_sessionmaker(engine)


def _fail(exc: CivicflowError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    for name, messages in exc.fields.items():
        for message in messages:
            click.echo(f"  {name}: {message}", err=True)
    sys.exit(2)


@click.group()
def main():
    """civicflow: a city's social-media policy procedures as auditable workflows."""
    # CIVICFLOW_NOW pins the clock of this process (tests, an operator's dry run): engine/time/clock.py.
    try:
        clock.pin_from_environment()
    except CivicflowError as exc:
        _fail(exc)


def _pinned_note() -> str:
    """What a long-running command says when CIVICFLOW_NOW pins its clock: it never moves on its own."""
    moment = clock.pinned()
    return "" if moment is None else f"; the clock is pinned to {moment:%Y-%m-%dT%H:%M:%SZ} ({clock.NOW_SETTING})"


@main.group()
def db():
    """The database."""


@db.command("upgrade")
def db_upgrade():
    """Create or migrate the database, and load the diagrams of workflows/."""
    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        changed = shipped.sync_workflows(session)
        session.commit()
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")
    for model in changed:
        if model.published:
            click.echo(f"published {model.key} version {model.number} ({model.version_hash[:12]})")
        else:
            click.echo(
                f"stored {model.key} version {model.number} ({model.version_hash[:12]}) from workflows/; "
                "the version an administrator published stays in use"
            )


@main.command()
@click.option("--password", help="Give every demo user this password instead of a new random one.")
def demo(password):
    """A ready demo: departments, the registry, one user per role; prints the logins."""
    from engine.demo import load_demo

    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        shipped.sync_workflows(session)
        try:
            logins = load_demo(session, password)
        except CivicflowError as exc:
            _fail(exc)
        session.commit()
    click.echo(f"demo data in {engine.url.render_as_string(hide_password=True)}")
    click.echo("logins (new passwords on every run of `civicflow demo`):")
    width = max(len(name) for name, _, _ in logins)
    for name, secret, what in logins:
        click.echo(f"  {name.ljust(width)}  {secret}  {what}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option(
    "--production",
    is_flag=True,
    help="gunicorn with several workers (web/gunicorn_conf.py), without the scheduler: run `civicflow scheduler`.",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="With --production.")
def serve(host, port, threads, production, workers):
    """The web app and API: waitress, with the scheduler's jobs on the embedded default (SQLite); or gunicorn."""
    if production:
        _serve_production(host, port, threads, workers)
    from waitress import serve as waitress_serve

    from web import create_app
    from web.serving import BodyLimit, waitress_options

    settings = _settings()
    if "CIVICFLOW_SECURE_COOKIES" not in os.environ and host in LOOPBACK:
        # Plain http on this machine only (the embedded demo); anywhere else cookies need HTTPS.
        settings = dataclasses.replace(settings, secure_cookies=False)
    try:
        mode = jobs.configured_mode(settings)
    except CivicflowError as exc:
        _fail(exc)
    app = create_app(settings=settings)
    _quiet_libraries()
    factory = app.extensions["civicflow.sessions"]
    running = None
    if mode == jobs.EMBEDDED:
        running = jobs.start_embedded(lambda: factory(info={"settings": settings}), settings)
        app.extensions["civicflow.mail_wake"] = lambda: jobs.wake(running)
        doing = f"with the scheduler: {jobs.describe(jobs.EVERY)}"
    else:
        doing = "timers, mail and digests are the dedicated scheduler's: run `civicflow scheduler`"
    # waitress stops on SystemExit as on Ctrl-C; turning SIGTERM into one lets the scheduler stop cleanly too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    click.echo(f"civicflow serving on http://{host}:{port}/ ({doing}{_pinned_note()})")
    click.echo(f"the public's page (no login): http://{host}:{port}/public/")
    try:
        waitress_serve(
            BodyLimit(app), host=host, port=port, threads=threads, ident="civicflow", **waitress_options(settings)
        )
    finally:
        if running is not None:
            running.shutdown()


def _serve_production(host: str, port: int, threads: int, workers: int) -> None:
    """Become gunicorn with web/gunicorn_conf.py: `workers` processes of `threads` threads, no scheduler."""
    settings = _settings()  # wrong settings stop here, with the variable named, before any worker starts
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    click.echo(f"civicflow serving on http://{host}:{port}/ with gunicorn: {workers} workers, database {where}")
    click.echo("timers, mail and digests are the dedicated scheduler's: run `civicflow scheduler`")
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sys.stdout.flush()
    os.execv(  # noqa: S606 - this environment's own Python, running gunicorn
        sys.executable,
        [sys.executable, "-m", "gunicorn", "--config", "python:web.gunicorn_conf", "--bind", bind]
        + ["--workers", str(workers), "--threads", str(threads)],
    )


def _quiet_libraries() -> None:
    """Keep SpiffWorkflow's every task state change and Alembic's start-up notes out of the log."""
    for name in ("spiff", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _exit_on_sigterm(_signum, _frame):
    sys.exit(0)


def _every(flag: str, job: str, what: str):
    """A scheduler option: the seconds between two passes of one job."""
    return click.option(
        f"--{flag}-every",
        type=click.FloatRange(min=0.1),
        default=jobs.EVERY[job],
        show_default=True,
        metavar="SECONDS",
        help=f"Seconds between passes of {what}.",
    )


@main.command("scheduler")
@_every("timers", jobs.TIMERS, "the timers job")
@_every("mail", jobs.MAIL_SENDER, "the mail sender")
@_every("digest", jobs.DIGEST, "the daily digest")
def scheduler_command(timers_every, mail_every, digest_every):
    """The dedicated scheduler process: timers, mail and the daily digest; stops cleanly on SIGTERM or Ctrl-C."""
    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    every = {jobs.TIMERS: timers_every, jobs.MAIL_SENDER: mail_every, jobs.DIGEST: digest_every}
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    click.echo(f"civicflow scheduler on {socket.gethostname()} (pid {os.getpid()}), database {where}")
    click.echo(f"jobs: {jobs.describe(every)}; mail to {settings.smtp_host}:{settings.smtp_port}{_pinned_note()}")
    if not settings.database_url.startswith("sqlite"):
        click.echo("one scheduler at a time: it takes a PostgreSQL advisory lock, or waits while another holds it")
    try:
        status = jobs.run_dedicated(settings, every=every)
    except OperationalError as exc:
        click.echo(f"error: the database at {where} cannot be used: {str(exc.orig or exc).strip()}", err=True)
        sys.exit(1)
    sys.exit(status)


@main.group()
def users():
    """People and their roles."""


@users.command("add")
@click.argument("username")
@click.option("--password", required=True)
@click.option("--name", help="Full name.")
@click.option("--email")
@click.option("--department", help="Department code.")
@click.option("--role", "roles", multiple=True, help="Role code; repeat for several.")
@click.option("--head-of", "head_of", multiple=True, help="Department code this user heads.")
def users_add(username, password, name, email, department, roles, head_of):
    """Add a user."""
    from engine.people.users import create_user

    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        try:
            user = create_user(
                session,
                username,
                password,
                name=name,
                email=email,
                department=department,
                roles=list(roles),
                head_of=list(head_of),
            )
        except CivicflowError as exc:
            _fail(exc)
        session.commit()
        click.echo(f"added {user.username} ({user.display_name})")


@main.group("audit")
def audit_group():
    """The audit trail."""


@audit_group.command("verify")
def audit_verify():
    """Check the audit hash chain; non-zero exit at the first broken link."""
    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        result = audit.verify(session)
    if result.ok:
        click.echo(f"audit chain intact: {result.checked} events")
        return
    click.echo(
        f"audit chain BROKEN at event {result.broken_at}: {result.reason} "
        f"({result.checked} events before it are intact)",
        err=True,
    )
    sys.exit(1)


@main.group()
def mail():
    """The mail outbox."""


@mail.command("send")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="At most this many letters.")
def mail_send(limit):
    """Send the letters that are due, once; non-zero exit if the mail server cannot be reached."""
    settings, engine, factory = _sessions()
    try:
        upgrade(engine)
        delivery = outbox.deliver_due(lambda: factory(info={"settings": settings}), settings, limit=limit)
        with factory(info={"settings": settings}) as session:
            waiting = outbox.pending_count(session)
    finally:
        engine.dispose()
    click.echo(f"sent {delivery.sent}, retrying {delivery.retrying}, failed {delivery.failed}, still waiting {waiting}")
    if delivery.unreachable:
        click.echo(f"error: {delivery.unreachable} (nothing is lost: the letters wait for the next try)", err=True)
        sys.exit(1)


def _iso_time(_ctx, _param, value: str | None) -> datetime | None:
    """--now: an ISO 8601 time, with an offset or in the City's local time."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f'"{value}" is not an ISO 8601 time like 2026-03-02T09:00 (the City\'s time) or 2026-03-02T15:00Z.'
        )


def _pinned(moment: datetime, settings: Settings) -> datetime:
    """The moment, a local time taken in the City's zone; say which moment it is."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(settings.timezone))
    local = moment.astimezone(ZoneInfo(settings.timezone))
    click.echo(f"as of {local:%a %Y-%m-%d %H:%M %Z} ({clock.as_utc(moment):%Y-%m-%dT%H:%M:%SZ})")
    return moment


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _letters_after(factory, settings: Settings, last_id: int) -> int:
    with factory(info={"settings": settings}) as session:
        return session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.id > last_id))


def _last_letter(factory, settings: Settings) -> int:
    with factory(info={"settings": settings}) as session:
        return session.scalar(select(func.max(OutboxMail.id))) or 0


SENT_BY = "(sent by the scheduler or `civicflow mail send`)"


@main.group("timers")
def timers_group():
    """Timers: reminders and escalations of reviews, and letters promised by a deadline."""


@timers_group.command("fire")
@click.option(
    "--now",
    "moment",
    required=True,
    callback=_iso_time,
    metavar="ISO-TIME",
    help="Fire what is due as of this time (with an offset, or the City's local time).",
)
def timers_fire(moment):
    """Fire every timer due as of --now, and escalate promised letters late by then; one line per request."""
    from engine.time import timers

    settings, engine, factory = _sessions()
    try:
        upgrade(engine)
        moment = _pinned(moment, settings)
        last_id = _last_letter(factory, settings)
        with clock.frozen_at(moment):
            fired = timers.fire_due(lambda: factory(info={"settings": settings}))
            late = timers.escalate_late_letters(lambda: factory(info={"settings": settings}))
        queued = _letters_after(factory, settings, last_id)
        with factory(info={"settings": settings}) as session:
            hidden = set(
                session.scalars(
                    select(ProcessInstance.id).where(
                        ProcessInstance.id.in_(sorted({f.instance_id for f in [*fired, *late]})),
                        ProcessInstance.restricted,
                    )
                )
            )
    finally:
        engine.dispose()

    def about(done) -> str:
        # A restricted (police investigative) request's title can name an undercover profile.
        return f"request {done.instance_id}" + ("" if done.instance_id in hidden else f" ({done.title})")

    for done in fired:
        click.echo(
            f"{about(done)}: not fired: {done.error}"
            if done.error
            else f"{about(done)}: fired {', '.join(done.timers)}"
        )
    for done in late:
        click.echo(f"{about(done)}: {', '.join(done.timers)}")
    ok = [f for f in fired if f.error is None]
    failed = len(fired) - len(ok)
    summary = (
        f"{_plural(sum(len(f.timers) for f in ok), 'timer')} fired on {_plural(len(ok), 'request')}"
        + (f"; {_plural(len(late), 'late letter')} escalated" if late else "")
        + f"; {_plural(queued, 'letter')} queued {SENT_BY}"
    )
    click.echo(summary)
    if failed:
        click.echo(
            f"error: {_plural(failed, 'request')} could not be fired (see above); their timers stay due", err=True
        )
        sys.exit(1)


@main.group("digest")
def digest_group():
    """The daily digest of open and overdue tasks."""


@digest_group.command("send")
@click.option(
    "--now",
    "moment",
    callback=_iso_time,
    metavar="ISO-TIME",
    help="Write the digests due as of this time (with an offset, or the City's local time).",
)
def digest_send(moment):
    """Write today's digests once (each person's once per day); the scheduler or `mail send` sends them."""
    from engine.mail import digest

    settings, engine, factory = _sessions()
    try:
        upgrade(engine)
        moment = _pinned(moment, settings) if moment is not None else clock.now()
        with clock.frozen_at(moment):
            queued = digest.send_due_digests(lambda: factory(info={"settings": settings}))
    finally:
        engine.dispose()
    when, _ = digest.timing(settings, moment)
    if when == digest.DUE:
        click.echo(f"{_plural(queued, 'digest')} queued {SENT_BY}; each person gets one a day")
    else:
        click.echo(f"no digests{' yet' if when == digest.TOO_EARLY else ''}: {digest.why_not_due(settings, moment)}")


# The recovery commands (incidents, instances) are in web/cli_recovery.py and register on `main`.
from web import cli_recovery  # noqa: E402,F401

if __name__ == "__main__":
    main()
