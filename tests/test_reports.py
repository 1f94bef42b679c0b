"""Issue 11: roles (staff and supervisors) and the supervisors' reports.

Roles: every supervisor route refuses a staff session (403) and a missing one (401, or the
login page); staff management works and keeps a supervisor. Reports: a known week of
traffic, written as the gateway and the queue write it, into the real Redis; every figure of
the JSON and of the CSV is checked. Then the real path (a webhook, Rasa down) records the
facts the reports count, and Chromium draws the charts, exports the CSV and leaves
screenshots for a reviewer."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import keys
from bot.app import create_app
from bot.audit import AuditLog
from bot.console.auth import StaffStore
from bot.queue import HumanQueue
from tests.gateway_support import DEAD_RASA, messenger_item, messenger_payload, settings_for
from tests.test_console import PASSWORD, chromium, sign_in

ZONE = ZoneInfo("America/Los_Angeles")
WEEK = ("2026-11-16", "2026-11-22")  # Monday to Sunday, no holiday, no DST change
MONDAY = dt.date(2026, 11, 16)


@pytest.fixture
async def server(aiohttp_server, redis, redis_server, platform):
    store = StaffStore(redis, 3600)
    await store.add("alice", PASSWORD)  # staff (no role given)
    await store.add("sam", PASSWORD, "supervisor")
    return await aiohttp_server(create_app(settings_for(redis_server, DEAD_RASA, platform.url)))


async def login(client, name: str) -> str:
    form = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await form.text()).group(1)
    response = await client.post("/console/login", data={"csrf": csrf, "name": name,
                                                          "password": PASSWORD},
                                 allow_redirects=False)
    assert response.status == 302
    page = await (await client.get("/console/")).text()
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


# -- roles ------------------------------------------------------------------------------------

SUPERVISOR_ROUTES = [
    ("GET", "/console/reports"),
    ("GET", "/console/api/reports"),
    ("GET", "/console/api/reports.csv"),
    ("GET", "/console/staff"),
    ("GET", "/console/api/staff/members"),
    ("POST", "/console/api/staff/members"),
    ("POST", "/console/api/staff/members/alice/role"),
    ("POST", "/console/api/staff/members/alice/revoke"),
    ("POST", "/console/api/staff/members/alice/remove"),
]


def test_every_supervisor_route_is_in_the_refusal_list(server):
    """A new supervisors' route must join SUPERVISOR_ROUTES (and so the refusal tests)."""
    console = server.app._subapps[0]
    marked = set()
    for route in console.router.routes():
        if getattr(route.handler, "beacon_role", None) and route.method != "HEAD":
            info = route.resource.get_info()
            path = info.get("path") or info.get("formatter")  # already under /console
            marked.add((route.method, path.replace("{name}", "alice")))
    assert marked == set(SUPERVISOR_ROUTES)


async def test_staff_are_refused_every_supervisor_route(aiohttp_client, server, redis):
    client = await aiohttp_client(server)
    csrf = await login(client, "alice")
    page = await (await client.get("/console/")).text()
    assert "/console/reports" not in page  # no link for staff
    for method, path in SUPERVISOR_ROUTES:
        response = await client.request(method, path, headers={"X-CSRF-Token": csrf},
                                        json={"role": "supervisor", "name": "eve",
                                              "password": PASSWORD},
                                        allow_redirects=False)
        assert response.status == 403, (method, path)
    # Nothing changed: alice is still staff, still logged in, nobody was added.
    assert await StaffStore(redis, 3600).role("alice") == "staff"
    assert await StaffStore(redis, 3600).names() == ["alice", "sam"]
    assert (await client.get("/console/api/queue")).status == 200


async def test_no_session_is_refused_every_supervisor_route(aiohttp_client, server):
    client = await aiohttp_client(server)
    for method, path in SUPERVISOR_ROUTES:
        response = await client.request(method, path, allow_redirects=False)
        if path.startswith("/console/api/"):
            assert response.status == 401, (method, path)
        else:
            assert response.status == 302, (method, path)
            assert response.headers["Location"] == "/console/login"


