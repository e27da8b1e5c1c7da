"""Publishing: a draft, validated with every rule a running request depends on, becomes the version in use.

It is stored as a new numbered version (or an identical stored one is used again); requests already running
stay on theirs. Each publication is a row of `process_publication`, and the latest one names the version in use.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine import procedures
from engine.db.models import ProcessPublication, ProcessVersion
from engine.diagrams.loading import load_diagram
from engine.errors import Conflict
from engine.people.users import Actor
from engine.records import audit
from engine.requests.authz import require_admin
from engine.time import clock
from engine.versions.drafts import check_revision, draft_row
from engine.versions.stored import CHANGE_PROCEDURES, note_in_use, store_version, version, version_in_use


def _make_current(session: Session, actor: Actor | None, model: ProcessVersion, *, republished: bool) -> None:
    """Make a stored version the one new requests of its procedure use, and record who did it."""
    session.add(
        ProcessPublication(
            key=model.key,
            model=model,
            published_by_id=actor.id if actor is not None else None,
            published_at=clock.utcnow(),
        )
    )
    session.flush()
    note_in_use(session, model)
    if actor is not None:
        audit.append(
            session,
            actor,
            "process_published",
            detail={
                "process": model.key,
                "version": model.number,
                "version_hash": model.version_hash,
                "republished": republished,
            },
        )


def publish_shipped(session: Session, model: ProcessVersion) -> None:
    """Make a diagram shipped in workflows/ the version in use (civicflow publishes it, not a person)."""
    _make_current(session, None, model, republished=False)


def publish(session: Session, actor: Actor, key: str, *, revision: int | None = None) -> ProcessVersion:
    """Validate the draft and make it the version new requests use; the draft is then gone.

    Every problem is raised at once (DiagramError) and nothing changes. Publishing a draft identical to a
    stored version makes that version current again rather than storing it twice.
    """
    require_admin(actor, CHANGE_PROCEDURES)
    procedure = procedures.get(key)
    row = draft_row(session, key, lock=True)
    check_revision(row, revision)
    if row is None:
        raise Conflict("There is no draft to publish: save a draft first, or publish an earlier version again.")
    data = row.bpmn_xml.encode("utf-8")
    loaded = load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
    current = version_in_use(session, key)
    if current is not None and current.version_hash == loaded.version_hash:
        raise Conflict(f"The draft is the same as version {current.number}, which is already in use.")
    model = store_version(session, key, data, loaded, source=row.source, created_by_id=row.updated_by_id)
    _make_current(session, actor, model, republished=False)
    session.delete(row)
    session.flush()
    return model


def republish(session: Session, actor: Actor, key: str, number: int) -> ProcessVersion:
    """Make an earlier version the one new requests use again (it is validated again first)."""
    require_admin(actor, CHANGE_PROCEDURES)
    procedure = procedures.get(key)
    model = version(session, actor, key, number)
    if model.published:
        raise Conflict(f"Version {number} is already the one in use.")
    load_diagram(model.bpmn_xml.encode("utf-8"), key, procedure.editor_form_keys(), procedure.letters)
    _make_current(session, actor, model, republished=True)
    return model
