"""People and departments: creating users, logging in, passwords and sessions, API tokens.

Wrong passwords lock nobody out (a stranger could lock anyone out that way): the web layer limits attempts
per client address and per account (web/login_limits.py). A username with no usable account costs the same
work and gets the same answer as a wrong password.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import AccountManager, ApiToken, Department, User, UserRole
from engine.errors import Invalid, NotAuthenticated
from engine.people import passwords
from engine.people.roles import ADMIN, ADMINISTRATIVE_LIEUTENANT, DEPARTMENT_HEAD, GRANTABLE_ROLES, POLICE_DEPARTMENT
from engine.records import audit
from engine.time import clock

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MAX_USERNAME = 64
MIN_PASSWORD = passwords.MIN_LENGTH
MAX_PASSWORD = passwords.MAX_LENGTH
WRONG_CREDENTIALS = "Wrong username or password."


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user with their roles, department and headships, as the engine checks them.

    A member of the public filing through the public pages is an Actor with no id and no roles.
    """

    id: int | None
    username: str
    display_name: str
    roles: frozenset[str]
    department_id: int | None
    department_code: str | None
    headed_department_ids: frozenset[int] = field(default_factory=frozenset)
    headed_department_codes: frozenset[str] = field(default_factory=frozenset)
    # The registry accounts this person manages now (the Social Media Manager lane is per account).
    managed_account_ids: frozenset[int] = field(default_factory=frozenset)
    remote_addr: str | None = None

    @property
    def is_police(self) -> bool:
        """Whether this person holds a police role (Administrative Lieutenant, Police Department staff or head)."""
        return (
            ADMINISTRATIVE_LIEUTENANT in self.roles
            or self.department_code == POLICE_DEPARTMENT
            or POLICE_DEPARTMENT in self.headed_department_codes
        )

    @property
    def all_roles(self) -> list[str]:
        """Granted roles plus department_head when the user heads a department."""
        roles = set(self.roles)
        if self.headed_department_ids:
            roles.add(DEPARTMENT_HEAD)
        return sorted(roles)


def actor_for(session: Session, user: User, remote_addr: str | None = None) -> Actor:
    """The Actor of a user, with the departments they head."""
    headed = session.execute(select(Department.id, Department.code).where(Department.head_id == user.id)).all()
    managed = session.scalars(
        select(AccountManager.account_id).where(AccountManager.user_id == user.id, AccountManager.removed_at.is_(None))
    )
    return Actor(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=frozenset(user.roles),
        department_id=user.department_id,
        department_code=user.department.code if user.department else None,
        headed_department_ids=frozenset(row.id for row in headed),
        headed_department_codes=frozenset(row.code for row in headed),
        managed_account_ids=frozenset(managed),
        remote_addr=remote_addr,
    )


def department_by_code(session: Session, code: str) -> Department | None:
    """A department by its code."""
    return session.scalar(select(Department).where(Department.code == code))


def _username_problems(session: Session, username: str) -> list[str]:
    if not USERNAME_RE.match(username or ""):
        return ["Use 2-64 lowercase letters, digits, dots, dashes or underscores."]
    if session.scalar(select(User.id).where(User.username == username)):
        return [f'A user named "{username}" already exists.']
    return []


def _role_problems(roles: Iterable[str]) -> list[str]:
    problems = []
    for role in roles:
        if role == DEPARTMENT_HEAD:
            problems.append("department_head is held by heading a department: use head_of.")
        elif role not in GRANTABLE_ROLES:
            problems.append(f'Unknown role "{role}".')
    return problems


def _departments_to_head(session: Session, codes: Iterable[str]) -> tuple[list[Department], list[str]]:
    """The departments of these codes, and a message for each code that names none."""
    found: list[Department] = []
    problems = []
    for code in codes:
        department = department_by_code(session, code)
        if department is None:
            problems.append(f'No department with code "{code}".')
        else:
            found.append(department)
    return found, problems


