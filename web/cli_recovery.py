"""The recovery commands: `incidents list`, `instances migrate|retry`, `users set-password|unlock`.

The command line is run by the City's IT on the server itself: it acts as an administrator named after the
operating-system account that ran it, and the history says so ("root (command line)").
"""

from __future__ import annotations

import getpass

import click
from sqlalchemy import select

from engine.db.migrate import upgrade
from engine.db.models import User
from engine.db.statuses import InstanceStatus
from engine.errors import CivicflowError, Invalid
from engine.people import recovery
from engine.people.roles import ADMIN
from engine.people.users import Actor
from engine.requests import incidents, services
from engine.versions import migration
from web import login_limits
from web.cli import _fail, _sessions, main, users


def operator() -> Actor:
    """The administrator a command-line action is recorded as."""
    account = getpass.getuser()
    return Actor(
        id=None,
        username=f"cli:{account}"[:64],
        display_name=f"{account} (command line)",
        roles=frozenset({ADMIN}),
        department_id=None,
        department_code=None,
    )


def _run(action) -> None:
    """Run an action in one transaction on the configured database; a refusal exits 2 with its reasons."""
    settings, engine, factory = _sessions()
    try:
        upgrade(engine)
        with factory(info={"settings": settings}) as session:
            try:
                message = action(session)
                session.commit()
            except CivicflowError as exc:
                session.rollback()
                for problem in getattr(exc, "problems", []):
                    click.echo(f"  {problem.element_id or 'diagram'}: {problem.message}", err=True)
                _fail(exc)
        click.echo(message)
    finally:
        engine.dispose()


@main.group("incidents")
def incidents_group():
    """Requests held at a failed step of their diagram."""


@incidents_group.command("list")
@click.option("--status", type=click.Choice(incidents.STATUSES), default="open", show_default=True)
def incidents_list(status):
    """The incidents, newest first: request, procedure and version, the failed step, and what it said."""

    def listing(session) -> str:
        rows = incidents.list_incidents(session, operator(), status)
        if not rows:
            return f"no {status} incidents"
        lines = []
        for row in rows:
            lines.append(
                f"incident {row.id}  request {row.instance_id}  {row.instance.process_key} v{row.model.number}  "
                f"{row.at:%Y-%m-%d %H:%M} UTC  step {row.element_id or '?'}: {row.message}"
            )
        return "\n".join(lines)

    _run(listing)


@main.group("instances")
def instances_group():
    """Requests: move one to another version of its procedure, retry a failed step."""


@instances_group.command("migrate")
@click.argument("instance_id", type=int)
@click.option("--version", "number", type=click.IntRange(min=1), required=True, help="The version to move it to.")
def instances_migrate(instance_id, number):
    """Move a running or held request to version N of its procedure (refused, with reasons, if it cannot move)."""

    def move(session) -> str:
        instance = migration.migrate_instance(session, operator(), instance_id, number)
        return f"request {instance.id} now follows version {number} of {instance.process_key} ({instance.status})"

    _run(move)


@instances_group.command("retry")
@click.argument("instance_id", type=int)
def instances_retry(instance_id):
    """Run a held request's failed step again."""

    def retry(session) -> str:
        instance = services.retry_instance(session, operator(), instance_id)
        if instance.status == InstanceStatus.ERROR:
            held = incidents.open_incident(session, instance)
            return f"request {instance.id} failed again and is still held: {held.message if held else ''}"
        return f"request {instance.id} moved on ({instance.status})"

    _run(retry)


def _user_id(session, username: str) -> int:
    found = session.scalar(select(User.id).where(User.username == username))
    if found is None:
        raise Invalid(f'No user named "{username}".', {"username": [f'No user named "{username}".']})
    return found


@users.command("set-password")
@click.argument("username")
@click.password_option("--password", help="The new password (asked for, twice, if not given).")
def users_set_password(username, password):
    """Give a person a new password (NIST SP 800-63B rules); their sessions and API tokens end."""

    def set_it(session) -> str:
        person = recovery.reset_by_admin(session, operator(), _user_id(session, username), password)
        return f"{person.username} has a new password; their sessions and API tokens have ended"

    _run(set_it)


@users.command("unlock")
@click.argument("username")
def users_unlock(username):
    """Clear the sign-in limits counted against a person's account, so they may log in at once."""

    def clear(session) -> str:
        person = recovery.unlock(
            session, operator(), _user_id(session, username), lambda name: login_limits.forget_account(session, name)
        )
        return f"{person.username} may log in again at once"

    _run(clear)
