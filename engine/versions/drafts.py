"""An administrator's draft of a procedure: saved with its problems listed, discarded, or shown as the version in use.

A draft may hold problems (it is work in progress) but never a document that is not a safe, well-formed BPMN
file: those are refused before anything is stored. A draft's problems are the ones publishing would refuse it for:
what loading it finds, and, once it loads, every step its dry run (engine/versions/dry_run.py) finds failing. So
"publishable" is true only of a draft that publishing would take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import procedures
from engine.db.models import ProcessDraft
from engine.diagrams.loading import load_diagram, version_hash
from engine.diagrams.problems import Problem
from engine.diagrams.xml import parse_xml_safely
from engine.errors import Conflict, DiagramError, NotFound
from engine.people.users import Actor
from engine.records import audit
from engine.requests.authz import require_admin
from engine.time import clock
from engine.versions.dry_run import dry_run
from engine.versions.stored import CHANGE_PROCEDURES, version_in_use

SOURCES = ("editor", "upload", "api")


@dataclass(frozen=True)
class Draft:
    """What an administrator edits: the draft if there is one, else the version in use."""

    key: str
    name: str
    xml: str
    revision: int  # 0: no draft yet (the version in use is shown)
    based_on: int | None  # the number of the version it was started from
    updated_by: str | None
    updated_at: datetime | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def is_draft(self) -> bool:
        """Whether this is an unpublished draft (rather than the version in use)."""
        return self.revision > 0

    @property
    def publishable(self) -> bool:
        """Whether publishing it would succeed now."""
        return self.is_draft and not self.problems


def problems_of(key: str, data: bytes, session: Session | None = None) -> list[Problem]:
    """Every problem that would stop this diagram from being published for the procedure (empty: none).

    With a session, a diagram that loads is also dry-run, as publishing does, and each step that fails on some
    path is a problem too; without one, only what loading finds.
    """
    procedure = procedures.get(key)
    try:
        loaded = load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
    except DiagramError as exc:
        return exc.problems
    return dry_run(session, key, loaded, data).problems if session is not None else []


def stored_form(data: bytes) -> bytes:
    """The bytes a diagram is stored as: its own if UTF-8 (the version hash is of what was sent), else re-encoded.

    Raises DiagramError (nothing is stored) for a document that is too large, declares a DOCTYPE, is not
    well-formed or is not BPMN 2.0.
    """
    root = parse_xml_safely(data)
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper().replace("_", "-")
    if encoding in ("UTF-8", "UTF8", "US-ASCII", "ASCII"):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return data
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)


def draft_row(session: Session, key: str, *, lock: bool = False) -> ProcessDraft | None:
    """The stored draft of a procedure, locked for a change when asked."""
    query = select(ProcessDraft).where(ProcessDraft.key == key)
    return session.scalar(query.with_for_update() if lock else query)


def _draft_of(row: ProcessDraft, name: str, problems: list[Problem]) -> Draft:
    return Draft(
        row.key,
        name,
        row.bpmn_xml,
        row.revision,
        row.based_on.number if row.based_on else None,
        row.updated_by.display_name,
        row.updated_at,
        problems,
    )


def current_draft(session: Session, actor: Actor, key: str, *, with_problems: bool = True) -> Draft:
    """The draft of a procedure, or (revision 0) the version in use, with its problems."""
    require_admin(actor, CHANGE_PROCEDURES)
    procedure = procedures.get(key)
    row = draft_row(session, key)
    if row is not None:
        problems = problems_of(key, row.bpmn_xml.encode(), session) if with_problems else []
        return _draft_of(row, procedure.name, problems)
    model = version_in_use(session, key)
    if model is None:
        raise NotFound(f'No published procedure "{key}".')
    return Draft(
        key,
        procedure.name,
        model.bpmn_xml,
        0,
        model.number,
        None,
        None,
        problems_of(key, model.bpmn_xml.encode()) if with_problems else [],
    )


def check_revision(row: ProcessDraft | None, revision: int | None) -> None:
    """Refuse a save or publish that was made from an older state of the draft than the stored one."""
    if revision is None:
        return
    stored = row.revision if row is not None else 0
    if stored != revision:
        who = f" by {row.updated_by.display_name}" if row is not None else ""
        state = f"revision {stored}, saved{who}" if row is not None else "no draft (it was published or discarded)"
        raise Conflict(
            f"The draft changed while you were editing revision {revision}: it is now {state}. "
            "Reload the editor to see it; download your diagram first to keep your changes."
        )


def save_draft(
    session: Session, actor: Actor, key: str, data: bytes, *, source: str = "editor", revision: int | None = None
) -> Draft:
    """Store a diagram as the procedure's draft; its problems are listed, and block publishing only.

    `revision` is the draft revision the change was made from (0: from the version in use); if the stored
    draft has moved on since, the save is refused (Conflict) rather than overwriting someone's work.
    """
    require_admin(actor, CHANGE_PROCEDURES)
    procedure = procedures.get(key)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    data = stored_form(data)
    xml = data.decode("utf-8")
    row = draft_row(session, key, lock=True)
    check_revision(row, revision)
    if row is not None and row.bpmn_xml == xml:
        return current_draft(session, actor, key)
    problems = problems_of(key, data, session)
    if row is None:
        published = version_in_use(session, key)
        row = ProcessDraft(key=key, revision=0, based_on_id=published.id if published else None)
        session.add(row)
    row.bpmn_xml = xml
    row.revision += 1
    row.source = source
    assert actor.id is not None  # an administrator is a user: only a member of the public has no id
    row.updated_by_id = actor.id
    row.updated_at = clock.utcnow()
    session.flush()
    audit.append(
        session,
        actor,
        "process_draft_saved",
        detail={
            "process": key,
            "revision": row.revision,
            "version_hash": version_hash(data),
            "source": source,
            "problems": len(problems),
        },
    )
    session.refresh(row)
    return _draft_of(row, procedure.name, problems)


def discard_draft(session: Session, actor: Actor, key: str) -> None:
    """Throw the draft away; the version in use is unchanged."""
    require_admin(actor, CHANGE_PROCEDURES)
    procedures.get(key)
    row = draft_row(session, key, lock=True)
    if row is None:
        raise Conflict("There is no draft to discard.")
    audit.append(session, actor, "process_draft_discarded", detail={"process": key, "revision": row.revision})
    session.delete(row)
    session.flush()
