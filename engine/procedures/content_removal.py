"""Procedure 3, removing content with a screenshot (Rules of Use, the comment paragraphs).

"Before deleting any content that falls into one of the foregoing categories, the deleting social
media manager will take a screenshot of the relevant content and email it to the Marketing and
Communications Manager." The diagram enforces the order: the record is filed with its screenshot,
the screenshot is e-mailed, and only then does the manager's "deleted" step open.
"""

from __future__ import annotations

from engine.db.models import Account
from engine.errors import Invalid
from engine.mail.outbox import Letter
from engine.people.roles import SOCIAL_MEDIA_MANAGER
from engine.procedures import Described, Procedure, Submission, TaskTarget, register
from engine.procedures.common import (
    account_facts,
    account_field,
    accounts_for,
    communications_manager_addresses,
    local_date,
)
from engine.procedures.fields import BOOLEAN, IMAGE, MULTICHOICE, STRING, TEXT, URL, Field, labelled_choice, validate
from engine.records import attachments
from engine.records.registry import offered

# The policy's categories, in its own words (one or more must be chosen).
CATEGORIES = (
    ("obscene", "Obscene or pornographic content"),
    ("threat", "Direct threats to persons or property"),
    ("ip_violation", "Material asserted to violate the intellectual property of another person"),
    ("unrelated", "Material unrelated to City government or services"),
    ("private_info", "Private, personal information published without consent"),
    ("public_safety_security", "Information that compromises a public safety security system"),
    ("nonpublic_data", "Statutorily private, confidential or nonpublic data"),
    ("spam", "Commercial promotions or spam"),
    ("links_to_prohibited", "Hyperlinks to material that falls into one of the foregoing categories"),
)
# The same categories in plain words, for the public pages (the policy's words stay beside them).
PLAIN_CATEGORIES = {
    "obscene": "Sexual or pornographic words, pictures or video.",
    "threat": "A threat to hurt someone or to damage property.",
    "ip_violation": "Something a person says was copied from their work without permission, such as a photo, "
    "text or a logo.",
    "unrelated": "Something that is not about City government or City services.",
    "private_info": "Someone's personal information, such as a home address or phone number, posted without "
    "their permission.",
    "public_safety_security": "Information that could weaken the security of police, fire or other public "
    "safety systems.",
    "nonpublic_data": "Information the law says is private, confidential or not public.",
    "spam": "Advertising, sales pitches or spam.",
    "links_to_prohibited": "Links to anything in this list.",
}
STAGES = (("published", "Published, then removed"), ("pre_publication", "Denied before publication"))
SCREENSHOT_LETTER = "screenshot_to_communications"


def category_names(codes: list[str]) -> list[str]:
    """The policy's words for category codes."""
    names = dict(CATEGORIES)
    return [names.get(code, code) for code in codes]


