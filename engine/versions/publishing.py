"""Publishing: a draft, validated with every rule a running request depends on, becomes the version in use.

Before anything is stored the diagram is loaded with every rule and driven through its paths in memory (the dry
run, engine/versions/dry_run.py): a step that fails on any path refuses the publication. It is then stored as a
new numbered version (or an identical stored one is used again); requests already running stay on theirs. Each
publication is a row of `process_publication`, and the latest one names the version in use. What the dry run
warned of, and how many requests of the version in use could move to the new one, are in the publication's
result (`Published`) and in its audit event, with the administrator's note of what changed and why (the event's
detail keeps it, with the publication's id: `publication_notes` reads them back for the versions page and the API).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import procedures
from engine.db.models import AuditEvent, ProcessInstance, ProcessPublication, ProcessVersion
from engine.diagrams.loading import LoadedSpec, load_diagram
from engine.diagrams.problems import Problem
from engine.errors import Conflict, DiagramError, Invalid
from engine.people.users import Actor
from engine.procedures.fields import is_storable_text
from engine.records import audit
from engine.requests.authz import require_admin
from engine.time import clock
from engine.versions import migration
from engine.versions.drafts import check_revision, draft_row
from engine.versions.dry_run import DryRun, dry_run
from engine.versions.stored import CHANGE_PROCEDURES, note_in_use, store_version, version, version_in_use

# The requests of the version in use checked for a move to the new one: each costs a load and a plan.
MOVABLE_CHECKED = 200
WARNINGS_AUDITED = 10
MAX_NOTE = 500  # characters of a publication's note: what changed and why, in a sentence or two
PUBLISHED = "process_published"


@dataclass(frozen=True)
class Movable:
    """How many running or held requests of the version in use would move cleanly to the new version."""

    from_version: int
    requests: int  # running or held on the version in use
    checked: int  # of those, how many were checked (the first MOVABLE_CHECKED by id)
    movable: int  # of those checked, how many would move with no problem

    def as_dict(self) -> dict:
        """As the audit trail and the API give it."""
        return {
            "from_version": self.from_version,
            "requests": self.requests,
            "checked": self.checked,
            "movable": self.movable,
        }


@dataclass(frozen=True)
class Published:
    """A publication: the version now in use, what its dry run found (warnings only), and who could move to it."""

    model: ProcessVersion
    dry_run: DryRun
    movable: Movable | None  # None: no other version was in use

    @property
    def warnings(self) -> list[Problem]:
        """What the dry run warned of: it did not block the publication."""
        return self.dry_run.warnings


def clean_note(note: str | None) -> str | None:
    """A publication's note, trimmed (None when empty); Invalid naming the field when it is too long or not text."""
    if note is None:
        return None
    if not isinstance(note, str) or not is_storable_text(note):
        raise Invalid("The note must be plain text.", {"note": ["Write what changed and why, as plain text."]})
    note = " ".join(note.split())
    if len(note) > MAX_NOTE:
        raise Invalid(f"The note may be at most {MAX_NOTE} characters.", {"note": [f"At most {MAX_NOTE} characters."]})
    return note or None


def make_current(session: Session, actor: Actor | None, model: ProcessVersion, *, detail: dict | None = None) -> None:
    """Make a stored version the one new requests of its procedure use, and record who did it.

    The last step of publishing, after every check: it checks nothing itself.
    """
    publication = ProcessPublication(
        key=model.key,
        model=model,
        published_by_id=actor.id if actor is not None else None,
        published_at=clock.utcnow(),
    )
    session.add(publication)
    session.flush()
    note_in_use(session, model)
    if actor is not None:
        audit.append(
            session,
            actor,
            PUBLISHED,
            detail={
                "process": model.key,
                "publication": publication.id,
                "version": model.number,
                "version_hash": model.version_hash,
                "republished": False,
                **(detail or {}),
            },
        )


def publish_shipped(session: Session, model: ProcessVersion) -> None:
    """Make a diagram shipped in workflows/ the version in use (civicflow publishes it, not a person)."""
    make_current(session, None, model)


def checked_diagram(session: Session, key: str, data: bytes) -> tuple[LoadedSpec, DryRun]:
    """A diagram loaded with every rule and dry-run; DiagramError listing every step that fails on some path."""
    procedure = procedures.get(key)
    loaded = load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
    result = dry_run(session, key, loaded, data)
    if result.problems:
        count = len(result.problems)
        raise DiagramError(
            f"The diagram fails when it runs: the dry run before publishing found {count} step"
            f"{'s' if count != 1 else ''} that would hold a request ({count} problem{'s' if count != 1 else ''}).",
            result.problems,
        )
    return loaded, result


