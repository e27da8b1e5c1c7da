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
from typing import cast

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask

from engine.diagrams import budget, guards
from engine.diagrams.budget import BudgetExceeded
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
    allowed.update(guards.builtins())  # range, sum, list... within the step's budget (engine/diagrams/budget.py)
    return allowed


_GUARDS = {
    "__builtins__": _builtins(),
    "_getattr_": guards.guarded_getattr,
    "_getitem_": operator.getitem,
    "_getiter_": guards.guarded_iter,
    "_write_": full_write_guard,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": guards.inplace,
    "_apply_": guards.apply,
    "_print_": guards.StepLog,
    "_binop_": guards.binop,
    "_format_value_": guards.format_value,
    "_tick_": guards.tick,
}

_OPERATORS = {
    ast.Mult: "*",
    ast.Pow: "**",
    ast.Add: "+",
    ast.LShift: "<<",
    ast.Mod: "%",
    ast.Sub: "-",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.MatMult: "@",
}


def _call(name: str, *args: ast.expr, like: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])
    return ast.fix_missing_locations(ast.copy_location(call, like))


class DiagramPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, with every costly operation routed through the step's budget.

    Binary operators become `_binop_("*", a, b)`; an f-string's format spec goes through `_format_value_`;
    each function a script defines (and each lambda) counts a tick when called; a class statement is refused.
    """

    def visit_BinOp(self, node: ast.BinOp):
        """`a op b` as `_binop_("op", a, b)`: the size of the result is checked before it is made."""
        node = self.node_contents_visit(node)
        return _call("_binop_", ast.Constant(_OPERATORS[type(node.op)]), node.left, node.right, like=node)

    def visit_FormattedValue(self, node: ast.FormattedValue):
        """`{value!r:spec}` with its spec's width checked; without a spec, as Python does it."""
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        value = _call("_format_value_", node.value, ast.Constant(node.conversion), node.format_spec, like=node)
        return ast.copy_location(ast.FormattedValue(value=value, conversion=-1, format_spec=None), node)

    def visit_FunctionDef(self, node: ast.FunctionDef):
        """A function of the script counts a tick on every call (recursion is bounded by the step's budget)."""
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, ast.fix_missing_locations(ast.copy_location(ast.Expr(_call("_tick_", like=node)), node)))
        return node

    def visit_Lambda(self, node: ast.Lambda):
        """A lambda counts a tick on every call."""
        node = cast(ast.Lambda, super().visit_Lambda(node))
        node.body = ast.copy_location(ast.BoolOp(op=ast.Or(), values=[_call("_tick_", like=node), node.body]), node)
        return ast.fix_missing_locations(node)

    def visit_ClassDef(self, node: ast.ClassDef):
        """Classes are refused: a diagram's data is plain values, dicts and lists."""
        self.error(node, "class statements are not available in diagram scripts; keep data in dicts and lists.")
        return node

    def visit_AsyncFunctionDef(self, node):
        """Coroutines are refused."""
        self.error(node, "async functions are not available in diagram scripts.")
        return node


def _compile(source: str, mode: str):
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    return compiler(source, filename="<diagram>", policy=DiagramPolicy)


def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.List | ast.Tuple):
        return all(_is_constant(e) for e in node.elts)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("range", "pow"):
        return not node.keywords and all(_is_constant(a) for a in node.args)
    return False


def _constant_problems(tree: ast.AST) -> list[str]:
    """Constant values over the budget (`10**10**8`, `"x" * 10**9`, `range(10**12)`), refused before publishing."""
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.BinOp | ast.Call) or not _is_constant(node):
            continue
        code = _compile(ast.unparse(node), "eval").code
        if code is None:
            continue
        try:
            with budget.metered():
                eval(code, dict(_GUARDS))  # noqa: S307 - restricted code of constants, sizes checked first
        except BudgetExceeded as exc:
            problems.append(f"Line {getattr(node, 'lineno', 1)}: {exc.message}")
        except Exception:  # noqa: BLE001, S112 - any other failure of a constant is for the dry run to report
            continue
    return problems


def check_source(source: str, mode: str) -> list[str]:
    """Every reason the sandbox refuses this expression ('eval') or script ('exec'); empty if none."""
    result = _compile(source, mode)
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
    return problems or _constant_problems(tree)


@lru_cache(maxsize=2048)
def _compiled(source: str, mode: str) -> CodeType:
    problems = check_source(source, mode)
    if problems:
        raise ExpressionError("; ".join(problems))
    code = _compile(source, mode).code
    assert code is not None  # RestrictedPython gives no code only with errors, and check_source refused those
    return code


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that evaluates through RestrictedPython."""

    def evaluate(self, expression, context, external_context=None):
        """Evaluate a condition or timer value against the task data."""
        namespace = dict(context)
        namespace.update(external_context or {})
        namespace.update(_GUARDS)
        code = _compiled(expression.strip(), "eval")
        if budget.in_step():
            return eval(code, namespace)  # noqa: S307 - restricted code, within its step's budget
        with budget.metered():
            return eval(code, namespace)  # noqa: S307 - restricted code, within a budget of its own

    def execute(self, script, context, external_context=None):
        """Run a script task; new or changed plain values go back into the task data."""
        namespace = dict(context)
        namespace.update(external_context or {})
        namespace.update(_GUARDS)
        code = _compiled(script, "exec")
        if budget.in_step():
            exec(code, namespace)  # noqa: S102 - restricted code, within its step's budget
        else:
            with budget.metered():
                exec(code, namespace)  # noqa: S102 - restricted code, within a budget of its own
        self._write_back(context, namespace, external_context or {})
        budget.check_data(context)
        return True

    @staticmethod
    def _write_back(context: dict, namespace: dict, external_context: dict) -> None:
        """New or changed plain values of the script go back into the task data."""
        for name in list(context):
            if name not in namespace:
                del context[name]
        for name, value in namespace.items():
            if name.startswith("_") or name in _GUARDS or name in external_context:
                continue
            if callable(value) or isinstance(value, ModuleType):
                continue
            context[name] = value

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        """The one service a diagram may call: send_letter, which queues a letter of the procedure."""
        return request_letter(operation_name, operation_params or {})


MAX_INSTANCES = 1000  # a multi-instance's loopCardinality, at run time (the rules refuse larger literals)


class CivicflowScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine with service calls going to the restricted environment, errors intact.

    (SpiffWorkflow 3.2.0's own call_service refers to an undefined name when the service fails.)
    """

    def evaluate(self, task, expression, external_context=None):
        """Evaluate as SpiffWorkflow does; a multi-instance's cardinality is held to MAX_INSTANCES."""
        value = super().evaluate(task, expression, external_context)
        spec = task.task_spec
        counted = isinstance(spec, MultiInstanceTask) and expression == spec.cardinality and isinstance(value, int)
        if counted and value > MAX_INSTANCES:
            raise BudgetExceeded(
                f"The step would run {value:,} times; a multi-instance step runs at most {MAX_INSTANCES:,}."
            )
        return value

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
