"""Each procedure's own rules: its start and task forms, domain checks, and what happens when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from engine.db.models import ProcessInstance, Task
from engine.errors import NotFound
from engine.mail.outbox import Letter
from engine.people.roles import REQUESTER
from engine.people.users import Actor
from engine.procedures.fields import APPROVAL_FIELDS, Field, check_review, validate


@dataclass
class Submission:
    """What a completed task contributes: data for the workflow, data for the record, the written decision."""

    task_data: dict
    record_updates: dict = field(default_factory=dict)
    decision: str | None = None
    comment: str | None = None


def written_review(clean: dict) -> Submission:
    """A reviewer's written decision (a reason is required to reject or return) as a submission."""
    check_review(clean)
    return Submission(clean, decision=clean["decision"], comment=clean.get("comment"))


@dataclass(frozen=True)
class TaskTarget:
    """Who a new user task is for: its department, the account whose managers hold it, or one person."""

    department_id: int | None = None
    account_id: int | None = None
    assignee_id: int | None = None


@dataclass(frozen=True)
class Described:
    """What the engine stores about an instance besides its state."""

    title: str
    department_code: str | None
    restricted: bool = False


# A written approval any procedure's diagram may give a user task: the approver an administrator adds when the
# policy adds one (approve, or reject with a written reason; a gateway after it reads `decision`).
APPROVAL_FORM = "written_approval"


class Procedure:
    """Base of a procedure: subclasses fill in the forms and rules of one BPMN process key."""

    key: str = ""
    name: str = ""
    # What the diagram's "send_letter" service tasks may name (see compose_letter).
    letters: frozenset[str] = frozenset()
    # Letters the City promises to send within a deadline of settings.deadlines (late ones are escalated).
    letter_deadlines: dict[str, str] = {}
    # The lane of whoever files a request, as the history names it.
    starter_role: str = REQUESTER
    # Record fields only the City Attorney and the Communications Manager may read (attorney-client privilege).
    privileged_fields: frozenset[str] = frozenset()
    # Members of the public file these through the public pages (engine/requests/public.py), as this kind.
    public_kind: str | None = None
    # The record fields holding the name and address of whoever wrote in (a member of the public has no user).
    filer_name_field: str | None = None
    filer_email_field: str | None = None
    # The letters the public status page reports: the City acknowledged, and responded in writing.
    acknowledgement_letter: str | None = None
    response_letter: str | None = None
    # Task forms whose text is the body of a letter, and that letter: the page previews it before it is sent.
    letter_forms: dict[str, str] = {}

    def may_start(self, actor: Actor) -> bool:
        """Whether the actor may file a request of this procedure (any staff member, unless a rule says)."""
        return True

    def start_refusal(self) -> str:
        """Why someone who may not file this procedure cannot, in the policy's terms."""
        return f'You may not file a request of "{self.name}".'

    def start_fields(self, session: Session, actor: Actor | None = None) -> list[Field]:
        """The fields of the start form; choices may depend on who files it (e.g. the accounts they manage)."""
        raise NotImplementedError

    def public_fields(self, session: Session) -> list[Field]:
        """The public form: the start fields a member of the public fills in, in their words (public kinds only)."""
        raise NotImplementedError

    def task_fields(self, session: Session, form_key: str, record: dict) -> list[Field]:
        """The fields of a task's form, which may depend on the record (e.g. investigative)."""
        raise NotImplementedError

    def form_keys(self) -> frozenset[str]:
        """Every form key this procedure's diagram may use."""
        raise NotImplementedError

    def editor_form_keys(self) -> frozenset[str]:
        """The forms an administrator may give a user task of this procedure: its own, and the written approval."""
        return self.form_keys() | {APPROVAL_FORM}

    def fields_for(self, session: Session, form_key: str, record: dict) -> list[Field]:
        """The fields of the form a task shows: the written approval's, or the procedure's own."""
        if form_key == APPROVAL_FORM:
            return APPROVAL_FIELDS
        return self.task_fields(session, form_key, record)

    def submission_for(
        self, session: Session, actor: Actor, instance: ProcessInstance, task: Task, data: dict
    ) -> Submission:
        """A completed task's submission: the written approval's, or the procedure's own."""
        if task.form_key == APPROVAL_FORM:
            return written_review(validate(APPROVAL_FIELDS, data))
        return self.submit(session, actor, instance, task, data)

    def validate_start(self, session: Session, actor: Actor, data: dict) -> dict:
        """Clean start data and check the domain rules; raise Invalid by field."""
        raise NotImplementedError

    def describe(self, record: dict) -> Described:
        """Title, department concerned and restriction of an instance from its record."""
        raise NotImplementedError

    def submit(self, session: Session, actor: Actor, instance: ProcessInstance, task: Task, data: dict) -> Submission:
        """Validate a task's submission and turn it into workflow data and a written decision."""
        raise NotImplementedError

    def on_start(self, session: Session, actor: Actor, instance: ProcessInstance) -> None:
        """Bind what the new request uses to it (e.g. its uploaded screenshot), once it has an id."""

    def on_end(self, session: Session, instance: ProcessInstance, workflow_data: dict) -> None:
        """Apply the procedure's result (e.g. enter an account in the registry)."""

    def task_target(self, session: Session, instance: ProcessInstance, form_key: str, role: str) -> TaskTarget:
        """Who a new task is for; by default the request's department, and the requester's own tasks to them."""
        return TaskTarget(
            department_id=instance.department_id, assignee_id=instance.started_by_id if role == REQUESTER else None
        )

    def linked_records(self, session: Session, instance: ProcessInstance) -> list[ProcessInstance]:
        """Other requests a reviewer of this one should see (e.g. the removal an appeal is about)."""
        return []

    def compose_letter(self, session: Session, instance: ProcessInstance, letter: str) -> list[Letter]:
        """The mail a "send_letter" step of the diagram sends, from the record as it stands."""
        raise NotFound(f'{self.name} has no letter "{letter}".')

    def compose_letter_from(
        self, session: Session, instance: ProcessInstance, letter: str, record: dict
    ) -> list[Letter]:
        """The letter as it would read from `record`: a preview of what a task's text makes (letter_forms)."""
        raise NotFound(f'{self.name} has no letter "{letter}" to preview.')


_registry: dict[str, Procedure] = {}


def register(procedure: Procedure) -> Procedure:
    """Make a procedure known by its process key."""
    _registry[procedure.key] = procedure
    return procedure


def get(key: str) -> Procedure:
    """The procedure for a process key."""
    try:
        return _registry[key]
    except KeyError:
        raise NotFound(f'No procedure "{key}".')


def all_procedures() -> list[Procedure]:
    """Every registered procedure."""
    return list(_registry.values())


def all_form_keys() -> frozenset[str]:
    """Every form key of every procedure."""
    return frozenset().union(*(p.form_keys() for p in _registry.values()))


from engine.procedures import (  # noqa: E402,F401  (each registers itself)
    content_removal,
    legality_dispute,
    manager_change,
    new_account_request,
    removal_appeal,
)
