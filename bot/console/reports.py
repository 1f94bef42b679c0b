"""The supervisors' reports: the page, its JSON and its CSV (the same figures).

Thin handlers: read the audit logs of the period's conversations from Redis (found through
the day index ``keys.audit_day`` that every audit entry writes, plus whatever is in the
queue now), then ``bot.reports`` computes. Nothing comes from a process's memory, so every
replica serves the same numbers and a restart loses none.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import time
from typing import Dict, List

import aiohttp_jinja2
from aiohttp import web
from redis.asyncio import Redis

from bot import keys, reports
from bot.agencies import CONSOLE
from bot.audit import utc_day
from bot.console.app import _CONVERSATION_ID, _cell, agency_of, services_of, session_of
from bot.console.roles import supervisor_only

routes = web.RouteTableDef()
# Audit logs read per round trip.
BATCH = 200
# One report computed at a time per process, on a thread of its own: a quarter over
# thousands of conversations took 0.8 s on the event loop, holding every webhook and 911
# notice behind it (live attack). Never on the safety net's CPU lane, which notices use.
# The console app holds the lock (create_console), so each app and its loop has its own.
ONE_AT_A_TIME = web.AppKey("reports_one_at_a_time", asyncio.Lock)


async def period_logs(redis: Redis, period: reports.Period,
                      scope: keys.AgencyKeys = keys.SINGLE) -> Dict[str, List[str]]:
    """The audit entries (raw JSON) of every conversation written to in the period or in the
    ``LOOKBACK_DAYS`` before it, or waiting or held now."""
    first = period.start() - reports.LOOKBACK_DAYS * 86400
    days = sorted({utc_day(ts) for ts in range(int(first), int(period.end()) + 86400, 86400)})
    ids = set(await redis.sunion([scope.audit_day(d) for d in days]))
    ids |= set(await redis.zrange(scope.queue, 0, -1))
    ids |= set(await redis.zrange(scope.claimed, 0, -1))
    # Citizens' conversations only (an agency's console log has an id of the same shape).
    wanted = sorted(i for i in ids if _CONVERSATION_ID.fullmatch(i)
                    and not i.startswith(CONSOLE + ":"))
    logs: Dict[str, List[str]] = {}
    for offset in range(0, len(wanted), BATCH):
        batch = wanted[offset:offset + BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for conversation in batch:
                pipe.lrange(keys.audit(conversation), 0, -1)
            for conversation, raw in zip(batch, await pipe.execute(), strict=True):
                logs[conversation] = raw
    return logs


def compute(raw: Dict[str, List[str]], period: reports.Period, department,
            now: float) -> Dict:
    """Decode the audit entries and compute the figures (CPU only: run off the loop)."""
    logs = {conversation: [json.loads(e) for e in entries]
            for conversation, entries in raw.items()}
    return reports.figures(logs, period, department, now)


async def _report(request: web.Request) -> Dict:
    services = services_of(request)
    agency = agency_of(request)  # one agency's figures: its conversations, hours, zone
    zone = agency.department.zone
    now = time.time()
    try:
        period = reports.parse_period(request.query.get("from"), request.query.get("to"),
                                      zone, dt.datetime.fromtimestamp(now, zone).date())
    except reports.PeriodError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    async with request.app[ONE_AT_A_TIME]:
        raw = await period_logs(services.redis, period, agency.keys)
        return await asyncio.get_running_loop().run_in_executor(
            None, compute, raw, period, agency.department, now)


@routes.get("/reports", name="reports_page")
@supervisor_only
@aiohttp_jinja2.template("reports.html")
async def reports_page(request: web.Request) -> Dict:
    session = session_of(request)
    return {"staff": session.staff, "csrf": session.csrf,
            "department": agency_of(request).name,
            "max_days": reports.MAX_DAYS}


@routes.get("/api/reports", name="api_reports")
@supervisor_only
async def api_reports(request: web.Request) -> web.Response:
    return web.json_response(await _report(request))


@routes.get("/api/reports.csv", name="api_reports_csv")
@supervisor_only
async def api_reports_csv(request: web.Request) -> web.Response:
    report = await _report(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(reports.CSV_HEADER)
    for row in reports.csv_rows(report):
        writer.writerow([_cell(v) if isinstance(v, str) else v for v in row])
    name = f"beacon-report-{report['period']['from']}-{report['period']['to']}.csv"
    return web.Response(text=out.getvalue(), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})
