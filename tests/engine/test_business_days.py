"""Business days: Minnesota legal holidays (Minn. Stat. 645.44 subd. 5) and the City's calendar built on them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from engine.time.business_days import BusinessCalendar, minnesota_holidays

FIXED_DATE_HOLIDAYS = [
    ("New Year's Day", 1, 1),
    ("Juneteenth", 6, 19),
    ("Independence Day", 7, 4),
    ("Veterans Day", 11, 11),
    ("Christmas Day", 12, 25),
]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# (date, weekday it falls on, name); the weekday is checked against the real calendar, not trusted.
HOLIDAYS_2026 = [
    (date(2026, 1, 1), "Thu", "New Year's Day"),
    (date(2026, 1, 19), "Mon", "Martin Luther King's Birthday"),
    (date(2026, 2, 16), "Mon", "Washington's and Lincoln's Birthday"),
    (date(2026, 5, 25), "Mon", "Memorial Day"),
    (date(2026, 6, 19), "Fri", "Juneteenth"),
    (date(2026, 7, 3), "Fri", "Independence Day (observed)"),
    (date(2026, 7, 4), "Sat", "Independence Day"),
    (date(2026, 9, 7), "Mon", "Labor Day"),
    (date(2026, 10, 12), "Mon", "Indigenous Peoples Day"),
    (date(2026, 11, 11), "Wed", "Veterans Day"),
    (date(2026, 11, 26), "Thu", "Thanksgiving Day"),
    (date(2026, 11, 27), "Fri", "Friday after Thanksgiving"),
    (date(2026, 12, 25), "Fri", "Christmas Day"),
]
HOLIDAYS_2027 = [
    (date(2027, 1, 1), "Fri", "New Year's Day"),
    (date(2027, 1, 18), "Mon", "Martin Luther King's Birthday"),
    (date(2027, 2, 15), "Mon", "Washington's and Lincoln's Birthday"),
    (date(2027, 5, 31), "Mon", "Memorial Day"),
    (date(2027, 6, 18), "Fri", "Juneteenth (observed)"),
    (date(2027, 6, 19), "Sat", "Juneteenth"),
    (date(2027, 7, 4), "Sun", "Independence Day"),
    (date(2027, 7, 5), "Mon", "Independence Day (observed)"),
    (date(2027, 9, 6), "Mon", "Labor Day"),
    (date(2027, 10, 11), "Mon", "Indigenous Peoples Day"),
    (date(2027, 11, 11), "Thu", "Veterans Day"),
    (date(2027, 11, 25), "Thu", "Thanksgiving Day"),
    (date(2027, 11, 26), "Fri", "Friday after Thanksgiving"),
    (date(2027, 12, 24), "Fri", "Christmas Day (observed)"),
    (date(2027, 12, 25), "Sat", "Christmas Day"),
    (date(2027, 12, 31), "Fri", "New Year's Day (observed)"),  # Jan 1 2028 is a Saturday
]


@pytest.mark.parametrize("year, expected", [(2026, HOLIDAYS_2026), (2027, HOLIDAYS_2027)])
def test_every_holiday_of_the_year_by_exact_date(year, expected):
    for day, weekday, name in expected:
        assert WEEKDAYS[day.weekday()] == weekday, f"{day} ({name}) is not a {weekday}"
    holidays = minnesota_holidays(year, indigenous_peoples_day=True)
    assert holidays == {day: name for day, _, name in expected}
    assert list(holidays) == sorted(holidays)


def test_new_years_day_on_a_saturday_is_observed_on_december_31_of_the_year_before():
    assert date(2022, 1, 1).weekday() == 5
    assert minnesota_holidays(2021)[date(2021, 12, 31)] == "New Year's Day (observed)"
    assert minnesota_holidays(2022)[date(2022, 1, 1)] == "New Year's Day"
    assert date(2021, 12, 31) not in minnesota_holidays(2022)
    assert BusinessCalendar().holiday_name(date(2021, 12, 31)) == "New Year's Day (observed)"
    assert not BusinessCalendar().is_business_day(date(2021, 12, 31))


def test_new_years_day_on_a_sunday_is_observed_on_the_monday_after():
    assert date(2023, 1, 1).weekday() == 6
    assert minnesota_holidays(2023)[date(2023, 1, 2)] == "New Year's Day (observed)"
    assert date(2022, 12, 31) not in minnesota_holidays(2022)
    assert BusinessCalendar().is_business_day(date(2022, 12, 30))


def test_the_rules_hold_in_every_year_from_1990_to_2100():
    for year in range(1990, 2101):
        holidays = minnesota_holidays(year, indigenous_peoples_day=True)
        by_name = {name: day for day, name in holidays.items()}
        assert all(day.year == year for day in holidays)
        for name, month, first_day in (
            ("Martin Luther King's Birthday", 1, 15),
            ("Washington's and Lincoln's Birthday", 2, 15),
            ("Memorial Day", 5, 25),
            ("Labor Day", 9, 1),
            ("Indigenous Peoples Day", 10, 8),
        ):
            day = by_name[name]
            assert (day.weekday(), day.month) == (0, month) and first_day <= day.day <= first_day + 6, (year, name)
        thanksgiving = by_name["Thanksgiving Day"]
        assert thanksgiving.weekday() == 3 and 22 <= thanksgiving.day <= 28 and thanksgiving.month == 11
        assert by_name["Friday after Thanksgiving"] == thanksgiving + timedelta(days=1)
        observed = {day: name for day, name in holidays.items() if name.endswith(" (observed)")}
        expected = {}
        for name, month, day_of_month in FIXED_DATE_HOLIDAYS:
            for actual in (date(year, month, day_of_month), date(year + 1, month, day_of_month)):
                if actual.weekday() in (5, 6):  # Saturday: the Friday before; Sunday: the Monday after
                    moved = actual + timedelta(days=-1 if actual.weekday() == 5 else 1)
                    if moved.year == year:
                        expected[moved] = f"{name} (observed)"
        assert observed == expected, year
        assert all(
            holidays[date(year, month, day_of_month)] == name for name, month, day_of_month in FIXED_DATE_HOLIDAYS
        )


def test_the_two_holidays_a_city_chooses_can_be_turned_on_and_off():
    default = minnesota_holidays(2026)
    assert default[date(2026, 11, 27)] == "Friday after Thanksgiving"
    assert date(2026, 10, 12) not in default
    chosen = minnesota_holidays(2026, friday_after_thanksgiving=False, indigenous_peoples_day=True)
    assert date(2026, 11, 27) not in chosen
    assert chosen[date(2026, 10, 12)] == "Indigenous Peoples Day"
    assert len(chosen) == len(default)
    assert BusinessCalendar().is_business_day(date(2026, 10, 12))
    assert not BusinessCalendar(indigenous_peoples_day=True).is_business_day(date(2026, 10, 12))
    assert BusinessCalendar(friday_after_thanksgiving=False).is_business_day(date(2026, 11, 27))


def test_changing_a_returned_holiday_table_does_not_change_the_next_answer():
    minnesota_holidays(2026).clear()
    BusinessCalendar().holidays(2026).clear()
    assert date(2026, 12, 25) in minnesota_holidays(2026)
    assert date(2026, 12, 25) in BusinessCalendar().holidays(2026)


def test_closed_days_are_holidays_and_open_days_are_worked():
    calendar = BusinessCalendar(
        closed=frozenset({date(2026, 12, 24), date(2026, 12, 25)}), open=frozenset({date(2026, 11, 11)})
    )
    holidays = calendar.holidays(2026)
    assert holidays[date(2026, 12, 24)] == "City closed"
    assert holidays[date(2026, 12, 25)] == "Christmas Day"  # a closure on a legal holiday keeps the holiday's name
    assert date(2026, 11, 11) not in holidays
    assert calendar.holiday_name(date(2026, 12, 24)) == "City closed"
    assert calendar.holiday_name(date(2026, 11, 11)) is None
    assert not calendar.is_business_day(date(2026, 12, 24))
    assert calendar.is_business_day(date(2026, 11, 11))
    assert calendar.add_business_days(date(2026, 12, 23), 1) == date(2026, 12, 28)
    assert date(2027, 12, 24) in calendar.holidays(2027)  # closures belong to their own year only


def test_open_does_not_open_a_weekend():
    calendar = BusinessCalendar(open=frozenset({date(2026, 7, 4), date(2026, 7, 3)}))
    assert calendar.is_business_day(date(2026, 7, 3))
    assert not calendar.is_business_day(date(2026, 7, 4))
    assert calendar.next_business_day(date(2026, 7, 3)) == date(2026, 7, 6)


def test_closed_and_open_accept_any_collection_of_dates():
    calendar = BusinessCalendar(closed=[date(2026, 3, 2)], open={date(2026, 1, 1)})  # type: ignore[arg-type]
    assert calendar.closed == frozenset({date(2026, 3, 2)})
    assert not calendar.is_business_day(date(2026, 3, 2))
    assert calendar.is_business_day(date(2026, 1, 1))
    assert calendar == BusinessCalendar(closed=frozenset({date(2026, 3, 2)}), open=frozenset({date(2026, 1, 1)}))


def test_a_day_both_closed_and_open_is_refused():
    with pytest.raises(ValueError, match=r"closed and open both list 2026-03-02"):
        BusinessCalendar(closed=frozenset({date(2026, 3, 2)}), open=frozenset({date(2026, 3, 2)}))


@pytest.mark.parametrize("field", ["closed", "open"])
def test_a_closed_or_open_entry_that_is_not_a_date_is_refused(field):
    with pytest.raises(ValueError, match=f"^{field} must contain only dates"):
        BusinessCalendar(**{field: frozenset({datetime(2026, 3, 2, 9, 0)})})
    with pytest.raises(ValueError, match=f"^{field} must contain only dates"):
        BusinessCalendar(**{field: frozenset({"2026-03-02"})})
    with pytest.raises(ValueError, match=f"^{field} must be a collection of dates"):
        BusinessCalendar(**{field: date(2026, 3, 2)})
    with pytest.raises(ValueError, match=f"^{field} must be a collection of dates, not int"):
        BusinessCalendar(**{field: 20260302})


def test_a_datetime_is_refused_rather_than_missing_every_holiday():
    with pytest.raises(TypeError, match="day must be a date, not datetime"):
        BusinessCalendar().is_business_day(datetime(2026, 12, 25, 9, 0))
    with pytest.raises(TypeError, match="end must be a date"):
        BusinessCalendar().business_days_between(date(2026, 12, 24), datetime(2026, 12, 28))


def test_is_business_day():
    calendar = BusinessCalendar()
    assert calendar.is_business_day(date(2026, 3, 4))  # a Wednesday
    assert not calendar.is_business_day(date(2026, 3, 7))  # Saturday
    assert not calendar.is_business_day(date(2026, 3, 8))  # Sunday
    assert not calendar.is_business_day(date(2026, 7, 3))  # Independence Day (observed)
    assert calendar.holiday_name(date(2026, 7, 3)) == "Independence Day (observed)"
    assert calendar.holiday_name(date(2026, 3, 4)) is None


def test_next_and_previous_business_day():
    calendar = BusinessCalendar()
    assert calendar.next_business_day(date(2026, 7, 2)) == date(2026, 7, 6)  # over Fri Jul 3 observed + weekend
    assert calendar.next_business_day(date(2026, 3, 4)) == date(2026, 3, 5)
    assert calendar.previous_business_day(date(2026, 7, 6)) == date(2026, 7, 2)
    assert calendar.previous_business_day(date(2027, 1, 4)) == date(2026, 12, 31)  # over Fri Jan 1 + weekend
    assert calendar.previous_business_day(date(2022, 1, 3)) == date(2021, 12, 30)  # over Dec 31 observed
    assert calendar.previous_business_day(date(2026, 1, 2)) == date(2025, 12, 31)


def test_add_one_business_day_over_thanksgiving_and_the_weekend():
    wednesday = date(2026, 11, 25)
    assert wednesday.weekday() == 2
    assert BusinessCalendar().add_business_days(wednesday, 1) == date(2026, 11, 30)
    assert BusinessCalendar(friday_after_thanksgiving=False).add_business_days(wednesday, 1) == date(2026, 11, 27)


def test_add_business_days_from_a_friday_lands_on_monday():
    assert BusinessCalendar().add_business_days(date(2026, 3, 6), 1) == date(2026, 3, 9)
    assert BusinessCalendar().add_business_days(date(2026, 3, 6), 5) == date(2026, 3, 13)


def test_add_business_days_across_the_new_year():
    calendar = BusinessCalendar()
    assert calendar.add_business_days(date(2026, 12, 30), 1) == date(2026, 12, 31)
    assert calendar.add_business_days(date(2026, 12, 30), 2) == date(2027, 1, 4)  # Fri Jan 1 is New Year's Day
    assert calendar.add_business_days(date(2027, 12, 29), 2) == date(2028, 1, 3)  # Fri Dec 31 is observed
    assert calendar.add_business_days(date(2026, 12, 31), 300) == calendar.add_business_days(date(2027, 1, 4), 299)


def test_add_zero_business_days_is_the_day_itself_or_the_next_business_day():
    calendar = BusinessCalendar()
    assert calendar.add_business_days(date(2026, 3, 4), 0) == date(2026, 3, 4)
    assert calendar.add_business_days(date(2026, 3, 7), 0) == date(2026, 3, 9)  # Saturday
    assert calendar.add_business_days(date(2026, 12, 25), 0) == date(2026, 12, 28)  # Christmas, a Friday
    assert calendar.add_business_days(date(2021, 12, 31), 0) == date(2022, 1, 3)


@pytest.mark.parametrize("count", [-1, -20])
def test_a_negative_count_is_refused(count):
    with pytest.raises(ValueError, match=rf"count .*got {count}"):
        BusinessCalendar().add_business_days(date(2026, 3, 4), count)


def test_add_business_days_matches_counting_one_day_at_a_time():
    calendar = BusinessCalendar(closed=frozenset({date(2026, 12, 31)}))
    start = date(2025, 11, 1)
    for offset in range(0, 430, 3):
        day = start + timedelta(days=offset)
        walked = day
        for count in range(1, 30):
            walked += timedelta(days=1)
            while not calendar.is_business_day(walked):
                walked += timedelta(days=1)
            assert calendar.add_business_days(day, count) == walked, (day, count)
            assert calendar.business_days_between(day, walked) == count


def test_business_days_between():
    calendar = BusinessCalendar()
    assert calendar.business_days_between(date(2026, 11, 25), date(2026, 11, 30)) == 1  # Thu, Fri off; Mon counts
    assert (
        BusinessCalendar(friday_after_thanksgiving=False).business_days_between(date(2026, 11, 25), date(2026, 11, 30))
        == 2
    )
    assert calendar.business_days_between(date(2026, 3, 2), date(2026, 3, 6)) == 4  # Tue-Fri; Monday is the start
    assert calendar.business_days_between(date(2026, 12, 24), date(2027, 1, 4)) == 5  # Dec 28-31 and Jan 4
    assert calendar.business_days_between(date(2026, 3, 4), date(2026, 3, 4)) == 0
    assert calendar.business_days_between(date(2026, 3, 6), date(2026, 3, 2)) == 0
    assert calendar.business_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 250
