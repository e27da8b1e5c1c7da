"""The account registry: the City's social media accounts, and the investigative profiles' credentials."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account
from engine.db.statuses import AccountStatus
from engine.errors import Invalid, NotAllowed, NotFound
from engine.people.roles import ADMIN
from engine.people.users import Actor
from engine.records import audit
from engine.records.crypto import decrypt_credentials
from engine.requests.authz import require_admin
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


# ---- keeping the registry ------------------------------------------------------------------------

# The policy's marks of an account, as the registry's checklist names them (Rules of Use, paragraph 4).
CHECKLIST = (
    ("marked_as_city", "Clearly marked as the City's"),
    ("links_official_site", "Links the official City website (www.wspmn.gov)"),
    ("public_notice_linked", "Displays or links to the public notice"),
)
STATUSES = (AccountStatus.ACTIVE, AccountStatus.INACTIVE)
KEEP_REGISTRY = "keep the account registry"


def may_keep(actor: Actor) -> bool:
    """Whether the actor may change the registry's accounts: administrators (the policy names no other keeper)."""
    return ADMIN in actor.roles


def offered(accounts: list[Account], actor: Actor | None) -> list[Account]:
    """The accounts someone filing a request may choose: active ones only. Without an actor (reading an old
    request's record) every account, so that a deactivated one still reads by its name."""
    return accounts if actor is None else [a for a in accounts if a.status == AccountStatus.ACTIVE]


def update_account(session: Session, actor: Actor, account_id: int, changes: dict) -> dict[str, list]:
    """Set an account's checklist marks and status (administrators); each change [before, after], audited.

    `changes` holds any of the CHECKLIST names (true or false) and `status` ("active" or "inactive");
    an unknown name or a bad value is refused by field, and nothing changes.
    """
    require_admin(actor, KEEP_REGISTRY)
    account = session.get(Account, account_id)
    if account is None or (account.investigative and not actor.is_police):
        raise NotFound(f"No account {account_id}.")
    errors: dict[str, list[str]] = {}
    marks = {name for name, _ in CHECKLIST}
    for name, value in changes.items():
        if name in marks and not isinstance(value, bool):
            errors.setdefault(name, []).append("Must be true or false.")
        elif name == "status" and value not in STATUSES:
            errors.setdefault(name, []).append(f"Must be one of: {', '.join(STATUSES)}.")
        elif name not in marks and name != "status":
            errors.setdefault(str(name)[:100], []).append("Unknown field.")
    if errors:
        raise Invalid("The account cannot be changed.", errors)
    changed = {
        name: [getattr(account, name), value] for name, value in changes.items() if getattr(account, name) != value
    }
    for name, (_before, after) in changed.items():
        setattr(account, name, after)
    if changed:
        action = "account_updated"
        if "status" in changed:
            action = "account_deactivated" if account.status == AccountStatus.INACTIVE else "account_reactivated"
        audit.append(session, actor, action, detail={"account_id": account.id, "changes": changed})
        session.flush()
    return changed
