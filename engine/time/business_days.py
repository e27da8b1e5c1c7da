"""Business days for the City: Minnesota legal holidays (Minn. Stat. 645.44 subd. 5, as amended 2023) and weekends.

Pure date arithmetic: no database and no settings. The caller builds a `BusinessCalendar` from the City's settings
(the two holidays a political subdivision chooses, plus extra closed days and holidays worked anyway).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

SATURDAY, SUNDAY = 5, 6
CITY_CLOSED = "City closed"

# Holidays on a fixed date; when one falls on a Sunday the Monday after is a holiday, on a Saturday the Friday before.
_FIXED = (
    (1, 1, "New Year's Day"),
    (6, 19, "Juneteenth"),
    (7, 4, "Independence Day"),
    (11, 11, "Veterans Day"),
    (12, 25, "Christmas Day"),
)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Monday 0) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    """The last given weekday (Monday 0) of a month."""
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date | None:
    """The weekday on which a fixed-date holiday is also observed, or None when it falls Monday to Friday."""
    if day.weekday() == SATURDAY:
        return day - timedelta(days=1)
    if day.weekday() == SUNDAY:
        return day + timedelta(days=1)
    return None


@lru_cache(maxsize=512)
def _minnesota_holidays(year: int, friday_after_thanksgiving: bool, indigenous_peoples_day: bool) -> Mapping[date, str]:
    """The cached, read-only holiday table behind `minnesota_holidays`."""
    holidays: dict[date, str] = {}
    for y in (year, year + 1):  # Jan 1 of next year on a Saturday is observed on Dec 31 of this year
        for month, day_of_month, name in _FIXED:
            actual = date(y, month, day_of_month)
            observed = _observed(actual)
            if actual.year == year:
                holidays[actual] = name
            if observed is not None and observed.year == year:
                holidays[observed] = f"{name} (observed)"
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    holidays[_nth_weekday(year, 1, 0, 3)] = "Martin Luther King's Birthday"
    holidays[_nth_weekday(year, 2, 0, 3)] = "Washington's and Lincoln's Birthday"
    holidays[_last_weekday(year, 5, 0)] = "Memorial Day"
    holidays[_nth_weekday(year, 9, 0, 1)] = "Labor Day"
    holidays[thanksgiving] = "Thanksgiving Day"
    if indigenous_peoples_day:
        holidays[_nth_weekday(year, 10, 0, 2)] = "Indigenous Peoples Day"
    if friday_after_thanksgiving:
        holidays[thanksgiving + timedelta(days=1)] = "Friday after Thanksgiving"
    return MappingProxyType(dict(sorted(holidays.items())))


def minnesota_holidays(
    year: int, *, friday_after_thanksgiving: bool = True, indigenous_peoples_day: bool = False
) -> dict[date, str]:
    """Every Minnesota legal holiday falling in `year`, by date, in date order.

    A fixed-date holiday on a weekend appears twice: on its own date and, as "<name> (observed)", on the Friday
    before or the Monday after. That Friday can be Dec 31 of `year`, when Jan 1 of the next year is a Saturday.
    """
    return dict(_minnesota_holidays(year, friday_after_thanksgiving, indigenous_peoples_day))


class _Year(NamedTuple):
    """One calendar year of a BusinessCalendar: its holidays and the ordinals of its business days, ascending."""

    holidays: Mapping[date, str]
    business: tuple[int, ...]


def _check_day(day: date, name: str) -> None:
    """Refuse a datetime (it never equals a date, so holidays would silently be missed) or a non-date."""
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{name} must be a date, not {type(day).__name__}")


def _as_dates(days: Iterable[date], field: str) -> frozenset[date]:
    """A settings field of days as a frozenset of dates; anything else is a ValueError naming the field."""
    if isinstance(days, str | bytes | date) or not isinstance(days, Iterable):
        raise ValueError(f"{field} must be a collection of dates, not {type(days).__name__}")
    result = frozenset(days)
    wrong = sorted(repr(d) for d in result if isinstance(d, datetime) or not isinstance(d, date))
    if wrong:
        raise ValueError(f"{field} must contain only dates; got {', '.join(wrong)}")
    return result


@dataclass(frozen=True)
class BusinessCalendar:
    """When the City does business: Monday to Friday, except Minnesota holidays and the City's own closures.

    `closed` adds days the City is closed; `open` removes holidays the City works anyway. Weekends stay closed
    whatever `open` says.
    """

    friday_after_thanksgiving: bool = True
    indigenous_peoples_day: bool = False
    closed: frozenset[date] = frozenset()
    open: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        """Accept any collection of dates for `closed` and `open`, and refuse a day that is both."""
        object.__setattr__(self, "closed", _as_dates(self.closed, "closed"))
        object.__setattr__(self, "open", _as_dates(self.open, "open"))
        both = sorted(self.closed & self.open)
        if both:
            raise ValueError(f"closed and open both list {', '.join(d.isoformat() for d in both)}")

    def holidays(self, year: int) -> dict[date, str]:
        """Every day of `year` the City is closed for other than weekends: legal holidays and closures, by date."""
        return dict(_year(self, year).holidays)

    def holiday_name(self, day: date) -> str | None:
        """The name of the holiday or closure on `day`, or None when there is none."""
        _check_day(day, "day")
        return _year(self, day.year).holidays.get(day)

    def is_business_day(self, day: date) -> bool:
        """Whether the City does business on `day`: a Monday to Friday that is not a holiday or closure."""
        _check_day(day, "day")
        return day.weekday() < SATURDAY and day not in _year(self, day.year).holidays

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        return self.add_business_days(day, 1)

    def previous_business_day(self, day: date) -> date:
        """The last business day strictly before `day`."""
        _check_day(day, "day")
        year = day.year
        business = _year(self, year).business
        index = bisect_left(business, day.toordinal()) - 1
        while index < 0:
            year -= 1
            business = _year(self, year).business
            index = len(business) - 1
        return date.fromordinal(business[index])

    def add_business_days(self, day: date, count: int) -> date:
        """The count-th business day strictly after `day`; for count 0, `day` itself or else the next business day."""
        _check_day(day, "day")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a whole number of business days, 0 or more; got {count!r}")
        year = day.year
        business = _year(self, year).business
        if count == 0:
            index, remaining = bisect_left(business, day.toordinal()), 1
        else:
            index, remaining = bisect_right(business, day.toordinal()), count
        while index + remaining > len(business):
            remaining -= len(business) - index
            year += 1
            business, index = _year(self, year).business, 0
        return date.fromordinal(business[index + remaining - 1])

    def business_days_between(self, start: date, end: date) -> int:
        """How many business days d have start < d <= end; 0 when end is not after start."""
        _check_day(start, "start")
        _check_day(end, "end")
        if end <= start:
            return 0
        first, last = start.toordinal(), end.toordinal()
        total = 0
        for year in range(start.year, end.year + 1):
            business = _year(self, year).business
            total += bisect_right(business, last) - bisect_right(business, first)
        return total


@lru_cache(maxsize=256)
def _year(calendar: BusinessCalendar, year: int) -> _Year:
    """The cached table of one year for a calendar; equal calendars share it."""
    holidays = dict(_minnesota_holidays(year, calendar.friday_after_thanksgiving, calendar.indigenous_peoples_day))
    for day in calendar.closed:
        if day.year == year:
            holidays.setdefault(day, CITY_CLOSED)
    for day in calendar.open:
        holidays.pop(day, None)
    days = (date.fromordinal(n) for n in range(date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal() + 1))
    business = tuple(day.toordinal() for day in days if day.weekday() < SATURDAY and day not in holidays)
    return _Year(MappingProxyType(dict(sorted(holidays.items()))), business)
