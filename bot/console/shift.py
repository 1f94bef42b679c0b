"""Console routes for a busy shift: the filtered, searched and paged list, bulk resolve, and
private notes between staff.

Registered on the console sub-app (``create_console``), so its session and CSRF middleware
apply: every route needs a session, every POST the session's CSRF token.
"""

from __future__ import annotations

import re
import time

from aiohttp import web

from bot.console.app import (
    _CONVERSATION_ID,
    _json,
    _summary,
    agency_of,
    conversation_of,
    ours,
    services_of,
    session_of,
)
from bot.messages import CHANNELS
from bot.queue import QueueConflict
from bot.queue_view import (
    MAX_ENTRIES,
    MAX_EXAMINED,
    MAX_TRANSCRIPTS,
    VIEWS,
    QueueFilter,
    QueueView,
)
from bot.triage import Outcome

routes = web.RouteTableDef()
MAX_PAGE = 200
# A spam flood is cleared a page at a time; a larger list is a mistake or an attack.
MAX_BULK = 200
MAX_REASON = 300
MAX_NOTE = 2000
MAX_QUERY = 100
# Ten years: any larger "waiting longer than" is a typo.
MAX_OLDER_THAN_MIN = 10 * 365 * 24 * 60
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_TRUE = {"1", "true", "yes", "on"}


def _filter_of(request: web.Request) -> QueueFilter:
    """The list's filters from the query string; 400 for a value Beacon never uses."""
    query = request.query
    view = query.get("view", "waiting")
    if view not in VIEWS:
        raise web.HTTPBadRequest(reason=f"view must be one of {', '.join(VIEWS)}")
    outcome = query.get("outcome", "")
    if outcome and outcome not in {o.value for o in Outcome}:
        raise web.HTTPBadRequest(reason="unknown outcome")
    channel = query.get("channel", "")
    if channel and channel not in CHANNELS:
        raise web.HTTPBadRequest(reason="unknown channel")
    language = query.get("language", "")
    if language and not _LANGUAGE.fullmatch(language):
        raise web.HTTPBadRequest(reason="language must be a 2-3 letter code")
    try:
        older = int(query.get("older_than") or "0")
    except ValueError:
        raise web.HTTPBadRequest(reason="older_than must be whole minutes") from None
    if not 0 <= older <= MAX_OLDER_THAN_MIN:
        raise web.HTTPBadRequest(reason="older_than is out of range")
    text = query.get("q", "").strip()
    if text and not 2 <= len(text) <= MAX_QUERY:
        raise web.HTTPBadRequest(reason=f"search for 2 to {MAX_QUERY} characters")
    return QueueFilter(view=view, staff=session_of(request).staff,
                       urgent=query.get("urgent", "").lower() in _TRUE, outcome=outcome,
                       channel=channel, language=language, older_than_s=older * 60, text=text)


@routes.get("/api/conversations", name="api_list")
async def api_list(request: web.Request) -> web.Response:
    """One page of the waiting queue (or of what the officer holds, or everyone holds),
    filtered and searched. The answer says when a bounded scan did not reach every
    candidate (``scan.complete``, ``search.complete``)."""
    services = services_of(request)
    wanted = _filter_of(request)
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "25"))
    except ValueError:
        raise web.HTTPBadRequest(reason="offset and limit must be whole numbers") from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise web.HTTPBadRequest(reason=f"offset >= 0 and 1 <= limit <= {MAX_PAGE}")
    now = time.time()
    page = await QueueView(services.redis, agency_of(request).keys).find(wanted, offset, limit,
                                                                         now=now)
    metas = [await services.queue.conversation(c) for c in page.ids]
    return web.json_response({
        "view": wanted.view,
        "items": [{**_summary(m, now), "hit": page.hits.get(m["id"])} for m in metas if m],
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "scan": {"examined": page.examined, "cap": MAX_EXAMINED, "complete": page.complete},
        "search": {"query": wanted.text, "transcripts_read": page.transcripts_read,
                   "cap": MAX_TRANSCRIPTS, "entries_per_transcript": MAX_ENTRIES,
                   "complete": page.search_complete} if wanted.text else None,
    })


@routes.post("/api/bulk-resolve", name="api_bulk_resolve")
async def api_bulk_resolve(request: web.Request) -> web.Response:
    """Resolve up to MAX_BULK conversations (waiting, or held by the caller) with one reason,
    written to each one's audit log. Those held by others are left alone and listed."""
    services = services_of(request)
    body = await _json(request)
    ids, reason = body.get("ids"), body.get("reason")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BULK:
        raise web.HTTPBadRequest(reason=f"ids must be a list of 1 to {MAX_BULK} conversations")
    if not all(isinstance(c, str) and _CONVERSATION_ID.fullmatch(c) for c in ids):
        raise web.HTTPBadRequest(reason="not a conversation id")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise web.HTTPBadRequest(reason=f"give a reason of at most {MAX_REASON} characters")
    staff = session_of(request).staff
    agency = agency_of(request)
    unique = list(dict.fromkeys(ids))
    # Another agency's conversation is unknown here, like one that never existed.
    results = await services.queue.bulk_resolve([c for c in unique if ours(request, c)],
                                                staff, reason.strip())
    results.update({c: "no such conversation" for c in unique if c not in results})
    resolved = [c for c, r in results.items() if r == "resolved"]
    await services.audit(agency.console_log, staff, "bulk_resolve",
                         f"{len(resolved)} resolved: {reason.strip()}")
    await services.publish("bulk_resolved", scope=agency.keys, count=len(resolved))
    return web.json_response({"resolved": resolved,
                              "refused": {c: r for c, r in results.items() if r != "resolved"}})


@routes.post("/api/conversations/{id}/notes", name="api_note")
async def api_note(request: web.Request) -> web.Response:
    """A private note for other staff: kept with the conversation and audited, shown only
    in the console, never sent to the citizen."""
    services = services_of(request)
    conversation = conversation_of(request)
    text = (await _json(request)).get("text")
    if not isinstance(text, str) or not text.strip():
        raise web.HTTPBadRequest(reason="text must be a non-empty string")
    if len(text) > MAX_NOTE:
        raise web.HTTPBadRequest(reason=f"notes are at most {MAX_NOTE} characters")
    try:
        note = await services.queue.add_note(conversation, session_of(request).staff,
                                             text.strip())
    except QueueConflict as exc:
        raise web.HTTPNotFound(reason=str(exc)) from None
    await services.publish("note", conversation)
    return web.json_response({"note": note})
