"""The supervisors' reports: pure functions from audit entries to figures.

Input is every audit entry (``bot.audit``) of the conversations active in and a little
before a period; nothing here reads Redis or the clock, so the figures are the same on every
replica and after any restart, and tests check them without HTTP. The console's handler
(``bot.console.reports``) reads the entries and serves what :func:`figures` returns, as JSON
and, through :func:`csv_rows`, as CSV.

What each figure counts (days and hours in the department's time zone):

* messages: one per ``outcome`` entry (written once a message is handled; a message handled
  twice after a crash is counted once, by its ``message_id``), on the day it arrived
  (``received``), by outcome and by the channel it came on.
* urgent: messages whose outcome was emergency or crisis. Notice latency: for each 911
  notice (the ``message_out`` entry with ``notice_received``), from the message's arrival
  to the notice reaching the platform; median and 95th percentile.
* first response: a conversation waits for staff from its first message with a queued
  outcome (not faq, smalltalk or elsewhere) until a staff reply (``reply``); resolving it
  ends the wait. Median and 90th percentile overall and by the hour of day it began.
* off duty: the share of messages handled while nobody was on duty (``on_duty``).
* unanswered at shift end: at the end of each monitored range of the department's schedule
  (holidays have none), the conversations waiting with no staff reply yet.
* escalations: ``escalated`` and ``escalation_failed`` entries, by day.

Medians are the middle value (the mean of the two middle ones for an even count); the 90th
and 95th percentiles are nearest-rank (the smallest value with at least that share of the
values at or below it).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple
from zoneinfo import ZoneInfo

from bot.department import Department

# Longest period one report covers (a quarter): bounds the Redis reads of one request.
MAX_DAYS = 93
# Conversations are found by the days their audit log was written; one whose last entry
# before the period is older than this is not seen (it counts only if it is in the queue).
LOOKBACK_DAYS = 7
URGENT = ("emergency", "crisis")
# Outcomes that do not put the conversation in the staff queue.
NOT_QUEUED = ("faq", "smalltalk", "elsewhere")
OUTCOME_ORDER = ("emergency", "crisis", "report", "human", "held", "faq", "smalltalk",
                 "elsewhere")


class PeriodError(ValueError):
    """A period the reports cannot cover; the message says why."""


@dataclass(frozen=True)
class Period:
    """Whole local days, ``first`` to ``last`` inclusive, in ``zone``."""

    first: dt.date
    last: dt.date
    zone: ZoneInfo

    @property
    def days(self) -> List[dt.date]:
        return [self.first + dt.timedelta(days=i)
                for i in range((self.last - self.first).days + 1)]

    def start(self) -> float:
        return _midnight(self.first, self.zone)

    def end(self) -> float:
        """The first moment after the period."""
        return _midnight(self.last + dt.timedelta(days=1), self.zone)


def _midnight(day: dt.date, zone: ZoneInfo) -> float:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp()


# Before Beacon kept the records reports read.
EARLIEST = dt.date(2020, 1, 1)


def parse_period(first: str | None, last: str | None, zone: ZoneInfo,
                 today: dt.date) -> Period:
    """The period named by two ISO dates; the last seven days (today included) when both
    are missing. Raises PeriodError for bad dates, a reversed or overlong period."""
    if not first and not last:
        return Period(today - dt.timedelta(days=6), today, zone)
    try:
        start = dt.date.fromisoformat(first or "")
        end = dt.date.fromisoformat(last or "")
    except ValueError:
        raise PeriodError("from and to must be dates like 2026-11-01") from None
    if end < start:
        raise PeriodError("the period ends before it starts")
    if (end - start).days + 1 > MAX_DAYS:
        raise PeriodError(f"a report covers at most {MAX_DAYS} days")
    # Nothing is recorded in the future, and dates at the calendar's edges cannot be turned
    # into the times the figures need (0001-01-01 or 9999-12-31 gave a 500: live attack).
    if end > today + dt.timedelta(days=1):  # a day's slack for a caller in another zone
        raise PeriodError("the period ends after today")
    if start < EARLIEST:
        raise PeriodError(f"reports start on {EARLIEST.isoformat()} at the earliest")
    return Period(start, end, zone)


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` 0.9 for p90)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(share * len(ordered))) - 1], 3)


@dataclass
class _Episode:
    """One wait for staff: from the first queued message to the first staff reply."""

    start: float
    answered: float | None = None
    closed: float | None = None


def _messages(logs: Mapping[str, Sequence[dict]]) -> List[dict]:
    """Every handled message once (its first outcome entry), with its conversation."""
    seen = set()
    out = []
    for conversation, entries in logs.items():
        for entry in entries:
            if entry.get("action") != "outcome":
                continue
            key = (conversation, entry.get("message_id"))
            if entry.get("message_id") and key in seen:
                continue
            seen.add(key)
            out.append({**entry, "conversation": conversation})
    return out


def _episodes(entries: Sequence[dict]) -> List[_Episode]:
    """A conversation's waits for staff, rebuilt from its audit log in time order (a message
    by when it arrived, anything else by when it was written)."""
    seen = set()
    events: List[Tuple[float, int, dict]] = []
    for i, entry in enumerate(entries):
        if entry.get("action") == "outcome":
            if entry.get("message_id") in seen:
                continue
            seen.add(entry.get("message_id"))
            events.append((float(entry.get("received") or entry["ts"]), i, entry))
        elif entry.get("action") in ("reply", "resolve"):
            events.append((float(entry["ts"]), i, entry))
    episodes: List[_Episode] = []
    current: _Episode | None = None
    for when, _, entry in sorted(events, key=lambda e: (e[0], e[1])):
        action = entry["action"]
        if action == "outcome":
            if current is None and entry.get("detail") not in NOT_QUEUED:
                current = _Episode(start=when)
                episodes.append(current)
        elif current is not None and action == "reply":
            if current.answered is None:
                current.answered = when
        elif current is not None and action == "resolve":
            current.closed = when
            current = None
    return episodes


def shift_ends(department: Department, period: Period, now: float) -> List[dt.datetime]:
    """The end of every monitored range in the period that has passed, in order."""
    ends = []
    for day in period.days:
        if day in department.holiday_dates:
            continue
        for span in department.open_ranges.get(day.weekday(), []):
            # The wall-clock end (24:00 is the next day's midnight), right across DST.
            end = dt.datetime.combine(day + dt.timedelta(days=span.end_minutes // 1440),
                                      dt.time((span.end_minutes % 1440) // 60,
                                              span.end_minutes % 60), tzinfo=period.zone)
            if end.timestamp() <= now:
                ends.append(end)
    return sorted(ends)


def _ordered(keys: Iterable[str], order: Sequence[str] = ()) -> List[str]:
    keys = set(keys)
    return [k for k in order if k in keys] + sorted(keys - set(order))


def figures(logs: Mapping[str, Sequence[dict]], period: Period, department: Department,
            now: float) -> Dict:
    """Every figure of the reports page for ``period`` from the audit entries of its
    conversations (``logs``: conversation id -> entries in the order they were written)."""
    zone = period.zone
    start, end = period.start(), period.end()
    days = [d.isoformat() for d in period.days]
    index = {d: i for i, d in enumerate(days)}

    def day_of(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, zone).date().isoformat()

    def per_day() -> List[int]:
        return [0] * len(days)

    messages = [m for m in _messages(logs)
                if start <= float(m.get("received") or m["ts"]) < end]
    by_outcome: Dict[str, List[int]] = {}
    by_channel: Dict[str, List[int]] = {}
    urgent, off_duty = per_day(), per_day()
    for m in messages:
        i = index[day_of(float(m.get("received") or m["ts"]))]
        outcome = str(m.get("detail") or "unknown")
        channel = str(m.get("channel") or m["conversation"].split(":", 1)[0])
        by_outcome.setdefault(outcome, per_day())[i] += 1
        by_channel.setdefault(channel, per_day())[i] += 1
        if outcome in URGENT:
            urgent[i] += 1
        if m.get("on_duty") is False:
            off_duty[i] += 1

    latencies = []
    escalated, failed = per_day(), per_day()
    for entries in logs.values():
        for e in entries:
            action = e.get("action")
            if action == "message_out" and e.get("notice_received") is not None:
                received = float(e["notice_received"])
                if start <= received < end:
                    latencies.append(max(0.0, float(e["ts"]) - received))
            elif action in ("escalated", "escalation_failed") and start <= e["ts"] < end:
                (escalated if action == "escalated" else failed)[index[day_of(e["ts"])]] += 1

    episodes = [ep for entries in logs.values() for ep in _episodes(entries)]
    waits = [ep for ep in episodes if start <= ep.start < end]
    response = [ep.answered - ep.start for ep in waits if ep.answered is not None]
    hours: Dict[int, List[float]] = {h: [] for h in range(24)}
    for ep in waits:
        if ep.answered is not None:
            hours[dt.datetime.fromtimestamp(ep.start, zone).hour].append(ep.answered - ep.start)

    shifts = []
    for shift_end in shift_ends(department, period, now):
        at = shift_end.timestamp()
        shifts.append({
            "shift_end": shift_end.isoformat(),
            "unanswered": sum(1 for ep in episodes if ep.start < at
                              and (ep.answered is None or ep.answered > at)
                              and (ep.closed is None or ep.closed > at)),
        })

    total = len(messages)
    return {
        "period": {"from": days[0], "to": days[-1], "timezone": zone.key, "days": len(days)},
        "days": days,
        "messages": {
            "total": total,
            "by_outcome": {k: by_outcome[k] for k in _ordered(by_outcome, OUTCOME_ORDER)},
            "by_channel": {k: by_channel[k] for k in _ordered(by_channel)},
        },
        "urgent": {
            "per_day": urgent,
            "total": sum(urgent),
            "notices": len(latencies),
            "notice_latency_s": {"median": median(latencies),
                                 "p95": percentile(latencies, 0.95)},
        },
        "first_response": {
            "waits": len(waits),
            "answered": len(response),
            "median_s": median(response),
            "p90_s": percentile(response, 0.9),
            "by_hour": [{"hour": h, "count": len(v), "median_s": median(v),
                         "p90_s": percentile(v, 0.9)} for h, v in hours.items()],
        },
        "off_duty": {
            "per_day": off_duty,
            "messages": sum(off_duty),
            "share": round(sum(off_duty) / total, 4) if total else None,
        },
        "unanswered_at_shift_end": shifts,
        "escalations": {"per_day": escalated, "failed_per_day": failed,
                        "total": sum(escalated) + sum(failed), "failed": sum(failed)},
    }


CSV_HEADER = ("figure", "date", "key", "value")


def csv_rows(report: Mapping) -> List[Tuple[str, str, str, object]]:
    """The same figures as :func:`figures` returned, one per row (``CSV_HEADER``); empty
    values (no data) are empty cells."""
    rows: List[Tuple[str, str, str, object]] = []
    days = report["days"]

    def cell(value: object) -> object:
        return "" if value is None else value

    for name, series in (("messages_by_outcome", report["messages"]["by_outcome"]),
                         ("messages_by_channel", report["messages"]["by_channel"])):
        for key, counts in series.items():
            rows += [(name, day, key, n) for day, n in zip(days, counts, strict=True)]
    rows += [("urgent_messages", day, "", n)
             for day, n in zip(days, report["urgent"]["per_day"], strict=True)]
    rows += [("off_duty_messages", day, "", n)
             for day, n in zip(days, report["off_duty"]["per_day"], strict=True)]
    escalations = report["escalations"]
    for key, counts in (("escalated", escalations["per_day"]),
                        ("failed", escalations["failed_per_day"])):
        rows += [("escalations", day, key, n) for day, n in zip(days, counts, strict=True)]
    rows.append(("messages", "", "total", report["messages"]["total"]))
    urgent = report["urgent"]
    rows += [("urgent", "", "total", urgent["total"]), ("urgent", "", "notices", urgent["notices"]),
             ("notice_latency_s", "", "median", cell(urgent["notice_latency_s"]["median"])),
             ("notice_latency_s", "", "p95", cell(urgent["notice_latency_s"]["p95"]))]
    first = report["first_response"]
    rows += [("first_response", "", key, cell(first[key]))
             for key in ("waits", "answered", "median_s", "p90_s")]
    for hour in first["by_hour"]:
        rows += [("first_response_by_hour", f"{hour['hour']:02d}:00", key, cell(hour[key]))
                 for key in ("count", "median_s", "p90_s")]
    off = report["off_duty"]
    rows += [("off_duty", "", "messages", off["messages"]),
             ("off_duty", "", "share", cell(off["share"]))]
    rows += [("unanswered_at_shift_end", s["shift_end"], "", s["unanswered"])
             for s in report["unanswered_at_shift_end"]]
    rows += [("escalations", "", "total", escalations["total"]),
             ("escalations", "", "failed", escalations["failed"])]
    return rows
