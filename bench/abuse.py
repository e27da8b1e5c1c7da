"""What ten abusive public filings at once cost everyone else: a real `civicflow serve` and a real gunicorn.

The abuse is a step of the dispute procedure, stored as a version of it without the dry run (as a version
published before the budgets would be), whose work grows with what the public writes: a loop of string
replacements that would take many seconds. engine/diagrams/budget.py stops each filing's step at its CPU
budget and holds the request with an incident. While the ten filings run, a Department Head completes tasks
and `/api/v1/openapi.json` is fetched, one after the other; the benchmark prints the slowest and median of
each, the filings' own times, and the servers' largest resident memory.

    .venv/bin/python -m bench.abuse                              # SQLite (serve only: gunicorn needs PostgreSQL)
    .venv/bin/python -m bench.abuse --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.abuse --step-cpu-seconds 0.1      # the budget of the servers' steps

The goal of issue 17 is that both stay under 1 s throughout; the last line is
`ratio slowest completion under abuse/alone: X.XX`, against the same completion with no filing running.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import harness
from engine import procedures
from engine.diagrams.loading import load_diagram
from engine.requests import services
from engine.versions import publishing, shipped, stored

ROOT = Path(__file__).resolve().parent.parent
ABUSERS = 10
ABUSE = (
    '<bpmn:scriptTask id="weigh" name="Weigh the dispute"><bpmn:script>'
    'page = "a" * 1000000\nfor i in range(len(basis) * 100):\n    page = page.replace("a", "a")'
    "</bpmn:script></bpmn:scriptTask>"
)
DISPUTE = {
    "disputant_name": "Sam Citizen",
    "disputant_email": "sam.citizen@example.net",
    "policy_section": "Rules of Use",
    "basis": "They restrict protected speech, and the City may not do that.",
}
KEYS = ("serve", "gunicorn")  # one database for each server
PEOPLE = [("admin", "administration", ["admin"], []), ("requester", "parks", [], []), ("head", "parks", [], ["parks"])]


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict, float]:
    """Status, JSON body and seconds of one HTTP call."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the benchmark's loopback server
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    return status, json.loads(text or b"{}"), time.monotonic() - began