def create_user(
    session: Session,
    username: str,
    password: str,
    *,
    name: str | None = None,
    email: str | None = None,
    department: str | None = None,
    roles: Collection[str] = (),
    head_of: Collection[str] = (),
    actor: Actor | None = None,
) -> User:
    """Create a user with roles and headships; every problem is reported by field."""
    problems = {
        "username": _username_problems(session, username),
        "password": passwords.problems(password, username=username, name=name or ""),
    }
    dept = department_by_code(session, department) if department else None
    if department and dept is None:
        problems["department"] = [f'No department with code "{department}".']
    problems["role"] = _role_problems(roles)
    headed, problems["head_of"] = _departments_to_head(session, head_of)
    errors = {field: messages for field, messages in problems.items() if messages}
    if errors:
        raise Invalid("The user cannot be created.", errors)
    user = User(
        username=username,
        display_name=name or username,
        email=email,
        password_hash=passwords.hash_password(password),
        department=dept,
        role_rows=[UserRole(role=r) for r in sorted(set(roles))],
    )
    session.add(user)
    session.flush()
    for found in headed:
        found.head = user
    audit.append(
        session,
        actor,
        "user_created",
        detail={"username": username, "roles": sorted(set(roles)), "head_of": list(head_of), "department": department},
    )
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user of these credentials; anything else is the one answer WRONG_CREDENTIALS, after the same work."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        passwords.check_nobody(password)
        raise NotAuthenticated(WRONG_CREDENTIALS)
    if not passwords.matches(user.password_hash, password):
        raise NotAuthenticated(WRONG_CREDENTIALS)
    if not _may_use_password(session, user):
        raise NotAuthenticated(WRONG_CREDENTIALS)
    return user


def _may_use_password(session: Session, user: User) -> bool:
    """Whether the user may log in with a civicflow password: everyone, or with CIVICFLOW_LOCAL_PASSWORDS=admins-only
    (staff sign in through the directory) only administrators, who keep a login for when the directory is down."""
    settings = session.info.get("settings")  # the session's settings (engine.settings.settings_of), if it has any
    return settings is None or settings.local_passwords == "all" or ADMIN in user.roles


def end_sessions(user: User) -> None:
    """End every signed-in session of the user, on every device: their session cookies no longer open a page."""
    user.session_generation += 1


def set_password(session: Session, user: User, password: str, *, actor: Actor | None, why: str) -> None:
    """Give the user a new password (checked after NIST SP 800-63B): their sessions and API tokens end, audited.

    `why` says what the history records: "changed" by the person, "reset" by an administrator or a link,
    "set" at the command line.
    """
    problems = passwords.problems(password, username=user.username, name=user.display_name)
    if problems:
        raise Invalid("The password cannot be used.", {"password": problems})
    user.password_hash = passwords.hash_password(password)
    end_sessions(user)
    revoked = revoke_tokens(session, user)
    audit.append(session, actor, f"password_{why}", detail={"username": user.username, "tokens_revoked": revoked})
    session.flush()


def change_own_password(session: Session, actor: Actor, current: str, new: str) -> User:
    """A signed-in person changes their password, giving the current one first."""
    user = session.get(User, actor.id)
    if user is None or not passwords.matches(user.password_hash, current or ""):
        raise Invalid("The password was not changed.", {"current_password": ["That is not your current password."]})
    if passwords.normalised(new or "") == passwords.normalised(current):
        raise Invalid("The password was not changed.", {"password": ["The new password is the one you have now."]})
    set_password(session, user, new, actor=actor, why="changed")
    return user


def revoke_tokens(session: Session, user: User) -> int:
    """Revoke every API token of the user still in force; how many."""
    revoked = 0
    for token in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
        token.revoked_at = clock.utcnow()
        revoked += 1
    return revoked


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, lifetime: timedelta) -> str:
    """A new bearer token for the user; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), expires_at=clock.utcnow() + lifetime))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User:
    """The active user a valid, unrevoked, unexpired token belongs to."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= clock.utcnow() or not row.user.active:
        raise NotAuthenticated("The token is missing, wrong, expired or revoked.")
    return row.user


def revoke_token(session: Session, token: str) -> None:
    """Revoke a token so it is refused from now on."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = clock.utcnow()
        session.flush()
