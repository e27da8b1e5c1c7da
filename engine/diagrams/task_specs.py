"""What civicflow reads from a parsed diagram's task specs: forms, deadlines, timers and what they are attached to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent

if TYPE_CHECKING:
    from engine.diagrams.loading import LoadedSpec


def form_key_of(task_spec) -> str | None:
    """The form key of a user task (a spiffworkflow:property named formKey)."""
    return (getattr(task_spec, "extensions", None) or {}).get("properties", {}).get("formKey")


def deadline_of(task_spec) -> str | None:
    """The deadline kind of a review task (a spiffworkflow:property named deadline), e.g. "appeal_response"."""
    return (getattr(task_spec, "extensions", None) or {}).get("properties", {}).get("deadline")


def is_timer(task_spec) -> bool:
    """Whether a task spec is a timer event (a boundary timer, an intermediate or a start timer)."""
    return isinstance(getattr(task_spec, "event_definition", None), TimerEventDefinition)


def all_task_specs(spec, subprocess_specs: dict) -> Iterator:
    """Every task spec of a process and of its sub-processes."""
    for process in [spec, *subprocess_specs.values()]:
        yield from process.task_specs.values()


def attached_task_spec(boundary_event):
    """The activity a boundary event is attached to (SpiffWorkflow puts both under a split)."""
    for split in boundary_event.inputs:
        for output in split.outputs:
            if not isinstance(output, BoundaryEvent):
                return output
    return None


def boundary_events_of(loaded: LoadedSpec, bpmn_id: str) -> list:
    """The boundary events attached to the activity with this BPMN id."""
    return [
        spec
        for spec in all_task_specs(loaded.spec, loaded.subprocess_specs)
        if isinstance(spec, BoundaryEvent) and getattr(attached_task_spec(spec), "bpmn_id", None) == bpmn_id
    ]