def rss_mb(pid: int) -> float:
    """The largest resident memory of a process and its children, in MB (from /proc)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    largest = 0.0
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    largest = max(largest, int(line.split()[1]) / 1024)
    return largest


def servers(port: int, postgres: bool) -> dict[str, list[str]]:
    """The server commands to measure on this database."""
    out = {"civicflow serve": [str(Path(sys.executable).with_name("civicflow")), "serve", "--port", str(port)]}
    if postgres:  # gunicorn's workers are separate processes: on one SQLite file they would queue on its lock
        out["gunicorn, 2 workers"] = [
            str(Path(sys.executable).with_name("gunicorn")),
            *("--workers", "2", "--worker-class", "gthread", "--threads", "8", "--bind", f"127.0.0.1:{port}"),
            "web:create_app()",
        ]
    return out


def prepare(url: str, folder: Path) -> list[str]:
    """Users, the abusive dispute version in use, and 60 new account requests waiting for the Department Head."""
    from tests.editing import insert_step  # the diagram edit the tests make (no test framework is imported)

    with harness.Database(url, folder) as database, database.sessions() as session:
        from engine.demo import create_departments

        create_departments(session)
        shipped.sync_workflows(session)
        session.commit()
        people = harness.create_people(session, PEOPLE)
        xml = insert_step((ROOT / "workflows" / "legality_dispute.bpmn").read_bytes(), "Flow_dispute_received", ABUSE)
        procedure = procedures.get("legality_dispute")
        loaded = load_diagram(xml, "legality_dispute", procedure.editor_form_keys(), procedure.letters)
        model = stored.store_version(
            session, "legality_dispute", xml, loaded, source="upload", created_by_id=people["admin"].id
        )
        publishing.make_current(session, people["admin"], model)
        waiting = [
            services.start_instance(
                session, people["requester"], harness.ACCOUNT_REQUEST, harness.ACCOUNT_REQUEST_START
            )
            for _ in range(60)
        ]
        session.commit()
        return [task.id for instance in waiting for task in services.open_tasks_of(session, instance)]


def measure(command: list[str], url: str, folder: Path, cpu: float, port: int) -> dict:
    """Start the server, time completions alone, then under ten abusive filings; stop it."""
    tasks = prepare(url, folder)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIVICFLOW_")},
        "CIVICFLOW_DATABASE_URL": url,
        "CIVICFLOW_SECRET_KEY": harness.SECRET,
        "CIVICFLOW_INSTANCE_PATH": str(folder),
        "CIVICFLOW_PUBLIC_SUBMISSION_LIMIT": "1000 per minute",
        "CIVICFLOW_STEP_CPU_SECONDS": str(cpu),
    }
    process = subprocess.Popen(  # noqa: S603 - this repository's own server commands
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        token = call(f"{base}/api/v1/auth/token", "POST", {"username": "head", "password": harness.PASSWORD})[1][
            "token"
        ]

        def complete() -> float:
            status, body, took = call(
                f"{base}/api/v1/tasks/{tasks.pop()}/complete", "POST", {"data": {"decision": "approve"}}, token
            )
            assert status == 200, body
            return took

        alone = [complete() for _ in range(10)]
        completions, openapi, memory = [], [], []
        with ThreadPoolExecutor(ABUSERS) as pool:
            filings = [pool.submit(call, f"{base}/api/v1/public/disputes", "POST", DISPUTE) for _ in range(ABUSERS)]
            while not all(f.done() for f in filings) and tasks:
                openapi.append(call(f"{base}/api/v1/openapi.json")[2])
                completions.append(complete())
                memory.append(rss_mb(process.pid))
            answers = [f.result() for f in filings]
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "alone": alone,
        "completions": completions,
        "openapi": openapi,
        "memory": memory,
        "filings": [took for _, _, took in answers],
        "statuses": [status for status, _, _ in answers],
    }


def report(label: str, result: dict) -> float:
    """Print one server's figures; the ratio of its slowest completion under abuse to its median alone."""
    print(f"{label}:")
    answered, filings = sorted(set(result["statuses"])), result["filings"]
    print(f"  filings answered {answered}, in {min(filings):.2f}-{max(filings):.2f} s")
    for name in ("alone", "completions", "openapi"):
        values = result[name]
        if values:
            print(
                f"  {name:<12} n={len(values):<3} median {statistics.median(values):.3f} s, slowest {max(values):.3f} s"
            )
    print(f"  largest resident memory of a server process: {max(result['memory'] or [0]):.0f} MB")
    slowest = max(result["completions"] or [0.0])
    return slowest / statistics.median(result["alone"])


def main(argv=None) -> None:
    parser = harness.parser(__doc__, runs=1, runs_help="unused", warmup=0, warmup_help="unused")
    parser.add_argument("--step-cpu-seconds", type=float, default=1.0, help="the servers' step budget")
    options = harness.parse(parser, argv)
    harness.print_header(
        f"civicflow abuse benchmark: {ABUSERS} abusive public filings at once, "
        f"step budget {options.step_cpu_seconds} s",
        "SpiffWorkflow",
        "waitress",
        "gunicorn",
    )
    ratios = []

    def run(databases: harness.Databases) -> None:
        port = free_port()
        for (label, command), key in zip(servers(port, databases.kind == "PostgreSQL").items(), KEYS, strict=False):
            result = measure(command, databases.urls[key], databases.folder, options.step_cpu_seconds, port)
            ratios.append(report(f"{databases.kind}, {label}", result))

    harness.on_each_database("abuse", KEYS, options.postgres, run)
    harness.print_ratio("slowest completion under abuse/alone", max(ratios))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()
