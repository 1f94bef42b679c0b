"""The staff console: a sub-app with its own session, CSRF and error handling.

Every route but the login page needs a session; every state-changing request needs the
session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import html
import io
import json
import logging
import re
import secrets
import time
from pathlib import Path
from typing import Dict, List

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from bot import clients
from bot.agencies import CONSOLE, Agency
from bot.appkeys import SERVICES, STOP
from bot.channels import meta as meta_channel
from bot.console.auth import DEVICE_TTL_S, Session, StaffStore, Throttled
from bot.console.roles import check_role
from bot.logs import conversation_ref
from bot.outbound import send_out
from bot.queue import QueueConflict
from bot.services import Services
from bot.text import same_secret

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "beacon_session"
LOGIN_COOKIE = "beacon_login_csrf"
DEVICE_COOKIE = "beacon_device"
PARENT = web.AppKey("parent", web.Application)
OPEN_ROUTES = {"login", "login_form"}
MAX_REPLY = 2000
# How long an event stream waits for an event before it checks its session and whether the
# gateway is stopping.
SSE_WAIT_S = 1.0

routes = web.RouteTableDef()


# A conversation id as Beacon makes them: "<channel>:<account>:<sender>" from checked parts.
_CONVERSATION_ID = re.compile(r"[a-z]{1,16}:[A-Za-z0-9_.-]{1,64}:[A-Za-z0-9_.-]{1,64}")


def conversation_of(request: web.Request) -> str:
    """The conversation named in the path; 400 for anything Beacon never makes (CR/LF in
    an export's file name, made-up audit keys), 404 for another agency's."""
    conversation = request.match_info["id"]
    if not _CONVERSATION_ID.fullmatch(conversation):
        raise web.HTTPBadRequest(reason="not a conversation id")
    if not ours(request, conversation):
        raise web.HTTPNotFound(reason="no such conversation")
    return conversation


def ours(request: web.Request, conversation: str) -> bool:
    """Whether a citizen's conversation belongs to the signed-in staff member's agency (an
    agency's console log is no citizen's conversation: a staff member could export it
    through the conversation routes; found by the live attack)."""
    if conversation.startswith(CONSOLE + ":"):
        return False
    return services_of(request).deployment.for_conversation(conversation) is agency_of(request)


def agency_of(request: web.Request) -> Agency:
    """The signed-in staff member's agency: everything the console shows is its own."""
    return request["agency"]


def services_of(request: web.Request) -> Services:
    return request.app[PARENT][SERVICES]


def session_of(request: web.Request) -> Session:
    return request["session"]


def staff_store(request: web.Request, agency: Agency | None = None) -> StaffStore:
    """The staff accounts of the request's agency (or ``agency``'s, at sign-in)."""
    services = services_of(request)
    agency = agency or agency_of(request)
    return StaffStore(services.redis, services.settings.session_ttl, agency.keys)


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    route = request.match_info.route.name
    if route in OPEN_ROUTES:
        return await handler(request)
    services = services_of(request)
    session = await StaffStore(services.redis, services.settings.session_ttl).session(
        request.cookies.get(COOKIE))
    # A session of an agency no longer in the deployment is no session.
    agency = services.deployment.get(session.agency) if session is not None else None
    if session is None or agency is None:
        if request.path.startswith("/console/api/"):
            raise web.HTTPUnauthorized(reason="log in first")
        raise web.HTTPFound(request.app.router["login_form"].url_for())
    request["session"] = session
    request["agency"] = agency
    check_role(request, session.role)  # 403 for staff on supervisors' routes
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type == "application/x-www-form-urlencoded":
            sent = (await request.post()).get("csrf")
        if not same_secret(sent, session.csrf):
            raise web.HTTPForbidden(reason="missing or wrong CSRF token")
    return await handler(request)


@web.middleware
async def error_pages(request: web.Request, handler) -> web.StreamResponse:
    """JSON for the console's API, short pages for the rest."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Headers such as Retry-After travel with the error.
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "retry-after"}
        if request.path.startswith("/console/api/"):
            return web.json_response({"error": exc.reason, "status": exc.status},
                                     status=exc.status, headers=headers)
        return web.Response(status=exc.status, content_type="text/html", headers=headers,
                            text=f"<!doctype html><title>{exc.status}</title>"
                                 f"<p>{exc.status}: {html.escape(exc.reason)}</p>")


# -- login --------------------------------------------------------------------------------------

@routes.get("/login", name="login_form")
async def login_form(request: web.Request) -> web.Response:
    # No session yet: the form's CSRF token is also set as a cookie (double submit). An
    # existing token is reused, so a second tab or a reload does not break the first form.
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
        token = secrets.token_urlsafe(24)
    deployment = services_of(request).deployment
    response = aiohttp_jinja2.render_template(
        "login.html", request, {"csrf": token, "error": request.query.get("error"),
                                # Several agencies: each signs in to its own console.
                                "agencies": [] if deployment.single else
                                [{"id": a.id, "name": a.name} for a in deployment.agencies]})
    _set_cookie(request, response, LOGIN_COOKIE, token, 600)
    return response


@routes.post("/login", name="login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    sent, cookie = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
    if not same_secret(sent, cookie or ""):
        raise web.HTTPForbidden(reason="missing or wrong CSRF token")
    name = str(form.get("name", "")).strip().lower()
    deployment = services_of(request).deployment
    agency = (deployment.agencies[0] if deployment.single
              else deployment.get(str(form.get("agency", ""))))
    if agency is None:
        raise web.HTTPFound(request.app.router["login_form"].url_for().with_query(error="1"))
    try:
        address = clients.of_request(request, services_of(request).settings.trusted_proxies)
        session = await staff_store(request, agency).login(
            name, str(form.get("password", "")), address=address,
            device=request.cookies.get(DEVICE_COOKIE, ""))
    except Throttled as exc:
        # Not audited: a refused attempt costs nothing, and logging each one would let a
        # flood of them grow the audit log without bound (failures are bounded by it).
        await services_of(request).tarpit.hold(exc.retry_after)
        raise web.HTTPTooManyRequests(reason=str(exc),
                                      headers={"Retry-After": str(exc.retry_after)}) from None
    if session is None:
        await services_of(request).audit(agency.console_log, name[:32], "login_failed")
        raise web.HTTPFound(request.app.router["login_form"].url_for().with_query(error="1"))
    response = web.HTTPFound(request.app.router["index"].url_for())
    _set_cookie(request, response, COOKIE, session.token,
                services_of(request).settings.session_ttl)
    _set_cookie(request, response, DEVICE_COOKIE, session.device, DEVICE_TTL_S)
    response.del_cookie(LOGIN_COOKIE, path="/console/")
    await services_of(request).audit(agency.console_log, session.staff, "login")
    raise response


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.Response:
    session = session_of(request)
    await staff_store(request).logout(session.token)
    await services_of(request).presence.set_off_duty(session.staff, agency_of(request).keys)
    response = web.HTTPFound(request.app.router["login_form"].url_for())
    response.del_cookie(COOKIE, path="/console/")
    raise response


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
                max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/console/", httponly=True,
                        samesite="Strict", secure=services_of(request).settings.cookie_secure)


# -- pages --------------------------------------------------------------------------------------

@routes.get("/", name="index")
@aiohttp_jinja2.template("console.html")
async def index(request: web.Request) -> Dict:
    session = session_of(request)
    department = agency_of(request).department
    return {"staff": session.staff, "csrf": session.csrf, "role": session.role,
            "department": department.department.short_name,
            # Every language's canned replies; the page offers those of the conversation's.
            "canned": {language: department.canned(language)
                       for language in department.languages}}


# -- API ----------------------------------------------------------------------------------------

def _summary(meta: Dict[str, str], now: float) -> Dict:
    waiting_since = int(meta.get("waiting_since") or 0) / 1000
    last_citizen = float(meta.get("last_citizen_at") or 0)
    window = None
    if meta.get("channel") in ("messenger", "instagram") and last_citizen:
        window = int(meta_channel.STANDARD_WINDOW_S - (now - last_citizen))
    return {
        "id": meta.get("id"),
        # The pseudonym the logs use for this conversation, to find its lines.
        "log_ref": conversation_ref(meta["id"]) if meta.get("id") else None,
        "status": meta.get("status"),
        "outcome": meta.get("outcome"),
        "channel": meta.get("channel"),
        # The language Beacon answers this conversation in; canned replies follow it.
        "language": meta.get("language") or "en",
        "priority": int(meta.get("priority") or 1),
        "preview": meta.get("preview", ""),
        "waiting_seconds": int(now - waiting_since) if waiting_since else None,
        "claimed_by": meta.get("claimed_by") or None,
        "confidence": meta.get("confidence"),
        "intent": meta.get("intent"),
        "reason": meta.get("reason"),
        "urgent_flag": meta.get("urgent_flag") or None,
        "delivery_error": meta.get("delivery_error") or None,
        "escalated": bool(meta.get("escalated_at")),
        "escalation_error": meta.get("escalation_error") or None,
        "notice_sent": bool(meta.get("notice_sent_at")),
        "reply_window_seconds": window,
        "first_response_seconds": (
            (int(meta["first_response_at"]) - int(meta["queued_at"])) / 1000
            if meta.get("first_response_at") and meta.get("queued_at") else None),
    }


@routes.get("/api/queue", name="api_queue")
async def api_queue(request: web.Request) -> web.Response:
    services = services_of(request)
    now = time.time()
    try:
        offset = max(0, int(request.query.get("offset", "0")))
        limit = min(max(1, int(request.query.get("limit", "100"))), 200)
    except ValueError:
        raise web.HTTPBadRequest(reason="offset and limit must be whole numbers") from None
    scope = agency_of(request).keys
    waiting = [await services.queue.conversation(c)
               for c in await services.queue.waiting(limit, offset, scope)]
    held = [await services.queue.conversation(c) for c in await services.queue.claimed(scope)]
    return web.json_response({
        "waiting": [_summary(m, now) for m in waiting if m],
        "waiting_total": await services.queue.waiting_count(scope),
        "offset": offset,
        "limit": limit,
        "held": [_summary(m, now) for m in held if m],
        "on_duty": await services.presence.on_duty(scope),
        "me": session_of(request).staff,
        # Messages the workers gave up on (bot.gateway.worker.dead_letter): each is also in
        # the queue with its transcript; this list says which and why.
        "dead_letters": [json.loads(e) for e in
                         await services.redis.lrange(scope.dead_letters, 0, 49)],
        # Platforms that will not take replies right now (bot.platform_limits): a banner,
        # for the agency's own accounts (or the app-wide limits).
        "platform_limits": [dataclasses.asdict(limit)
                            for limit in await services.delivery.limits.status()
                            if agency_of(request).shows_limit(limit.channel, limit.account)],
    })


@routes.get("/api/conversations/{id}", name="api_conversation")
async def api_conversation(request: web.Request) -> web.Response:
    services = services_of(request)
    conversation = conversation_of(request)
    meta = await services.queue.conversation(conversation)
    if not meta:
        raise web.HTTPNotFound(reason="no such conversation")
    transcript = [e.as_dict() for e in await services.queue.transcript(conversation)]
    summary = _summary(meta, time.time())
    # The last handover gave the thread to another app (the page's own inbox): staff should
    # answer it there. Shown, never enforced: a late or replayed handover can leave the
    # record wrong (tests/test_attack_issue10.py), so a reply is still tried and Meta, which
    # knows the owner, refuses it if the thread is not Beacon's (a delivery error).
    summary["thread_elsewhere"] = await services.threads.elsewhere(conversation)
    return web.json_response({"conversation": summary,
                              "transcript": transcript,
                              # Staff-only notes (bot.console.shift): never in the transcript.
                              "notes": await services.queue.notes(conversation)})


async def _act(request: web.Request, action) -> web.Response:
    conversation = conversation_of(request)
    try:
        await action(conversation, session_of(request).staff)
    except QueueConflict as exc:
        raise web.HTTPConflict(reason=str(exc)) from None
    await services_of(request).publish("changed", conversation)
    return web.json_response({"ok": True})


@routes.post("/api/conversations/{id}/claim", name="api_claim")
async def api_claim(request: web.Request) -> web.Response:
    return await _act(request, services_of(request).queue.claim)


@routes.post("/api/conversations/{id}/resolve", name="api_resolve")
async def api_resolve(request: web.Request) -> web.Response:
    return await _act(request, services_of(request).queue.resolve)


@routes.post("/api/conversations/{id}/transfer", name="api_transfer")
async def api_transfer(request: web.Request) -> web.Response:
    body = await _json(request)
    target = body.get("to")
    if not isinstance(target, str) or target not in await staff_store(request).names():
        raise web.HTTPBadRequest(reason="transfer to a known staff member")
    queue = services_of(request).queue
    return await _act(request, lambda c, s: queue.transfer(c, s, target))


@routes.post("/api/conversations/{id}/reply", name="api_reply")
async def api_reply(request: web.Request) -> web.Response:
    services = services_of(request)
    conversation = conversation_of(request)
    body = await _json(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise web.HTTPBadRequest(reason="text must be a non-empty string")
    if len(text) > MAX_REPLY:
        raise web.HTTPBadRequest(reason=f"replies are at most {MAX_REPLY} characters")
    meta = await services.queue.conversation(conversation)
    staff = session_of(request).staff
    if meta.get("status") != "claimed" or meta.get("claimed_by") != staff:
        holder = meta.get("claimed_by")
        raise web.HTTPConflict(reason=f"held by {holder}" if holder else "claim it first")
    human_agent = False
    if meta.get("channel") in ("messenger", "instagram") and meta.get("last_citizen_at"):
        allowed, human_agent = meta_channel.reply_window(
            time.time() - float(meta["last_citizen_at"]))
        if not allowed:
            raise web.HTTPConflict(reason="Meta allows no reply 7 days after the last message")
    try:
        await services.queue.reply(conversation, staff, text.strip())
    except QueueConflict as exc:
        raise web.HTTPConflict(reason=str(exc)) from None
    [sent] = await send_out(services, conversation, meta.get("channel", ""),
                            meta.get("sender", ""), [text.strip()], actor=staff,
                            outcome="staff", human_agent=human_agent)
    return web.json_response({"ok": sent.ok, "via": sent.via, "error": sent.error,
                              "human_agent": human_agent})


@routes.get("/api/conversations/{id}/export", name="api_export")
async def api_export(request: web.Request) -> web.Response:
    services = services_of(request)
    conversation = conversation_of(request)
    entries: List[Dict] = await services.audit_log.read(conversation)
    await services.audit(conversation, session_of(request).staff, "export")
    name = conversation.replace(":", "_")
    if request.query.get("format", "jsonl") == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["time", "actor", "action", "detail"])
        writer.writeheader()
        for e in entries:
            writer.writerow({"time": _iso(e["ts"]), "actor": _cell(e.get("actor")),
                             "action": _cell(e.get("action")),
                             "detail": _cell(e.get("detail", ""))})
        return web.Response(text=out.getvalue(), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"'})
    lines = "".join(json.dumps({**e, "time": _iso(e["ts"])}, ensure_ascii=False) + "\n"
                    for e in entries)
    return web.Response(text=lines, content_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="{name}.jsonl"'})


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): citizen text such as
# =HYPERLINK(...) must reach the records clerk as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).isoformat()


@routes.post("/api/duty", name="api_duty")
async def api_duty(request: web.Request) -> web.Response:
    """On duty (also the heartbeat: the page repeats it) or off duty."""
    services = services_of(request)
    staff = session_of(request).staff
    scope = agency_of(request).keys
    on = bool((await _json(request)).get("on"))
    if on:
        await services.presence.set_on_duty(staff, scope=scope)
    else:
        await services.presence.set_off_duty(staff, scope)
    await services.publish("duty", scope=scope, staff=staff, on=on)
    return web.json_response({"on_duty": await services.presence.on_duty(scope)})


@routes.get("/api/staff", name="api_staff")
async def api_staff(request: web.Request) -> web.Response:
    return web.json_response({"staff": await staff_store(request).names()})


@routes.get("/api/outbox", name="api_outbox")
async def api_outbox(request: web.Request) -> web.Response:
    # The replies kept for want of credentials: the agency's own list.
    return web.json_response({"outbox": await services_of(request).delivery.outbox(
        100, agency_of(request).keys)})


@routes.get("/api/events", name="api_events")
async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one per queue change, so the page updates without reloading.

    The session is checked again before every event: a removed or revoked staff member's
    open stream ends at once instead of reading on. The stream also ends when the gateway
    is asked to stop (an open console held SIGTERM for aiohttp's whole 60 s before)."""
    services = services_of(request)
    token = session_of(request).token
    stop = request.app[PARENT][STOP]
    pubsub = services.redis.pubsub()
    events = agency_of(request).keys.events  # the agency's own queue changes only
    await pubsub.subscribe(events)
    try:
        async with sse_response(request) as stream:
            await stream.send(json.dumps({"type": "hello"}))
            while stream.is_connected() and not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=SSE_WAIT_S)
                if await staff_store(request).session(token) is None:
                    break
                if message is not None:
                    await stream.send(message["data"])
    except ConnectionResetError:
        pass  # the page went away
    finally:
        await pubsub.unsubscribe(events)
        await pubsub.close()
    return stream


async def _json(request: web.Request) -> Dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="expected a JSON object")
    try:
        # JSON allows a lone surrogate ("\ud800") that no UTF-8 store or platform takes: a
        # 400 here, for every console API, not a 500 where it is stored (live attack).
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise web.HTTPBadRequest(reason="text must be valid Unicode") from None
    return body


def create_console(parent: web.Application) -> web.Application:
    console = web.Application(middlewares=[error_pages, auth_middleware])
    console[PARENT] = parent
    aiohttp_jinja2.setup(console, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(["html"]))
    console.add_routes(routes)
    # Imported here: bot.console.shift builds on this module's helpers.
    from bot.console import shift
    console.add_routes(shift.routes)
    from bot.console import reports, supervisor  # the supervisors' routes (roles.py)
    console.add_routes(reports.routes)
    console[reports.ONE_AT_A_TIME] = asyncio.Lock()
    console.add_routes(supervisor.routes)
    console.router.add_static("/static/", HERE / "static", name="static")
    return console