def movable_to(session: Session, current: ProcessVersion | None, model: ProcessVersion) -> Movable | None:
    """How many running or held requests of the version in use would move cleanly to `model` (at most
    MOVABLE_CHECKED of them checked)."""
    if current is None or current.id == model.id:
        return None
    movable_now = ProcessInstance.model_id == current.id, ProcessInstance.status.in_(migration.MOVABLE)
    total = session.scalar(select(func.count()).select_from(ProcessInstance).where(*movable_now)) or 0
    instances = session.scalars(
        select(ProcessInstance).where(*movable_now).order_by(ProcessInstance.id).limit(MOVABLE_CHECKED)
    ).all()
    clean = sum(_moves_cleanly(session, instance, model) for instance in instances)
    return Movable(current.number, total, len(instances), clean)


def _moves_cleanly(session: Session, instance: ProcessInstance, model: ProcessVersion) -> bool:
    try:
        return not migration.migration_problems(session, instance, model)
    except Exception:  # noqa: BLE001 - a request whose state cannot be planned does not count as movable
        return False


def _detail(result: DryRun, movable: Movable | None) -> dict:
    summary = result.summary()
    summary["warnings"] = summary["warnings"][:WARNINGS_AUDITED]
    return {"dry_run": summary, "movable": movable.as_dict() if movable is not None else None}


def _with_note(detail: dict, note: str | None) -> dict:
    return {**detail, "note": note} if note else detail


def publish_with_report(
    session: Session, actor: Actor, key: str, *, revision: int | None = None, note: str | None = None
) -> Published:
    """Validate and dry-run the draft and make it the version new requests use; the draft is then gone.

    Every problem is raised at once (DiagramError) and nothing changes. Publishing a draft identical to a
    stored version makes that version current again rather than storing it twice. `note` (what changed and
    why) is kept in the publication's audit event.
    """
    require_admin(actor, CHANGE_PROCEDURES)
    note = clean_note(note)
    procedures.get(key)
    row = draft_row(session, key, lock=True)
    check_revision(row, revision)
    if row is None:
        raise Conflict("There is no draft to publish: save a draft first, or publish an earlier version again.")
    data = row.bpmn_xml.encode("utf-8")
    loaded, result = checked_diagram(session, key, data)
    current = version_in_use(session, key)
    if current is not None and current.version_hash == loaded.version_hash:
        raise Conflict(f"The draft is the same as version {current.number}, which is already in use.")
    model = store_version(session, key, data, loaded, source=row.source, created_by_id=row.updated_by_id)
    movable = movable_to(session, current, model)
    make_current(session, actor, model, detail=_with_note(_detail(result, movable), note))
    session.delete(row)
    session.flush()
    return Published(model, result, movable)


def publish(
    session: Session, actor: Actor, key: str, *, revision: int | None = None, note: str | None = None
) -> ProcessVersion:
    """Validate and dry-run the draft and make it the version new requests use (publish_with_report's version)."""
    return publish_with_report(session, actor, key, revision=revision, note=note).model


def republish_with_report(
    session: Session, actor: Actor, key: str, number: int, *, note: str | None = None
) -> Published:
    """Make an earlier version the one new requests use again (it is validated and dry-run again first)."""
    require_admin(actor, CHANGE_PROCEDURES)
    note = clean_note(note)
    model = version(session, actor, key, number)
    if model.published:
        raise Conflict(f"Version {number} is already the one in use.")
    _, result = checked_diagram(session, key, model.bpmn_xml.encode("utf-8"))
    movable = movable_to(session, version_in_use(session, key), model)
    detail = {"republished": True, **_detail(result, movable)}
    make_current(session, actor, model, detail=_with_note(detail, note))
    return Published(model, result, movable)


def republish(session: Session, actor: Actor, key: str, number: int, *, note: str | None = None) -> ProcessVersion:
    """Make an earlier version the one new requests use again (republish_with_report's version)."""
    return republish_with_report(session, actor, key, number, note=note).model


def publication_notes(session: Session, key: str) -> dict[int, str]:
    """The note of each publication of a procedure that has one, by the publication's id (from the audit trail)."""
    events = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == PUBLISHED))
    return {
        detail["publication"]: detail["note"]
        for detail in events
        if detail.get("process") == key and detail.get("publication") and detail.get("note")
    }


def version_notes(session: Session, key: str) -> dict[int, str]:
    """The note of each version's latest publication, by version number (versions whose one has none are left out)."""
    notes = publication_notes(session, key)
    latest = dict(
        session.execute(
            select(ProcessVersion.number, func.max(ProcessPublication.id))
            .join(ProcessPublication, ProcessPublication.model_id == ProcessVersion.id)
            .where(ProcessVersion.key == key)
            .group_by(ProcessVersion.number)
        ).all()
    )
    return {number: notes[publication] for number, publication in latest.items() if publication in notes}
