"""Procedure 1, a new account request (Rules of Use, paragraphs 2-4)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account, AccountManager, Department, User
from engine.db.statuses import AccountStatus
from engine.errors import Invalid
from engine.people.roles import POLICE_DEPARTMENT
from engine.people.staff import active_people
from engine.people.users import Actor
from engine.procedures import Described, Procedure, Submission, register, written_review
from engine.procedures.common import PLATFORM_NAMES, written_approval
from engine.procedures.fields import (
    BOOLEAN,
    REVIEW_FIELDS,
    SECRET,
    STRING,
    TEXT,
    URL,
    USERNAMES,
    Field,
    labelled_choice,
    person_field,
    validate,
)
from engine.records.crypto import encrypt_credentials, fingerprint
from engine.settings import settings_of

PLATFORMS = ("facebook", "x", "instagram", "youtube", "vimeo", "linkedin", "nextdoor", "tiktok", "other")
REVIEWS = ("department_head_review", "communications_review", "lieutenant_review")
START_NAMES = (
    "platform",
    "account_name",
    "department",
    "purpose",
    "audience",
    "proposed_managers",
    "investigative",
    "notice_and_link_plan",
)
SETUP_MARKS = {
    "marked_as_city": "The policy requires the account to be clearly marked as the City of West St. Paul's.",
    "links_official_site": "The policy requires a link to the official City website (www.wspmn.gov).",
    "public_notice_linked": "The policy requires the account to display or link to the public notice.",
}


def _departments(session: Session) -> tuple[tuple[str, str], ...]:
    """(code, name) of each department, by name: the name is what a person reads, as on every other page."""
    return tuple(
        (code, name)
        for code, name in session.execute(select(Department.code, Department.name).order_by(Department.name))
    )


class NewAccountRequest(Procedure):
    """A new social media presence: Department Head, then Communications Manager (or Administrative Lieutenant)."""

    key = "new_account_request"
    name = "New social media account request"

    def start_fields(self, session, actor=None):
        """Platform, name, owning department, purpose, audience, proposed managers, investigative flag."""
        return [
            labelled_choice("platform", "Platform", tuple((code, PLATFORM_NAMES[code]) for code in PLATFORMS)),
            Field("account_name", STRING, "Proposed account name or address"),
            labelled_choice("department", "Owning department", _departments(session)),
            Field("purpose", TEXT, "Purpose of the account", max_length=5000),
            Field("audience", TEXT, "Intended audience", max_length=5000),
            person_field("proposed_managers", USERNAMES, "Proposed social media managers", active_people(session)),
            Field("investigative", BOOLEAN, "Police investigative profile", required=False),
            Field(
                "notice_and_link_plan",
                TEXT,
                "How the account will link www.wspmn.gov and display the public notice",
                required=False,
                max_length=5000,
            ),
        ]

    def task_fields(self, session, form_key, record):
        """Review decisions, the revision form, or the set-up confirmation (credentials when investigative)."""
        if form_key in REVIEWS:
            return REVIEW_FIELDS
        if form_key == "revise_request":
            optional = [dataclasses.replace(f, required=False) for f in self.start_fields(session)]
            return [
                labelled_choice(
                    "action",
                    "Resubmit or withdraw",
                    (("resubmit", "Resubmit the request, as changed below"), ("withdraw", "Withdraw the request")),
                ),
                *optional,
                Field("comment", TEXT, "Comment", required=False, max_length=5000),
            ]
        if form_key == "confirm_setup":
            if record.get("investigative"):
                return [
                    Field("account_url", URL, "Profile address (if any)", required=False, max_length=500),
                    Field("username", STRING, "Username"),
                    Field("password", SECRET, "Password", max_length=500),
                ]
            return [
                Field("account_url", URL, "Account address", max_length=500),
                *(
                    Field(name, BOOLEAN, label, required=True)
                    for name, label in (
                        ("marked_as_city", "Clearly marked as belonging to the City"),
                        ("links_official_site", "Links to the official City website"),
                        ("public_notice_linked", "Displays or links to the public notice"),
                    )
                ),
            ]
        raise Invalid(f'Unknown form "{form_key}".', {"form_key": ["Unknown form."]})

    def form_keys(self):
        """The forms of this procedure's diagram."""
        return frozenset({*REVIEWS, "revise_request", "confirm_setup"})

    def validate_start(self, session: Session, actor: Actor, data: dict) -> dict:
        """Clean the request and check its department, managers and investigative flag."""
        clean = validate(self.start_fields(session), data)
        errors: dict[str, list[str]] = {}
        if clean["investigative"]:
            if clean["department"] != POLICE_DEPARTMENT:
                errors["investigative"] = ["Only the Police Department owns investigative profiles."]
            elif actor.department_code != POLICE_DEPARTMENT:
                errors["investigative"] = ["Only Police Department staff may request an investigative profile."]
        known = set(
            session.scalars(
                select(User.username).where(User.username.in_(clean["proposed_managers"]), User.active.is_(True))
            )
        )
        unknown = [name for name in clean["proposed_managers"] if name not in known]
        if unknown:
            errors["proposed_managers"] = [f"No active user named: {', '.join(unknown)}."]
        if errors:
            raise Invalid("The request cannot be submitted as it is.", errors)
        return clean

    def describe(self, record):
        """'Facebook account "WSP Parks" for parks', restricted when investigative."""
        kind = "investigative profile" if record.get("investigative") else "account"
        title = f'{PLATFORM_NAMES.get(record["platform"], record["platform"])} {kind} "{record["account_name"]}"'
        return Described(
            title=title, department_code=record["department"], restricted=bool(record.get("investigative"))
        )

    def submit(self, session, actor, instance, task, data):
        """Turn a review, revision or set-up confirmation into workflow data and a written decision."""
        record = instance.data
        clean = validate(self.task_fields(session, task.form_key, record), data)
        if task.form_key in REVIEWS:
            return written_review(clean)
        if task.form_key == "revise_request":
            action = clean.pop("action")
            comment = clean.pop("comment", None)
            if action == "withdraw":
                return Submission({"action": action}, decision=action, comment=comment)
            current = {name: record[name] for name in START_NAMES if name in record}
            revised = self.validate_start(session, actor, {**current, **clean})
            return Submission({"action": action, **revised}, record_updates=revised, decision=action, comment=comment)
        return self._confirm_setup(session, record, clean)

    def _confirm_setup(self, session: Session, record: dict, clean: dict) -> Submission:
        secret_key = settings_of(session).secret_key
        errors: dict[str, list[str]] = {}
        url = clean.get("account_url")
        if url and session.scalar(select(Account.id).where(Account.url == url)):
            errors["account_url"] = ["This address is already in the registry."]
        if record.get("investigative"):
            user_print = fingerprint(secret_key, "username", clean["username"])
            password_print = fingerprint(secret_key, "password", clean["password"])
            if session.scalar(select(Account.id).where(Account.username_fingerprint == user_print)):
                errors["username"] = ["Each investigative profile needs a unique username."]
            if session.scalar(select(Account.id).where(Account.password_fingerprint == password_print)):
                errors["password"] = ["Each investigative profile needs a unique password."]
            if errors:
                raise Invalid("The set-up cannot be confirmed.", errors)
            token = encrypt_credentials(secret_key, clean["username"], clean["password"])
            # Only ciphertext reaches the workflow state; the record never holds credentials.
            task_data = {
                "account_url": url,
                "credentials_token": token,
                "username_fingerprint": user_print,
                "password_fingerprint": password_print,
            }
            return Submission(task_data, record_updates={"account_url": url}, decision="confirmed")
        for name, message in SETUP_MARKS.items():
            if not clean[name]:
                errors[name] = [message]
        if errors:
            raise Invalid("The set-up cannot be confirmed.", errors)
        return Submission(clean, record_updates=clean, decision="confirmed")

    def on_end(self, session, instance, workflow_data):
        """On approval, enter the account in the registry with its managers and who approved them."""
        if workflow_data.get("outcome") != "approved":
            return
        record = instance.data
        approved_by, approved_at = written_approval(session, instance)
        token = workflow_data.get("credentials_token")
        account = Account(
            platform=record["platform"],
            name=record["account_name"],
            url=record.get("account_url"),
            department_id=instance.department_id,
            status=AccountStatus.ACTIVE,
            investigative=bool(record.get("investigative")),
            marked_as_city=bool(record.get("marked_as_city")),
            links_official_site=bool(record.get("links_official_site")),
            public_notice_linked=bool(record.get("public_notice_linked")),
            credentials=token.encode() if token else None,
            username_fingerprint=workflow_data.get("username_fingerprint"),
            password_fingerprint=workflow_data.get("password_fingerprint"),
            created_by_instance_id=instance.id,
        )
        user_ids = dict(
            session.execute(select(User.username, User.id).where(User.username.in_(record["proposed_managers"]))).all()
        )
        session.add(account)
        session.flush()
        session.add_all(
            AccountManager(
                account_id=account.id,
                user_id=user_ids[name],
                approved_by=approved_by,
                approved_at=approved_at,
                instance_id=instance.id,
            )
            for name in record["proposed_managers"]
            if name in user_ids
        )
        instance.data = {**instance.data, "account_id": account.id}


register(NewAccountRequest())
