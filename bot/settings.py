"""Settings: one frozen object built from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Tuple

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable has a value Beacon cannot use; the message names it."""


def _number(env: Mapping[str, str], name: str, default, minimum, cast, what: str,
            maximum=float("inf")):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected {what}") from None
    # `not >=` also refuses NaN; infinity is no setting either.
    if not value >= minimum or value == float("inf"):
        raise SettingsError(f"{name}={raw!r}: must be a finite number of at least {minimum}")
    if value > maximum:
        raise SettingsError(f"{name}={raw!r}: must be at most {maximum:g}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    return _number(env, name, default, minimum, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0,
           maximum: float = float("inf")) -> float:
    return _number(env, name, default, minimum, float, "a number", maximum)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name}={value!r}: expected an http(s):// URL")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or choices[0]).lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _digits(env: Mapping[str, str], name: str) -> str:
    """A Meta id (digits), or '' when unset: it goes into send URLs and comparisons."""
    value = (env.get(name) or "").strip()
    if value and not (value.isascii() and value.isdigit() and len(value) <= 32):
        raise SettingsError(f"{name}={value!r}: expected a Meta id (digits)")
    return value


def _instagram_account(env: Mapping[str, str]) -> str:
    """INSTAGRAM_ACCOUNT_ID, required beside INSTAGRAM_ACCESS_TOKEN: it is the account the
    token answers for, and it tells that account's conversations from those of an Instagram
    account linked to the Page (which the Page's token answers)."""
    account = _digits(env, "INSTAGRAM_ACCOUNT_ID")
    if env.get("INSTAGRAM_ACCESS_TOKEN") and not account:
        raise SettingsError("INSTAGRAM_ACCESS_TOKEN is set: INSTAGRAM_ACCOUNT_ID (the "
                            "Instagram professional account id) is needed too")
    return account


