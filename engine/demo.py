"""The demo: West St. Paul's departments, the five accounts of the policy's Scope, one user per role."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account, AccountManager, Department, User, UserRole
from engine.db.statuses import AccountStatus
from engine.people import passwords, users
from engine.people.users import create_user, department_by_code
from engine.time import clock

DEPARTMENTS = [
    ("administration", "Administration"),
    ("communications", "Marketing and Communications"),
    ("police", "Police Department"),
    ("parks", "Parks and Recreation"),
    ("public_works", "Public Works"),
    ("finance", "Finance"),
    ("community_development", "Community Development"),
]

# username, display name, department, roles, departments headed, what they do in the demo
USERS = [
    ("requester", "Pat Requester", "parks", [], [], "Requester (Parks staff)"),
    ("parks_head", "Dana Parks-Head", "parks", [], ["parks"], "Department Head of parks"),
    (
        "comms_manager",
        "Chris Communications",
        "communications",
        ["communications_manager"],
        ["communications"],
        "Marketing and Communications Manager",
    ),
    ("lieutenant", "Lee Lieutenant", "police", ["administrative_lieutenant"], [], "Administrative Lieutenant"),
    ("police_officer", "Morgan Officer", "police", [], [], "Requester (Police staff, investigative profiles)"),
    ("police_chief", "Sam Chief", "police", [], ["police"], "Department Head of police"),
    ("sm_manager", "Alex Moderator", "communications", ["social_media_manager"], [], "Social Media Manager"),
    ("attorney", "Jordan Attorney", "administration", ["city_attorney"], [], "City Attorney"),
    ("records", "Riley Records", "administration", ["records_officer"], [], "Records Officer (City Clerk)"),
    ("admin", "Ada Admin", "administration", ["admin"], [], "Administrator"),
    (
        "city_administrator",
        "Casey Administrator",
        "administration",
        ["city_administrator"],
        ["administration"],
        "City Administrator (head of administration; hears of overdue Communications Manager tasks)",
    ),
    (
        "public_works_head",
        "Robin Public-Works",
        "public_works",
        [],
        ["public_works"],
        "Department Head of public_works",
    ),
    ("finance_head", "Jamie Finance", "finance", [], ["finance"], "Department Head of finance"),
    (
        "community_development_head",
        "Taylor Development",
        "community_development",
        [],
        ["community_development"],
        "Department Head of community_development",
    ),
]

# The policy's Scope: "The City's social media accounts are exclusively the following".
ACCOUNTS = [
    ("facebook", "City of West St. Paul", "https://facebook.com/cityofwsp", "communications", "sm_manager"),
    ("x", "City of West St. Paul", "https://twitter.com/WestStPaul", "communications", "sm_manager"),
    ("facebook", "West St. Paul Police Department", "https://facebook.com/WestStPaulPD", "police", "police_officer"),
    ("x", "West St. Paul Police Department", "https://twitter.com/WestStPaulPD", "police", "police_officer"),
    ("vimeo", "City of West St. Paul", "https://vimeo.com/weststpaul", "communications", "sm_manager"),
]


def create_departments(session: Session) -> None:
    """The demo's departments, under the codes of docs/api.md."""
    for code, name in DEPARTMENTS:
        if department_by_code(session, code) is None:
            session.add(Department(code=code, name=name))
    session.flush()


def load_demo(session: Session, password: str | None = None) -> list[tuple[str, str, str]]:
    """Create (or refresh) the demo; returns (username, password, what) for each demo user.

    Passwords are new random ones on every run unless one is given: nothing secret lives in the repo.
    """
    create_departments(session)
    logins = []
    for username, name, department, roles, head_of, what in USERS:
        secret = password or secrets.token_urlsafe(12)
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            create_user(
                session,
                username,
                secret,
                name=name,
                email=f"{username}@wspmn.example",
                department=department,
                roles=roles,
                head_of=head_of,
            )
        else:
            user.password_hash, user.active = passwords.hash_password(secret), True
            users.end_sessions(user)
            user.role_rows.extend(UserRole(role=role) for role in sorted(set(roles) - user.roles))
        logins.append((username, secret, what))
    session.flush()
    for platform, name, url, department, manager in ACCOUNTS:
        if session.scalar(select(Account.id).where(Account.url == url)):
            continue
        account = Account(
            platform=platform,
            name=name,
            url=url,
            department=department_by_code(session, department),
            status=AccountStatus.ACTIVE,
            marked_as_city=True,
            links_official_site=True,
            # The policy itself still reads "[Insert link to notice]".
            public_notice_linked=False,
        )
        account.managers.append(
            AccountManager(
                user=session.scalar(select(User).where(User.username == manager)),
                approved_by="Listed in the policy's Scope (demo data)",
                approved_at=clock.utcnow(),
            )
        )
        session.add(account)
    session.flush()
    return logins
