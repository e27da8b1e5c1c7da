"""The `civicflow` command: database, demo, server, users, audit and mail (API.md, "Command line")."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

import click

from engine import audit, outbox, services
from engine.db import make_engine, make_sessionmaker
from engine.errors import CivicflowError
from engine.migrate import upgrade
from engine.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _sessions():
    settings = Settings.from_env()
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


@main.group()
def db():
    """The database."""


@db.command("upgrade")
def db_upgrade():
    """Create or migrate the database, and load the diagrams of workflows/."""
    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        changed = services.sync_workflows(session)
        session.commit()
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")
    for model in changed:
        click.echo(f"published {model.key} version {model.version_hash[:12]}")


@main.command()
@click.option("--password", help="Give every demo user this password instead of a new random one.")
def demo(password):
    """A ready demo: departments, the registry, one user per role; prints the logins."""
    from engine.demo import load_demo

    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        services.sync_workflows(session)
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
def serve(host, port, threads):
    """The web app and API (waitress)."""
    from waitress import serve as waitress_serve

    from web import create_app
    from web.mailer import EVERY_SECONDS, start_mail_sender, wake

    settings = Settings.from_env()
    if "CIVICFLOW_SECURE_COOKIES" not in os.environ and host in LOOPBACK:
        # Plain http on this machine only (the embedded demo); anywhere else cookies need HTTPS.
        settings = dataclasses.replace(settings, secure_cookies=False)
    app = create_app(settings=settings)
    factory = app.extensions["civicflow.sessions"]
    sender = start_mail_sender(lambda: factory(info={"settings": settings}), settings)
    app.extensions["civicflow.mail_wake"] = lambda: wake(sender)
    # waitress stops on SystemExit as on Ctrl-C; turning SIGTERM into one lets the sender stop cleanly too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    click.echo(f"civicflow serving on http://{host}:{port}/ (sending mail every {EVERY_SECONDS:g} s)")
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="civicflow")
    finally:
        sender.shutdown()


def _exit_on_sigterm(_signum, _frame):
    sys.exit(0)


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
    from engine.users import create_user

    settings, engine, factory = _sessions()
    upgrade(engine)
    with factory(info={"settings": settings}) as session:
        try:
            user = create_user(session, username, password, name=name, email=email, department=department,
                               roles=list(roles), head_of=list(head_of))
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
    click.echo(f"audit chain BROKEN at event {result.broken_at}: {result.reason} "
               f"({result.checked} events before it are intact)", err=True)
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
    click.echo(f"sent {delivery.sent}, retrying {delivery.retrying}, failed {delivery.failed}, "
               f"still waiting {waiting}")
    if delivery.unreachable:
        click.echo(f"error: {delivery.unreachable} (nothing is lost: the letters wait for the next try)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
