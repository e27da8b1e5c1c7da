"""Task completions per second over HTTP: the production server (gunicorn, 2 workers) on PostgreSQL.

`civicflow serve --production --workers 2` (web/gunicorn_conf.py) on a throwaway PostgreSQL database; waiting
new account requests; a Department Head approves them through `POST /api/v1/tasks/<id>/complete`, first one
client at a time, then CLIENTS clients at once. Printed: completions per second and the p50 and p95 latency of
each; against bare SpiffWorkflow's persisted step measured in the same run, in this process: load the workflow
from the serializer's full JSON, complete the Department Head's task, run to the next wait, save it again.

    .venv/bin/python -m bench.http --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    CIVICFLOW_BENCH_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test make bench

Without PostgreSQL it says so and stops: gunicorn's workers are separate processes, which on one SQLite file
would queue on its lock. The last line is `ratio p50 completion over HTTP/bare persisted step: X.XX`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import abuse, harness
from bench.engine import BARE_START, Bare
from engine.demo import create_departments
from engine.requests import services
from engine.versions import shipped

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
CLIENTS = 4
PEOPLE: list[tuple[str, str, list[str], list[str]]] = [("requester", "parks", [], []), ("head", "parks", [], ["parks"])]
APPROVE = {"data": {"decision": "approve"}}


def prepare(url: str, folder: Path, count: int) -> list[str]:
    """The head of parks, and `count` new account requests waiting for their review; the tasks' ids."""
    with harness.Database(url, folder) as database, database.sessions() as session:
        create_departments(session)
        shipped.sync_workflows(session)
        session.commit()
        people = harness.create_people(session, PEOPLE)
        waiting = [
            services.start_instance(
                session, people["requester"], harness.ACCOUNT_REQUEST, harness.ACCOUNT_REQUEST_START
            )
            for _ in range(count)
        ]
        session.commit()
        return [task.id for instance in waiting for task in services.open_tasks_of(session, instance)]


def start_server(url: str, folder: Path, port: int) -> subprocess.Popen:
    """`civicflow serve --production` on the database, answering /healthz."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIVICFLOW_")},
        "CIVICFLOW_DATABASE_URL": url,
        "CIVICFLOW_SECRET_KEY": harness.SECRET,
        "CIVICFLOW_INSTANCE_PATH": str(folder),
    }
    command = [str(Path(sys.executable).with_name("civicflow")), "serve", "--production"]
    process = subprocess.Popen(  # noqa: S603 - this repository's own server command
        [*command, "--workers", str(WORKERS), "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if abuse.call(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                raise
            time.sleep(0.2)


def completions(base: str, token: str, tasks: list[str], clients: int) -> tuple[list[float], float]:
    """Complete the tasks with `clients` at once: each completion's seconds, and the wall time of them all."""

    def complete(task: str) -> float:
        status, body, took = abuse.call(f"{base}/api/v1/tasks/{task}/complete", "POST", APPROVE, token)
        assert status == 200, body
        return took

    began = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        seconds = list(pool.map(complete, tasks))
    return seconds, time.monotonic() - began


def bare_steps(runs: int, warmup: int) -> list[float]:
    """Bare SpiffWorkflow's persisted step: load the full JSON, complete the Department Head's task, save."""
    bare = Bare()
    saved = bare.full.serialize_json(bare.start(BARE_START))

    def step() -> None:
        workflow = bare.full.deserialize_json(saved)
        workflow.script_engine = harness.BARE_ENGINE
        assert Bare._complete_one(workflow) == "department_head_review"  # noqa: SLF001 - bench.engine's step
        bare.full.serialize_json(workflow)

    return harness.interleaved({"bare": step}, runs, 1, warmup)["bare"]


def p95(seconds: list[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(seconds, n=20)[-1]


def report(label: str, seconds: list[float], wall: float) -> None:
    """'label: N per s, p50 N ms, p95 N ms (n=N)'."""
    print(
        f"{label:<44} {len(seconds) / wall:7.1f} per s  p50 {statistics.median(seconds) * 1000:7.2f} ms"
        f"  p95 {p95(seconds) * 1000:7.2f} ms  (n={len(seconds)})"
    )


def main(argv=None) -> None:
    parser = harness.parser(__doc__, runs=200, runs_help="completions per series", warmup=20)
    options = harness.parse(parser, argv)
    harness.print_header(
        f"civicflow HTTP benchmark: task completions through gunicorn ({WORKERS} workers, gthread) on PostgreSQL, "
        f"1 and {CLIENTS} clients, against bare SpiffWorkflow's persisted step",
        "SpiffWorkflow",
        "gunicorn",
        "psycopg",
    )
    if not options.postgres:
        print(
            "no PostgreSQL: give --postgres URL or set CIVICFLOW_BENCH_POSTGRES_URL (the production server's database)"
        )
        return
    bare = bare_steps(options.runs, options.warmup)
    results: dict[str, tuple[list[float], float]] = {}

    def run(databases: harness.Databases) -> None:
        if databases.kind != "PostgreSQL":
            return
        url, port = databases.urls["http"], abuse.free_port()
        tasks = prepare(url, databases.folder, options.warmup + options.runs * 2)
        process = start_server(url, databases.folder, port)
        base = f"http://127.0.0.1:{port}"
        try:
            token = abuse.call(f"{base}/api/v1/auth/token", "POST", {"username": "head", "password": harness.PASSWORD})
            warm, alone, together = (
                tasks[: options.warmup],
                tasks[options.warmup : options.warmup + options.runs],
                tasks[options.warmup + options.runs :],
            )
            completions(base, token[1]["token"], warm, 1)
            results["1 client"] = completions(base, token[1]["token"], alone, 1)
            results[f"{CLIENTS} clients"] = completions(base, token[1]["token"], together, CLIENTS)
        finally:
            process.terminate()
            process.wait(timeout=60)

    harness.on_each_database("http", ["http"], options.postgres, run)
    report("bare SpiffWorkflow persisted step, 1 process", bare, sum(bare))
    for label, (seconds, wall) in results.items():
        report(f"HTTP completion, {label}", seconds, wall)
    alone = results["1 client"][0]
    harness.print_ratio(
        f"completions per s, {CLIENTS} clients over HTTP/bare persisted steps per s",
        (len(results[f"{CLIENTS} clients"][0]) / results[f"{CLIENTS} clients"][1]) / (len(bare) / sum(bare)),
    )
    harness.print_ratio(
        "p50 completion over HTTP/bare persisted step", statistics.median(alone) / statistics.median(bare)
    )


if __name__ == "__main__":
    main()
