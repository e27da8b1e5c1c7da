"""The domain errors of the engine; the web layer maps each to one HTTP status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.diagrams.problems import Problem


class CivicflowError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(CivicflowError):
    """The thing asked for does not exist (or the caller may not know that it does)."""

    code = "not_found"


class NotAllowed(CivicflowError):
    """The caller is known but may not do this."""

    code = "forbidden"


class NotAuthenticated(CivicflowError):
    """No credentials, or credentials that are wrong, expired or revoked."""

    code = "unauthorized"


class Conflict(CivicflowError):
    """The state changed under the caller: a task no longer open, an instance updated concurrently."""

    code = "conflict"


class Invalid(CivicflowError):
    """Input that breaks a rule; `fields` names each offending field with its messages."""

    code = "invalid"


class DiagramError(Invalid):
    """A BPMN diagram that cannot be accepted; `problems` lists each with its element or line."""

    code = "invalid_diagram"

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message, {"diagram": [p.message for p in problems or []]})
        self.problems = problems or []


class Busy(CivicflowError):
    """The work cannot be taken on now; `retry_after` says in how many seconds to send it again."""

    code = "busy"
    retry_after = 5


class ExpressionError(CivicflowError):
    """A diagram expression was refused by the sandbox or failed while running."""

    code = "expression_error"


class MigrationRefused(Conflict):
    """A request cannot move to another version of its procedure; `problems` names each step that stops it."""

    code = "migration_refused"

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message, {"version": [p.message for p in problems]})
        self.problems = problems