async def test_supervisors_manage_staff(aiohttp_client, server, redis):
    sam, alice = await aiohttp_client(server), await aiohttp_client(server)
    csrf = await login(sam, "sam")
    alice_csrf = await login(alice, "alice")
    headers = {"X-CSRF-Token": csrf}
    page = await (await sam.get("/console/")).text()
    assert 'href="/console/reports"' in page
    members = await (await sam.get("/console/api/staff/members")).json()
    assert members == {"members": [{"name": "alice", "role": "staff"},
                                   {"name": "sam", "role": "supervisor"}]}
    # Without the CSRF token a supervisor is refused too.
    assert (await sam.post("/console/api/staff/members/alice/role",
                           json={"role": "supervisor"})).status == 403
    # Promote alice: her open session gets the reports at once.
    assert (await sam.post("/console/api/staff/members/alice/role", headers=headers,
                           json={"role": "supervisor"})).status == 200
    assert (await alice.get("/console/api/reports")).status == 200
    assert (await sam.post("/console/api/staff/members/alice/role", headers=headers,
                           json={"role": "staff"})).status == 200
    assert (await alice.get("/console/api/reports")).status == 403
    # Bad input.
    assert (await sam.post("/console/api/staff/members/alice/role", headers=headers,
                           json={"role": "chief"})).status == 400
    assert (await sam.post("/console/api/staff/members/nobody/role", headers=headers,
                           json={"role": "staff"})).status == 404
    assert (await sam.post("/console/api/staff/members", headers=headers,
                           json={"name": "bob", "password": "short"})).status == 400
    # The last supervisor stays one.
    assert (await sam.post("/console/api/staff/members/sam/role", headers=headers,
                           json={"role": "staff"})).status == 409
    assert (await sam.post("/console/api/staff/members/sam/remove",
                           headers=headers)).status == 409
    # Add, revoke, remove.
    added = await sam.post("/console/api/staff/members", headers=headers,
                           json={"name": "bob", "password": PASSWORD, "role": "staff"})
    assert added.status == 200 and await StaffStore(redis, 3600).role("bob") == "staff"
    assert (await sam.post("/console/api/staff/members", headers=headers,
                           json={"name": "bob", "password": PASSWORD})).status == 409
    revoked = await sam.post("/console/api/staff/members/alice/revoke", headers=headers)
    assert (await revoked.json())["sessions_ended"] == 1
    assert (await alice.get("/console/api/queue")).status == 401
    assert (await sam.post("/console/api/staff/members/bob/remove",
                           headers=headers)).status == 200
    assert await StaffStore(redis, 3600).names() == ["alice", "sam"]
    audit = [json.loads(e) for e in await redis.lrange(keys.audit("console"), 0, -1)]
    assert [e["action"] for e in audit if e["actor"] == "sam" and e["action"] != "login"] == [
        "staff_role", "staff_role", "staff_added", "sessions_revoked", "staff_removed"]
    del alice_csrf


async def test_an_account_from_before_roles_is_staff(redis):
    await redis.hset(keys.SINGLE.staff("old"), mapping={"password": "x", "created_at": 1})
    await redis.sadd(keys.SINGLE.staff_index, "old")
    store = StaffStore(redis, 60)
    assert await store.role("old") == "staff" and await store.role("nobody") is None
    await store.add("old", PASSWORD)  # a new password keeps the role
    assert await store.role("old") == "staff"
    await store.set_role("old", "supervisor")
    await store.add("old", PASSWORD)
    assert await store.role("old") == "supervisor"


# -- a known week -----------------------------------------------------------------------------

