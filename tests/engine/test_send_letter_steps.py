"""A diagram sends mail only through send_letter steps naming one of its procedure's letters, by a plain name."""

import re

import pytest

from engine import procedures
from engine.diagrams.loading import load_diagram
from engine.diagrams.problems import Problem
from engine.errors import DiagramError, ExpressionError
from engine.mail import outbox
from engine.settings import REPO_ROOT

KEY = "content_removal"
SHIPPED = (REPO_ROOT / "workflows" / f"{KEY}.bpmn").read_text()


def _with_step(operator: str = "send_letter", letter: str = '"screenshot_to_communications"') -> bytes:
    """The shipped content removal diagram with its mail step's operator and letter parameter replaced."""
    xml = re.sub(r'serviceTaskOperator id="[^"]*"', f'serviceTaskOperator id="{operator}"', SHIPPED)
    quoted = letter.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    xml = re.sub(r'(parameter id="letter" type="str" value=")[^"]*(")', rf"\g<1>{quoted}\g<2>", xml)
    return xml.encode()


def _problems(data: bytes) -> list[Problem]:
    procedure = procedures.get(KEY)
    with pytest.raises(DiagramError) as refused:
        load_diagram(data, KEY, procedure.form_keys(), procedure.letters)
    return refused.value.problems


def test_the_shipped_mail_step_loads_with_its_procedures_letters():
    procedure = procedures.get(KEY)
    assert load_diagram(_with_step(), KEY, procedure.form_keys(), procedure.letters).key == KEY


def test_a_service_other_than_send_letter_is_refused_naming_the_step():
    [problem] = _problems(_with_step(operator="http_get"))
    assert problem.element == "mail_screenshot"
    assert 'Service "http_get" is unknown' in problem.message


def test_a_letter_the_procedure_does_not_have_is_refused():
    [problem] = _problems(_with_step(letter='"bank_details_to_everyone"'))
    assert 'Letter "bank_details_to_everyone" is not one of this procedure' in problem.message
    assert "screenshot_to_communications" in problem.message


def test_a_computed_letter_name_is_refused():
    [problem] = _problems(_with_step(letter="stage + '_letter'"))
    assert "must be a quoted name" in problem.message


@pytest.mark.parametrize(
    "attack", ['__import__("os").system("id")', 'open("/etc/passwd").read()', "().__class__.__base__.__subclasses__()"]
)
def test_an_expression_in_a_step_parameter_goes_through_the_sandbox(attack):
    problems = _problems(_with_step(letter=attack))
    assert any("Expression refused" in p.message for p in problems)


def test_a_letter_outside_a_saved_step_is_refused():
    with pytest.raises(ExpressionError):
        outbox.request_letter("send_letter", {"letter": {"value": "screenshot_to_communications", "type": "str"}})


def test_steps_are_collected_only_inside_the_block_that_saves_them():
    with outbox.collecting() as letters:
        outbox.request_letter("send_letter", {"letter": {"value": "a", "type": "str"}})
    assert letters == ["a"]
    with pytest.raises(ExpressionError):
        outbox.request_letter("send_letter", {"letter": {"value": "b", "type": "str"}})
