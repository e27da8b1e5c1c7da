"""Diagram expressions run here: RestrictedPython, no imports, no dunders, no files, vetted helpers only.

SpiffWorkflow's default environment runs every condition, script and timer value
with plain eval/exec, so an uploaded diagram could run any code. This module is
the only place a diagram's Python runs.
"""

from __future__ import annotations

import ast
import json
import operator
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import CodeType, ModuleType

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent

from engine.errors import ExpressionError
from engine.mail.outbox import request_letter
from engine.time import deadlines

# Names a diagram may never use, even where RestrictedPython would compile them:
# they are absent at run time too, but refusing them at load gives a clear message.
FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "eval",
        "exec",
        "compile",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
        "type",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "dir",
        "id",
    }
)

_UNSAFE_BUILTINS = {"setattr", "delattr", "__build_class__", "id"}


def _helpers() -> dict:
    """The vetted functions and constants every expression may use."""
    return {
        "min": min,
        "max": max,
        "sum": sum,
        "any": any,
        "all": all,
        "sorted": sorted,
        "enumerate": enumerate,
        "zip": zip,
        "list": list,
        "dict": dict,
        "set": set,
        "tuple": tuple,
        "date": date,
        "datetime": datetime,
        "timedelta": timedelta,
        # Timer values in business days from the City's calendar: reminder_time("appeal_response").
        "due_time": deadlines.due_time,
        "reminder_time": deadlines.reminder_time,
        "escalation_time": deadlines.escalation_time,
    }


def _builtins() -> dict:
    allowed = {k: v for k, v in safe_builtins.items() if k not in _UNSAFE_BUILTINS}
    allowed.update(_helpers())
    return allowed


_GUARDS = {
    "__builtins__": _builtins(),
    "_getattr_": safer_getattr,
    "_getitem_": operator.getitem,
    "_getiter_": iter,
    "_write_": full_write_guard,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
}


def check_source(source: str, mode: str) -> list[str]:
    """Every reason the sandbox refuses this expression ('eval') or script ('exec'); empty if none."""
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source, filename="<diagram>")
    problems = list(result.errors)
    if problems:
        return problems
    tree = ast.parse(source, mode=mode)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(f'Line {node.lineno}: "{node.id}" is not available in diagram expressions.')
        elif isinstance(node, ast.Import | ast.ImportFrom):
            problems.append(f"Line {node.lineno}: imports are not allowed in diagram expressions.")
        elif isinstance(node, ast.Attribute) and node.attr in ("format", "format_map"):
            # "{0.__class__}".format(x) walks attributes inside the string, where no name check sees it.
            problems.append(
                f'Line {node.lineno}: ".{node.attr}()" is not available in diagram expressions '
                "(it reads attributes from inside a string); join strings with +."
            )
        elif isinstance(node, ast.While):
            problems.append(f"Line {node.lineno}: while loops are not allowed in diagram scripts.")
    return problems


@lru_cache(maxsize=2048)
def _compiled(source: str, mode: str) -> CodeType:
    problems = check_source(source, mode)
    if problems:
        raise ExpressionError("; ".join(problems))
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    code = compiler(source, filename="<diagram>").code
    assert code is not None  # RestrictedPython gives no code only with errors, and check_source refused those
    return code


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that evaluates through RestrictedPython."""

    def evaluate(self, expression, context, external_context=None):
        """Evaluate a condition or timer value against the task data."""
        namespace = dict(context)
        namespace.update(external_context or {})
        namespace.update(_GUARDS)
        return eval(_compiled(expression.strip(), "eval"), namespace)  # noqa: S307 - restricted code

    def execute(self, script, context, external_context=None):
        """Run a script task; new or changed plain values go back into the task data."""
        namespace = dict(context)
        namespace.update(external_context or {})
        namespace.update(_GUARDS)
        exec(_compiled(script, "exec"), namespace)  # noqa: S102 - restricted code
        for name in list(context):
            if name not in namespace:
                del context[name]
        for name, value in namespace.items():
            if name.startswith("_") or name in _GUARDS or name in (external_context or {}):
                continue
            if callable(value) or isinstance(value, ModuleType):
                continue
            context[name] = value
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        """The one service a diagram may call: send_letter, which queues a letter of the procedure."""
        return request_letter(operation_name, operation_params or {})


class CivicflowScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine with service calls going to the restricted environment, errors intact.

    (SpiffWorkflow 3.2.0's own call_service refers to an undefined name when the service fails.)
    """

    def call_service(self, task, **kwargs):
        """Call the environment's service; a refusal is an ExpressionError naming the step."""
        step = task.task_spec.bpmn_name or task.task_spec.bpmn_id
        try:
            if kwargs.get("operation_name") in deadlines.REMINDER_AND_ESCALATION_OPERATORS:
                deadlines.request_reminder_or_escalation(
                    kwargs["operation_name"], attached_task_id(task), task.task_spec.bpmn_id
                )
                return json.dumps({"noted": kwargs["operation_name"]})
            return self.environment.call_service(task.data, **kwargs)
        except ExpressionError as exc:
            raise ExpressionError(f'Step "{step}": {exc.message}')


def attached_task_id(task) -> str:
    """The id of the activity whose boundary timer led to this step (a reminder or escalation is about it)."""
    event = task.parent
    while event is not None and not isinstance(event.task_spec, BoundaryEvent):
        event = event.parent
    if event is None or event.parent is None:
        raise ExpressionError("A reminder or escalation step must follow a timer attached to a task.")
    for sibling in event.parent.children:
        if not isinstance(sibling.task_spec, BoundaryEvent):
            return str(sibling.id)
    raise ExpressionError("The task this timer is attached to is missing.")


SCRIPT_ENGINE = CivicflowScriptEngine(environment=RestrictedEnvironment())
