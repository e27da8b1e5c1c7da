"""The WTForms classes agree with the engine on fields, choices and what is required."""

from werkzeug.datastructures import MultiDict

import forms
from engine import procedures
from engine.requests import services
from tests.helpers import START


def _formdata(data):
    pairs = []
    for key, value in data.items():
        if isinstance(value, list):
            pairs.append((key, ", ".join(value)))
        elif isinstance(value, bool):
            if value:
                pairs.append((key, "y"))
        else:
            pairs.append((key, value))
    return MultiDict(pairs)


def test_start_form_accepts_what_the_engine_accepts(session, people):
    form = forms.start_form(session, "new_account_request")(_formdata(START))
    assert form.validate(), form.errors
    data = forms.to_engine_data(form)
    assert (
        procedures.get("new_account_request").validate_start(session, people.requester, data)["platform"] == "facebook"
    )


def test_start_form_names_a_missing_field_and_a_bad_choice(session, people):
    form = forms.start_form(session, "new_account_request")(_formdata({**START, "platform": "myspace", "purpose": ""}))
    assert not form.validate()
    assert set(form.errors) == {"platform", "purpose"}


def test_every_task_form_has_the_engines_fields(session, people):
    instance = services.start_instance(session, people.requester, "new_account_request", START)
    session.commit()
    [task] = services.open_tasks_of(session, instance)
    form = forms.task_form(session, task)()
    assert list(form._fields) == ["decision", "comment"]
    assert [c.value for c in form.decision.choices] == ["approve", "reject", "return"]
