"""The department's facts: one YAML file, validated once at start-up.

Every text in the file (FAQ answers, canned replies) may name a fact in braces, e.g.
``{phones.non_emergency}``. Validation resolves every reference, so a typo fails at
start-up with the field's name instead of reaching a citizen as ``{phones.non_emergncy}``.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, Extra, ValidationError, constr, validator

from bot.topics import FAQ_TOPICS

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)\}")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# Loose on purpose: departments write numbers many ways; this catches empty or wordy values.
_PHONE = r"^[0-9+() .\-]{3,20}$"

NonEmpty = constr(strip_whitespace=True, min_length=1)


class DepartmentFileError(ValueError):
    """The department file is missing, unreadable or invalid; the message names the field."""


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class Identity(_Strict):
    name: NonEmpty
    short_name: NonEmpty
    city: NonEmpty
    address: NonEmpty
    timezone: NonEmpty

    @validator("timezone")
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like America/Chicago)"
            ) from None
        return value


class Holiday(_Strict):
    date: dt.date
    name: NonEmpty


class OpenRange(BaseModel):
    """One span of monitored time in a day, local time; ``end`` may be 24:00."""

    start: dt.time
    end_minutes: int  # minutes after midnight, so that 24:00 is representable

    @classmethod
    def parse(cls, text: str) -> OpenRange:
        match = _RANGE.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a range like 08:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        end = h2 * 60 + m2
        if end > 24 * 60 or end <= h1 * 60 + m1:
            raise ValueError(f"{text!r} must end after it starts, by 24:00 at the latest")
        return cls(start=dt.time(h1, m1), end_minutes=end)

    @property
    def start_minutes(self) -> int:
        return self.start.hour * 60 + self.start.minute


class Department(_Strict):
    department: Identity
    phones: Dict[str, constr(strip_whitespace=True, regex=_PHONE)]
    emails: Dict[str, NonEmpty] = {}
    urls: Dict[str, NonEmpty] = {}
    fees: Dict[str, NonEmpty] = {}
    lobby_hours: NonEmpty
    schedule: Dict[str, List[str]]
    holidays: List[Holiday] = []
    faq: Dict[str, NonEmpty]
    canned_replies: Dict[str, NonEmpty] = {}
    # One line per language Beacon does not answer in (ISO 639-1 code -> text), sent to a
    # citizen who writes in it; each must tell them to call 911.
    other_languages: Dict[constr(regex=r"^[a-z]{2,3}$"), NonEmpty] = {}

    class Config(_Strict.Config):
        keep_untouched = (cached_property,)

    @validator("phones")
    def _required_phones(cls, value: Dict[str, str]) -> Dict[str, str]:
        missing = {"emergency", "crisis_lifeline", "non_emergency"} - set(value)
        if missing:
            raise ValueError(f"missing required phone(s): {', '.join(sorted(missing))}")
        return value

    @validator("schedule")
    def _valid_schedule(cls, value: Dict[str, List[str]]) -> Dict[str, List[str]]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown day(s) {', '.join(sorted(unknown))}; use monday..sunday")
        for day, ranges in value.items():
            for text in ranges:
                try:
                    OpenRange.parse(text)
                except ValueError as exc:
                    raise ValueError(f"{day}: {exc}") from None
        return value

    @validator("faq")
    def _all_topics(cls, value: Dict[str, str]) -> Dict[str, str]:
        missing = [t for t in FAQ_TOPICS if t not in value]
        unknown = [t for t in value if t not in FAQ_TOPICS]
        if missing:
            raise ValueError(f"missing answer(s) for topic(s): {', '.join(missing)}")
        if unknown:
            raise ValueError(f"unknown topic(s): {', '.join(unknown)}")
        return value

    @validator("other_languages")
    def _says_call_911(cls, value: Dict[str, str]) -> Dict[str, str]:
        for code, text in value.items():
            if "911" not in text and "{phones.emergency}" not in text:
                raise ValueError(f"{code}: the line must tell the citizen to call 911")
        return value

    # -- derived facts -------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.department.timezone)

    @cached_property
    def open_ranges(self) -> Dict[int, List[OpenRange]]:
        """Weekday number (Monday 0) to its monitored ranges, sorted."""
        return {
            WEEKDAYS.index(day): sorted(
                (OpenRange.parse(t) for t in ranges), key=lambda r: r.start_minutes
            )
            for day, ranges in self.schedule.items()
        }

    @cached_property
    def holiday_dates(self) -> Dict[dt.date, str]:
        return {h.date: h.name for h in self.holidays}

    @cached_property
    def facts(self) -> Dict[str, str]:
        """Every fact a text may name, by its dotted name."""
        facts: Dict[str, str] = {
            f"department.{k}": str(v) for k, v in self.department.dict().items()
        }
        for group in ("phones", "emails", "urls", "fees"):
            facts.update({f"{group}.{k}": v for k, v in getattr(self, group).items()})
        facts["address_line"] = self.department.address
        facts["lobby_hours"] = self.lobby_hours
        facts["schedule_text"] = schedule_text(self.schedule)
        return facts

    def render(self, template: str) -> str:
        """Fill ``{fact}`` references from :attr:`facts` (all checked at load time)."""
        return _PLACEHOLDER.sub(lambda m: self.facts[m.group(1)], template)

    def faq_answer(self, topic: str) -> str:
        return self.render(self.faq[topic])

    def canned(self) -> Dict[str, str]:
        return {name: self.render(text) for name, text in self.canned_replies.items()}

    def check_references(self) -> None:
        """Raise :class:`DepartmentFileError` naming the first text with an unknown fact."""
        for section in ("faq", "canned_replies", "other_languages"):
            for key, text in getattr(self, section).items():
                for name in _PLACEHOLDER.findall(text):
                    if name not in self.facts:
                        raise DepartmentFileError(
                            f"{section}.{key}: unknown fact {{{name}}}; known facts: "
                            + ", ".join(sorted(self.facts))
                        )
                leftover = _PLACEHOLDER.sub("", text)
                if "{" in leftover or "}" in leftover:
                    raise DepartmentFileError(
                        f"{section}.{key}: stray brace; facts are written like "
                        "{phones.non_emergency}"
                    )


def schedule_text(schedule: Mapping[str, List[str]]) -> str:
    """A human summary such as 'Monday 08:00-17:00; Saturday 10:00-14:00'."""
    parts = [
        f"{day.capitalize()} {', '.join(schedule[day])}"
        for day in WEEKDAYS
        if schedule.get(day)
    ]
    return "; ".join(parts) if parts else "no regular hours"


def _field_path(error: dict) -> str:
    return ".".join(str(p) for p in error["loc"] if p != "__root__")


def load_department(path: str | Path) -> Department:
    """Read, validate and cross-check the department file, or raise DepartmentFileError."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DepartmentFileError(f"{path}: department file not found") from None
    except yaml.YAMLError as exc:
        raise DepartmentFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise DepartmentFileError(f"{path}: expected a mapping of sections at the top level")
    try:
        department = Department.parse_obj(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_field_path(e)}: {e['msg']}" for e in exc.errors())
        raise DepartmentFileError(f"{path}: {problems}") from None
    try:
        department.check_references()
    except DepartmentFileError as exc:
        raise DepartmentFileError(f"{path}: {exc}") from None
    return department
