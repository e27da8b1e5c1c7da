"""Completed loop iterations the engine no longer needs, pruned from a workflow's task tree (its history is
civicflow's own: the audit trail and the task table).

A request returned and resubmitted many times keeps every iteration in SpiffWorkflow's task tree: a loop back to
an earlier element adds new child tasks under the completed ones, so the tree becomes a deep chain. Every step
then loads, walks and saves all of it, and SpiffWorkflow 3.2.0's recursive `Task.is_descendant_of` (which a
boundary event's join calls on each decision) fails with a RecursionError after about 140 rounds.

What SpiffWorkflow still needs of the tree is where the request is now. Every task that is not finished lies
below the lowest common ancestor of them all; above it is a chain of finished tasks, and every branch hanging
off that chain is finished too. The chain's middle is spliced out with its branches, keeping:

- the root and the start event below it (SpiffWorkflow's Start task, and the first element of the process);
- the `KEEP_NEAR` tasks nearest the common ancestor, so that what looks a few steps up the tree (a boundary
  event's join finds its split, a gateway in a loop tells earlier iterations from its own) finds the same.

Task data is copied from parent to child as the workflow runs, so the tasks kept hold everything the removed
ones held. (SpiffWorkflow's end join also merges in what every finished branch left at its end. A removed
branch, such as an earlier round's reminder, holds keys the main path holds too, newer, except a service step's
own result, `spiff__<step>_result`: the workflow's data at the end lacks it unless a branch kept ran the same
step. civicflow reads none of those.) A task in ERROR counts as not finished: it is where
the request would be held. Subprocesses whose calling task is removed are dropped with it, and what they passed
through counts as passed; the others are left alone. A request that has ended is left as it is: it takes no
more steps, and its state was pruned at the step before.
"""

from __future__ import annotations

from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

# The root (SpiffWorkflow's Start task) and the process's start event below it.
KEEP_TOP = 2
# The finished tasks kept just above the lowest common ancestor of the unfinished ones (at least one).
KEEP_NEAR = 10
# Prune only when at least this many tasks of the chain could go: an ordinary request is never touched, and a
# long one is pruned once every round or two, back to KEEP_TOP + KEEP_NEAR.
PRUNE_AT = 10

_DONE = TaskState.COMPLETED | TaskState.CANCELLED


def prune(workflow: BpmnWorkflow) -> set[str]:
    """Remove the finished tasks the engine no longer needs; the BPMN ids of the elements they completed."""
    anchor = _anchor(workflow)
    if anchor is None:
        return set()
    chain = _ancestors(workflow, anchor)
    if len(chain) - KEEP_TOP - KEEP_NEAR < PRUNE_AT:
        return set()
    top, first_removed = chain[KEEP_TOP - 1], chain[KEEP_TOP]
    first_kept = chain[-KEEP_NEAR]
    removed = _subtree_without(workflow, first_removed, first_kept)
    top._children[top._children.index(first_removed.id)] = first_kept.id
    first_kept._parent = top.id
    return _forget(workflow, removed)


def _anchor(workflow: BpmnWorkflow) -> Task | None:
    """The lowest common ancestor of the tasks not finished; None when all are (a request that ended)."""
    tasks = workflow.tasks
    unfinished = [task for task in tasks.values() if not task.has_state(_DONE)]
    if not unfinished:
        return None
    # Mark every task on the way up from an unfinished one; each climb stops where an earlier one passed.
    leads_to_unfinished: set[UUID] = set()
    for task in unfinished:
        task_id: UUID | None = task.id
        while task_id is not None and task_id not in leads_to_unfinished:
            leads_to_unfinished.add(task_id)
            task_id = tasks[task_id]._parent
    # Walk down from the root while exactly one child leads on and the task itself is finished.
    current = workflow.task_tree
    while current.has_state(_DONE):
        onward = [child_id for child_id in current._children if child_id in leads_to_unfinished]
        if len(onward) != 1:
            break
        current = tasks[onward[0]]
    return current


def _ancestors(workflow: BpmnWorkflow, task: Task) -> list[Task]:
    """The task's strict ancestors, from the root down (walked without recursion: the chain may be long)."""
    chain = []
    parent_id = task._parent
    while parent_id is not None:
        parent = workflow.tasks[parent_id]
        chain.append(parent)
        parent_id = parent._parent
    chain.reverse()
    return chain


def _subtree_without(workflow: BpmnWorkflow, start: Task, kept: Task) -> list[Task]:
    """The tasks below and including `start`, except `kept` and everything below it."""
    found, stack = [], [start.id]
    while stack:
        task_id = stack.pop()
        if task_id == kept.id:
            continue
        task = workflow.tasks[task_id]
        found.append(task)
        stack.extend(task._children)
    return found


def _forget(workflow: BpmnWorkflow, removed: list[Task]) -> set[str]:
    """Take the removed tasks out of the workflow, with their subprocesses; the elements they completed."""
    gone = list(removed)
    for task in removed:
        if task.id in workflow.subprocesses:
            gone.extend(workflow.delete_subprocess(task))  # its tasks, and those of the subprocesses it called
    for task in removed:
        del workflow.tasks[task.id]
    for task in gone:
        workflow.event_manager.remove_task(task)
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = None
    return {
        task.task_spec.bpmn_id
        for task in gone
        if task.state == TaskState.COMPLETED and getattr(task.task_spec, "bpmn_id", None) is not None
    }
