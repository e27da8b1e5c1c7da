"""The statuses the records take, as enums whose values are what the database and the API hold (docs/api.md)."""

from __future__ import annotations

from enum import StrEnum


class InstanceStatus(StrEnum):
    """A request's status (`status` of an instance in the API)."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"


class IncidentStatus(StrEnum):
    """An incident: open while its request is held, resolved once retried or cancelled."""

    OPEN = "open"
    RESOLVED = "resolved"


class TaskStatus(StrEnum):
    """An inbox task's status: open until completed, or cancelled when its request moved past it."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class MailStatus(StrEnum):
    """A letter of the outbox: pending until the mail server takes it, failed when it gave up; a letter to a
    postal address waits in `post` until staff mail it (then it is `sent`, on the day it was mailed)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    POST = "post"


class AccountStatus(StrEnum):
    """An account of the registry."""

    ACTIVE = "active"
    INACTIVE = "inactive"  # deactivated: kept in the registry, no longer chosen for new requests


class PublicStatus(StrEnum):
    """What the public status page says of a filing."""

    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    RESPONDED = "responded"
