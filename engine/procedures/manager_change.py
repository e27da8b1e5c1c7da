"""Procedure 2, adding or removing a social media manager (Rules of Use, paragraph 6).

"Departments or employees wishing to add or remove social media manager(s) ... must receive written
approval from the Marketing and Communications Manager. All employees acting as social media managers
will do so with permission from their department head."
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Account, AccountManager, User
from engine.errors import Invalid
from engine.people.staff import active_people
from engine.people.users import MAX_USERNAME
from engine.procedures import Described, Procedure, Submission, register, written_review
from engine.procedures.common import account_facts, account_field, accounts_for, visible_account, written_approval
from engine.procedures.fields import (
    APPROVAL_FIELDS,
    BOOLEAN,
    SECRET,
    STRING,
    TEXT,
    Field,
    labelled_choice,
    person_field,
    validate,
)
from engine.records.crypto import decrypt_credentials, encrypt_credentials, fingerprint
from engine.records.registry import offered
from engine.settings import settings_of
from engine.time import clock

REVIEWS = ("department_head_review", "communications_review", "lieutenant_review")
ACTIONS = (("add", "Add as a manager"), ("remove", "Remove as a manager"))


def _current_manager(session: Session, account_id: int, user_id: int) -> AccountManager | None:
    return session.scalar(
        select(AccountManager).where(
            AccountManager.account_id == account_id,
            AccountManager.user_id == user_id,
            AccountManager.removed_at.is_(None),
        )
    )


class ManagerChange(Procedure):
    """Add or remove a named manager of a registry account: Department Head, then written approval."""

    key = "manager_change"
    name = "Add or remove a social media manager"

    def start_fields(self, session, actor=None):
        """The account, add or remove, the person, and why."""
        return [
            account_field("account_id", "Account", offered(accounts_for(session, actor), actor)),
            labelled_choice("action", "Add or remove", ACTIONS),
            person_field("manager", STRING, "The person", active_people(session), max_length=MAX_USERNAME),
            Field("reason", TEXT, "Reason", max_length=5000),
        ]

    def task_fields(self, session, form_key, record):
        """Approvals (approve or reject, in writing), then the confirmation that access really changed."""
        if form_key in REVIEWS:
            return APPROVAL_FIELDS
        if form_key == "confirm_access_change":
            if record.get("action") == "add":
                return [
                    Field("access_changed", BOOLEAN, "The person now has administrative access to the account"),
                    Field("comment", TEXT, "Comment", required=False, max_length=5000),
                ]
            fields = [
                Field("access_changed", BOOLEAN, "The person's access to the account is revoked"),
                Field("credentials_rotated", BOOLEAN, "Shared credentials were changed (rotated)"),
            ]
            if record.get("investigative"):
                # The Police Department must keep the profile's current password (continuity of the site).
                fields.append(
                    Field(
                        "new_password",
                        SECRET,
                        "The profile's new password",
                        required=False,
                        max_length=500,
                        hint="Required for an investigative profile: its shared "
                        "password must change when a manager leaves it.",
                    )
                )
            return [*fields, Field("comment", TEXT, "Comment", required=False, max_length=5000)]
        raise Invalid(f'Unknown form "{form_key}".', {"form_key": ["Unknown form."]})

    def form_keys(self):
        """The forms of this procedure's diagram."""
        return frozenset({*REVIEWS, "confirm_access_change"})

    def validate_start(self, session, actor, data):
        """The account must be visible to the requester, the person active, and the change not yet made."""
        clean = validate(self.start_fields(session, actor), data)
        account = visible_account(session, actor, clean["account_id"], "account_id")
        person = session.scalar(select(User).where(User.username == clean["manager"].lower()))
        if person is None or not person.active:
            raise Invalid("No such person.", {"manager": [f'No active user named "{clean["manager"]}".']})
        current = _current_manager(session, account.id, person.id)
        if clean["action"] == "add" and current is not None:
            raise Invalid("Already a manager.", {"manager": [f"{person.display_name} already manages this account."]})
        if clean["action"] == "remove" and current is None:
            raise Invalid("Not a manager.", {"manager": [f"{person.display_name} does not manage this account."]})
        # Permission comes from the head of the person's own department ("their department head");
        # a contractor or volunteer without one is answered for by the account's department.
        department = person.department.code if person.department else account.department.code
        return {
            **clean,
            "manager": person.username,
            **account_facts(account),
            "manager_name": person.display_name,
            "department": department,
        }

    def describe(self, record):
        """'Add Pat Lee as manager of Facebook: City of West St. Paul'."""
        verb = "Add" if record["action"] == "add" else "Remove"
        link = "as manager of" if record["action"] == "add" else "as manager from"
        return Described(
            title=f"{verb} {record['manager_name']} {link} {record['account_name']}",
            department_code=record["department"],
            restricted=bool(record.get("investigative")),
        )

    def submit(self, session, actor, instance, task, data):
        """A written approval or refusal, or the confirmation that access was granted or revoked."""
        record = instance.data
        clean = validate(self.task_fields(session, task.form_key, record), data)
        if task.form_key in REVIEWS:
            return written_review(clean)
        errors = {}
        if not clean["access_changed"]:
            done = "granted" if record["action"] == "add" else "revoked"
            errors["access_changed"] = [f"Confirm only once access has really been {done}."]
        if record.get("investigative") and record["action"] == "remove":
            if not clean.get("credentials_rotated"):
                errors["credentials_rotated"] = [
                    "An investigative profile's shared password must be changed when a manager leaves it."
                ]
            if not clean.get("new_password"):
                errors["new_password"] = [
                    "The Police Department keeps every profile's current password: enter the new one."
                ]
        task_data = {"access_changed": True, "credentials_rotated": bool(clean.get("credentials_rotated"))}
        if clean.get("new_password") and not errors:
            task_data.update(self._rotated_credentials(session, record, clean["new_password"], errors))
        if errors:
            raise Invalid("The change cannot be confirmed.", errors)
        confirmed = {k: v for k, v in task_data.items() if k in ("access_changed", "credentials_rotated")}
        return Submission(task_data, record_updates=confirmed, decision="confirmed", comment=clean.get("comment"))

    def _rotated_credentials(self, session, record, password, errors) -> dict:
        """The profile's credentials re-encrypted with its new password (only ciphertext reaches the workflow)."""
        secret = settings_of(session).secret_key
        account = session.get(Account, record["account_id"])
        password_print = fingerprint(secret, "password", password)
        if session.scalar(select(Account.id).where(Account.password_fingerprint == password_print)):
            errors["new_password"] = ["Each investigative profile needs a unique password."]
            return {}
        username = decrypt_credentials(secret, account.credentials)["username"] if account.credentials else ""
        return {
            "credentials_token": encrypt_credentials(secret, username, password),
            "password_fingerprint": password_print,
        }

    def on_end(self, session, instance, workflow_data):
        """On approval, update the registry's manager list with who approved the change and when."""
        if workflow_data.get("outcome") != "approved":
            return
        record = instance.data
        person = session.scalar(select(User).where(User.username == record["manager"]))
        current = _current_manager(session, record["account_id"], person.id)
        if record["action"] == "add":
            if current is None:
                approved_by, approved_at = written_approval(session, instance)
                session.add(
                    AccountManager(
                        account_id=record["account_id"],
                        user_id=person.id,
                        approved_by=approved_by,
                        approved_at=approved_at,
                        instance_id=instance.id,
                    )
                )
        elif current is not None:
            current.removed_at = clock.utcnow()
        token = workflow_data.get("credentials_token")
        if token:
            account = session.get(Account, record["account_id"])
            account.credentials = token.encode()
            account.password_fingerprint = workflow_data["password_fingerprint"]


register(ManagerChange())
