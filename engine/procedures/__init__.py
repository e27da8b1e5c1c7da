"""Each procedure's own rules: its start and task forms, domain checks, and what happens when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.fields import Field
from engine.models import ProcessInstance, Task
from engine.users import Actor


@dataclass
class Submission:
    """What a completed task contributes: data for the workflow, data for the record, the written decision."""

    task_data: dict
    record_updates: dict = field(default_factory=dict)
    decision: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Described:
    """What the engine stores about an instance besides its state."""

    title: str
    department_code: str | None
    restricted: bool = False


class Procedure:
    """Base of a procedure: subclasses fill in the forms and rules of one BPMN process key."""

    key: str = ""
    name: str = ""

    def may_start(self, actor: Actor) -> bool:
        """Whether the actor may file a request of this procedure (any staff member, unless a rule says)."""
        return True

    def start_fields(self, session: Session) -> list[Field]:
        """The fields of the start form."""
        raise NotImplementedError

    def task_fields(self, session: Session, form_key: str, record: dict) -> list[Field]:
        """The fields of a task's form, which may depend on the record (e.g. investigative)."""
        raise NotImplementedError

    def form_keys(self) -> frozenset[str]:
        """Every form key this procedure's diagram may use."""
        raise NotImplementedError

    def validate_start(self, session: Session, actor: Actor, data: dict) -> dict:
        """Clean start data and check the domain rules; raise Invalid by field."""
        raise NotImplementedError

    def describe(self, record: dict) -> Described:
        """Title, department concerned and restriction of an instance from its record."""
        raise NotImplementedError

    def submit(self, session: Session, actor: Actor, instance: ProcessInstance, task: Task,
               data: dict) -> Submission:
        """Validate a task's submission and turn it into workflow data and a written decision."""
        raise NotImplementedError

    def on_end(self, session: Session, instance: ProcessInstance, workflow_data: dict) -> None:
        """Apply the procedure's result (e.g. enter an account in the registry)."""


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


from engine.procedures import new_account_request  # noqa: E402,F401  (registers itself)