class ContentRemoval(Procedure):
    """A removal record filed by a manager of the account; the screenshot goes to the Communications Manager."""

    key = "content_removal"
    name = "Remove content (with a screenshot)"
    letters = frozenset({SCREENSHOT_LETTER})
    starter_role = SOCIAL_MEDIA_MANAGER

    def may_start(self, actor):
        """Only social media managers of a registry account file removal records."""
        return bool(actor.managed_account_ids)

    def start_refusal(self):
        """Removal records are filed by the account's social media managers."""
        return "Only a social media manager of an account in the registry can file a content removal record."

    def start_fields(self, session, actor=None):
        """The account, the content (link, author, text), the categories, the rationale, the screenshot."""
        return [
            account_field("account_id", "Account", offered(accounts_for(session, actor, managed_only=True), actor)),
            labelled_choice("stage", "When", STAGES),
            Field("content_url", URL, "Link to the content", max_length=1000),
            Field("author_name", STRING, "Author's public name"),
            Field("content_text", TEXT, "The content's text, as posted", max_length=20000),
            labelled_choice("categories", "Removal categories (one or more)", CATEGORIES, field_type=MULTICHOICE),
            Field("rationale", TEXT, "Rationale: how the content falls into the categories", max_length=5000),
            Field(
                "screenshot",
                IMAGE,
                "Screenshot of the content",
                hint="A PNG, JPEG or WebP image of the content as it appeared, at most 5 MB.",
            ),
        ]

    def task_fields(self, session, form_key, record):
        """The manager's confirmation that the content was deleted (or denied)."""
        if form_key != "confirm_deletion":
            raise Invalid(f'Unknown form "{form_key}".', {"form_key": ["Unknown form."]})
        done = "denied" if record.get("stage") == "pre_publication" else "deleted"
        return [
            Field("deleted", BOOLEAN, f"The content is {done}"),
            Field("explanation_posted", BOOLEAN, "An explanation was posted in its place", required=False),
            Field("comment", TEXT, f"Comment (required if it was not {done})", required=False, max_length=5000),
        ]

    def form_keys(self):
        """The forms of this procedure's diagram."""
        return frozenset({"confirm_deletion"})

    def validate_start(self, session, actor, data):
        """Only a manager of that account may file; the screenshot must be the filer's own verified upload."""
        clean = validate(self.start_fields(session), data)
        if clean["account_id"] not in actor.managed_account_ids:
            raise Invalid(
                "Only a manager of this account can file its removal record.",
                {"account_id": ["You are not a social media manager of this account."]},
            )
        account = session.get(Account, clean["account_id"])
        attachments.unbound_upload(session, actor, clean["screenshot"], field="screenshot")
        return {**clean, **account_facts(account)}

    def describe(self, record):
        """'Removal on Facebook: City of West St. Paul (comment by J. Doe)'."""
        return Described(
            title=f"Removal on {record['account_name']} (content by {record['author_name']})",
            department_code=record["department"],
            restricted=bool(record.get("investigative")),
        )

    def on_start(self, session, actor, instance):
        """The screenshot now belongs to this removal record."""
        attachments.bind(session, instance.data["screenshot"], instance.id)

    def task_target(self, session, instance, form_key, role):
        """The manager who filed the record deletes the content (another manager of the account may take over)."""
        if role == SOCIAL_MEDIA_MANAGER:
            return TaskTarget(
                department_id=instance.department_id,
                account_id=instance.data["account_id"],
                assignee_id=instance.started_by_id,
            )
        return super().task_target(session, instance, form_key, role)

    def submit(self, session, actor, instance, task, data):
        """Deleted (or denied), or not, with a written reason when not."""
        clean = validate(self.task_fields(session, task.form_key, instance.data), data)
        if not clean["deleted"] and not clean.get("comment"):
            raise Invalid("Say why the content stays.", {"comment": ["Write why the content was not removed."]})
        decision = "deleted" if clean["deleted"] else "not_deleted"
        record = {k: clean[k] for k in ("deleted", "explanation_posted")}
        return Submission(record, record_updates=record, decision=decision, comment=clean.get("comment"))

    def compose_letter(self, session, instance, letter):
        """The screenshot, with the record's details, to the Communications Manager."""
        if letter != SCREENSHOT_LETTER:
            return super().compose_letter(session, instance, letter)
        record = instance.data
        stage = dict(STAGES)[record["stage"]]
        categories = "\n".join(f"  - {name}" for name in category_names(record["categories"]))
        body = (
            f"{instance.started_by.display_name} filed removal record {instance.id} on "
            f"{local_date(session, instance.started_at)}, before deleting the content, as the Social Media Policy "
            "requires.\n\n"
            f"Account: {record['account_name']}\n"
            f"Stage: {stage}\n"
            f"Link to the content: {record['content_url']}\n"
            f"Author's public name: {record['author_name']}\n\n"
            f"The content, as posted:\n{record['content_text']}\n\n"
            f"Removal categories:\n{categories}\n\n"
            f"Rationale:\n{record['rationale']}\n\n"
            "The screenshot is attached. The record, with the screenshot, is kept in civicflow.\n"
        )
        return [
            Letter(
                recipients=communications_manager_addresses(session, "screenshot"),
                subject=f"Removal record {instance.id}: screenshot before deleting content on {record['account_name']}",
                body=body,
                attachment_ids=(record["screenshot"],),
            )
        ]


register(ContentRemoval())
