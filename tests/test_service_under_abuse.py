"""Ten abusive public filings at once, against a real `civicflow serve` and a real gunicorn with 2 workers.

The abuse is bench/abuse.py's: a dispute version whose step works for many seconds on what the public wrote,
stored without the dry run (as one published before the budgets would be). While the ten filings run, a
Department Head completes tasks and `/api/v1/openapi.json` is fetched one after the other. Each filing is held
with an incident at its step's budget; everyone else is answered within 1 s throughout and the server's memory
stays under MEMORY_BOUND_MB.

These tests time a server under load, so they run in a pass of their own, after the rest of the suite
(`make test`: `-m alone`), with nothing else on the machine's cores but the servers they start.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench import abuse, harness
from engine.db.models import Incident, ProcessInstance

pytestmark = pytest.mark.alone

WITHIN_SECONDS = 1.0
# Resident memory of one server process: civicflow with SpiffWorkflow loaded takes about 110 MB; an
# expression allowed to build a 10**9-item list would take gigabytes.
MEMORY_BOUND_MB = 300
PG_URL = os.environ.get("CIVICFLOW_TEST_POSTGRES_URL")

SERVERS = [
    pytest.param("civicflow serve", "SQLite", id="serve-sqlite"),
    pytest.param("civicflow serve", "PostgreSQL", id="serve-postgres", marks=pytest.mark.postgres),
    pytest.param("gunicorn, 2 workers", "PostgreSQL", id="gunicorn-postgres", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("server", "database"), SERVERS)
def test_ten_abusive_filings_leave_everyone_else_answered(server, database, tmp_path: Path):
    if database == "PostgreSQL" and not PG_URL:
        pytest.skip("PostgreSQL tests are off: set CIVICFLOW_TEST_POSTGRES_URL (.ci/run does)")
    postgres = PG_URL if database == "PostgreSQL" else None

    def run(databases: harness.Databases) -> dict:
        if databases.kind != database:
            return {}
        port = abuse.free_port()
        command = abuse.servers(port, postgres is not None)[server]
        url = databases.urls["serve"]
        result = abuse.measure(command, url, databases.folder, 1.0, port)
        with harness.Database(url, databases.folder) as held, held.sessions() as session:
            result["held"] = session.scalar(
                select(func.count())
                .select_from(Incident)
                .join(ProcessInstance, ProcessInstance.id == Incident.instance_id)
                .where(ProcessInstance.process_key == "legality_dispute", ProcessInstance.status == "error")
            )
        return result

    result = harness.on_each_database("abuse-test", ["serve"], postgres, run)[database]

    filed = result["statuses"].count(201)
    assert set(result["statuses"]) <= {201, 503}, result["statuses"]
    assert filed >= 1
    assert result["held"] == filed  # each filing that was taken is held at its step, its words kept
    assert len(result["completions"]) >= 3  # the Department Head worked while the filings ran
    assert max(result["completions"]) < WITHIN_SECONDS, result["completions"]
    assert max(result["openapi"]) < WITHIN_SECONDS, result["openapi"]
    assert max(result["memory"]) < MEMORY_BOUND_MB, result["memory"]