def at(day: int, clock: str) -> float:
    """Epoch seconds of a local time ``day`` days after Monday 2026-11-16."""
    h, m, *s = (int(p) for p in clock.split(":"))
    return dt.datetime.combine(MONDAY + dt.timedelta(days=day),
                               dt.time(h, m, s[0] if s else 0), tzinfo=ZONE).timestamp()


class Traffic:
    """Writes the records the gateway writes for each event (bot.gateway.worker,
    bot.outbound, bot.gateway.monitor) and the queue's own, with chosen times."""

    def __init__(self, redis) -> None:
        self.audit = AuditLog(redis, 365 * 86400)
        self.queue = HumanQueue(redis, retention_seconds=365 * 86400)
        self.count = 0

    async def message(self, conversation: str, received: float, outcome: str,
                      on_duty: bool, message_id: str | None = None) -> str:
        self.count += 1
        mid = message_id or f"m{self.count}"
        channel = conversation.split(":")[0]
        await self.audit.append(conversation, "citizen", "message_in", "text",
                                now=received + 0.05)
        if outcome not in ("faq", "smalltalk", "held"):
            await self.queue.enqueue(conversation, priority=0 if outcome in (
                "emergency", "crisis") else 1, fields={"channel": channel, "outcome": outcome},
                entries=[], now=received)
        await self.audit.append(conversation, "bot", "outcome", outcome, now=received + 0.5,
                                message_id=mid, channel=channel, received=received,
                                on_duty=on_duty)
        return mid

    async def notice(self, conversation: str, received: float, after: float) -> None:
        await self.audit.append(conversation, "bot", "message_out", "Call 911 now.",
                                now=received + after, notice_received=received)

    async def reply(self, conversation: str, when: float, staff: str = "sam") -> None:
        await self.queue.claim(conversation, staff, now=when - 1)
        await self.queue.reply(conversation, staff, "This is the police.", now=when)
        await self.audit.append(conversation, staff, "message_out", "This is the police.",
                                now=when + 0.2)

    async def resolve(self, conversation: str, when: float, staff: str = "sam") -> None:
        await self.queue.claim(conversation, staff, now=when - 1)  # no-op when held
        await self.queue.resolve(conversation, staff, now=when)


C = {n: f"{ch}:acct:u{n}" for n, ch in {1: "messenger", 2: "instagram", 3: "webchat", 4: "x",
                                           5: "messenger", 6: "messenger", 7: "instagram",
                                           8: "messenger", 9: "messenger"}.items()}


async def fill_week(redis) -> None:
    t = Traffic(redis)
    # Before the period: still waiting on Monday, closed without a reply on Wednesday.
    await t.message(C[9], at(-1, "23:00"), "human", False)
    # Monday: an emergency (notice after 2 s), a follow-up, answered in 60 s, resolved.
    await t.message(C[1], at(0, "09:00"), "emergency", True)
    await t.notice(C[1], at(0, "09:00"), 2.0)
    await t.message(C[1], at(0, "09:00:30"), "emergency", True)
    await t.reply(C[1], at(0, "09:01"))
    await t.resolve(C[1], at(0, "09:10"))
    # Monday 16:30: a question nobody answers until Tuesday 08:30.
    await t.message(C[2], at(0, "16:30"), "human", True)
    await t.reply(C[2], at(1, "08:30"))
    await t.resolve(C[2], at(1, "08:40"))
    # Tuesday: answered by Beacon (never queued).
    await t.message(C[3], at(1, "10:00"), "faq", True)
    await t.message(C[3], at(1, "10:05"), "smalltalk", True)
    # Wednesday 02:00, nobody on duty: a crisis, notice after 1 s, escalated, answered 08:05.
    await t.message(C[4], at(2, "02:00"), "crisis", False)
    await t.notice(C[4], at(2, "02:00"), 1.0)
    await t.audit.append(C[4], "bot", "escalated", "pager", now=at(2, "02:02"))
    await t.reply(C[4], at(2, "08:05"))
    await t.resolve(C[9], at(2, "09:00"))
    # Thursday: a report answered in 10 minutes; the citizen writes again while it is held
    # (and the same message is recorded twice, as after a crash: counted once).
    await t.message(C[5], at(3, "12:00"), "report", True, message_id="dup")
    await t.audit.append(C[5], "bot", "outcome", "report", now=at(3, "12:00:05"),
                         message_id="dup", channel="messenger", received=at(3, "12:00"),
                         on_duty=True)
    await t.reply(C[5], at(3, "12:10"))
    await t.message(C[5], at(3, "12:20"), "held", True)
    # Friday 16:59: never answered.
    await t.message(C[6], at(4, "16:59"), "human", True)
    # Saturday 11:00, nobody on duty: an emergency, notice after 3 s, the pager fails,
    # answered at 11:30.
    await t.message(C[7], at(5, "11:00"), "emergency", False)
    await t.notice(C[7], at(5, "11:00"), 3.0)
    await t.audit.append(C[7], "bot", "escalation_failed", "pager", now=at(5, "11:02"))
    await t.reply(C[7], at(5, "11:30"))
    await t.resolve(C[7], at(5, "11:40"))
    # Sunday 20:00 (no shift on Sundays), nobody on duty, never answered.
    await t.message(C[8], at(6, "20:00"), "human", False)
    # After the period: not counted.
    await t.message(C[3], at(7, "01:00"), "faq", False)


