"""Expressions that cannot hurt the City: each abuse is refused at publishing where it can be known there, and
otherwise fails within the step's budget at its element, holding its request with an incident (never a 500,
never a hung worker); ordinary Python runs.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from SpiffWorkflow.util.task import TaskState

from engine.db.models import ProcessInstance
from engine.diagrams import serialization
from engine.diagrams.budget import BudgetExceeded
from engine.diagrams.sandbox import RestrictedEnvironment, check_source
from engine.versions import drafts
from engine.versions.stored import spec_of_instance
from tests.editing import insert_step, shipped
from tests.helpers import START, publish_unchecked

KEY = "new_account_request"
SCRIPT = '<bpmn:scriptTask id="{id}" name="{name}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'


@pytest.fixture
def settings(settings):
    """A step may compute for 0.2 s here (1 s by default), so that the time budget is reached quickly."""
    return dataclasses.replace(settings, step_cpu_seconds=0.2)


def with_scripts(*scripts: str) -> bytes:
    """The new account request with script steps as soon as it is filed: "check", then "check_2"..."""
    xml, flow = shipped(KEY), "Flow_submitted"
    for number, script in enumerate(scripts, start=1):
        step_id = "check" if number == 1 else f"check_{number}"
        xml = insert_step(xml, flow, SCRIPT.format(id=step_id, name=f"Check {number}", script=script))
        flow = f"Flow_{step_id}"
    return xml


def publish(session, admin, xml: bytes) -> int:
    """Put the diagram in use as a version stored before the dry run would have refused it (it fails on purpose)."""
    return publish_unchecked(session, admin, KEY, xml)


# ---- refused at publishing ----------------------------------------------------------------------

KNOWN_AT_PUBLISHING = {
    "x = sum(range(10**10))": "A range would have 10,000,000,000 items",
    "x = max(range(10**12))": "A range would have 1,000,000,000,000 items",
    "x = 10**10**8": "A number of about 300,000,000 bits is too large",
    "for i in range(10**12):\n    pass": "A range would have 1,000,000,000,000 items",
    "x = [0] * 10**9": "Repeating a string or list would have 1,000,000,000 items",
    'x = "x" * 10**8': "Repeating a string or list would have 100,000,000 items",
    "x = pow(2, 10**9)": "is too large for a procedure step",
    "class Note:\n    pass": "class statements are not available in diagram scripts",
}


@pytest.mark.parametrize("script", KNOWN_AT_PUBLISHING)
def test_an_abuse_that_can_be_known_at_publishing_is_refused_there_naming_the_step(script):
    assert any(KNOWN_AT_PUBLISHING[script] in reason for reason in check_source(script, "exec"))
    problems = drafts.problems_of(KEY, with_scripts(script))
    assert [p.element for p in problems] == ["check"], problems
    assert KNOWN_AT_PUBLISHING[script] in problems[0].message


# ---- at run time: held within the budget ---------------------------------------------------------

AT_RUN_TIME = {
    "a loop that goes round too often": (
        "for i in range(1000):\n    for j in range(1000):\n        for k in range(3):\n            pass",
        "failed: BudgetExceeded",  # its rounds or its computing time, whichever runs out first
    ),
    "a calculation that takes too long": (
        "total = 0\nfor i in range(900000):\n    total = total + len(str(i) * 400)",
        "more than its 0.2 s of computing time",
    ),
    "a recursion that doubles": (
        "def grow(n):\n    return grow(n - 1) + grow(n - 1) if n else 1\nx = grow(60)",
        "failed: BudgetExceeded",  # its calls or its computing time, whichever runs out first
    ),
    "a string as long as the data says": ('x = "x" * (len(account_name) * 10**8)', "Repeating a string or list"),
    "a list as long as the data says": ("x = [0] * (len(purpose) * 10**8)", "Repeating a string or list"),
    "a number squared until it is huge": ("n = 3\nfor i in range(40):\n    n = n * n", "is too large"),
    "a padded string": ("x = account_name.ljust(len(purpose) * 10**8)", "str.ljust()"),
    "a format width from the data": ('x = f"{account_name:>{len(purpose) * 10**7}}"', "A formatted value"),
    "data too large to save": ('a = "a" * 900000\nb = "b" * 900000', "a request's data may take at most 1,000,000"),
}


@pytest.mark.parametrize("abuse", AT_RUN_TIME)
def test_an_abuse_known_only_at_run_time_holds_its_request_with_an_incident_within_the_budget(
    abuse, session, people, api
):
    script, words = AT_RUN_TIME[abuse]
    publish(session, people.admin, with_scripts(script))

    began = time.monotonic()
    answer = api("requester").post(f"/api/v1/processes/{KEY}/instances", json={"data": START})
    took = time.monotonic() - began

    assert answer.status_code == 201
    body = answer.get_json()
    assert body["status"] == "error"
    assert body["incident"]["element_id"] == "check"
    assert words in body["incident"]["message"], body["incident"]["message"]
    assert body["data"]["account_name"] == START["account_name"]  # the filing is kept
    assert took < 5, f"the step ran {took:.1f} s: a budget of 0.2 s must stop it long before"
    # The next request, of an ordinary kind, is answered as usual.
    assert api("requester").get("/api/v1/openapi.json").status_code == 200


def test_a_multi_instance_as_many_times_as_the_data_says_is_held_to_a_thousand(session, people, api):
    many = (
        '<bpmn:scriptTask id="check_2" name="Copy for each"><bpmn:multiInstanceLoopCharacteristics>'
        "<bpmn:loopCardinality>copies</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>"
        "<bpmn:script>done = True</bpmn:script></bpmn:scriptTask>"
    )
    xml = insert_step(with_scripts("copies = 10 ** 6"), "Flow_check", many)
    publish(session, people.admin, xml)

    body = api("requester").post(f"/api/v1/processes/{KEY}/instances", json={"data": START}).get_json()

    assert body["status"] == "error"
    assert body["incident"]["element_id"] == "check_2"
    assert "runs at most 1,000" in body["incident"]["message"]


# ---- ordinary Python runs ---------------------------------------------------------------------------

ORDINARY = """\
count = 1
count += 1
print("count is", count)
biggest = max(*[1, 5, 3])
options = dict(**{"a": 1}, b=2)
squares = [n * n for n in range(4)]
double = lambda n: n * 2
def label(*parts, **named):
    return "-".join(parts) + named.get("end", "")
