"""The stored versions of each procedure: numbered, never changed, one of them in use for new requests.

A version is in use when its procedure's latest publication names it (`ProcessVersion.published`, derived from
`process_publication`); who last published a version, and when, is read from its publications too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from engine import procedures
from engine.db.models import ProcessInstance, ProcessPublication, ProcessVersion
from engine.db.statuses import InstanceStatus
from engine.diagrams.cache import cached_spec, cached_version
from engine.diagrams.loading import LoadedSpec, version_hash
from engine.errors import NotFound
from engine.people.users import Actor
from engine.requests.authz import require_admin
from engine.time import clock

# What only administrators may do here: "Only administrators can change the procedures."
CHANGE_PROCEDURES = "change the procedures"


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


def version_in_use(session: Session, key: str) -> ProcessVersion | None:
    """The published version of a procedure (the one new requests use), if any."""
    return session.scalar(select(ProcessVersion).where(ProcessVersion.key == key, ProcessVersion.published))


def published_models(session: Session) -> list[ProcessVersion]:
    """The published version of every procedure."""
    return list(session.scalars(select(ProcessVersion).where(ProcessVersion.published).order_by(ProcessVersion.key)))


def published_model(session: Session, key: str) -> ProcessVersion:
    """The version new requests of a procedure use."""
    model = session.scalar(
        select(ProcessVersion)
        .options(defer(ProcessVersion.bpmn_xml))
        .where(ProcessVersion.key == key, ProcessVersion.published)
    )
    if model is None:
        raise NotFound(f'No published procedure "{key}".')
    return model


def spec_of(model: ProcessVersion) -> LoadedSpec:
    """The parsed spec of a stored version; by its hash first, so the XML is read (and hashed) only on a cold cache."""
    return cached_version(model.version_hash) or cached_spec(model.key, model.bpmn_xml)


def spec_of_instance(instance: ProcessInstance) -> LoadedSpec:
    """The parsed spec of the version a request runs on; its version row is read only on a cold cache."""
    return cached_version(instance.version_hash) or spec_of(instance.model)


def next_number(session: Session, key: str) -> int:
    """The number the next stored version of a procedure gets."""
    return (session.scalar(select(func.max(ProcessVersion.number)).where(ProcessVersion.key == key)) or 0) + 1


def store_version(
    session: Session, key: str, data: bytes, loaded: LoadedSpec, *, source: str, created_by_id: int | None
) -> ProcessVersion:
    """The stored version with these bytes, stored now as the next number if it is new."""
    digest = version_hash(data)
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
        )
        session.add(model)
        session.flush()
        set_committed_value(model, "published", False)  # nobody has published it yet
    return model


def note_in_use(session: Session, model: ProcessVersion) -> None:
    """Bring the loaded versions of a procedure in step with a publication just flushed: `model` is in use."""
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, ProcessVersion) and loaded.key == model.key:
            set_committed_value(loaded, "published", loaded is model)


def version(session: Session, actor: Actor, key: str, number: int) -> ProcessVersion:
    """One stored version of a procedure, by number."""
    require_admin(actor, CHANGE_PROCEDURES)
    procedures.get(key)
    model = session.scalar(select(ProcessVersion).where(ProcessVersion.key == key, ProcessVersion.number == number))
    if model is None:
        raise NotFound(f'"{key}" has no version {number}.')
    return model


def versions(session: Session, actor: Actor, key: str) -> list[Version]:
    """Every stored version of a procedure, newest first, with who stored and last published it."""
    require_admin(actor, CHANGE_PROCEDURES)
    procedures.get(key)
    running = dict(
        session.execute(
            select(ProcessInstance.model_id, func.count())
            .where(ProcessInstance.process_key == key, ProcessInstance.status == InstanceStatus.RUNNING)
            .group_by(ProcessInstance.model_id)
        ).all()
    )
    models = session.scalars(
        select(ProcessVersion)
        .options(
            defer(ProcessVersion.bpmn_xml),
            joinedload(ProcessVersion.created_by).lazyload("*"),
            joinedload(ProcessVersion.publications).joinedload(ProcessPublication.published_by).lazyload("*"),
        )
        .where(ProcessVersion.key == key)
        .order_by(ProcessVersion.number.desc())
    ).unique()
    return [_listed(m, running.get(m.id, 0)) for m in models]


def _listed(model: ProcessVersion, running: int) -> Version:
    """A version as the list shows it; a version published by no person was published by civicflow (shipped)."""
    last = model.last_publication
    return Version(
        model.number,
        model.version_hash,
        model.name,
        model.source,
        model.created_at,
        model.created_by.display_name if model.created_by else None,
        model.published,
        last.published_at if last else None,
        (last.published_by.display_name if last.published_by else "civicflow") if last else None,
        running,
    )


def publications(session: Session, actor: Actor, key: str) -> list[ProcessPublication]:
    """Each publication of a procedure, newest first: which version, by whom, when."""
    require_admin(actor, CHANGE_PROCEDURES)
    procedures.get(key)
    return list(
        session.scalars(
            select(ProcessPublication).where(ProcessPublication.key == key).order_by(ProcessPublication.id.desc())
        )
    )
