"""Procedure 4, an appeal of a removal (Rules of Use).

"A member of the public whose comment is removed may appeal the removal of the comment and seek
reconsideration of its removal by contacting the City in writing and explaining how the comment does
not fall into one of the categories for removal. A written response should be provided as soon as
reasonably possible."
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account, ProcessInstance, Task
from engine.db.statuses import TaskStatus
from engine.errors import Conflict, Invalid, NotAllowed, NotFound
from engine.mail import letters
from engine.mail.outbox import Letter
from engine.people.roles import SOCIAL_MEDIA_MANAGER
from engine.procedures import Described, Procedure, Submission, TaskTarget, register
from engine.procedures.common import (
    BY_EMAIL,
    BY_POST,
    MAIL_LETTER_FORM,
    PUBLIC_TEXT_LIMIT,
    account_facts,
    account_field,
    account_label,
    accounts_for,
    local_date,
    mail_letter_fields,
    mailed,
    received_via_field,
    reply_fields,
    validate_reply,
)
from engine.procedures.fields import BOOLEAN, EMAIL, RECORD, STRING, TEXT, URL, Field, labelled_choice, validate
from engine.records import audit
from engine.requests import authz

APPEAL_DECISIONS = (("uphold", "Uphold the removal"), ("reinstate", "Reinstate the comment"))
RESPONSE_LETTER = "response_to_appellant"


def removal_of(session: Session, removal_id: int | None) -> ProcessInstance | None:
    """The content removal record an appeal names, if it is one."""
    if removal_id is None:
        return None
    removal = session.get(ProcessInstance, removal_id)
    return removal if removal is not None and removal.process_key == "content_removal" else None


class RemovalAppeal(Procedure):
    """An appeal entered from a letter or e-mail (or the public form), answered in writing."""

    key = "removal_appeal"
    name = "Appeal of a removal"
    letters = frozenset({RESPONSE_LETTER})
    letter_forms = {"appeal_review": RESPONSE_LETTER}
    public_kind = "appeal"
    filer_name_field = "appellant_name"
    filer_email_field = "appellant_email"
    response_letter = RESPONSE_LETTER

    def start_fields(self, session, actor=None):
        """Who appeals, about which account and comment, why, and how the appeal came in."""
        return [
            Field("appellant_name", STRING, "Appellant's name"),
            *reply_fields("Appellant", "appellant_email", "appellant_address"),
            account_field("account", "Account the comment was on", accounts_for(session, None, public_only=True)),
            Field("comment_text", TEXT, "The removed comment, as the appellant gives it", max_length=20000),
            Field(
                "explanation",
                TEXT,
                "The appellant's explanation: how the comment does not fall into a removal category",
                max_length=20000,
            ),
            Field("removal_id", RECORD, "Removal record number, if known", required=False),
            received_via_field(),
        ]

    def public_fields(self, session):
        """The appeal as a member of the public writes it: about which account and comment, and why."""
        return [
            Field("appellant_name", STRING, "Your name"),
            Field(
                "appellant_email",
                EMAIL,
                "Your e-mail address",
                max_length=254,
                hint="The receipt and the City's written response are sent here.",
            ),
            account_field(
                "account", "The City account your comment was on", accounts_for(session, None, public_only=True)
            ),
            Field("comment_text", TEXT, "Your comment, as you remember it", max_length=PUBLIC_TEXT_LIMIT),
            Field(
                "explanation",
                TEXT,
                "Why your comment does not fall into any of the removal categories",
                max_length=PUBLIC_TEXT_LIMIT,
                hint='The categories are under "What may be removed" on this page.',
            ),
            Field(
                "removal_id",
                RECORD,
                "Removal number, if the City gave you one",
                required=False,
                hint="Leave it empty if you do not have one.",
            ),
        ]

    def task_fields(self, session, form_key, record):
        """The review (uphold or reinstate, with the written response) and the manager's restoration."""
        if form_key == "appeal_review":
            return [
                labelled_choice("decision", "Decision", APPEAL_DECISIONS),
                Field(
                    "response_text",
                    TEXT,
                    "The body of the City's written response",
                    max_length=20000,
                    hint=(
                        'Write the reply itself. The City\'s letter adds the greeting ("Dear …"), thanks for the '
                        "appeal, states the decision, and adds the reference and the signature: preview the letter "
                        "to read it whole before it is sent."
                    ),
                ),
            ]
        if form_key == MAIL_LETTER_FORM:
            return mail_letter_fields()
        if form_key == "restore_content":
            return [
                Field("restored", BOOLEAN, "The comment is restored or reposted"),
                Field("restored_url", URL, "Link to the restored comment", required=False, max_length=1000),
                Field("comment", TEXT, "Comment", required=False, max_length=5000),
            ]
        raise Invalid(f'Unknown form "{form_key}".', {"form_key": ["Unknown form."]})

    def form_keys(self):
        """The forms of this procedure's diagram."""
        return frozenset({"appeal_review", "restore_content", MAIL_LETTER_FORM})

    def validate_start(self, session, actor, data):
        """The account must be a public one, and a named removal record must be a removal on that account."""
        clean = validate_reply(
            validate(self.start_fields(session, actor), data), "appellant_email", "appellant_address"
        )
        account = session.get(Account, clean["account"])
        if "removal_id" in clean:
            _check_removal(session, actor, clean["removal_id"], account)
        return {**clean, **account_facts(account)}

    def describe(self, record):
        """'Appeal by Jo Public about Facebook: City of West St. Paul'."""
        return Described(
            title=f"Appeal by {record['appellant_name']} about {record['account_name']}",
            department_code=record["department"],
        )

    def linked_records(self, session, instance):
        """The removal the appeal is about: the reviewer sees its screenshot and categories."""
        removal = removal_of(session, instance.data.get("removal_id"))
        return [removal] if removal is not None else []

    def task_target(self, session, instance, form_key, role):
        """Restoring the comment falls to the managers of its account."""
        if role == SOCIAL_MEDIA_MANAGER:
            return TaskTarget(department_id=instance.department_id, account_id=instance.data["account"])
        return super().task_target(session, instance, form_key, role)

    def submit(self, session, actor, instance, task, data):
        """The written decision (its response goes to the appellant), or the restoration."""
        clean = validate(self.task_fields(session, task.form_key, instance.data), data)
        if task.form_key == "appeal_review":
            letters.check_body(clean["response_text"], "response_text", instance.data["appellant_name"])
            # The diagram's "How to reply?" reads reply_by; a request filed before there was a postal path has none.
            route = {"reply_by": instance.data.get("reply_by", BY_EMAIL)}
            return Submission(
                {**clean, **route}, record_updates=clean, decision=clean["decision"], comment=clean["response_text"]
            )
        if task.form_key == MAIL_LETTER_FORM:
            return mailed(session, instance, clean)
        if not clean["restored"]:
            raise Invalid(
                "Restore the comment first.",
                {"restored": ["The appeal was granted: confirm once the comment is restored or reposted."]},
            )
        updates = {k: clean[k] for k in ("restored", "restored_url") if k in clean}
        return Submission(updates, record_updates=updates, decision="restored", comment=clean.get("comment"))

    def compose_letter(self, session, instance, letter):
        """The City's written response, to the appellant."""
        return self.compose_letter_from(session, instance, letter, instance.data)

    def compose_letter_from(self, session, instance, letter, record):
        """The response as it reads from the record: by e-mail, or printed for the post."""
        if letter != RESPONSE_LETTER:
            return super().compose_letter_from(session, instance, letter, record)
        outcome = (
            "The City has decided to reinstate your comment."
            if record["decision"] == "reinstate"
            else "The City has decided to uphold the removal of your comment."
        )
        body = (
            f"Thank you for your appeal of {local_date(session, instance.started_at)} about the removal of your "
            f"comment on {record['account_name']}.\n\n{outcome}\n\n{record['response_text'].strip()}"
        )
        text = letters.compose(session, to_name=record["appellant_name"], body=body, reference=f"appeal {instance.id}")
        return [to_appellant(record, "Your appeal of a removed comment", text)]


