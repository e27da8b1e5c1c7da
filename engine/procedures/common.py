"""What several procedures share: the registry's accounts as choices, written approvals, the City's mail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account, AuditEvent, ProcessInstance, User, UserRole
from engine.errors import Invalid
from engine.mail import letters, postal
from engine.people.roles import ADMINISTRATIVE_LIEUTENANT, COMMUNICATIONS_MANAGER, role_name
from engine.people.users import Actor
from engine.procedures import Submission
from engine.procedures.fields import BOOLEAN, EMAIL, RECORD, TEXT, Field, labelled_choice
from engine.time import clock

# How long a member of the public's comment, explanation or basis may be: about 1,500 words.
PUBLIC_TEXT_LIMIT = 10000
# How a letter from the public reached the City (staff enter letters and e-mails; the public form says "web").
RECEIVED_VIA = (("web", "The public web form"), ("email", "E-mail"), ("mail", "Letter"))

PLATFORM_NAMES = {
    "facebook": "Facebook",
    "x": "X (Twitter)",
    "instagram": "Instagram",
    "youtube": "YouTube",
    "vimeo": "Vimeo",
    "linkedin": "LinkedIn",
    "nextdoor": "Nextdoor",
    "tiktok": "TikTok",
    "other": "Other",
}


def account_label(account: Account) -> str:
    """How an account reads: 'Facebook: City of West St. Paul'."""
    return f"{PLATFORM_NAMES.get(account.platform, account.platform)}: {account.name}"


def accounts_for(
    session: Session, actor: Actor | None, *, managed_only: bool = False, public_only: bool = False
) -> list[Account]:
    """Registry accounts a person may choose: investigative profiles only for police roles (or no actor: all)."""
    query = select(Account).order_by(Account.id)
    if public_only or (actor is not None and not actor.is_police):
        query = query.where(Account.investigative.is_(False))
    if managed_only and actor is not None:
        query = query.where(Account.id.in_(sorted(actor.managed_account_ids)))
    return list(session.scalars(query))


def account_field(name: str, label: str, accounts: list[Account], *, required: bool = True, hint: str = "") -> Field:
    """A choice of registry accounts, by number, each labelled by platform and name."""
    return Field(
        name,
        RECORD,
        label,
        required=required,
        choices=tuple(str(a.id) for a in accounts),
        choice_labels=tuple((str(a.id), account_label(a)) for a in accounts),
        hint=hint,
    )


def account_facts(account: Account) -> dict:
    """What a request's record keeps about its account, so that titles and letters need no lookup."""
    return {
        "account_name": account_label(account),
        "department": account.department.code,
        "investigative": account.investigative,
    }


def received_via_field() -> Field:
    """How an appeal or dispute came in, as the staff member who enters it says."""
    return labelled_choice("received_via", "Received by", RECEIVED_VIA)


def visible_account(session: Session, actor: Actor, account_id: int, field: str) -> Account:
    """An account the actor may see in the registry, or Invalid naming the field."""
    account = session.get(Account, account_id)
    if account is None or (account.investigative and not actor.is_police):
        raise Invalid("The account is not in the registry.", {field: [f"No account {account_id} in the registry."]})
    return account


