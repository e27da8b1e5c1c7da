"""The account registry: the City's social media accounts, and the investigative profiles' credentials."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account
from engine.errors import NotAllowed, NotFound
from engine.people.users import Actor
from engine.records import audit
from engine.records.crypto import decrypt_credentials
from engine.settings import settings_of


def list_accounts(session: Session, actor: Actor) -> list[Account]:
    """The registry; investigative profiles only for police roles."""
    query = select(Account).order_by(Account.id)
    if not actor.is_police:
        query = query.where(Account.investigative.is_(False))
    return list(session.scalars(query))


def reveal_credentials(session: Session, actor: Actor, account_id: int) -> dict:
    """An investigative profile's credentials, for police roles only; every reveal is logged."""
    account = session.get(Account, account_id)
    if account is None or (account.investigative and not actor.is_police):
        raise NotFound(f"No account {account_id}.")
    if not actor.is_police:
        raise NotAllowed("Only police roles may see investigative profiles' credentials.")
    if account.credentials is None:
        raise NotFound("This account has no stored credentials.")
    audit.append(session, actor, "credentials_revealed", detail={"account_id": account.id})
    return decrypt_credentials(settings_of(session).secret_key, account.credentials)