name = label("parks", "news", end="!")
line = f"{account_name:>30}"
total = sum(squares)
doubled = double(total)
"""
CONDITION = 'max(*[count, 1]) == 2 and dict(**options)["b"] == 2 and doubled == 28'


def test_ordinary_python_runs_in_scripts_and_conditions(session, people, api, caplog):
    xml = insert_step(
        with_scripts(ORDINARY.replace("<", "&lt;")),
        "Flow_check",
        '<bpmn:exclusiveGateway id="choose" name="Choose" />',
        condition=CONDITION,
    )
    publish(session, people.admin, xml)

    with caplog.at_level(logging.INFO, logger="civicflow.diagram"):
        body = api("requester").post(f"/api/v1/processes/{KEY}/instances", json={"data": START}).get_json()

    assert (body["status"], body["incident"]) == ("running", None), (body["incident"] or {}).get("message")
    session.commit()
    stored = session.get(ProcessInstance, body["id"])
    workflow = serialization.loads(stored.workflow_state, spec_of_instance(stored))
    [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
    data = task.data
    assert (data["count"], data["biggest"], data["options"], data["squares"]) == (2, 5, {"a": 1, "b": 2}, [0, 1, 4, 9])
    assert (data["name"], data["total"], data["doubled"]) == ("parks-news!", 14, 28)
    assert data["line"].strip() == START["account_name"]
    assert "diagram print: count is 2" in caplog.text


def test_the_budget_holds_outside_any_step_too():
    environment = RestrictedEnvironment()
    # Its rounds or its second of computing time, whichever runs out first (under coverage tracing, the time).
    with pytest.raises(BudgetExceeded, match="more than 1,000,000 times|more than its 1 s of computing time"):
        environment.execute("for i in range(1000):\n    for j in range(1001):\n        pass", {})
    assert environment.evaluate("sum(n for n in range(10))", {}) == 45
