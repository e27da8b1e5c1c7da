"""Administration: the City's users and departments, as administrators keep them; every change is audited."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, selectinload

from engine.db.models import Department, OutboxMail, Task, User, UserRole
from engine.db.statuses import MailStatus, TaskStatus
from engine.errors import Invalid, NotFound
from engine.people import users
from engine.people.roles import ADMIN, DEPARTMENT_HEAD, GRANTABLE_ROLES, REQUESTER
from engine.people.users import Actor
from engine.procedures.fields import UNSTORABLE, is_storable_text
from engine.records import audit
from engine.requests.authz import require_admin
from engine.time import clock

DEPARTMENT_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_DEPARTMENT_CODE = 64
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces. Delivery is the real test.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAME = 200
MAX_EMAIL = 254
MAX_PASSWORD = users.MAX_PASSWORD
KEEP: Any = object()  # "leave this as it is" in update_user
# What only administrators do here, as their refusal says it: "Only administrators can manage users and departments."
MANAGE_PEOPLE = "manage users and departments"


@dataclass(frozen=True)
class UserSummary:
    """One user as the administrators' list shows them."""

    id: int
    username: str
    display_name: str
    email: str | None
    department_code: str | None
    department_name: str | None
    roles: tuple[str, ...]
    head_of: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class Change:
    """What an update did: whose record, each changed field as [before, after] (empty: nothing changed)."""

    name: str
    fields: dict[str, list]
    tokens_revoked: int = 0


