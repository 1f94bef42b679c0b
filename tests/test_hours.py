"""Schedule, holidays and the 'staff will be back' time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.hours import describe_opening, is_scheduled, next_opening

LA = ZoneInfo("America/Los_Angeles")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LA)


def test_weekday_hours(department):
    assert is_scheduled(department, at(2026, 11, 24, 9, 0))  # Tuesday
    assert not is_scheduled(department, at(2026, 11, 24, 17, 0))  # closes at 17:00
    assert not is_scheduled(department, at(2026, 11, 24, 7, 59))


def test_after_hours_next_opening_is_tomorrow_morning(department):
    now = at(2026, 11, 24, 22, 0)  # Tuesday night
    opening = next_opening(department, now)
    assert opening == at(2026, 11, 25, 8, 0)
    assert describe_opening(opening, now) == "tomorrow at 8:00 AM"


def test_holiday_is_skipped(department):
    now = at(2026, 11, 25, 18, 0)  # Wednesday evening; Thursday is Thanksgiving
    assert not is_scheduled(department, at(2026, 11, 26, 10, 0))
    opening = next_opening(department, now)
    assert opening == at(2026, 11, 27, 8, 0)
    assert describe_opening(opening, now) == "Friday, November 27 at 8:00 AM"


def test_weekend(department):
    assert next_opening(department, at(2026, 11, 28, 15, 0)) == at(2026, 11, 30, 8, 0)
    assert is_scheduled(department, at(2026, 11, 28, 11, 0))  # Saturday 10-14
    assert not is_scheduled(department, at(2026, 11, 29, 11, 0))  # Sunday


def test_before_opening_is_today(department):
    now = at(2026, 11, 24, 6, 30)
    assert describe_opening(next_opening(department, now), now) == "today at 8:00 AM"


def test_utc_input_is_converted(department):
    utc = dt.datetime(2026, 11, 24, 17, 30, tzinfo=dt.timezone.utc)  # 09:30 in LA
    assert is_scheduled(department, utc)
