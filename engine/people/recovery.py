"""Getting back into an account: a password reset by an e-mailed link, and an administrator's reset.

A reset is asked for with a username or an e-mail address; the answer is the same whether or not an account
matches, so the page tells no one which addresses the City has. The link goes through the outbox to the
address on the account only, works once, and expires after RESET_LIFETIME; only its token's hash is kept.
Using it sets a new password (engine/people/passwords.py), which ends the person's sessions and API tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine.db.models import PasswordReset, User
from engine.errors import Invalid
from engine.mail import outbox
from engine.people import users
from engine.people.users import Actor
from engine.records import audit
from engine.requests.authz import require_admin
from engine.time import clock

RESET_LIFETIME = timedelta(minutes=30)
RESET_LETTER = "password_reset"
EXPIRED = "This link has expired or has been used already; ask for a new one."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ask_for_reset(session: Session, who: str, link_for: Callable[[str], str]) -> None:
    """Mail a reset link to the active account of this username or e-mail address, if there is one.

    `link_for(token)` makes the link's full address (the web layer knows the City's base URL). Nothing says
    whether an account matched: the caller answers the same either way.
    """
    who = (who or "").strip()
    if not who or len(who) > 254:
        return
    user = session.scalar(
        select(User).where(
            User.active.is_(True),
            User.email.is_not(None),
            or_(User.username == who.lower(), func.lower(User.email) == who.lower()),
        )
    )
    if user is None or not user.email:
        return
    now = clock.utcnow()
    # One link in force at a time: a new one replaces any earlier one.
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(user_id=user.id, token_hash=_hash(token), created_at=now, expires_at=now + RESET_LIFETIME)
    )
    minutes = int(RESET_LIFETIME.total_seconds() // 60)
    body = (
        f"Hello {user.display_name},\n\n"
        "Someone (we hope you) asked to reset your civicflow password. To choose a new one, open this link "
        f"within {minutes} minutes; it works once:\n\n{link_for(token)}\n\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
    letter = outbox.Letter(recipients=(user.email,), subject="Reset your civicflow password", body=body)
    outbox.queue(session, letter, name=RESET_LETTER, instance_id=None)
    audit.append(session, None, "password_reset_asked", detail={"username": user.username})
    session.flush()


def _link(session: Session, token: str) -> tuple[PasswordReset, User]:
    """The reset link in force and its active person (Invalid with EXPIRED otherwise)."""
    row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _hash(token or "")))
    if row is None or row.used_at is not None or row.expires_at <= clock.utcnow():
        raise Invalid(EXPIRED, {"token": [EXPIRED]})
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Invalid(EXPIRED, {"token": [EXPIRED]})
    return row, user


def user_of_link(session: Session, token: str) -> User:
    """The person a reset link in force belongs to (Invalid with EXPIRED otherwise)."""
    return _link(session, token)[1]


def reset_with_link(session: Session, token: str, password: str) -> User:
    """Set the new password of a reset link in force, and spend the link."""
    row, user = _link(session, token)
    users.set_password(session, user, password, actor=users.actor_for(session, user), why="reset")
    row.used_at = clock.utcnow()
    session.flush()
    return user


def reset_by_admin(session: Session, actor: Actor, user_id: int, password: str) -> User:
    """An administrator gives a person a new password (to hand over in person); their sessions end."""
    require_admin(actor)
    user = session.get(User, user_id)
    if user is None:
        raise Invalid("No such user.", {"user": ["No such user."]})
    users.set_password(session, user, password, actor=actor, why="reset")
    return user


def unlock(session: Session, actor: Actor | None, user_id: int, forget: Callable[[str], int]) -> User:
    """Clear the sign-in limits of a person's account, so they may try again at once (audited).

    `forget(username)` clears the counts where they are kept (web/login_limits.py) and says how many.
    `actor` None is the command line, which the operating system's login already vouches for.
    """
    if actor is not None:
        require_admin(actor)
    user = session.get(User, user_id)
    if user is None:
        raise Invalid("No such user.", {"user": ["No such user."]})
    cleared = forget(user.username)
    audit.append(session, actor, "sign_in_limits_cleared", detail={"username": user.username, "counters": cleared})
    session.flush()
    return user
