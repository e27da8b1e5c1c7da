"""Single sign-on: who a verified ID token's claims make a person in civicflow (web/sso.py runs the protocol).

A person is matched on their subject at the City's provider (the issuer and the `sub` claim), never on a name
that could be reused. The first sign-in creates their user from the claims, with a random password nobody knows.
At every sign-in their granted roles become the ones their directory groups map to (CIVICFLOW_SSO_GROUPS); their
department and headships follow the directory too when the mapping names any department or headship, and are
left to administrators otherwise. A person in no mapped group keeps only what every user has: filing requests.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Department, User, UserRole
from engine.errors import Invalid, NotAuthenticated
from engine.people import passwords
from engine.people.users import MAX_USERNAME, USERNAME_RE
from engine.records import audit
from engine.settings import Settings

DEACTIVATED = "Your civicflow account is deactivated: ask an administrator to open it again."


@dataclass(frozen=True)
class DirectoryGrants:
    """What a person's directory groups give them in civicflow."""

    roles: frozenset[str]
    departments: frozenset[str]
    heads: frozenset[str]


def subject_of(issuer: str, sub: str) -> str:
    """The stored subject of a person: their `sub` is unique only at their issuer."""
    return f"{issuer} {sub}"


def groups_of(claims: Mapping[str, Any], settings: Settings) -> list[str]:
    """The directory groups (or app roles) of the claims; anything but a list of names or one name is none."""
    value = claims.get(settings.sso_groups_claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [group for group in value if isinstance(group, str)]
    return []


def grants_of(groups: list[str], settings: Settings) -> DirectoryGrants:
    """The roles, department codes and headships the groups map to."""
    given = [grant for group in groups for grant in settings.sso_groups.get(group, ())]
    return DirectoryGrants(
        roles=frozenset(grant for grant in given if ":" not in grant),
        departments=frozenset(g.removeprefix("department:") for g in given if g.startswith("department:")),
        heads=frozenset(g.removeprefix("head:") for g in given if g.startswith("head:")),
    )


def _mapped_kinds(settings: Settings) -> set[str]:
    """Which of department and head the mapping names at all (only those follow the directory)."""
    return {grant.partition(":")[0] for grants in settings.sso_groups.values() for grant in grants if ":" in grant}


def username_from(session: Session, claims: Mapping[str, Any], settings: Settings) -> str:
    """A free username made from the preferred username (or e-mail), cut to what USERNAME_RE allows."""
    raw = claims.get(settings.sso_username_claim) or claims.get(settings.sso_email_claim) or ""
    local = str(raw).split("@")[0]
    ascii_only = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9._-]+", "-", ascii_only).lstrip("._-")[: MAX_USERNAME - 4].rstrip("._-")
    if not USERNAME_RE.match(base):
        base = "user"
    candidate, number = base, 1
    while session.scalar(select(User.id).where(User.username == candidate)) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _departments(session: Session, codes: frozenset[str]) -> dict[str, Department]:
    """The departments of the codes; a code civicflow does not have is the mapping's mistake, said so."""
    found = {d.code: d for d in session.scalars(select(Department).where(Department.code.in_(codes)))}
    unknown = sorted(codes - found.keys())
    if unknown:
        raise Invalid(
            "Your sign-in could not be completed.",
            {
                "CIVICFLOW_SSO_GROUPS": [
                    f"It names departments civicflow does not have ({', '.join(unknown)}): ask IT to correct it."
                ]
            },
        )
    return found


def _text_claim(claims: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    return value.strip()[:limit] or None if isinstance(value, str) else None


def _state(session: Session, user: User) -> dict[str, Any]:
    """What the directory decides of a person, as the audit trail records it."""
    headed = session.scalars(select(Department.code).where(Department.head_id == user.id).order_by(Department.code))
    return {
        "roles": sorted(user.roles),
        "department": user.department.code if user.department else None,
        "head_of": list(headed),
    }


def sign_in(session: Session, settings: Settings, claims: Mapping[str, Any]) -> User:
    """The user of a verified ID token's claims, created on first sign-in, with what the directory gives them now."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or settings.sso_issuer is None:
        raise NotAuthenticated("The sign-in service did not say who you are.")
    grants = grants_of(groups_of(claims, settings), settings)
    if len(grants.departments) > 1:
        raise Invalid(
            "Your sign-in could not be completed.",
            {
                "CIVICFLOW_SSO_GROUPS": [
                    f"Your groups give you more than one department ({', '.join(sorted(grants.departments))}) "
                    "and civicflow keeps one: ask IT which is yours."
                ]
            },
        )
    departments = _departments(session, grants.departments | grants.heads)
    subject = subject_of(settings.sso_issuer, sub)
    user = session.scalar(select(User).where(User.sso_subject == subject))
    name = _text_claim(claims, settings.sso_name_claim, 200)
    email = _text_claim(claims, settings.sso_email_claim, 254)
    if user is None:
        user = User(
            username=username_from(session, claims, settings),
            display_name=name or "",
            email=email,
            password_hash=passwords.hash_password(secrets.token_urlsafe(32)),
            sso_subject=subject,
        )
        user.display_name = user.display_name or user.username
        session.add(user)
        session.flush()
        audit.append(
            session,
            None,
            "user_created",
            detail={"username": user.username, "by": "single sign-on", "subject": subject},
        )
        before: dict[str, Any] = {"roles": [], "department": None, "head_of": []}
    else:
        if not user.active:
            raise NotAuthenticated(DEACTIVATED)
        before = _state(session, user)
        user.display_name = name or user.display_name
        user.email = email or user.email
    _follow_directory(session, settings, user, grants, departments)
    after = _state(session, user)
    if after != before:
        audit.append(
            session,
            None,
            "directory_access_changed",
            detail={"username": user.username, "before": before, "after": after},
        )
    session.flush()
    return user


def _follow_directory(
    session: Session, settings: Settings, user: User, grants: DirectoryGrants, departments: dict[str, Department]
) -> None:
    """Give the user the roles the directory maps to, and its department and headships where the mapping names them."""
    for row in [row for row in user.role_rows if row.role not in grants.roles]:
        user.role_rows.remove(row)
    user.role_rows.extend(UserRole(role=role) for role in sorted(grants.roles - user.roles))
    kinds = _mapped_kinds(settings)
    if "department" in kinds:
        user.department = departments[next(iter(grants.departments))] if grants.departments else None
    if "head" in kinds:
        for department in session.scalars(select(Department).where(Department.head_id == user.id)):
            if department.code not in grants.heads:
                department.head = None
        for code in grants.heads:
            departments[code].head = user
    session.flush()
