"""Staff as colleagues meet them: the active users a person is chosen from, by name, and who holds each role."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Department, User, UserRole


def active_people(session: Session) -> tuple[tuple[str, str], ...]:
    """Every active user as (username, "Pat Lee, Parks and Recreation"), by name: what a person is chosen from."""
    rows = session.execute(
        select(User.username, User.display_name, Department.name)
        .outerjoin(Department, Department.id == User.department_id)
        .where(User.active.is_(True))
        .order_by(User.display_name, User.username)
    )
    return tuple((username, f"{name}, {department}" if department else name) for username, name, department in rows)


def names_of(session: Session, usernames: list[str]) -> dict[str, str]:
    """The display names of these usernames (active or not), for reading a record that names people."""
    if not usernames:
        return {}
    rows = session.execute(select(User.username, User.display_name).where(User.username.in_(sorted(set(usernames)))))
    return dict(rows.all())


def holders_of_roles(session: Session) -> dict[str, list[str]]:
    """The display names of the active users holding each granted role, by role code, by name."""
    rows = session.execute(
        select(UserRole.role, User.display_name)
        .join(User, User.id == UserRole.user_id)
        .where(User.active.is_(True))
        .order_by(User.display_name)
    )
    holders: dict[str, list[str]] = {}
    for role, name in rows:
        holders.setdefault(role, []).append(name)
    return holders


def department_heads(session: Session) -> list[tuple[str, str]]:
    """Each department with a head: (department name, head's display name), by department name."""
    rows = session.execute(
        select(Department.name, User.display_name)
        .join(User, User.id == Department.head_id)
        .where(User.active.is_(True))
        .order_by(Department.name)
    )
    return [(department, name) for department, name in rows]
