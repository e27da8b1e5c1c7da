"""What the tests share: the test data's constants, starting a request, and running the `civicflow` command."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from engine.requests import services
from engine.time import clock

# The secret key of every test's settings (long enough for HKDF).
SECRET = "test-secret-key-that-is-long-enough-for-hkdf"
# The password of every user the fixtures make.
PASSWORD = "correct horse battery"
KEY = "new_account_request"

START = {
    "platform": "facebook",
    "account_name": "West St. Paul Parks",
    "department": "parks",
    "purpose": "Program announcements for Parks and Recreation.",
    "audience": "Residents and park users.",
    "proposed_managers": ["requester"],
}
# A police investigative profile: the Administrative Lieutenant approves it, and its mail never names it.
INVESTIGATIVE = {
    **START,
    "platform": "other",
    "account_name": "Neighborhood watcher",
    "department": "police",
    "purpose": "Investigations of online crime.",
    "audience": "Not public.",
    "proposed_managers": ["officer"],
    "investigative": True,
}
SETUP = {
    "account_url": "https://facebook.com/wspparks",
    "marked_as_city": True,
    "links_official_site": True,
    "public_notice_linked": True,
}


def start_request(session, actor, data=START):
    """Start a new account request as the actor and commit."""
    instance = services.start_instance(session, actor, KEY, data)
    session.commit()
    return instance


def only_open_task(session, instance):
    """The instance's single open task."""
    [task] = services.open_tasks_of(session, instance)
    return task


def civicflow_command() -> str:
    """The console script installed in this virtualenv."""
    beside_python = Path(sys.executable).with_name("civicflow")
    found = str(beside_python) if beside_python.exists() else shutil.which("civicflow")
    assert found, "the civicflow console script is not installed"
    return found


def civicflow_environment(instance_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `civicflow` process run by a test.

    None of the caller's own CIVICFLOW_* settings; the test's instance folder and the given settings
    (CIVICFLOW_DATABASE_URL=..., as keyword arguments without the prefix: database_url=...); and, while the
    test's clock is pinned, the same moment as CIVICFLOW_NOW, so that the process lives at the test's time.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("CIVICFLOW_")}
    env["CIVICFLOW_INSTANCE_PATH"] = str(instance_path)
    moment = clock.pinned()
    if moment is not None:
        env[clock.NOW_SETTING] = moment.isoformat()
    env.update({f"CIVICFLOW_{name.upper()}": value for name, value in settings.items()})
    return env


def publish_unchecked(session, admin, key: str, xml: bytes) -> int:
    """Store a diagram and make it the version in use without the dry run; its number.

    What a version published before the dry run existed looks like, and the only way a test gets a diagram that
    fails at run time on purpose (the incidents, the budgets): engine.versions.publishing refuses those.
    """
    from engine import procedures
    from engine.diagrams.loading import load_diagram
    from engine.versions import publishing, stored

    session.commit()  # a fresh transaction: on SQLite a read snapshot older than another writer cannot write
    procedure = procedures.get(key)
    loaded = load_diagram(xml, key, procedure.editor_form_keys(), procedure.letters)
    model = stored.store_version(session, key, xml, loaded, source="upload", created_by_id=admin.id)
    publishing.make_current(session, admin, model)
    session.commit()
    return model.number