def written_approval(session: Session, instance: ProcessInstance) -> tuple[str, datetime]:
    """Who gave a request its written approval (Communications Manager or Administrative Lieutenant) and when."""
    approval = session.execute(
        select(AuditEvent.actor_name, AuditEvent.role, AuditEvent.at)
        .where(
            AuditEvent.instance_id == instance.id,
            AuditEvent.action == "completed",
            AuditEvent.decision == "approve",
            AuditEvent.role.in_((COMMUNICATIONS_MANAGER, ADMINISTRATIVE_LIEUTENANT)),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if approval is None:
        return "unknown", clock.utcnow()
    return f"{approval.actor_name} ({role_name(approval.role)})", approval.at


def signer_of(session: Session, instance: ProcessInstance, form_key: str) -> str | None:
    """The name of whoever completed a task of the request (the signer of a written response)."""
    return session.scalar(
        select(AuditEvent.actor_name)
        .where(
            AuditEvent.instance_id == instance.id,
            AuditEvent.action == "completed",
            AuditEvent.detail["form_key"].as_string() == form_key,
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def communications_manager_addresses(session: Session, field: str) -> tuple[str, ...]:
    """The e-mail addresses of the active Communications Managers; Invalid naming `field` if there is none."""
    emails = session.scalars(
        select(User.email)
        .join(UserRole)
        .where(
            UserRole.role == COMMUNICATIONS_MANAGER,
            User.active.is_(True),
            User.email.is_not(None),
            User.email != "",
        )
    )
    addresses = tuple(sorted(email for email in emails if email is not None))
    if not addresses:
        raise Invalid(
            "No Communications Manager has an e-mail address.",
            {
                field: [
                    "The policy requires this to be e-mailed to the Communications Manager, and no "
                    "active Communications Manager has an e-mail address. Ask an administrator."
                ]
            },
        )
    return addresses


def city_signature(session: Session) -> str:
    """How the City signs its letters (engine/mail/letters.py holds the letter's template)."""
    return letters.signature(session)


def local_date(session: Session, moment: datetime) -> str:
    """A stored UTC time as a date in the City's time zone (settings), for letters: 'November 21, 2026'."""
    return letters.local_date(session, moment)


# ---- how the City replies: by e-mail, or by post to a letter's address ---------------------------

# What the diagrams' gateway "How to reply?" reads (`reply_by`), set when the request is filed.
BY_EMAIL, BY_POST = "email", "post"
ADDRESS_LINES = 5  # what a window envelope shows
ADDRESS_LINE_LENGTH = 60
MAIL_LETTER_FORM = "mail_letter"


def reply_fields(person: str, email_field: str, address_field: str) -> list[Field]:
    """Staff enter a letter with an e-mail address or a postal address (one is required: validate_reply)."""
    return [
        Field(
            email_field,
            EMAIL,
            f"{person}'s e-mail address",
            required=False,
            max_length=254,
            hint="The City's letters are e-mailed here. Leave it empty if the letter gives no e-mail address.",
        ),
        Field(
            address_field,
            TEXT,
            f"{person}'s postal address",
            required=False,
            max_length=ADDRESS_LINES * (ADDRESS_LINE_LENGTH + 1),
            hint=(
                "Street on the first line, then city, state and ZIP, as on the envelope (the name is printed above "
                "it). Without an e-mail address, the City's letters are printed and mailed here."
            ),
        ),
    ]


def validate_reply(clean: dict, email_field: str, address_field: str) -> dict:
    """The reply route of a request: e-mail when there is an address, else post; Invalid if there is neither."""
    address = "\n".join(line.strip() for line in clean.get(address_field, "").splitlines() if line.strip())
    if not clean.get(email_field) and not address:
        message = "Give an e-mail address or a postal address: the City's letters go there."
        raise Invalid(
            "Neither an e-mail address nor a postal address.", {email_field: [message], address_field: [message]}
        )
    lines = address.splitlines()
    if len(lines) > ADDRESS_LINES - 1 or any(len(line) > ADDRESS_LINE_LENGTH for line in lines):
        raise Invalid(
            "The postal address does not fit an envelope's window.",
            {
                address_field: [
                    f"At most {ADDRESS_LINES - 1} lines of {ADDRESS_LINE_LENGTH} characters (the name is printed "
                    "above them)."
                ]
            },
        )
    updates = {"reply_by": BY_EMAIL if clean.get(email_field) else BY_POST}
    if address:
        updates[address_field] = address
    else:
        clean.pop(address_field, None)
    return {**clean, **updates}


def mail_letter_fields() -> list[Field]:
    """The "Mail the letter" task: print the letter, put it in the post, and say so (the date is recorded)."""
    return [
        Field(
            "mailed",
            BOOLEAN,
            "The letter is printed, signed, in its window envelope and in the post",
            hint="Completing this task records today as the date the letter was mailed.",
        )
    ]


def mailed(session: Session, instance: ProcessInstance, clean: dict) -> Submission:
    """The "Mail the letter" task: the request's letters waiting for the post are mailed today."""
    if not clean["mailed"]:
        raise Invalid("Mail the letter first.", {"mailed": ["Confirm once the letter is in the post."]})
    sent = postal.record_mailed(session, instance, "mailed")
    subjects = "; ".join(f'"{mail.subject}"' for mail in sent)
    return Submission(clean, decision="mailed", comment=f"Mailed by post: {subjects}.")
