"""Helpers for the procedures' tests: real images, registry accounts, and completing the one open task."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from engine.db.models import Account, AccountManager, User
from engine.people import users
from engine.people.users import department_by_code
from engine.requests import services
from engine.time import clock


def png_bytes(width: int = 64, height: int = 48, color=(200, 30, 30)) -> bytes:
    """A real PNG image."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def add_account(
    session, name: str, url: str, department: str, managers: list[str], *, platform="facebook", investigative=False
) -> Account:
    """A registry account with its managers (approved as demo data)."""
    account = Account(
        platform=platform,
        name=name,
        url=url,
        department=department_by_code(session, department),
        status="active",
        marked_as_city=True,
        links_official_site=True,
        public_notice_linked=True,
        investigative=investigative,
    )
    for username in managers:
        account.managers.append(
            AccountManager(
                user=session.scalar(select(User).where(User.username == username)),
                approved_by="Test data",
                approved_at=clock.utcnow(),
            )
        )
    session.add(account)
    session.commit()
    return account


def actor(session, username: str):
    """The Actor of a user as they are now (their roles, headships and accounts)."""
    return users.actor_for(session, session.scalar(select(User).where(User.username == username)))


def act(session, who, instance, form_key: str, data: dict):
    """Complete the instance's one open task with this form key as `who`, and commit."""
    session.commit()  # a fresh transaction: on SQLite a read snapshot older than another writer cannot write
    [task] = [t for t in services.open_tasks_of(session, instance) if t.form_key == form_key]
    done = services.complete_task(session, who, task.id, data)
    session.commit()
    return done


def open_form_keys(session, instance) -> list[str]:
    """The form keys of the instance's open tasks."""
    return sorted(t.form_key for t in services.open_tasks_of(session, instance))