# Time to first staff response (s) by the hour the wait began; one wait each.
HOURS = {2: 21900.0, 9: 60.0, 11: 1800.0, 12: 600.0, 16: 57600.0}


EXPECTED = {
    "period": {"from": "2026-11-16", "to": "2026-11-22", "timezone": "America/Los_Angeles",
               "days": 7},
    "days": [f"2026-11-{d}" for d in range(16, 23)],
    "messages": {
        "total": 11,
        "by_outcome": {"emergency": [2, 0, 0, 0, 0, 1, 0], "crisis": [0, 0, 1, 0, 0, 0, 0],
                       "report": [0, 0, 0, 1, 0, 0, 0], "human": [1, 0, 0, 0, 1, 0, 1],
                       "held": [0, 0, 0, 1, 0, 0, 0], "faq": [0, 1, 0, 0, 0, 0, 0],
                       "smalltalk": [0, 1, 0, 0, 0, 0, 0]},
        "by_channel": {"instagram": [1, 0, 0, 0, 0, 1, 0], "messenger": [2, 0, 0, 2, 1, 0, 1],
                       "webchat": [0, 2, 0, 0, 0, 0, 0], "x": [0, 0, 1, 0, 0, 0, 0]},
    },
    "urgent": {"per_day": [2, 0, 1, 0, 0, 1, 0], "total": 4, "notices": 3,
               "notice_latency_s": {"median": 2.0, "p95": 3.0}},
    "first_response": {
        "waits": 7, "answered": 5, "median_s": 1800.0, "p90_s": 57600.0,
        "by_hour": [{"hour": h, "count": int(h in HOURS), "median_s": HOURS.get(h),
                     "p90_s": HOURS.get(h)} for h in range(24)],
    },
    "off_duty": {"per_day": [0, 0, 1, 0, 0, 1, 1], "messages": 3, "share": 0.2727},
    "unanswered_at_shift_end": [
        {"shift_end": "2026-11-16T17:00:00-08:00", "unanswered": 2},
        {"shift_end": "2026-11-17T17:00:00-08:00", "unanswered": 1},
        {"shift_end": "2026-11-18T17:00:00-08:00", "unanswered": 0},
        {"shift_end": "2026-11-19T17:00:00-08:00", "unanswered": 0},
        {"shift_end": "2026-11-20T17:00:00-08:00", "unanswered": 1},
        {"shift_end": "2026-11-21T14:00:00-08:00", "unanswered": 1},
    ],
    "escalations": {"per_day": [0, 0, 1, 0, 0, 0, 0], "failed_per_day": [0, 0, 0, 0, 0, 1, 0],
                    "total": 2, "failed": 1},
}


