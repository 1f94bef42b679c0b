"""Which agency a message, a conversation or a staff member belongs to.

A single-agency deployment (the default) is one department file and nothing else: one
agency, id "", which owns every account and keeps the key names Beacon always had.

A county or regional authority that hosts Beacon for several cities sets
``BEACON_AGENCIES_FILE`` to a file that lists each agency with its own department file
(facts, hours, holidays, answers, languages), the platform accounts it owns and, by the
names of environment variables, its own send tokens (secrets stay out of files)::

    agencies:
      harbor:
        department: harbor.yml        # relative to this file
        retention_days: 365           # optional; default BEACON_RETENTION_DAYS
        accounts:
          messenger: ["104857600000001"]   # Facebook page ids
          instagram: ["17841400000000001"] # Instagram account ids
          x: ["2244994945"]                # X user ids
          webchat: ["harbor"]              # the key in the chat page's URL: /chat?agency=harbor
        credentials:                  # environment variable names, all optional
          meta_page_access_token: HARBOR_META_PAGE_TOKEN

A message is filed under the agency that owns the account it was sent to (the conversation
id holds that account, so every record of it stays apart); a message to an account no
agency owns is not answered. Staff accounts, the queue, presence, console events, reports,
the work list and retention are per agency (``bot.keys.AgencyKeys``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from pydantic import BaseModel, Extra, StrictInt, StrictStr, ValidationError, validator

from bot import keys, yaml_files
from bot.department import Department, DepartmentFileError, load_department
from bot.messages import CHANNELS, WEBCHAT, account_of
from bot.settings import Settings

logger = logging.getLogger(__name__)

AGENCY_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
# The single-agency deployment's web chat: the account in its conversation ids.
WEB_ACCOUNT = "web"
# The "channel" of an agency's console log (Agency.console_log).
CONSOLE = "console"
# A county's handful; each agency is a department file read and checked at start-up.
MAX_AGENCIES = 200
# Records are kept at most this long (a century): Redis refuses a larger expiry, and the
# worker would fail on every message of such an agency (found by the live attack).
MAX_RETENTION_DAYS = 36500
CREDENTIALS = ("meta_page_access_token", "instagram_access_token", "x_access_token",
               "x_access_token_secret", "escalation_webhook")


class AgenciesFileError(ValueError):
    """The agencies file cannot be used; the message names the agency and field."""


@dataclass(frozen=True)
class Credentials:
    """The tokens Beacon sends with on one agency's accounts. App-wide secrets (the Meta
    app secret, X's consumer keys) are the deployment's, from the environment."""

    meta_page_access_token: str = ""
    instagram_access_token: str = ""
    # The Instagram account answered with Instagram Login (its own token and host).
    instagram_account_id: str = ""
    x_access_token: str = ""
    x_access_token_secret: str = ""
    # Where an unclaimed emergency is escalated (the agency's pager or on-call chat).
    escalation_webhook: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Credentials:
        """A single-agency deployment's: the environment's."""
        return cls(meta_page_access_token=settings.meta_page_access_token,
                   instagram_access_token=settings.instagram_access_token,
                   instagram_account_id=settings.instagram_account_id,
                   x_access_token=settings.x_access_token,
                   x_access_token_secret=settings.x_access_token_secret,
                   escalation_webhook=settings.escalation_webhook)


@dataclass(frozen=True)
class Agency:
    id: str
    department: Department
    keys: keys.AgencyKeys
    retention_seconds: int
    credentials: Credentials
    # (channel, account) pairs this agency owns; empty in a single-agency deployment,
    # whose one agency owns every account.
    accounts: Tuple[Tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.department.department.short_name

    @property
    def console_log(self) -> str:
        """The audit log of the agency's console (sign-ins, staff changes, bulk resolves):
        "console" as always for a single agency."""
        return f"{CONSOLE}:{self.id}:log" if self.id else CONSOLE

    def shows_limit(self, channel: str, account: str) -> bool:
        """Whether a platform's sending limit concerns this agency: one of its accounts (the
        limit names the sending API, "meta" for Messenger and Instagram, and the account),
        an app-wide limit ("app"), or any at all for a single agency."""
        return not self.id or account == "app" or any(a == account for _, a in self.accounts)


@dataclass(frozen=True)
class Deployment:
    agencies: Tuple[Agency, ...]
    _by_account: Dict[Tuple[str, str], Agency] = field(default_factory=dict)

    @property
    def single(self) -> bool:
        return len(self.agencies) == 1 and self.agencies[0].id == ""

    def get(self, agency_id: str) -> Agency | None:
        return next((a for a in self.agencies if a.id == agency_id), None)

    def for_account(self, channel: str, account: str) -> Agency | None:
        """The agency that owns the department's account a message was sent to; None when
        no agency does (the message is not answered)."""
        if self.single:
            return self.agencies[0]
        if channel == CONSOLE:
            return self.get(account)
        return self._by_account.get((channel, account))

    def for_conversation(self, conversation_id: str) -> Agency | None:
        return self.for_account(*account_of(conversation_id))

    def answering(self, conversation_id: str) -> Agency:
        """The agency whose words answer a conversation. Intake answers only accounts an
        agency owns, so every stored conversation has one; anything else falls to the
        first (the gateway and the action server agree on it)."""
        return self.for_conversation(conversation_id) or self.agencies[0]

    def keys_for(self, conversation_id: str) -> keys.AgencyKeys:
        """The agency keys a conversation's queue entry, work and events live under. A
        conversation of no agency (a hand-made id) is filed under the single agency's
        names, where no console of a several-agency deployment looks."""
        agency = self.for_conversation(conversation_id)
        return agency.keys if agency is not None else keys.SINGLE

    def instagram_login_accounts(self) -> frozenset[str]:
        """Instagram accounts answered with Instagram Login (their own token and route)."""
        return frozenset(a.credentials.instagram_account_id for a in self.agencies
                         if a.credentials.instagram_account_id)

    def retention_for(self, conversation_id: str, default: int) -> int:
        agency = self.for_conversation(conversation_id)
        return agency.retention_seconds if agency is not None else default

    def webchat_account(self, key: str | None) -> str | None:
        """The account of a web chat opened with ``?agency=key``: "web" in a single-agency
        deployment (whatever the key), the key itself if an agency owns it, else None."""
        if self.single:
            return WEB_ACCOUNT
        if key and (WEBCHAT, key) in self._by_account:
            return key
        return None


# -- the agencies file ------------------------------------------------------------------------

class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid


_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}")


class _AgencyEntry(_Strict):
    # Strict types: YAML's 1.9 or true is no number of days, and an unquoted 0x1F or 0123
    # is not the account id it looks like (quote ids: "2244994945").
    department: StrictStr
    retention_days: StrictInt | None = None
    accounts: Dict[str, List[StrictStr]]
    credentials: Dict[str, StrictStr] = {}

    @validator("accounts")
    def _known_channels(cls, value: Dict[str, List[str]]) -> Dict[str, List[str]]:
        for channel, ids in value.items():
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
            for account in ids:
                if not _ACCOUNT.fullmatch(str(account)):
                    raise ValueError(f"{channel}: account id {account!r} must be 1-64 "
                                     "letters, digits, - or _")
        if not any(value.values()):
            raise ValueError("lists no account")
        return value

    @validator("credentials")
    def _known_credentials(cls, value: Dict[str, str]) -> Dict[str, str]:
        for name in value:
            if name not in CREDENTIALS:
                raise ValueError(f"unknown credential {name!r} (one of {', '.join(CREDENTIALS)})")
        return value

    @validator("retention_days")
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_RETENTION_DAYS:
            raise ValueError(f"must be at least 1 and at most {MAX_RETENTION_DAYS}")
        return value


class _AgenciesFile(_Strict):
    agencies: Dict[str, _AgencyEntry]

    @validator("agencies")
    def _ids(cls, value: Dict[str, _AgencyEntry]) -> Dict[str, _AgencyEntry]:
        if not value:
            raise ValueError("lists no agency")
        if len(value) > MAX_AGENCIES:
            raise ValueError(f"lists {len(value)} agencies; at most {MAX_AGENCIES}")
        for agency_id in value:
            if not AGENCY_ID.fullmatch(agency_id):
                raise ValueError(f"agency id {agency_id!r}: lowercase letters, digits and "
                                 "dashes, at most 32")
        return value


def _credentials(entry: _AgencyEntry, env: Mapping[str, str], agency_id: str) -> Credentials:
    values = {}
    for name, variable in entry.credentials.items():
        if not env.get(variable):
            raise AgenciesFileError(f"agency {agency_id}: credentials.{name} names "
                                    f"{variable}, which is not set")
        values[name] = env[variable]
    if values.get("escalation_webhook", "https://").split("://")[0] not in ("http", "https"):
        raise AgenciesFileError(f"agency {agency_id}: credentials.escalation_webhook: "
                                f"{entry.credentials['escalation_webhook']} is not an "
                                "http(s):// URL")
    instagram_login = entry.accounts.get("instagram") or []
    if values.get("instagram_access_token") and len(instagram_login) != 1:
        raise AgenciesFileError(f"agency {agency_id}: an Instagram Login token answers one "
                                "Instagram account; list exactly one under accounts.instagram")
    return Credentials(**values, instagram_account_id=str(instagram_login[0])
                       if values.get("instagram_access_token") else "")


def load_agencies(path: Path, settings: Settings,
                  env: Mapping[str, str] | None = None) -> Deployment:
    env = os.environ if env is None else env
    try:
        raw = yaml_files.load(path)
        parsed = _AgenciesFile.parse_obj(raw if isinstance(raw, dict) else {})
    except yaml_files.YamlFileError as exc:
        raise AgenciesFileError(f"{path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "__root__")
        raise AgenciesFileError(f"{path}: {where}: {first['msg']}") from None
    agencies: List[Agency] = []
    owners: Dict[Tuple[str, str], str] = {}
    for agency_id, entry in parsed.agencies.items():
        try:
            department = load_department(path.parent / entry.department)
        except DepartmentFileError as exc:
            raise AgenciesFileError(f"agency {agency_id}: {exc}") from None
        accounts = tuple((channel, str(a)) for channel, ids in entry.accounts.items()
                         for a in ids)
        for pair in accounts:
            if pair in owners:
                raise AgenciesFileError(f"{pair[0]} account {pair[1]} is listed by both "
                                        f"{owners[pair]} and {agency_id}")
            owners[pair] = agency_id
        agencies.append(Agency(
            id=agency_id, department=department, keys=keys.AgencyKeys(agency_id),
            retention_seconds=(entry.retention_days * 86400 if entry.retention_days
                               else settings.retention_seconds),
            credentials=_credentials(entry, env, agency_id), accounts=accounts))
    by_id = {a.id: a for a in agencies}
    by_account = {pair: by_id[owner] for pair, owner in owners.items()}
    _warn_about_tokens(agencies, env)
    return Deployment(tuple(agencies), by_account)


# The token each channel's replies are sent with (an account without one: the outbox).
_SENDS_WITH = {"messenger": ("meta_page_access_token",),
               "instagram": ("meta_page_access_token", "instagram_access_token"),
               "x": ("x_access_token",)}


def _warn_about_tokens(agencies: List[Agency], env: Mapping[str, str]) -> None:
    """Say at start-up what would otherwise be found out from a silent page: the
    environment's single-agency tokens are not used with an agencies file, and an account
    with no token of its agency's sends every reply, the 911 notice too, to the outbox."""
    unused = [n for n in ("META_PAGE_ACCESS_TOKEN", "INSTAGRAM_ACCESS_TOKEN", "X_ACCESS_TOKEN",
                          "BEACON_ESCALATION_WEBHOOK") if env.get(n)]
    if unused:
        logger.warning("BEACON_AGENCIES_FILE is set: %s not used (each agency's credentials "
                       "are)", ", ".join(unused))
    for agency in agencies:
        for channel, account in agency.accounts:
            if not any(getattr(agency.credentials, c) for c in _SENDS_WITH.get(channel, ())) \
                    and channel in _SENDS_WITH:
                logger.warning("agency %s: %s account %s has no token: its replies, the 911 "
                               "notice included, go to the outbox", agency.id, channel, account)


# Stores built without a deployment (a single agency's tools and tests) file everything
# under the single agency's keys: the one place that says so.

def keys_of(deployment: Deployment | None, conversation_id: str) -> keys.AgencyKeys:
    """The agency keys a conversation's records live under."""
    return deployment.keys_for(conversation_id) if deployment is not None else keys.SINGLE


def retention_of(deployment: Deployment | None, conversation_id: str, default: int) -> int:
    """How long a conversation's records are kept (its agency's retention)."""
    return (deployment.retention_for(conversation_id, default) if deployment is not None
            else default)


def every_keys(deployment: Deployment | None) -> List[keys.AgencyKeys]:
    """Every agency's keys, for the sweeps that walk each agency's lists."""
    return ([a.keys for a in deployment.agencies] if deployment is not None
            else [keys.SINGLE])


def single(settings: Settings) -> Deployment:
    """One department file, one agency that owns every account: today's deployment."""
    department = load_department(settings.department_file)
    return Deployment((Agency("", department, keys.SINGLE, settings.retention_seconds,
                              Credentials.from_settings(settings)),))


def load_deployment(settings: Settings) -> Deployment:
    if settings.agencies_file is None:
        return single(settings)
    return load_agencies(settings.agencies_file, settings)
