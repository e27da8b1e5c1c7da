"""A letter's preview: what a task's text makes, composed exactly as it will be sent, before anything is saved."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from engine import procedures
from engine.db.models import Task
from engine.db.statuses import TaskStatus
from engine.errors import Conflict, NotFound
from engine.mail.outbox import Letter
from engine.people.users import Actor
from engine.requests import authz


@dataclass(frozen=True)
class Preview:
    """The letters a task's submission would send, and whether they go by post (printed and mailed by staff)."""

    letters: list[Letter]

    @property
    def by_post(self) -> bool:
        """Whether the letter is printed and mailed rather than e-mailed."""
        return any(letter.postal_address is not None for letter in self.letters)


def letter_of(task: Task) -> str | None:
    """The letter a task's form writes the body of (its procedure's letter_forms), if any."""
    return procedures.get(task.instance.process_key).letter_forms.get(task.form_key)


def preview(session: Session, actor: Actor, task: Task, data: dict) -> Preview:
    """The letter a task's form data would send, checked as completing the task checks it; nothing is written.

    Invalid by field as the completion would raise it (a body that greets or signs included); NotFound if the
    task writes no letter.
    """
    authz.require_may_act(actor, task, task.instance)
    if task.status != TaskStatus.OPEN:
        raise Conflict(f"This task is no longer open (it was {task.status}).")
    letter = letter_of(task)
    if letter is None:
        raise NotFound("This task writes no letter to preview.")
    instance = task.instance
    procedure = procedures.get(instance.process_key)
    submission = procedure.submission_for(session, actor, instance, task, data)
    record = {**instance.data, **submission.record_updates}
    return Preview(procedure.compose_letter_from(session, instance, letter, record))