def expected_csv() -> list:
    days = EXPECTED["days"]
    rows = [["figure", "date", "key", "value"]]
    for name, series in (("messages_by_outcome", EXPECTED["messages"]["by_outcome"]),
                         ("messages_by_channel", EXPECTED["messages"]["by_channel"])):
        for key, counts in series.items():
            rows += [[name, d, key, str(n)] for d, n in zip(days, counts, strict=True)]
    for name, key, counts in (("urgent_messages", "", [2, 0, 1, 0, 0, 1, 0]),
                              ("off_duty_messages", "", [0, 0, 1, 0, 0, 1, 1]),
                              ("escalations", "escalated", [0, 0, 1, 0, 0, 0, 0]),
                              ("escalations", "failed", [0, 0, 0, 0, 0, 1, 0])):
        rows += [[name, d, key, str(n)] for d, n in zip(days, counts, strict=True)]
    rows += [["messages", "", "total", "11"], ["urgent", "", "total", "4"],
             ["urgent", "", "notices", "3"], ["notice_latency_s", "", "median", "2.0"],
             ["notice_latency_s", "", "p95", "3.0"], ["first_response", "", "waits", "7"],
             ["first_response", "", "answered", "5"],
             ["first_response", "", "median_s", "1800.0"],
             ["first_response", "", "p90_s", "57600.0"]]
    for h in EXPECTED["first_response"]["by_hour"]:
        value = "" if h["median_s"] is None else str(h["median_s"])
        rows += [["first_response_by_hour", f"{h['hour']:02d}:00", "count", str(h["count"])],
                 ["first_response_by_hour", f"{h['hour']:02d}:00", "median_s", value],
                 ["first_response_by_hour", f"{h['hour']:02d}:00", "p90_s", value]]
    rows += [["off_duty", "", "messages", "3"], ["off_duty", "", "share", "0.2727"]]
    rows += [["unanswered_at_shift_end", s["shift_end"], "", str(s["unanswered"])]
             for s in EXPECTED["unanswered_at_shift_end"]]
    rows += [["escalations", "", "total", "2"], ["escalations", "", "failed", "1"]]
    return rows


async def test_a_known_week_gives_every_figure(aiohttp_client, server, redis):
    await fill_week(redis)
    client = await aiohttp_client(server)
    await login(client, "sam")
    query = {"from": WEEK[0], "to": WEEK[1]}
    response = await client.get("/console/api/reports", params=query)
    assert response.status == 200
    assert await response.json() == EXPECTED
    exported = await client.get("/console/api/reports.csv", params=query)
    assert exported.status == 200
    assert exported.headers["Content-Disposition"] == \
        'attachment; filename="beacon-report-2026-11-16-2026-11-22.csv"'
    assert list(csv.reader(io.StringIO(await exported.text()))) == expected_csv()


async def test_a_bad_or_overlong_period_is_refused(aiohttp_client, server):
    client = await aiohttp_client(server)
    await login(client, "sam")
    for query in ({"from": "2026-11-22", "to": "2026-11-16"},
                  {"from": "2026-01-01", "to": "2026-06-30"},
                  {"from": "yesterday", "to": "2026-11-16"},
                  {"from": "2026-11-16"}):
        for path in ("/console/api/reports", "/console/api/reports.csv"):
            assert (await client.get(path, params=query)).status == 400, (path, query)
    assert (await client.get("/console/api/reports", params={
        "from": "2026-01-01", "to": "2026-04-03"})).status == 200  # 93 days


