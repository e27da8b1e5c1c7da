"""Administrators change the procedures: a draft per procedure, validation, publishing, versions, differences.

A draft may hold problems (it is work in progress) but never a document that is not a safe, well-formed BPMN
file: those are refused before anything is stored. Publishing validates the draft with every rule a running
request depends on and stores it as a new numbered version; requests already running stay on theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, defer, joinedload

from engine import procedures
from engine.db.models import ProcessDraft, ProcessInstance, ProcessPublication, ProcessVersion
from engine.diagrams import specs
from engine.errors import Conflict, DiagramError, NotAllowed, NotFound
from engine.people.roles import ADMIN
from engine.people.users import Actor
from engine.records import audit
from engine.time import clock

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
    problems: list[dict] = field(default_factory=list)

    @property
    def is_draft(self) -> bool:
        """Whether this is an unpublished draft (rather than the version in use)."""
        return self.revision > 0

    @property
    def publishable(self) -> bool:
        """Whether publishing it would succeed now."""
        return self.is_draft and not self.problems


@dataclass(frozen=True)
class Version:
    """One stored version of a procedure, as the version list shows it."""

    number: int
    version_hash: str
    name: str
    source: str
    created_at: datetime
    created_by: str | None
    current: bool
    published_at: datetime | None
    published_by: str | None
    running: int


def require_admin(actor: Actor) -> None:
    """Only administrators change procedures."""
    if ADMIN not in actor.roles:
        raise NotAllowed("Only administrators can change the procedures.")


def problems_of(key: str, data: bytes) -> list[dict]:
    """Every problem that would stop this diagram from being published for the procedure (empty: none)."""
    procedure = procedures.get(key)
    try:
        specs.load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
    except DiagramError as exc:
        return exc.problems
    return []


def stored_form(data: bytes) -> bytes:
    """The bytes a diagram is stored as: its own if UTF-8 (the version hash is of what was sent), else re-encoded.

    Raises DiagramError (nothing is stored) for a document that is too large, declares a DOCTYPE, is not
    well-formed or is not BPMN 2.0.
    """
    root = specs.parse_xml_safely(data)
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


def version_in_use(session: Session, key: str) -> ProcessVersion | None:
    """The published version of a procedure (the one new requests use), if any."""
    return session.scalar(select(ProcessVersion).where(ProcessVersion.key == key, ProcessVersion.published.is_(True)))


def _draft_row(session: Session, key: str, *, lock: bool = False) -> ProcessDraft | None:
    query = select(ProcessDraft).where(ProcessDraft.key == key)
    return session.scalar(query.with_for_update() if lock else query)


def current_draft(session: Session, actor: Actor, key: str, *, with_problems: bool = True) -> Draft:
    """The draft of a procedure, or (revision 0) the version in use, with its problems."""
    require_admin(actor)
    procedure = procedures.get(key)
    row = _draft_row(session, key)
    if row is not None:
        xml = row.bpmn_xml
        return Draft(
            key,
            procedure.name,
            xml,
            row.revision,
            row.based_on.number if row.based_on else None,
            row.updated_by.display_name,
            row.updated_at,
            problems_of(key, xml.encode()) if with_problems else [],
        )
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


def _check_revision(row: ProcessDraft | None, revision: int | None) -> None:
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
    require_admin(actor)
    procedure = procedures.get(key)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    data = stored_form(data)
    xml = data.decode("utf-8")
    row = _draft_row(session, key, lock=True)
    _check_revision(row, revision)
    if row is not None and row.bpmn_xml == xml:
        return current_draft(session, actor, key)
    problems = problems_of(key, data)
    if row is None:
        published = version_in_use(session, key)
        row = ProcessDraft(key=key, revision=0, based_on_id=published.id if published else None)
        session.add(row)
    row.bpmn_xml = xml
    row.revision += 1
    row.source = source
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
            "version_hash": specs.version_hash(data),
            "source": source,
            "problems": len(problems),
        },
    )
    session.refresh(row)
    return Draft(
        key,
        procedure.name,
        xml,
        row.revision,
        row.based_on.number if row.based_on else None,
        row.updated_by.display_name,
        row.updated_at,
        problems,
    )


def discard_draft(session: Session, actor: Actor, key: str) -> None:
    """Throw the draft away; the version in use is unchanged."""
    require_admin(actor)
    procedures.get(key)
    row = _draft_row(session, key, lock=True)
    if row is None:
        raise Conflict("There is no draft to discard.")
    audit.append(session, actor, "process_draft_discarded", detail={"process": key, "revision": row.revision})
    session.delete(row)
    session.flush()


def _make_current(session: Session, actor: Actor | None, model: ProcessVersion, *, republished: bool) -> None:
    """Make a stored version the one new requests of its procedure use, and record who did it."""
    now = clock.utcnow()
    session.execute(
        update(ProcessVersion)
        .where(ProcessVersion.key == model.key, ProcessVersion.id != model.id)
        .values(published=False)
        .execution_options(synchronize_session=False)
    )
    model.published = True
    model.published_at = now
    model.published_by_id = actor.id if actor is not None else None
    session.add(
        ProcessPublication(key=model.key, model_id=model.id, published_by_id=model.published_by_id, published_at=now)
    )
    session.flush()
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


def next_number(session: Session, key: str) -> int:
    """The number the next stored version of a procedure gets."""
    return (session.scalar(select(func.max(ProcessVersion.number)).where(ProcessVersion.key == key)) or 0) + 1


def store_version(
    session: Session, key: str, data: bytes, loaded: specs.LoadedSpec, *, source: str, created_by_id: int | None
) -> ProcessVersion:
    """The stored version with these bytes, stored now as the next number if it is new."""
    digest = specs.version_hash(data)
    model = session.scalar(
        select(ProcessVersion).where(ProcessVersion.key == key, ProcessVersion.version_hash == digest)
    )
    if model is None:
        model = ProcessVersion(
            key=key,
            number=next_number(session, key),
            name=loaded.name,
            version_hash=digest,
            bpmn_xml=data.decode("utf-8"),
            source=source,
            created_by_id=created_by_id,
            created_at=clock.utcnow(),
            published=False,
        )
        session.add(model)
        session.flush()
    return model


def publish_shipped(session: Session, model: ProcessVersion) -> None:
    """Make a diagram shipped in workflows/ the version in use (civicflow publishes it, not a person)."""
    _make_current(session, None, model, republished=False)


def publish(session: Session, actor: Actor, key: str, *, revision: int | None = None) -> ProcessVersion:
    """Validate the draft and make it the version new requests use; the draft is then gone.

    Every problem is raised at once (DiagramError) and nothing changes. Publishing a draft identical to a
    stored version makes that version current again rather than storing it twice.
    """
    require_admin(actor)
    procedure = procedures.get(key)
    row = _draft_row(session, key, lock=True)
    _check_revision(row, revision)
    if row is None:
        raise Conflict("There is no draft to publish: save a draft first, or publish an earlier version again.")
    data = row.bpmn_xml.encode("utf-8")
    loaded = specs.load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
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
    require_admin(actor)
    procedure = procedures.get(key)
    model = version(session, actor, key, number)
    if model.published:
        raise Conflict(f"Version {number} is already the one in use.")
    specs.load_diagram(model.bpmn_xml.encode("utf-8"), key, procedure.editor_form_keys(), procedure.letters)
    _make_current(session, actor, model, republished=True)
    return model


def version(session: Session, actor: Actor, key: str, number: int) -> ProcessVersion:
    """One stored version of a procedure, by number."""
    require_admin(actor)
    procedures.get(key)
    model = session.scalar(select(ProcessVersion).where(ProcessVersion.key == key, ProcessVersion.number == number))
    if model is None:
        raise NotFound(f'"{key}" has no version {number}.')
    return model


def versions(session: Session, actor: Actor, key: str) -> list[Version]:
    """Every stored version of a procedure, newest first, with who stored and last published it."""
    require_admin(actor)
    procedures.get(key)
    running = dict(
        session.execute(
            select(ProcessInstance.model_id, func.count())
            .where(ProcessInstance.process_key == key, ProcessInstance.status == "running")
            .group_by(ProcessInstance.model_id)
        ).all()
    )
    models = session.scalars(
        select(ProcessVersion)
        .options(
            defer(ProcessVersion.bpmn_xml),
            joinedload(ProcessVersion.created_by).lazyload("*"),
            joinedload(ProcessVersion.published_by).lazyload("*"),
        )
        .where(ProcessVersion.key == key)
        .order_by(ProcessVersion.number.desc())
    )
    return [
        Version(
            m.number,
            m.version_hash,
            m.name,
            m.source,
            m.created_at,
            m.created_by.display_name if m.created_by else None,
            m.published,
            m.published_at,
            (m.published_by.display_name if m.published_by else "civicflow") if m.published_at else None,
            running.get(m.id, 0),
        )
        for m in models
    ]


def publications(session: Session, actor: Actor, key: str) -> list[ProcessPublication]:
    """Each publication of a procedure, newest first: which version, by whom, when."""
    require_admin(actor)
    procedures.get(key)
    return list(
        session.scalars(
            select(ProcessPublication).where(ProcessPublication.key == key).order_by(ProcessPublication.id.desc())
        )
    )


# ---- differences ---------------------------------------------------------------------------------------

_DI_NAMESPACES = (
    "http://www.omg.org/spec/BPMN/20100524/DI",
    "http://www.omg.org/spec/DD/20100524/DC",
    "http://www.omg.org/spec/DD/20100524/DI",
)
_BPMN = f"{{{specs.BPMN_NS}}}"
_SPIFF = f"{{{specs.SPIFF_NS}}}"
_SKIPPED = {
    "definitions",
    "extensionElements",
    "incoming",
    "outgoing",
    "flowNodeRef",
    "laneSet",
    "childLaneSet",
    "conditionExpression",
    "timeDate",
    "timeDuration",
    "timeCycle",
    "script",
    "documentation",
}


_REFERENCES = ("From", "To", "Attached to", "Default flow")


def _type_name(element: etree._Element) -> str:
    """'userTask' -> 'User task'."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", etree.QName(element).localname).lower()
    return words[:1].upper() + words[1:]