def _x_dm_api(env: Mapping[str, str]) -> str:
    """X_DM_API, checked against the keys it needs: OAuth 1.0a takes the app's consumer key
    and secret beside the user's token and secret, and v1.1 takes OAuth 1.0a only."""
    api = _choice(env, "X_DM_API", ("v2", "v1.1"))
    oauth1 = bool(env.get("X_ACCESS_TOKEN_SECRET"))
    if oauth1 and not all(env.get(name) for name in
                          ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN")):
        raise SettingsError("X_ACCESS_TOKEN_SECRET is set (OAuth 1.0a): X_CONSUMER_KEY, "
                            "X_CONSUMER_SECRET and X_ACCESS_TOKEN are needed too")
    if api == "v1.1" and env.get("X_ACCESS_TOKEN") and not oauth1:
        raise SettingsError("X_DM_API='v1.1' takes OAuth 1.0a only: set X_CONSUMER_KEY and "
                            "X_ACCESS_TOKEN_SECRET beside X_ACCESS_TOKEN")
    return api


@dataclass(frozen=True)
class Settings:
    redis_url: str
    department_file: Path
    # Several agencies in one deployment (bot.agencies); None: one agency, department_file.
    agencies_file: Path | None
    models_dir: Path
    # Seconds a staff member stays "on duty" after their last heartbeat.
    duty_ttl: int
    # How long conversations and transcripts are kept (the records schedule), in days.
    retention_days: int
    # Seconds to wait for Redis before treating it as down.
    redis_timeout: float
    # Connections one process may hold to Redis (a command waits up to redis_timeout for a
    # free one): 400 concurrent posts used to open 400 connections.
    redis_max_connections: int = 64
    # -- gateway and console ---------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout: float = 30.0
    meta_app_secret: str = ""
    meta_verify_token: str = ""
    meta_page_access_token: str = ""
    meta_graph_url: str = "https://graph.facebook.com"
    # Beacon's own Meta app id (META_APP_ID): under Conversation Routing every subscribed app
    # hears of every handover, and this says which new owner is Beacon.
    meta_app_id: str = ""
    # -- Instagram with Instagram Login (an account with no Facebook Page) ------------------
    # The professional account's id (the entry id of its webhooks), its Instagram User access
    # token and the host that takes it; the Instagram app's id (for handovers) and secret
    # (it signs that app's webhooks; META_APP_SECRET when unset). Instagram accounts linked
    # to the Page keep using the Page's token on META_GRAPH_URL.
    instagram_account_id: str = ""
    instagram_access_token: str = ""
    instagram_graph_url: str = "https://graph.instagram.com"
    instagram_app_id: str = ""
    instagram_app_secret: str = ""
    x_consumer_secret: str = ""
    x_access_token: str = ""
    x_api_url: str = "https://api.x.com"
    # The endpoint X replies go out through (X_DM_API). "v2", the default and what Beacon has
    # always used: POST /2/dm_conversations/with/:participant_id/messages, the one X documents
    # today (https://docs.x.com/x-api/direct-messages/manage/introduction), for an OAuth 2.0
    # user token or OAuth 1.0a keys, whichever webhook product brings the messages in. "v1.1":
    # POST direct_messages/events/new, only for an older Account Activity app that has no v2
    # access (v2 takes an app inside a Project); X's docs now name it only as what v2 replaces,
    # and it takes OAuth 1.0a alone.
    x_dm_api: str = "v2"
    # OAuth 1.0a user context: with X_ACCESS_TOKEN_SECRET set, X_ACCESS_TOKEN is an OAuth 1.0a
    # access token, and every send is signed with it, its secret and the app's consumer key and
    # secret. Such tokens do not expire; an OAuth 2.0 user token lasts two hours unless it was
    # issued with offline.access and is refreshed (which Beacon does not do).
    x_consumer_key: str = ""
    x_access_token_secret: str = ""
    # A held conversation whose citizen writes something urgent gets the 911 notice anyway
    # when no staff reply follows within this many seconds.
    handoff_notice_after: int = 60
    # After the 911 notice, a conversation stays urgent this long: the full notice is not
    # repeated for every message of a burst, and follow-ups get no contradicting answer.
    notice_window: int = 600
    # A worker's hold on a conversation; refreshed every third of it while a message is in
    # hand, so a slow Rasa or platform never lets a second worker start the same message.
    # Short, because it is also how long a conversation waits after its gateway is killed
    # (SIGKILL, OOM) before another takes it over.
    lock_ttl_s: int = 15
    # Beacon says it is an automated assistant again after this many days without a reply
    # from it in a conversation (and in the first reply ever, and after staff resolve one).
    disclosure_silence_days: int = 30
    # One attempt at a platform's send API (three attempts with backoff in all).
    send_timeout_s: int = 10
    # An unclaimed emergency or crisis older than this raises the escalation alert.
    escalate_after: int = 120
    escalation_webhook: str = ""
    # Largest webhook body accepted (413 above it) and longest message text triaged.
    max_body_bytes: int = 256 * 1024
    max_text_chars: int = 4000
    # Concurrent conversations one gateway process works on.
    workers: int = 8
    # Seconds a platform message id is remembered, so a retry is not answered twice.
    dedupe_ttl: int = 2 * 86400
    # Console session cookies are Secure unless this is off (plain-HTTP development).
    cookie_secure: bool = True
    session_ttl: int = 12 * 3600
    # Per-conversation flood limit: beyond this many messages in the window, a sender's
    # messages skip Rasa and go straight to the human queue (urgent ones still get the notice).
    rate_limit: int = 20
    rate_window: int = 60
    # New web-chat conversations one client address may start per hour (then 429; a message
    # the safety net flags is never refused).
    webchat_new_per_hour: int = 20
    # A refused request (429: over the web-chat or login limit) is answered after this many
    # seconds, at most this many at a time per process (bot/tarpit.py says why).
    refusal_delay_s: float = 2.0
    refusal_max_held: int = 1000
    # Reverse proxies whose X-Forwarded-For names the client (comma-separated addresses).
    # Nobody else's header is believed: a client cannot pick its own address.
    trusted_proxies: Tuple[str, ...] = ()
    # /metrics answers loopback clients, or others that send this bearer token.
    metrics_token: str = ""
    # "info" (no message text or sender ids in the logs) or "debug" (development only).
    log_level: str = "info"
    log_format: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        department = Path(env.get("BEACON_DEPARTMENT_FILE") or PROJECT_ROOT / "data/department.yml")
        redis_url = env.get("BEACON_REDIS_URL") or "redis://127.0.0.1:6380/0"
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"BEACON_REDIS_URL={redis_url!r}: expected redis://host:port/db")
        return cls(
            redis_url=redis_url,
            department_file=department,
            agencies_file=Path(env["BEACON_AGENCIES_FILE"]) if env.get("BEACON_AGENCIES_FILE")
            else None,
            models_dir=Path(env.get("BEACON_MODELS_DIR") or PROJECT_ROOT / "models"),
            duty_ttl=_int(env, "BEACON_DUTY_TTL", 120),
            # At most a century: Redis refuses a larger expiry.
            retention_days=_number(env, "BEACON_RETENTION_DAYS", 365, 1, int, "a whole number",
                                   36500),
            redis_timeout=float(_int(env, "BEACON_REDIS_TIMEOUT_MS", 2000)) / 1000,
            redis_max_connections=_int(env, "BEACON_REDIS_MAX_CONNECTIONS", 64, minimum=4),
            http_host=env.get("BEACON_HTTP_HOST") or "127.0.0.1",
            http_port=_int(env, "BEACON_HTTP_PORT", 8080),
            rasa_url=_url(env, "BEACON_RASA_URL", "http://127.0.0.1:5005"),
            rasa_timeout=float(_int(env, "BEACON_RASA_TIMEOUT_S", 30)),
            meta_app_secret=env.get("META_APP_SECRET", ""),
            meta_verify_token=env.get("META_VERIFY_TOKEN", ""),
            meta_page_access_token=env.get("META_PAGE_ACCESS_TOKEN", ""),
            meta_graph_url=_url(env, "META_GRAPH_URL", "https://graph.facebook.com"),
            meta_app_id=_digits(env, "META_APP_ID"),
            instagram_account_id=_instagram_account(env),
            instagram_access_token=env.get("INSTAGRAM_ACCESS_TOKEN", ""),
            instagram_graph_url=_url(env, "INSTAGRAM_GRAPH_URL", "https://graph.instagram.com"),
            instagram_app_id=_digits(env, "INSTAGRAM_APP_ID"),
            instagram_app_secret=env.get("INSTAGRAM_APP_SECRET", ""),
            x_consumer_secret=env.get("X_CONSUMER_SECRET", ""),
            x_access_token=env.get("X_ACCESS_TOKEN", ""),
            x_api_url=_url(env, "X_API_URL", "https://api.x.com"),
            x_dm_api=_x_dm_api(env),
            x_consumer_key=env.get("X_CONSUMER_KEY", ""),
            x_access_token_secret=env.get("X_ACCESS_TOKEN_SECRET", ""),
            handoff_notice_after=_int(env, "BEACON_HANDOFF_NOTICE_S", 60),
            notice_window=_int(env, "BEACON_NOTICE_WINDOW_S", 600),
            lock_ttl_s=_int(env, "BEACON_LOCK_TTL_S", 15, minimum=3),
            disclosure_silence_days=_int(env, "BEACON_DISCLOSURE_SILENCE_DAYS", 30),
            send_timeout_s=_int(env, "BEACON_SEND_TIMEOUT_S", 10),
            escalate_after=_int(env, "BEACON_ESCALATE_AFTER_S", 120),
            escalation_webhook=env.get("BEACON_ESCALATION_WEBHOOK", ""),
            max_body_bytes=_int(env, "BEACON_MAX_BODY_BYTES", 256 * 1024),
            max_text_chars=_int(env, "BEACON_MAX_TEXT_CHARS", 4000),
            workers=_int(env, "BEACON_WORKERS", 8),
            dedupe_ttl=_int(env, "BEACON_DEDUPE_TTL_S", 2 * 86400),
            cookie_secure=env.get("BEACON_COOKIE_SECURE", "1").lower() not in ("0", "false"),
            session_ttl=_int(env, "BEACON_SESSION_TTL_S", 12 * 3600),
            rate_limit=_int(env, "BEACON_RATE_LIMIT", 20),
            rate_window=_int(env, "BEACON_RATE_WINDOW_S", 60),
            webchat_new_per_hour=_int(env, "BEACON_WEBCHAT_NEW_PER_HOUR", 20),
            refusal_delay_s=_float(env, "BEACON_REFUSAL_DELAY_S", 2.0, minimum=0.0,
                                   maximum=60.0),
            refusal_max_held=_int(env, "BEACON_REFUSAL_MAX_HELD", 1000, minimum=0),
            trusted_proxies=tuple(p.strip() for p in env.get("BEACON_TRUSTED_PROXIES", "")
                                  .split(",") if p.strip()),
            metrics_token=env.get("BEACON_METRICS_TOKEN", ""),
            log_level=_choice(env, "BEACON_LOG_LEVEL", ("info", "debug")),
            log_format=_choice(env, "BEACON_LOG_FORMAT", ("json", "text")),
        )

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86400