async def test_the_gateway_records_what_the_reports_count(aiohttp_client, server, redis,
                                                          platform):
    """Through the real path (a signed webhook, Rasa down, nobody on duty): the message's
    outcome entry and the notice's time reach the audit log, and today's report counts them."""
    from tests.gateway_support import conv_id, signed

    client = await aiohttp_client(server)
    body, headers = signed(messenger_payload(
        messenger_item("rep-1", "help someone is breaking into my house", mid="rep-mid")))
    assert (await client.post("/webhooks/meta", data=body, headers=headers)).status == 200
    conversation = conv_id("rep-1")
    for _ in range(100):
        log = await AuditLog(redis, 60).read(conversation)
        if any(e["action"] == "outcome" for e in log):
            break
        await asyncio.sleep(0.1)
    [outcome] = [e for e in log if e["action"] == "outcome"]
    assert outcome["detail"] == "emergency" and outcome["channel"] == "messenger"
    assert outcome["message_id"] == "rep-mid" and outcome["on_duty"] is False
    notices = [e for e in log if e.get("notice_received") is not None]
    assert len(notices) == 1
    assert abs(notices[0]["notice_received"] - outcome["received"]) < 0.01  # Lua rounds
    assert notices[0]["ts"] >= outcome["received"]
    await login(client, "sam")
    report = await (await client.get("/console/api/reports")).json()
    assert report["messages"]["total"] == 1 and report["urgent"]["total"] == 1
    assert report["urgent"]["notices"] == 1 and report["off_duty"]["share"] == 1.0
    assert report["first_response"]["waits"] == 1 and report["first_response"]["answered"] == 0


# -- in Chromium ------------------------------------------------------------------------------

# How many pixels of each chart's canvas are in colour (a series' line or points): axes,
# grid and labels are grey or black, so a chart whose data was not drawn counts none.
_DRAWN = """() => [...document.querySelectorAll('.chart canvas')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
    if (d[i + 3] > 200 && hi - lo > 80) n++;
  }
  return n;
})"""


async def test_reports_in_chromium(server, redis):
    await fill_week(redis)
    base = str(server.make_url("")).rstrip("/")
    out = os.environ.get("TMPDIR") or tempfile.gettempdir()
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 800},
                                            accept_downloads=True)
        page = await context.new_page()
        await sign_in(page, base, "sam")
        await page.click("a[href='/console/reports']")
        await page.wait_for_function("() => document.body.dataset.rendered === '1'")
        await page.fill("#from", WEEK[0])
        await page.fill("#to", WEEK[1])
        await page.click("#period button[type=submit]")
        await page.wait_for_function(
            "() => document.body.dataset.rendered === '1' && "
            "document.getElementById('s-messages').textContent === '11'")
        assert await page.inner_text("#s-notice") == "2.0 s / 3.0 s"
        assert await page.inner_text("#s-first") == "30.0 min / 960.0 min"
        assert await page.inner_text("#s-offduty") == "27.3% (3)"
        desktop = os.path.join(out, "beacon-reports-desktop.png")
        await page.screenshot(path=desktop, full_page=True)
        # Five charts, each with its first series drawn in its colour.
        drawn = await page.evaluate(_DRAWN)
        assert len(drawn) == 5 and all(n > 50 for n in drawn), drawn
        assert await page.locator("#t-shifts tbody tr").count() == 6

        async with page.expect_download() as info:
            await page.click("#csv")
        download = await info.value
        path = await download.path()
        text = await asyncio.to_thread(Path(path).read_text)
        assert list(csv.reader(io.StringIO(text))) == expected_csv()

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.wait_for_timeout(300)
        assert await page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth + 1")
        phone = os.path.join(out, "beacon-reports-phone.png")
        await page.screenshot(path=phone, full_page=True)
        await page.emulate_media(media="print")
        assert not await page.is_visible("#period")
        printed = os.path.join(out, "beacon-reports-print.pdf")
        await page.pdf(path=printed, format="A4")
        print(f"\nscreenshots: {desktop} {phone} {printed}")