def to_appellant(record: dict, subject: str, body: str) -> Letter:
    """A letter to the appellant: by e-mail, or to the postal address of a letter that gave no e-mail address."""
    if record.get("reply_by") == BY_POST:
        address = f"{record['appellant_name']}\n{record['appellant_address']}"
        return Letter(recipients=(), subject=subject, body=body, postal_address=address)
    return Letter(recipients=(record["appellant_email"],), subject=subject, body=body)


def _check_removal(session, actor, removal_id: int, account: Account) -> ProcessInstance:
    """The removal an appeal names, if it is a removal on the appeal's account; Invalid naming removal_id."""
    removal = removal_of(session, removal_id)
    if actor.id is None:  # the public: one answer, whether the number is unknown or another account's
        if removal is None or removal.restricted or removal.data.get("account_id") != account.id:
            raise Invalid(
                "No such removal on this account.",
                {
                    "removal_id": [
                        f"There is no removal {removal_id} on {account_label(account)}. Leave the number empty if "
                        "unsure."
                    ]
                },
            )
        return removal
    visible = removal is not None and authz.may_view(session, actor, removal)
    if removal is None or (removal.restricted and not visible):
        raise Invalid("No such removal record.", {"removal_id": [f"There is no removal record {removal_id}."]})
    if removal.data.get("account_id") != account.id:
        # Whoever enters a letter may link any removal, but learns the other account only if they may see it.
        other = removal.data.get("account_name") if visible else "another account"
        raise Invalid(
            "The removal record is about another account.",
            {"removal_id": [f"Removal record {removal.id} is about {other}, not this account."]},
        )
    return removal


def link_removal(session: Session, actor, instance: ProcessInstance, removal_id) -> ProcessInstance:
    """Link an appeal filed without its removal number to the removal, once staff find it (in the history).

    For whoever entered the appeal or holds the lane of one of its open tasks (the reviewer); the removal must be
    one on the appeal's account, as when the number is given at filing.
    """
    if instance.process_key != RemovalAppeal.key:
        raise NotFound(f"Request {instance.id} is not an appeal of a removal.")
    authz.require_may_view(session, actor, instance)
    open_tasks = session.scalars(select(Task).where(Task.instance_id == instance.id, Task.status == TaskStatus.OPEN))
    if instance.started_by_id != actor.id and not any(authz.may_act(actor, t, instance) for t in open_tasks):
        raise NotAllowed("Only whoever entered the appeal or works on it now may link its removal.")
    if instance.data.get("removal_id") is not None:
        raise Conflict(f"This appeal is already linked to removal record {instance.data['removal_id']}.")
    clean = validate([Field("removal_id", RECORD, "Removal record number")], {"removal_id": removal_id})
    removal = _check_removal(session, actor, clean["removal_id"], session.get_one(Account, instance.data["account"]))
    instance.data = {**instance.data, "removal_id": removal.id}
    audit.append(
        session,
        actor,
        "removal_linked",
        instance_id=instance.id,
        comment=f"Linked to removal record {removal.id}.",
        detail={"removal_id": removal.id},
    )
    session.flush()
    return instance


register(RemovalAppeal())
