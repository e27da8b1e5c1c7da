"""The diagrams shipped in workflows/: each new one stored as the next version of its procedure on upgrade."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import procedures
from engine.db.models import ProcessVersion
from engine.diagrams.loading import load_diagram, version_hash, workflow_files
from engine.settings import settings_of
from engine.versions.publishing import publish_shipped
from engine.versions.stored import store_version, version_in_use


def sync_workflows(session: Session) -> list[ProcessVersion]:
    """Store each diagram of workflows/ whose content is new as the procedure's next version.

    A new shipped diagram is published for new requests unless an administrator has published a version of
    their own: the City's edit stays in use, and the shipped one waits in the version list.
    """
    settings = settings_of(session)
    changed = []
    for path in workflow_files(settings.workflows_dir):
        key = path.stem
        data = path.read_bytes()
        digest = version_hash(data)
        if session.scalar(
            select(ProcessVersion.id).where(ProcessVersion.key == key, ProcessVersion.version_hash == digest)
        ):
            continue
        procedure = procedures.get(key)
        loaded = load_diagram(data, key, procedure.editor_form_keys(), procedure.letters)
        model = store_version(session, key, data, loaded, source="shipped", created_by_id=None)
        current = version_in_use(session, key)
        if current is None or current.source == "shipped":
            publish_shipped(session, model)
        changed.append(model)
    session.flush()
    return changed