def _facts(root: etree._Element) -> dict[str, dict]:
    """What each identified element of a diagram is and does, in the terms the editor shows; no drawing."""
    lane_of = {}
    for lane in root.iter(f"{_BPMN}lane"):
        for ref in lane.iterfind(f"{_BPMN}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
    facts: dict[str, dict] = {}
    for element in root.iter():
        if not isinstance(element.tag, str) or element.get("id") is None:
            continue
        qname = etree.QName(element)
        if qname.namespace in _DI_NAMESPACES or qname.namespace != specs.BPMN_NS or qname.localname in _SKIPPED:
            continue
        if qname.localname.endswith("EventDefinition"):
            continue  # described with its event
        what = {"Type": _type_name(element), "Name": element.get("name") or ""}
        if element.get("id") in lane_of:
            what["Lane"] = lane_of[element.get("id")]
        for prop in element.iterfind(f"{_BPMN}extensionElements/{_SPIFF}properties/{_SPIFF}property"):
            label = {"formKey": "Form", "deadline": "Due date"}.get(prop.get("name"), f"Property {prop.get('name')}")
            what[label] = prop.get("value") or ""
        operator = element.find(f"{_BPMN}extensionElements/{_SPIFF}serviceTaskOperator")
        if operator is not None:
            what["Service"] = operator.get("id") or ""
            for parameter in operator.iter(f"{_SPIFF}parameter"):
                what[f"Parameter {parameter.get('id')}"] = parameter.get("value") or ""
        for name in ("sourceRef", "targetRef", "attachedToRef", "default", "cancelActivity"):
            if element.get(name) is not None:
                label = {
                    "sourceRef": "From",
                    "targetRef": "To",
                    "attachedToRef": "Attached to",
                    "default": "Default flow",
                    "cancelActivity": "Interrupts the task",
                }[name]
                what[label] = element.get(name)
        condition = element.find(f"{_BPMN}conditionExpression")
        if condition is not None:
            what["Condition"] = (condition.text or "").strip()
        for timer in element.iterfind(f"{_BPMN}timerEventDefinition/*"):
            if isinstance(timer.tag, str):
                what[f"Timer ({etree.QName(timer).localname})"] = (timer.text or "").strip()
        script = element.find(f"{_BPMN}script")
        if script is not None:
            what["Script"] = (script.text or "").strip()
        documentation = element.find(f"{_BPMN}documentation")
        if documentation is not None:
            what["Documentation"] = " ".join((documentation.text or "").split())
        facts[element.get("id")] = what
    return facts


def _bounds(root: etree._Element) -> dict[str, tuple]:
    shapes = {}
    for shape in root.iter(
        "{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape", "{http://www.omg.org/spec/BPMN/20100524/DI}BPMNEdge"
    ):
        points = tuple(
            (p.get("x"), p.get("y"), p.get("width"), p.get("height"))
            for p in shape.iter()
            if etree.QName(p).localname in ("Bounds", "waypoint")
        )
        shapes[shape.get("bpmnElement")] = points
    return shapes


@dataclass(frozen=True)
class Difference:
    """What changed between two versions of a diagram, element by element."""

    added: list[dict]
    removed: list[dict]
    changed: list[dict]
    moved: list[dict]

    @property
    def empty(self) -> bool:
        """Whether the two diagrams are the same, drawing included."""
        return not (self.added or self.removed or self.changed or self.moved)

    def as_dict(self) -> dict:
        """The difference as the API gives it."""
        return {"added": self.added, "removed": self.removed, "changed": self.changed, "moved": self.moved}


def difference(before: str | bytes, after: str | bytes) -> Difference:
    """Elements added, removed and changed (with each changed property, before and after), and those moved."""
    old_root = specs.parse_xml_safely(before.encode() if isinstance(before, str) else before)
    new_root = specs.parse_xml_safely(after.encode() if isinstance(after, str) else after)
    old, new = _facts(old_root), _facts(new_root)

    def shown(facts: dict[str, dict], name: str, value: str | None) -> str | None:
        """A reference reads as what it points at, "Budget check (Activity_0h91ott)"; compared by id only."""
        target = facts.get(value or "") if name in _REFERENCES else None
        return f"{target['Name']} ({value})" if target is not None and target["Name"] else value

    def entry(element_id, facts, every):
        return {
            "id": element_id,
            "type": facts["Type"],
            "name": facts["Name"],
            "properties": {k: shown(every, k, v) for k, v in facts.items() if k not in ("Type", "Name") and v != ""},
        }

    added = [entry(i, new[i], new) for i in new if i not in old]
    removed = [entry(i, old[i], old) for i in old if i not in new]
    changed = []
    for element_id in (i for i in new if i in old and new[i] != old[i]):
        changes = [
            {
                "property": name,
                "before": shown(old, name, old[element_id].get(name)),
                "after": shown(new, name, new[element_id].get(name)),
            }
            for name in dict.fromkeys([*old[element_id], *new[element_id]])
            if old[element_id].get(name) != new[element_id].get(name)
        ]
        changed.append(
            {"id": element_id, "type": new[element_id]["Type"], "name": new[element_id]["Name"], "changes": changes}
        )
    old_bounds, new_bounds = _bounds(old_root), _bounds(new_root)
    changed_ids = {c["id"] for c in changed}
    moved = [
        {"id": i, "type": new[i]["Type"], "name": new[i]["Name"]}
        for i in new
        if i in old and i not in changed_ids and i in old_bounds and i in new_bounds and old_bounds[i] != new_bounds[i]
    ]
    return Difference(added, removed, changed, moved)


def compare(session: Session, actor: Actor, key: str, before: int, after: int | str) -> Difference:
    """The difference between two versions of a procedure by number (`after` may be "draft")."""
    old = version(session, actor, key, before).bpmn_xml
    new = (
        current_draft(session, actor, key, with_problems=False).xml
        if after == "draft"
        else version(session, actor, key, int(after)).bpmn_xml
    )
    return difference(old, new)
