"""The department's facts: one YAML file, validated once at start-up.

Every text in the file (FAQ answers, canned replies, Beacon's own replies) may name a fact
in braces, e.g. ``{phones.non_emergency}``. Validation resolves every reference, so a typo
fails at start-up with the field's name instead of reaching a citizen as
``{phones.non_emergncy}``.

Every text a citizen reads exists in each of the file's ``languages`` (English and Spanish):
a missing version is an error that names the field (``faq.towed_vehicle: missing es``), not
an English answer to a Spanish question found by a citizen.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Extra, ValidationError, constr, validator

from bot import yaml_files
from bot.topics import FAQ_TOPICS

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)\}")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# Loose on purpose: departments write numbers many ways; this catches empty or wordy values.
_PHONE = r"^[0-9+() .\-]{3,20}$"

NonEmpty = constr(strip_whitespace=True, min_length=1)
# One text in each language (language code -> text); checked against ``languages``.
Texts = Dict[constr(regex=r"^[a-z]{2,3}$"), NonEmpty]
# The language of a reply when none is known, and the one every department file has.
DEFAULT_LANGUAGE = "en"


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


class Replies(_Strict):
    """What Beacon itself says, outcome by outcome (``bot.replies`` picks among them)."""

    disclosure: Texts
    urgent_flagged: Texts
    urgent_follow_up: Texts
    report_how: Texts
    staff_soon: Texts
    nobody_now: Texts
    back_at: Texts
    throttled: Texts
    greet: Texts
    thanks: Texts
    goodbye: Texts
    bot_challenge: Texts
    compliment: Texts
    # Added after the built-in 911 notice and 988 line, never instead of them.
    notice_extra: Texts = {}

    @validator("back_at")
    def _names_when(cls, value: Dict[str, str]) -> Dict[str, str]:
        for code, text in value.items():
            if "{when}" not in text:
                raise ValueError(f"{code}: must say when staff are back, with {{when}}")
        return value


class Department(_Strict):
    department: Identity
    phones: Dict[str, constr(strip_whitespace=True, regex=_PHONE)]
    emails: Dict[str, NonEmpty] = {}
    urls: Dict[str, NonEmpty] = {}
    fees: Dict[str, NonEmpty] = {}
    languages: List[constr(regex=r"^[a-z]{2,3}$")] = [DEFAULT_LANGUAGE, "es"]
    lobby_hours: Texts
    schedule: Dict[str, List[str]]
    holidays: List[Holiday] = []
    faq: Dict[str, Texts]
    canned_replies: Dict[str, Texts] = {}
    replies: Replies
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

    @validator("languages")
    def _has_default(cls, value: List[str]) -> List[str]:
        if DEFAULT_LANGUAGE not in value:
            raise ValueError(f"must include {DEFAULT_LANGUAGE!r}")
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
    def _facts(self) -> Dict[str, Dict[str, str]]:
        """Every fact a text may name, by its dotted name, per language."""
        common: Dict[str, str] = {
            f"department.{k}": str(v) for k, v in self.department.dict().items()
        }
        for group in ("phones", "emails", "urls", "fees"):
            common.update({f"{group}.{k}": v for k, v in getattr(self, group).items()})
        common["address_line"] = self.department.address
        return {language: {**common, "lobby_hours": self.lobby_hours[language],
                           "schedule_text": schedule_text(self.schedule, language)}
                for language in self.languages}

    def language(self, language: str | None) -> str:
        """``language`` if the department answers in it, else the default."""
        return language if language in self.languages else DEFAULT_LANGUAGE

    @property
    def facts(self) -> Dict[str, str]:
        return self._facts[DEFAULT_LANGUAGE]

    def render(self, template: str, language: str = DEFAULT_LANGUAGE, **extra: str) -> str:
        """Fill ``{fact}`` references (all checked at load time) and ``extra`` ones."""
        facts = {**self._facts[self.language(language)], **extra}
        return _PLACEHOLDER.sub(lambda m: facts[m.group(1)], template)

    def text(self, texts: Mapping[str, str], language: str = DEFAULT_LANGUAGE,
             **extra: str) -> str:
        """One of the file's texts in ``language`` (the default language if not answered
        in), with its facts filled in."""
        language = self.language(language)
        return self.render(texts[language], language, **extra)

    def reply(self, name: str, language: str = DEFAULT_LANGUAGE, **extra: str) -> str:
        """One of Beacon's own replies (``replies.<name>``) in ``language``."""
        return self.text(getattr(self.replies, name), language, **extra)

    def faq_answer(self, topic: str, language: str = DEFAULT_LANGUAGE) -> str:
        return self.text(self.faq[topic], language)

    def canned(self, language: str = DEFAULT_LANGUAGE) -> Dict[str, str]:
        return {name: self.text(texts, language) for name, texts in self.canned_replies.items()}

    def _texts(self):
        """Every text of the file: (field name, language or None, text)."""
        for key, text in self.other_languages.items():
            yield f"other_languages.{key}", None, text
        yield from (("lobby_hours", lang, text) for lang, text in self.lobby_hours.items())
        for section in ("faq", "canned_replies"):
            for key, texts in getattr(self, section).items():
                yield from ((f"{section}.{key}", lang, text) for lang, text in texts.items())
        for key, texts in self.replies.dict().items():
            yield from ((f"replies.{key}", lang, text) for lang, text in texts.items())

    def check_references(self) -> None:
        """Raise :class:`DepartmentFileError` naming the first text with an unknown fact, a
        missing or unexpected language version."""
        wanted = set(self.languages)
        for section, items in (("faq", self.faq), ("canned_replies", self.canned_replies),
                               ("replies", {k: v for k, v in self.replies.dict().items()
                                            if k != "notice_extra" or v}),
                               ("", {"lobby_hours": self.lobby_hours})):
            for key, texts in items.items():
                field = f"{section}.{key}" if section else key
                missing, unknown = wanted - set(texts), set(texts) - wanted
                if missing:
                    raise DepartmentFileError(f"{field}: missing {', '.join(sorted(missing))}"
                                              " (every text needs each of the file's languages)")
                if unknown:
                    raise DepartmentFileError(f"{field}: {', '.join(sorted(unknown))} is not "
                                              "one of the file's languages")
        for field, language, text in self._texts():
            facts = self._facts[language or DEFAULT_LANGUAGE]
            allowed = {"when"} if field == "replies.back_at" else set()
            for name in _PLACEHOLDER.findall(text):
                if name not in facts and name not in allowed:
                    raise DepartmentFileError(
                        f"{field}{'.' + language if language else ''}: unknown fact "
                        f"{{{name}}}; known facts: " + ", ".join(sorted(facts))
                    )
            leftover = _PLACEHOLDER.sub("", text)
            if "{" in leftover or "}" in leftover:
                raise DepartmentFileError(
                    f"{field}: stray brace; facts are written like {{phones.non_emergency}}"
                )


_DAY_NAMES = {"es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado",
                     "domingo")}
_NO_HOURS = {"en": "no regular hours", "es": "sin horario fijo"}


def schedule_text(schedule: Mapping[str, List[str]], language: str = DEFAULT_LANGUAGE) -> str:
    """A human summary such as 'Monday 08:00-17:00; Saturday 10:00-14:00'."""
    names = _DAY_NAMES.get(language, tuple(day.capitalize() for day in WEEKDAYS))
    parts = [
        f"{names[i]} {', '.join(schedule[day])}"
        for i, day in enumerate(WEEKDAYS)
        if schedule.get(day)
    ]
    return "; ".join(parts) if parts else _NO_HOURS.get(language, _NO_HOURS["en"])


def _field_path(error: dict) -> str:
    return ".".join(str(p) for p in error["loc"] if p != "__root__")


def load_department(path: str | Path) -> Department:
    """Read, validate and cross-check the department file, or raise DepartmentFileError."""
    path = Path(path)
    if not path.exists():
        raise DepartmentFileError(f"{path}: department file not found")
    try:
        raw = yaml_files.load(path)
    except yaml_files.YamlFileError as exc:
        raise DepartmentFileError(f"{path}: {exc}") from None
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
