"""When staff usually watch the account: pure functions over the department's schedule."""

from __future__ import annotations

import datetime as dt

from bot.department import Department

# Look this far ahead for the next opening; a schedule with none in two weeks is "unknown".
_HORIZON_DAYS = 14


def _local(department: Department, now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(department.zone)


def is_scheduled(department: Department, now: dt.datetime) -> bool:
    """True when ``now`` falls in a monitored range on a day that is not a holiday."""
    local = _local(department, now)
    if local.date() in department.holiday_dates:
        return False
    minutes = local.hour * 60 + local.minute
    return any(
        r.start_minutes <= minutes < r.end_minutes
        for r in department.open_ranges.get(local.weekday(), [])
    )


def next_opening(department: Department, now: dt.datetime) -> dt.datetime | None:
    """The next time a monitored range starts, strictly after ``now`` (local time zone)."""
    local = _local(department, now)
    for offset in range(_HORIZON_DAYS + 1):
        day = local.date() + dt.timedelta(days=offset)
        if day in department.holiday_dates:
            continue
        for r in department.open_ranges.get(day.weekday(), []):
            start = dt.datetime.combine(day, r.start, tzinfo=department.zone)
            if start > local:
                return start
    return None


# How each language says when staff are back; dates and times by Babel's CLDR data (the
# month and day names, "a. m." and the 24-hour clock of Spanish), not by strftime, whose
# names follow the server's locale.
_WHEN = {
    "en": {"today": "today at {time}", "tomorrow": "tomorrow at {time}",
           "later": "{date} at {time}", "date": "EEEE, MMMM d", "time": "h:mm a"},
    "es": {"today": "hoy a las {time}", "tomorrow": "mañana a las {time}",
           "later": "el {date} a las {time}", "date": "EEEE d 'de' MMMM", "time": "H:mm"},
}


def describe_opening(opening: dt.datetime, now: dt.datetime, language: str = "en") -> str:
    """'today at 8:00 AM', 'tomorrow at 8:00 AM' or 'Monday, November 30 at 8:00 AM'
    (Spanish: 'hoy a las 8:00', 'mañana a las 8:00', 'el lunes 30 de noviembre a las 8:00')."""
    from babel.dates import format_date, format_time

    words = _WHEN.get(language, _WHEN["en"])
    locale = language if language in _WHEN else "en"
    local_now = now.astimezone(opening.tzinfo)
    clock = format_time(opening, words["time"], locale=locale)
    days = (opening.date() - local_now.date()).days
    if days == 0:
        return words["today"].format(time=clock)
    if days == 1:
        return words["tomorrow"].format(time=clock)
    return words["later"].format(date=format_date(opening.date(), words["date"], locale=locale),
                                 time=clock)
