"""The audit trail: append-only events, each hash-chained to the one before it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from engine.db.connection import is_postgres
from engine.db.models import AuditEvent
from engine.time import clock

GENESIS = "0" * 64
_CHAIN_LOCK_ID = 0x63697669  # "civi": one advisory lock guards the chain's tail on PostgreSQL


def _digest(event: AuditEvent) -> str:
    payload = {
        "at": event.at.isoformat(),
        "instance_id": event.instance_id,
        "actor_id": event.actor_id,
        "actor": event.actor,
        "actor_name": event.actor_name,
        "role": event.role,
        "action": event.action,
        "task_id": event.task_id,
        "task": event.task,
        "decision": event.decision,
        "comment": event.comment,
        "detail": event.detail or {},
        "remote_addr": event.remote_addr,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


_TAIL = "civicflow.audit_tail"


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_tail(session: Session, _transaction) -> None:
    # Any end, savepoints included: a rolled-back event must never become someone's predecessor.
    session.info.pop(_TAIL, None)


def append(session: Session, actor, action: str, **fields) -> AuditEvent:
    """Append one event after the current tail of the chain (the caller's transaction commits it).

    The first append of a transaction locks the chain (PostgreSQL) and reads its tail; later
    ones in the same transaction chain to the event appended before them, without a round trip.
    """
    prev = session.info.get(_TAIL)
    if prev is None:
        if is_postgres(session):
            # Serialise appends across connections so two transactions never chain to the same tail.
            session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CHAIN_LOCK_ID})
        session.flush()  # earlier events of this transaction, added under no_autoflush, must be visible
        prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        at=clock.utcnow(),
        actor_id=getattr(actor, "id", None),
        actor=getattr(actor, "username", None) or "system",
        actor_name=getattr(actor, "display_name", None) or "civicflow",
        remote_addr=getattr(actor, "remote_addr", None),
        action=action,
        detail=fields.pop("detail", None) or {},
        prev_hash=prev or GENESIS,
        **fields,
    )
    event.hash = _digest(event)
    session.add(event)
    session.info[_TAIL] = event.hash
    return event


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain: how many events, and the first broken link if any."""

    checked: int
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every link holds."""
        return self.broken_at is None


def verify(session: Session) -> Verification:
    """Walk the chain from the start; report the first event whose content or link does not hold."""
    expected_prev = GENESIS
    checked = 0
    # yield_per streams through a server-side cursor on PostgreSQL: close it also when stopping early.
    query = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)
    with session.scalars(query) as events:
        for event in events:
            if event.prev_hash != expected_prev:
                return Verification(
                    checked,
                    event.id,
                    "its link to the previous event is broken (an event before it was changed or deleted)",
                )
            if _digest(event) != event.hash:
                return Verification(checked, event.id, "its content does not match its hash (it was edited)")
            expected_prev = event.hash
            checked += 1
    return Verification(checked)