def _add(errors: dict[str, list[str]], field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _clean_text(
    value: str | None, field: str, errors: dict[str, list[str]], *, required: bool, max_length: int
) -> str | None:
    """The stripped text, or None (with a message in errors when that is not allowed)."""
    if value is not None and not isinstance(value, str):
        _add(errors, field, "Must be text.")
        return None
    if value is not None and not is_storable_text(value):
        _add(errors, field, UNSTORABLE)
        return None
    text = (value or "").strip()
    if not text:
        if required:
            _add(errors, field, "This field is required.")
        return None
    if len(text) > max_length:
        _add(errors, field, f"At most {max_length} characters.")
        return None
    return text


def _clean_email(value: str | None, errors: dict[str, list[str]]) -> str | None:
    email = _clean_text(value, "email", errors, required=False, max_length=MAX_EMAIL)
    if email is not None and not EMAIL_RE.match(email):
        _add(errors, "email", "Enter an e-mail address like name@wspmn.gov.")
        return None
    return email


def _codes(values: Iterable[str] | None, field: str, errors: dict[str, list[str]]) -> list[str]:
    """Distinct, stripped codes in the order given; unstorable ones are refused before any query sees them."""
    codes: list[str] = []
    for value in values or ():
        if not isinstance(value, str) or not is_storable_text(value):
            _add(errors, field, UNSTORABLE)
            continue
        if value.strip() and value.strip() not in codes:
            codes.append(value.strip())
    return codes


def _departments(session: Session, codes: list[str], field: str, errors: dict[str, list[str]]) -> list[Department]:
    found = {d.code: d for d in session.scalars(select(Department).where(Department.code.in_(codes)))} if codes else {}
    for code in codes:
        if code not in found:
            _add(errors, field, f'No department with code "{code}".')
    return [found[code] for code in codes if code in found]


def _check_roles(roles: list[str], errors: dict[str, list[str]]) -> None:
    for role in roles:
        if role == DEPARTMENT_HEAD:
            _add(errors, "roles", "Department head is not granted: make the user head of a department instead.")
        elif role not in GRANTABLE_ROLES:
            _add(errors, "roles", f'Unknown role "{role}".')


def _active_user(session: Session, username: str | None, field: str, errors: dict[str, list[str]]) -> User | None:
    """The active user of that username; None for no username (or with a message in errors)."""
    username = _clean_text(username, field, errors, required=False, max_length=users.MAX_USERNAME)
    if username is None:
        return None
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        _add(errors, field, f'No user named "{username}".')
    elif not user.active:
        _add(errors, field, f"{user.display_name} is deactivated and cannot head a department.")
        return None
    return user


def _merge(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for source in sources:
        for field, messages in source.items():
            kept = merged.setdefault(field, [])
            kept += [message for message in messages if message not in kept]
    return merged


def _headships(session: Session) -> dict[int, list[str]]:
    """Department codes by the id of the user who heads them."""
    heads: dict[int, list[str]] = {}
    for head_id, code in session.execute(
        select(User.id, Department.code).join(Department, Department.head_id == User.id).order_by(Department.code)
    ):
        heads.setdefault(head_id, []).append(code)
    return heads


def _summary(user: User, head_of: list[str]) -> UserSummary:
    return UserSummary(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        department_code=user.department.code if user.department else None,
        department_name=user.department.name if user.department else None,
        roles=tuple(sorted(user.roles)),
        head_of=tuple(head_of),
        active=user.active,
    )


def list_users(session: Session, actor: Actor) -> list[UserSummary]:
    """Every user, by username, with their department, granted roles, headships and whether they are active."""
    require_admin(actor, MANAGE_PEOPLE)
    heads = _headships(session)
    rows = session.scalars(select(User).options(selectinload(User.department)).order_by(User.username))
    return [_summary(user, heads.get(user.id, [])) for user in rows]


def get_user(session: Session, actor: Actor, user_id: int) -> UserSummary:
    """One user as the administrators see them."""
    require_admin(actor, MANAGE_PEOPLE)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return _summary(user, _headships(session).get(user.id, []))


def add_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    password: str,
    display_name: str,
    email: str | None = None,
    department: str | None = None,
    roles: Iterable[str] = (),
    head_of: Iterable[str] = (),
) -> User:
    """Add a user (people.users.create_user does the rest); every problem is reported by field, nothing is saved."""
    require_admin(actor, MANAGE_PEOPLE)
    errors: dict[str, list[str]] = {}
    name = _clean_text(display_name, "display_name", errors, required=True, max_length=MAX_NAME)
    email = _clean_email(email, errors)
    if not isinstance(password, str) or not is_storable_text(password):
        _add(errors, "password", UNSTORABLE)
        password = ""
    elif len(password) > MAX_PASSWORD:
        _add(errors, "password", f"At most {MAX_PASSWORD} characters.")
    department_codes = _codes([department or ""], "department", errors)
    department_code = department_codes[0] if department_codes else None
    role_codes = _codes(roles, "roles", errors)
    head_codes = _codes(head_of, "head_of", errors)
    previous_heads = {d.code: d.head.username for d in _departments(session, head_codes, "head_of", {}) if d.head}
    refused = Invalid("The user cannot be created.", errors)
    try:
        # A savepoint, so that the problems users.create_user finds and ours are reported together,
        # and a user it created is undone when only our checks failed.
        with session.begin_nested():
            user = users.create_user(
                session,
                username,
                password or "",
                name=name,
                email=email,
                department=department_code,
                roles=role_codes,
                head_of=head_codes,
                actor=actor,
            )
            if errors:
                raise refused
    except Invalid as exc:
        found = {"roles" if field == "role" else field: messages for field, messages in exc.fields.items()}
        raise Invalid("The user cannot be created.", _merge(errors, found)) from None
    for code, previous in previous_heads.items():
        audit.append(
            session,
            actor,
            "department_head_set",
            detail={"department": code, "head": user.username, "previous": previous},
        )
    session.flush()
    return user


def _new_values(
    session: Session,
    actor: Actor,
    user: User,
    errors: dict[str, list[str]],
    *,
    display_name: str,
    email: str | None,
    department: str | None,
    roles: Iterable[str],
) -> dict[str, Any]:
    """The cleaned display name, e-mail, department and roles that are given (not KEEP), by field."""
    new: dict[str, Any] = {}
    if display_name is not KEEP:
        new["display_name"] = _clean_text(display_name, "display_name", errors, required=True, max_length=MAX_NAME)
    if email is not KEEP:
        new["email"] = _clean_email(email, errors)
    if department is not KEEP:
        codes = _codes([department or ""], "department", errors)
        found = _departments(session, codes, "department", errors)
        new["department"] = found[0] if found else None
    if roles is not KEEP:
        new["roles"] = _codes(roles, "roles", errors)
        _check_roles(new["roles"], errors)
        if user.id == actor.id and ADMIN not in new["roles"]:
            _add(errors, "roles", "You cannot remove your own administrator role; ask another administrator.")
    return new


def _new_active(actor: Actor, user: User, active: bool, errors: dict[str, list[str]]) -> bool:
    """Whether the user is to be active; an administrator cannot deactivate themselves."""
    if not isinstance(active, bool):
        _add(errors, "active", "Must be true or false.")
    elif not active and user.id == actor.id:
        _add(errors, "active", "You cannot deactivate yourself; ask another administrator.")
    return bool(active)


def _check_inactive_head(user: User, active: bool, heads: list[Department], errors: dict[str, list[str]]) -> None:
    """Someone who cannot log in cannot head a department: its department head tasks would wait for them."""
    if active or not heads:
        return
    if user.active:
        _add(
            errors,
            "active",
            f"{user.display_name} heads {', '.join(d.name for d in heads)}; "
            "choose another head (or clear the headship) before deactivating.",
        )
    else:
        _add(errors, "head_of", f"{user.display_name} is deactivated and cannot head a department.")


def _code_of(department: Department | None) -> str | None:
    return department.code if department else None


def _apply_values(user: User, new: dict[str, Any]) -> dict[str, list]:
    """Set the new values that differ; each changed field as [before, after]."""
    changed: dict[str, list] = {}
    for field in ("display_name", "email", "active"):
        if field in new and new[field] != getattr(user, field):
            changed[field] = [getattr(user, field), new[field]]
            setattr(user, field, new[field])
    if "department" in new and new["department"] is not user.department:
        changed["department"] = [_code_of(user.department), _code_of(new["department"])]
        user.department = new["department"]
    if "roles" in new and set(new["roles"]) != user.roles:
        changed["roles"] = [sorted(user.roles), sorted(new["roles"])]
        keep = [row for row in user.role_rows if row.role in new["roles"]]
        user.role_rows = keep + [UserRole(role=r) for r in sorted(set(new["roles"]) - user.roles)]
    return changed


def _apply_headships(
    user: User, current_heads: list[Department], heads: list[Department], changed: dict[str, list]
) -> dict[str, Any]:
    """Make the user head exactly these departments (noted in `changed`); the heads they replace, for the history."""
    if {d.id for d in heads} == {d.id for d in current_heads}:
        return {}
    changed["head_of"] = [[d.code for d in current_heads], sorted(d.code for d in heads)]
    replaced = {d.code: d.head.username for d in heads if d.head is not None and d.head_id != user.id}
    for dept in current_heads:
        if dept not in heads:
            dept.head = None
    for dept in heads:
        dept.head = user
    return {"replaced_heads": replaced} if replaced else {}


def _end_access(session: Session, user: User) -> dict[str, int]:
    """A deactivated user's API tokens are revoked and the tasks they had taken go back to their lane."""
    # A deactivated user's sessions and API tokens end here.
    users.end_sessions(user)
    revoked = users.revoke_tokens(session, user)
    # Tasks they had taken go back to their lane, so nothing waits on someone who cannot log in.
    released = cast(
        CursorResult[Any],
        session.execute(
            update(Task)
            .where(Task.assignee_id == user.id, Task.status == TaskStatus.OPEN, Task.role != REQUESTER)
            .values(assignee_id=None)
            .execution_options(synchronize_session="fetch")
        ),
    )
    return {"tokens_revoked": revoked, "tasks_released": released.rowcount}


def update_user(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    display_name: str = KEEP,
    email: str | None = KEEP,
    department: str | None = KEEP,
    roles: Iterable[str] = KEEP,
    head_of: Iterable[str] = KEEP,
    active: bool = KEEP,
) -> Change:
    """Change what is given (KEEP leaves a field alone); deactivating also revokes the user's API tokens.

    An administrator can neither deactivate themselves nor drop their own admin role, so that the City
    always keeps someone who can manage users. A department head cannot be deactivated while heading
    a department: its department head tasks would wait for someone who can no longer log in.
    """
    require_admin(actor, MANAGE_PEOPLE)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    errors: dict[str, list[str]] = {}
    new = _new_values(
        session, actor, user, errors, display_name=display_name, email=email, department=department, roles=roles
    )
    current_heads = list(
        session.scalars(select(Department).where(Department.head_id == user.id).order_by(Department.code))
    )
    heads = current_heads
    if head_of is not KEEP:
        heads = _departments(session, _codes(head_of, "head_of", errors), "head_of", errors)
    if active is not KEEP:
        new["active"] = _new_active(actor, user, active, errors)
    _check_inactive_head(user, new.get("active", user.active), heads, errors)
    if errors:
        raise Invalid("The user cannot be changed.", errors)

    changed = _apply_values(user, new)
    detail = _apply_headships(user, current_heads, heads, changed)
    if changed.get("active") == [True, False]:
        detail.update(_end_access(session, user))
    if changed:
        action = "user_updated"
        if "active" in changed:
            action = "user_reactivated" if user.active else "user_deactivated"
        audit.append(session, actor, action, detail={"username": user.username, "changes": changed, **detail})
        session.flush()
    return Change(user.display_name, changed, detail.get("tokens_revoked", 0))


def list_departments(session: Session, actor: Actor) -> list[Department]:
    """Every department, by name, with its head loaded."""
    require_admin(actor, MANAGE_PEOPLE)
    return list(session.scalars(select(Department).options(selectinload(Department.head)).order_by(Department.name)))


def create_department(session: Session, actor: Actor, *, code: str, name: str, head: str | None = None) -> Department:
    """Add a department under a new code (lowercase letters, digits, underscores), optionally with its head."""
    require_admin(actor, MANAGE_PEOPLE)
    errors: dict[str, list[str]] = {}
    clean_code = _clean_text(code, "code", errors, required=True, max_length=MAX_DEPARTMENT_CODE)
    if clean_code is not None:
        if not DEPARTMENT_CODE_RE.match(clean_code):
            _add(errors, "code", "Use lowercase letters, digits and underscores, starting with a letter.")
        elif users.department_by_code(session, clean_code) is not None:
            _add(errors, "code", f'A department with code "{clean_code}" already exists.')
    clean_name = _clean_text(name, "name", errors, required=True, max_length=MAX_NAME)
    head_user = _active_user(session, head, "head", errors)
    if errors:
        raise Invalid("The department cannot be created.", errors)
    department = Department(code=clean_code, name=clean_name, head=head_user)
    session.add(department)
    session.flush()
    audit.append(
        session,
        actor,
        "department_created",
        detail={"code": clean_code, "name": clean_name, "head": head_user.username if head_user else None},
    )
    session.flush()
    return department


def set_department_head(session: Session, actor: Actor, department_id: int, head: str | None) -> Change:
    """Make an active user the head of a department, or clear its head with None (or "")."""
    require_admin(actor, MANAGE_PEOPLE)
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound(f"No department with id {department_id}.")
    errors: dict[str, list[str]] = {}
    head_user = _active_user(session, head, "head", errors)
    if errors:
        raise Invalid(f"The head of {department.name} cannot be set.", errors)
    if head_user is department.head:
        return Change(department.name, {})
    before = department.head.username if department.head else None
    after = head_user.username if head_user else None
    department.head = head_user
    audit.append(
        session,
        actor,
        "department_head_set" if head_user else "department_head_cleared",
        detail={"department": department.code, "head": after, "previous": before},
    )
    session.flush()
    return Change(department.name, {"head": [before, after]})


# ---- letters that have not gone out ------------------------------------------------------------


def undelivered_mail(session: Session, actor: Actor) -> list[OutboxMail]:
    """Letters refused by the mail server or still waiting after a failed attempt, oldest first (administrators)."""
    require_admin(actor, MANAGE_PEOPLE)
    return list(
        session.scalars(
            select(OutboxMail)
            .where(
                (OutboxMail.status == MailStatus.FAILED)
                | ((OutboxMail.status == MailStatus.PENDING) & (OutboxMail.attempts > 0))
            )
            .order_by(OutboxMail.created_at, OutboxMail.id)
        )
    )


def send_again(session: Session, actor: Actor, mail_id: int) -> OutboxMail:
    """Put a letter back in the outbox to be sent at the next pass (e.g. after the address or server was fixed)."""
    require_admin(actor, MANAGE_PEOPLE)
    mail = session.get(OutboxMail, mail_id)
    if mail is None:
        raise NotFound(f"No letter {mail_id}.")
    if mail.status == MailStatus.SENT:
        raise Invalid("This letter was already sent.", {"mail": ["Already sent; it is not sent twice."]})
    mail.status, mail.next_attempt_at = MailStatus.PENDING, clock.utcnow()
    # Queued again: the history's own word for it (docs/api.md's fixed list of actions), marked as a resend.
    audit.append(
        session,
        actor,
        "mail_queued",
        instance_id=mail.instance_id,
        detail={"letter": mail.letter, "subject": mail.subject, "resent_after": mail.last_error},
    )
    return mail
