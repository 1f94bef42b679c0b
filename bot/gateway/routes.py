"""The front door: platform webhooks, the web chat and the health check."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Callable

from aiohttp import web
from redis.exceptions import RedisError

from bot import clients, keys, metrics
from bot.agencies import every_keys
from bot.appkeys import BACKGROUND, SERVICES
from bot.channels import Parsed, PayloadError, instagram, meta, x
from bot.cpu_lane import LANE_OVER_LIMIT
from bot.gateway.intake import accept, check, thread_control
from bot.messages import INSTAGRAM, WEBCHAT, Inbound
from bot.safety_result import SafetyResult

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()
STATIC = Path(__file__).parent / "static"
# fullmatch, never `$`: `$` also matches before a trailing newline.
_SESSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
# The chat page sends a UUID; anything else gets one of ours.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Beyond any real chat's history; larger offsets are a client error, not a Redis one.
_MAX_AFTER = 1_000_000


def _json_body(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, or a 5,000-digit int
        raise web.HTTPBadRequest(reason=f"body is not JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise web.HTTPBadRequest(reason="body is nested too deeply") from None


async def _accept_all(request: web.Request, parsed: Parsed, suspect: str | None = None,
                      safety: SafetyResult | None = None) -> web.Response:
    services = request.app[SERVICES]
    # Only accounts an agency of this deployment owns are answered (every account, with one
    # agency): a page added to the Meta app but not to the agencies file gets nothing.
    owned = services.deployment.for_account
    messages = tuple(m for m in parsed.messages if owned(m.channel, m.account))
    events = tuple(e for e in parsed.events if owned(e.channel, e.account))
    if len(messages) < len(parsed.messages) or len(events) < len(parsed.events):
        logger.warning("items for accounts no agency owns were ignored: %d",
                       len(parsed.messages) + len(parsed.events) - len(messages) - len(events))
        parsed = Parsed(messages, parsed.ignored + len(parsed.messages) - len(messages)
                        + len(parsed.events) - len(events), events)
    try:
        # Handovers first: a message in the same delivery belongs to the thread's new owner.
        for event in parsed.events:
            await thread_control(services, event)
        for message in parsed.messages:
            await accept(services, message, request.app[BACKGROUND], suspect=suspect,
                         safety=safety)
    except (RedisError, OSError) as exc:
        # Not acknowledged: the platform retries, and dedupe makes the retry safe.
        logger.error("could not accept webhook: %s", exc)
        raise web.HTTPServiceUnavailable(reason="storage unavailable, retry later") from None
    return web.json_response({"received": len(parsed.messages), "ignored": parsed.ignored})


async def _signed_webhook(request: web.Request, header: str,
                          signature_valid: Callable[[str, bytes, str | None], bool],
                          secret: str, parse: Callable[[object], Parsed],
                          ours: Callable[[str, str], bool] | None = None) -> web.Response:
    """Check the platform's signature on the raw body (403), parse (400), accept (200).
    ``ours(channel, account)``: the accounts this route answers for; items for any other
    are ignored (counted in ``ignored``)."""
    raw = await request.read()
    if not signature_valid(secret, raw, request.headers.get(header)):
        raise web.HTTPForbidden(reason=f"bad or missing {header}")
    try:
        parsed = parse(_json_body(raw))
    except PayloadError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    if ours is not None:
        kept = tuple(m for m in parsed.messages if ours(m.channel, m.account))
        events = tuple(e for e in parsed.events if ours(e.channel, e.account))
        parsed = Parsed(kept, parsed.ignored + len(parsed.messages) - len(kept)
                        + len(parsed.events) - len(events), events)
    return await _accept_all(request, parsed)


# -- Meta (Messenger, Instagram) --------------------------------------------------------------

@routes.get("/webhooks/meta", name="meta_verify")
async def meta_verify(request: web.Request) -> web.Response:
    settings = request.app[SERVICES].settings
    challenge = meta.verify_challenge(request.query, settings.meta_verify_token)
    if not settings.meta_verify_token or challenge is None:
        raise web.HTTPForbidden(reason="verification failed")
    return web.Response(text=challenge)


@routes.post("/webhooks/meta", name="meta_webhook")
async def meta_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    settings = services.settings
    login_accounts = services.deployment.instagram_login_accounts()

    def ours(channel: str, account: str) -> bool:
        # An Instagram Login account is answered on its own route, with its own token: a
        # Page delivery naming it must not make Beacon answer it (found by the live attack).
        return not (channel == INSTAGRAM and account in login_accounts)

    return await _signed_webhook(request, "X-Hub-Signature-256", meta.signature_valid,
                                 settings.meta_app_secret, meta.parse, ours)


# -- Instagram with Instagram Login (no Facebook Page) -------------------------------------------

@routes.get("/webhooks/instagram", name="instagram_verify")
async def instagram_verify(request: web.Request) -> web.Response:
    return await meta_verify(request)  # the same hub.challenge, with META_VERIFY_TOKEN


@routes.post("/webhooks/instagram", name="instagram_webhook")
async def instagram_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    settings = services.settings
    secret = settings.instagram_app_secret or settings.meta_app_secret
    login_accounts = services.deployment.instagram_login_accounts()

    def ours(channel: str, account: str) -> bool:
        # Only Instagram Login accounts: anything else signed with this app's secret
        # would be answered with the Page's token (found by the live attack).
        return account in login_accounts

    return await _signed_webhook(request, "X-Hub-Signature-256", instagram.signature_valid,
                                 secret, instagram.parse, ours)


# -- X ------------------------------------------------------------------------------------------

@routes.get("/webhooks/x", name="x_crc")
async def x_crc(request: web.Request) -> web.Response:
    settings = request.app[SERVICES].settings
    token = request.query.get("crc_token")
    if not settings.x_consumer_secret or not token:
        raise web.HTTPBadRequest(reason="crc_token missing or X not configured")
    try:
        return web.json_response(x.crc_response(settings.x_consumer_secret, token))
    except PayloadError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None


@routes.post("/webhooks/x", name="x_webhook")
async def x_webhook(request: web.Request) -> web.Response:
    secret = request.app[SERVICES].settings.x_consumer_secret
    return await _signed_webhook(request, "x-twitter-webhooks-signature", x.signature_valid,
                                 secret, x.parse)


# -- Web chat -----------------------------------------------------------------------------------

@routes.get("/chat", name="chat_page")
async def chat_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "chat.html")


@routes.post("/chat/api/messages", name="chat_send")
async def chat_send(request: web.Request) -> web.Response:
    # JSON only: a cross-site form cannot send it without a CORS preflight, which fails.
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="send application/json")
    body = _json_body(await request.read())
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="expected a JSON object")
    session, text = body.get("session"), body.get("text")
    if not isinstance(session, str) or not _SESSION.fullmatch(session):
        raise web.HTTPBadRequest(reason="session must be 16-64 letters, digits, - or _")
    if not isinstance(text, str) or not text.strip():
        raise web.HTTPBadRequest(reason="text must be a non-empty string")
    limit = request.app[SERVICES].settings.max_text_chars
    if len(text) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(text))
    message_id = body.get("id")
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        message_id = uuid.uuid4().hex
    # Several agencies: the chat page names its agency (/chat?agency=<key>).
    agency = body.get("agency")
    account = request.app[SERVICES].deployment.webchat_account(
        agency if isinstance(agency, str) else None)
    if account is None:
        raise web.HTTPNotFound(reason="no web chat for that agency")
    message = Inbound(channel=WEBCHAT, account=account, sender=session,
                      message_id=f"{session}:{message_id[:64]}", text=text,
                      timestamp=time.time())
    over_limit = await _limit_new_conversations(request, message)
    response = await _accept_all(
        request, Parsed(messages=(message,), ignored=0),
        suspect="urgent words from an address over its new-conversation limit"
        if over_limit else None, safety=over_limit)
    response.set_status(202)
    return response


async def _limit_new_conversations(request: web.Request,
                                   message: Inbound) -> SafetyResult | None:
    """Anyone can open a web chat, so a flood of fresh session ids could fill the queue and
    Redis: one address may start BEACON_WEBCHAT_NEW_PER_HOUR conversations an hour (429
    after). A message the safety net flags is never refused: it gets the notice, but such a
    conversation waits among the others rather than at the top and pages nobody (otherwise
    one address could bury a real emergency under fake ones). Returns the safety net's
    result on such a message (None otherwise), so the check is not run twice."""
    services = request.app[SERVICES]
    settings = services.settings
    try:
        # A session belongs to the chat (the agency) it started in: reused with another
        # agency's key it would read both agencies' replies and start conversations past
        # the per-address limit (found by the live attack). "1": a session made before.
        new = await services.redis.set(keys.webchat_known(message.sender), message.account,
                                       nx=True, ex=settings.retention_seconds)
        if not new:
            owner = await services.redis.get(keys.webchat_known(message.sender))
            if owner not in (message.account, "1", None):
                raise web.HTTPConflict(reason="this chat session belongs to another "
                                              "agency's chat; start a new one")
            return None
        counter = keys.webchat_new(clients.of_request(request, settings.trusted_proxies))
        count = await services.redis.incr(counter)
        await services.redis.expire(counter, 3600, nx=True)
        if count <= settings.webchat_new_per_hour:
            return None
        # Behind every other web-chat citizen's check: the refusal can wait, they cannot.
        safety = await check(services, message, lane=LANE_OVER_LIMIT)
        if safety.flag is not None:
            return safety
        await services.redis.delete(keys.webchat_known(message.sender))
        retry = max(1, await services.redis.ttl(counter))
    except (RedisError, OSError):
        raise web.HTTPServiceUnavailable(reason="storage unavailable, retry later") from None
    await services.tarpit.hold(retry)
    raise web.HTTPTooManyRequests(reason="too many new conversations from this address; "
                                  "if this is an emergency, call 911",
                                  headers={"Retry-After": str(retry)})


@routes.get("/chat/api/messages", name="chat_poll")
async def chat_poll(request: web.Request) -> web.Response:
    session = request.query.get("session", "")
    if not _SESSION.fullmatch(session):
        raise web.HTTPBadRequest(reason="session must be 16-64 letters, digits, - or _")
    try:
        after = max(0, int(request.query.get("after", "0")))
    except ValueError:
        raise web.HTTPBadRequest(reason="after must be a whole number") from None
    if after > _MAX_AFTER:
        raise web.HTTPBadRequest(reason=f"after must be at most {_MAX_AFTER}")
    redis = request.app[SERVICES].redis
    try:
        raw = await redis.lrange(keys.webchat(session), after, after + 99)
    except (RedisError, OSError):
        raise web.HTTPServiceUnavailable(reason="storage unavailable, retry later") from None
    return web.json_response({"messages": [json.loads(m) for m in raw],
                              "next": after + len(raw)})


@routes.get("/chat/api/session", name="chat_session")
async def chat_session(request: web.Request) -> web.Response:
    """A fresh, unguessable session id for a new chat window."""
    return web.json_response({"session": secrets.token_urlsafe(24)})


# -- Operations -----------------------------------------------------------------------------------

_LOOPBACK = {"127.0.0.1", "::1"}


@routes.get("/metrics", name="metrics")
async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus metrics: with BEACON_METRICS_TOKEN set, for its bearer only; otherwise only
    for direct loopback clients (a request relayed by a proxy is refused, since the proxy's
    own address would be loopback for everyone)."""
    services = request.app[SERVICES]
    token = services.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise web.HTTPUnauthorized(reason="metrics need the bearer token")
    elif request.remote not in _LOOPBACK or request.remote in services.settings.trusted_proxies \
            or "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        raise web.HTTPForbidden(reason="metrics are served to localhost only")
    try:
        await metrics.refresh_queue_gauges(services.redis, every_keys(services.deployment))
    except (RedisError, OSError) as exc:
        logger.error("metrics: queue gauges not refreshed: %s", exc)
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


# -- Health ---------------------------------------------------------------------------------------

@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        redis_ok = bool(await services.redis.ping())
    except (RedisError, OSError):
        redis_ok = False
    rasa_ok = await services.rasa.healthy()
    body = {
        "status": "ok" if redis_ok and rasa_ok else "degraded",
        "dependencies": {"redis": "up" if redis_ok else "down",
                         "rasa": "up" if rasa_ok else "down"},
        # The intake tier's model, or "missing" (the rules alone: a gateway started before
        # `python -m bot train`; Rasa then checks every message again). Not a 503: the
        # rules still run and Rasa still answers (a live attack found the log line alone
        # easy to miss).
        "urgency_model": services.net.model_name or "missing",
    }
    return web.json_response(body, status=200 if redis_ok and rasa_ok else 503)
