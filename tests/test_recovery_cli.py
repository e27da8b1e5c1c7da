"""`civicflow incidents list`, `civicflow instances migrate ID --version N` and `civicflow instances retry ID`, run
as the City's IT would, on a database holding a request stuck at a failed step."""

from __future__ import annotations

import subprocess

from engine.db.models import AuditEvent, ProcessInstance
from engine.requests import services
from tests.editing import insert_step, shipped
from tests.helpers import START, civicflow_command, civicflow_environment, publish_unchecked

KEY = "new_account_request"
STEP = '<bpmn:scriptTask id="check" name="Check the budget"><bpmn:script>{}</bpmn:script></bpmn:scriptTask>'


def publish(session, admin, script: str) -> int:
    return publish_unchecked(session, admin, KEY, insert_step(shipped(KEY), "Flow_submitted", STEP.format(script)))


def test_an_operator_lists_the_incident_moves_the_request_to_the_fix_and_retries_it(
    session, people, settings, tmp_path
):
    publish(session, people.admin, 'raise ValueError("The budget code is missing.")')
    held = services.start_instance(session, people.requester, KEY, START)
    session.commit()
    env = civicflow_environment(tmp_path, database_url=settings.database_url, secret_key=settings.secret_key)

    def civicflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [civicflow_command(), *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )

    listed = civicflow("incidents", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"request {held.id}" in listed.stdout and "check" in listed.stdout
    assert "The budget code is missing." in listed.stdout

    # Retrying before the fix fails again: the request stays held, and the operator is told so.
    again = civicflow("instances", "retry", str(held.id))
    assert again.returncode == 0 and "still held" in again.stdout, again.stdout + again.stderr

    fixed = publish(session, people.admin, "checked = True")
    moved = civicflow("instances", "migrate", str(held.id), "--version", str(fixed))
    assert moved.returncode == 0, moved.stderr
    assert f"now follows version {fixed}" in moved.stdout
    retried = civicflow("instances", "retry", str(held.id))
    assert retried.returncode == 0 and "moved on (running)" in retried.stdout, retried.stdout + retried.stderr

    session.expire_all()
    session.commit()
    instance = session.get(ProcessInstance, held.id)
    assert (instance.status, instance.model.number) == ("running", fixed)
    assert [t.form_key for t in services.open_tasks_of(session, instance)] == ["department_head_review"]
    actors = {e.action: e.actor_name for e in session.query(AuditEvent).filter_by(instance_id=held.id)}
    assert actors["retried"].endswith("(command line)") and actors["migrated"].endswith("(command line)")
    assert civicflow("incidents", "list").stdout.strip() == "no open incidents"


def test_a_refused_retry_says_why_and_exits_non_zero(session, settings, tmp_path, people):
    running = services.start_instance(session, people.requester, KEY, START)
    session.commit()
    env = civicflow_environment(tmp_path, database_url=settings.database_url, secret_key=settings.secret_key)
    done = subprocess.run(
        [civicflow_command(), "instances", "retry", str(running.id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2
    assert "is not held at a failed step" in done.stderr
