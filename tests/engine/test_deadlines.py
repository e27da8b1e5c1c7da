"""Due dates, reminders and escalations in business days, in the City's time, from its settings."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from engine.errors import ExpressionError, Invalid
from engine.settings import Settings
from engine.time import deadlines

CITY = ZoneInfo("America/Chicago")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=CITY)


def settings(**overrides) -> Settings:
    return Settings.from_env(secret_key="x", database_url="sqlite://", **overrides)


def in_city(moment: datetime) -> datetime:
    return moment.astimezone(CITY)


def test_a_review_opened_on_monday_is_due_a_week_later_at_closing_time():
    d = deadlines.of(settings())
    opened = local(2026, 11, 2, 10, 0)  # Monday
    assert in_city(d.due_at("department_head_review", opened)) == local(2026, 11, 9, 16, 30)
    assert in_city(d.reminder_at("department_head_review", opened)) == local(2026, 11, 6, 8, 0)
    assert in_city(d.escalation_at("department_head_review", opened)) == local(2026, 11, 10, 8, 0)


def test_thanksgiving_and_the_friday_after_are_skipped_and_the_mails_fall_on_business_days():
    d = deadlines.of(settings())
    opened = local(2026, 11, 24, 10, 0)  # Tuesday before Thanksgiving
    # Wed 25; Thu 26 and Fri 27 closed; weekend; Mon 30, Tue Dec 1, Wed 2, Thu 3.
    assert in_city(d.due_at("communications_review", opened)) == local(2026, 12, 3, 16, 30)
    assert in_city(d.reminder_at("communications_review", opened)) == local(2026, 12, 2, 8, 0)
    assert in_city(d.escalation_at("communications_review", opened)) == local(2026, 12, 4, 8, 0)


def test_a_city_that_works_the_friday_after_thanksgiving_counts_it():
    d = deadlines.of(settings(friday_after_thanksgiving=False))
    opened = local(2026, 11, 24, 10, 0)
    assert in_city(d.due_at("communications_review", opened)) == local(2026, 12, 2, 16, 30)


def test_a_day_the_city_closes_is_skipped_and_a_holiday_it_works_is_counted():
    opened = local(2026, 12, 21, 10, 0)  # Monday; Christmas Friday the 25th
    plain = deadlines.of(settings())
    assert in_city(plain.due_at("department_head_review", opened)) == local(2026, 12, 29, 16, 30)
    closed = deadlines.of(settings(closed_days=frozenset({date(2026, 12, 24)})))
    assert in_city(closed.due_at("department_head_review", opened)) == local(2026, 12, 30, 16, 30)
    worked = deadlines.of(settings(open_days=frozenset({date(2026, 12, 25)})))
    assert in_city(worked.due_at("department_head_review", opened)) == local(2026, 12, 28, 16, 30)


def test_a_task_that_arrives_after_closing_time_counts_from_the_next_day():
    d = deadlines.of(settings())
    assert in_city(d.due_at("dispute_acknowledgement", local(2026, 11, 2, 16, 29))) == local(2026, 11, 3, 16, 30)
    assert in_city(d.due_at("dispute_acknowledgement", local(2026, 11, 2, 17, 5))) == local(2026, 11, 4, 16, 30)
    # Friday evening before a Monday holiday (Martin Luther King's Birthday, Jan 18 2027): due Wednesday.
    assert in_city(d.due_at("dispute_acknowledgement", local(2027, 1, 15, 18, 0))) == local(2027, 1, 19, 16, 30)


def test_a_reminder_that_would_come_before_the_task_comes_on_the_morning_it_is_due():
    d = deadlines.of(settings())
    opened = local(2026, 11, 2, 10, 0)
    assert in_city(d.due_at("dispute_acknowledgement", opened)) == local(2026, 11, 3, 16, 30)
    assert in_city(d.reminder_at("dispute_acknowledgement", opened)) == local(2026, 11, 3, 8, 0)


def test_closing_time_is_the_citys_wall_clock_across_the_change_from_daylight_time():
    d = deadlines.of(settings())
    due = d.due_at("department_head_review", local(2026, 10, 28, 9, 0))  # CDT; due after Nov 1 (CST)
    assert due == datetime(2026, 11, 4, 22, 30, tzinfo=UTC)


def test_the_number_of_business_days_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("CIVICFLOW_DEADLINES", "appeal_response=3")
    d = deadlines.of(Settings.from_env(secret_key="x", database_url="sqlite://"))
    assert d.business_days("appeal_response") == 3
    assert d.business_days("dispute_response") == 20
    assert d.business_days("attorney_consultation") == 10


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("CIVICFLOW_DEADLINES", "appeals=3", '"appeals" is not a deadline'),
        ("CIVICFLOW_DEADLINES", "appeal_response=0", "from 1 to 250"),
        ("CIVICFLOW_CLOSED_DAYS", "2026-12-24,Christmas Eve", '"Christmas Eve" is not a date'),
        ("CIVICFLOW_BUSINESS_HOURS", "17:00-08:00", "must open before it closes"),
        ("CIVICFLOW_TIMEZONE", "Mars/Olympus", "is not a time zone"),
        ("CIVICFLOW_FRIDAY_AFTER_THANKSGIVING", "maybe", "is not yes or no"),
        ("CIVICFLOW_COMMUNICATIONS_ESCALATION_ROLE", "mayor", '"mayor" is not a role'),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(monkeypatch, variable, value, words):
    monkeypatch.setenv(variable, value)
    with pytest.raises(Invalid) as refused:
        Settings.from_env(secret_key="x", database_url="sqlite://")
    assert words in refused.value.fields[variable][0]


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("CIVICFLOW_BUSINESS_HOURS", "07:30-16:00")
    monkeypatch.setenv("CIVICFLOW_INDIGENOUS_PEOPLES_DAY", "yes")
    monkeypatch.setenv("CIVICFLOW_CLOSED_DAYS", "2026-12-24, 2026-12-31")
    monkeypatch.setenv("CIVICFLOW_COMMUNICATIONS_ESCALATION_ROLE", "admin")
    s = Settings.from_env(secret_key="x", database_url="sqlite://")
    assert (s.day_starts, s.day_ends) == (time(7, 30), time(16, 0))
    assert s.indigenous_peoples_day is True
    assert s.closed_days == {date(2026, 12, 24), date(2026, 12, 31)}
    assert s.communications_escalation_role == "admin"
    d = deadlines.of(s)
    assert not d.calendar.is_business_day(date(2026, 10, 12))  # Indigenous Peoples Day observed


def test_timer_helpers_count_from_the_running_step_and_refuse_an_unknown_kind():
    d = deadlines.of(settings())
    with deadlines.running(d, local(2026, 11, 2, 10, 0)):
        # Ten business days from Monday Nov 2, skipping Veterans Day (Wednesday Nov 11): Tuesday Nov 17.
        assert deadlines.due_time("appeal_response") == "2026-11-17T22:30:00+00:00"
        with pytest.raises(ExpressionError, match='"appeals" is not a deadline'):
            deadlines.reminder_time("appeals")
