"""Several agencies in one deployment (a county hosting Beacon for its cities): each account
maps to its agency's department file, queue, staff, console, reports and tokens; a staff
member sees only their own agency; workers take turns between agencies; and a deployment
without an agencies file keeps every key name it always had.

Real Redis, the real gateway and console over HTTP (Rasa down: the safety net and the
department's texts answer), the fake Graph API for Meta; the isolation is also checked in
headless Chromium."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import re
import threading
from pathlib import Path

import pytest
import yaml

from bot import keys
from bot.agencies import AgenciesFileError, load_agencies, load_deployment
from bot.app import create_app
from bot.appkeys import SERVICES
from bot.console.auth import StaffStore
from bot.inbox import Inbox
from bot.settings import PROJECT_ROOT
from tests.gateway_support import (
    DEAD_RASA,
    PAGE_ID,
    messenger_item,
    messenger_payload,
    psid,
    settings_for,
    signed,
)
from tests.test_console import PASSWORD, chromium, sign_in

PAGE_A, PAGE_B, PAGE_NOBODY = PAGE_ID, "5647382910", "9999999999"
ENV = {"HARBOR_PAGE_TOKEN": "page-token-harbor", "BAYVIEW_PAGE_TOKEN": "page-token-bayview"}


def write_county(root: Path, **changes) -> Path:
    """Two agencies: Harbor City (the project's department file) and Bayview (the same
    file with its own name, phone and a schedule nobody works)."""
    harbor = yaml.safe_load((PROJECT_ROOT / "data/department.yml").read_text())
    bayview = copy.deepcopy(harbor)
    bayview["department"].update(name="Bayview Police Department", short_name="Bayview PD",
                                 city="Bayview")
    bayview["phones"]["non_emergency"] = "(555) 777-0100"
    (root / "harbor.yml").write_text(yaml.safe_dump(harbor, allow_unicode=True))
    (root / "bayview.yml").write_text(yaml.safe_dump(bayview, allow_unicode=True))
    county = {"agencies": {
        "harbor": {"department": "harbor.yml",
                   "accounts": {"messenger": [PAGE_A], "webchat": ["harbor"]},
                   "credentials": {"meta_page_access_token": "HARBOR_PAGE_TOKEN"}},
        "bayview": {"department": "bayview.yml", "retention_days": 30,
                    "accounts": {"messenger": [PAGE_B], "webchat": ["bayview"]},
                    "credentials": {"meta_page_access_token": "BAYVIEW_PAGE_TOKEN"}},
    }}
    for agency, entry in changes.items():
        county["agencies"][agency].update(entry)
    path = root / "agencies.yml"
    path.write_text(yaml.safe_dump(county))
    return path


def county_settings(redis_server, platform, tmp_path: Path):
    return dataclasses.replace(settings_for(redis_server, DEAD_RASA, platform.url),
                               agencies_file=write_county(tmp_path))


def conv(page: str, name: str) -> str:
    return f"messenger:{page}:{psid(name)}"


@pytest.fixture
def env_tokens(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def county(aiohttp_client, redis, redis_server, platform, tmp_path, env_tokens):
    settings = county_settings(redis_server, platform, tmp_path)
    # The same name in both agencies: two accounts, two passwords.
    await StaffStore(redis, 3600, keys.AgencyKeys("harbor")).add("alice", PASSWORD,
                                                                 "supervisor")
    await StaffStore(redis, 3600, keys.AgencyKeys("bayview")).add("alice", "bayview's own pass",
                                                                  "supervisor")
    return await aiohttp_client(create_app(settings))


async def post_meta(client, page: str, sender: str, text: str):
    item = messenger_item(sender, text)
    item["recipient"]["id"] = page
    body, headers = signed(messenger_payload(item, page=page))
    return await client.post("/webhooks/meta", data=body, headers=headers)


async def console_login(client, agency: str, name: str = "alice",
                        password: str = PASSWORD) -> str | None:
    form = await (await client.get("/console/login")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    response = await client.post("/console/login", allow_redirects=False, data={
        "csrf": csrf, "agency": agency, "name": name, "password": password})
    if response.headers.get("Location") != "/console/":
        return None
    page = await (await client.get("/console/")).text()
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


# -- the agencies file ------------------------------------------------------------------------

def test_a_deployment_without_an_agencies_file_keeps_its_key_names(redis_server, platform):
    """One department file, no new setting: the same keys as before agencies existed, so an
    upgraded single-agency deployment finds its queue, staff and reports where they were."""
    settings = settings_for(redis_server, DEAD_RASA, platform.url)
    deployment = load_deployment(settings)
    assert deployment.single and deployment.agencies[0].id == ""
    assert (keys.SINGLE.queue, keys.SINGLE.work, keys.SINGLE.staff("a"),
            keys.SINGLE.audit_day("2026-11-30"), keys.SINGLE.events) == (
        "beacon:queue", "beacon:work", "beacon:staff:a", "beacon:audit_day:2026-11-30",
        "beacon:events")
    # Every account is its one agency's, and replies go with the environment's tokens.
    assert deployment.for_account("messenger", "123").credentials.meta_page_access_token \
        == "page-token"
    assert deployment.webchat_account("anything") == "web"
    assert deployment.agencies[0].console_log == "console"


def test_an_agencies_file_maps_accounts_tokens_and_retention(redis_server, platform, tmp_path,
                                                             env_tokens):
    settings = county_settings(redis_server, platform, tmp_path)
    deployment = load_deployment(settings)
    harbor, bayview = deployment.get("harbor"), deployment.get("bayview")
    assert deployment.for_conversation(conv(PAGE_A, "x")) is harbor
    assert deployment.for_conversation(conv(PAGE_B, "x")) is bayview
    assert deployment.for_conversation(conv(PAGE_NOBODY, "x")) is None
    assert bayview.department.department.short_name == "Bayview PD"
    assert harbor.credentials.meta_page_access_token == "page-token-harbor"
    assert bayview.retention_seconds == 30 * 86400
    assert harbor.retention_seconds == settings.retention_seconds
    assert bayview.keys.queue == "beacon:agency:bayview:queue"
    assert deployment.webchat_account("bayview") == "bayview"
    assert deployment.webchat_account("nope") is None and deployment.webchat_account(None) is None


@pytest.mark.parametrize("change, message", [
    ({"bayview": {"accounts": {"messenger": [PAGE_A]}}}, "is listed by both"),
    ({"bayview": {"accounts": {"fax": ["1"]}}}, "unknown channel 'fax'"),
    ({"bayview": {"accounts": {"messenger": ["12/../x"]}}}, "must be 1-64"),
    ({"bayview": {"department": "missing.yml"}}, "agency bayview"),
    ({"bayview": {"credentials": {"meta_page_access_token": "NOT_SET_ANYWHERE"}}},
     "NOT_SET_ANYWHERE, which is not set"),
    ({"bayview": {"credentials": {"page_token": "X"}}}, "unknown credential 'page_token'"),
    ({"bayview": {"retention_days": 0}}, "must be at least 1"),
])
def test_a_bad_agencies_file_is_refused_naming_the_field(redis_server, platform, tmp_path,
                                                         env_tokens, change, message):
    path = write_county(tmp_path, **change)
    settings = settings_for(redis_server, DEAD_RASA, platform.url)
    with pytest.raises(AgenciesFileError, match=re.escape(message)):
        load_agencies(path, settings)


def test_an_agency_id_that_could_shape_a_key_is_refused(redis_server, platform, tmp_path,
                                                        env_tokens):
    path = write_county(tmp_path)
    county = yaml.safe_load(path.read_text())
    county["agencies"]["Bay:view*"] = county["agencies"].pop("bayview")
    path.write_text(yaml.safe_dump(county))
    with pytest.raises(AgenciesFileError, match="lowercase letters"):
        load_agencies(path, settings_for(redis_server, DEAD_RASA, platform.url))


# -- the gateway ------------------------------------------------------------------------------

async def test_each_message_is_answered_by_its_own_agency(county, platform, redis):
    """An emergency to Harbor's page gets the notice with Harbor's token; a question to
    Bayview's page gets Bayview's words with Bayview's token; each is queued in its own
    agency's queue only. A page no agency lists gets nothing and nothing is stored."""
    assert (await post_meta(county, PAGE_A, "ana", "someone is breaking into my house right "
                            "now")).status == 200
    assert (await post_meta(county, PAGE_B, "ben", "what is your non emergency number"
                            )).status == 200
    ignored = await post_meta(county, PAGE_NOBODY, "cid", "hello, anyone?")
    assert ignored.status == 200 and (await ignored.json())["ignored"] == 1

    def to(name):
        return [s for s in platform.sent if s["body"]["recipient"]["id"] == psid(name)]

    await platform.wait_for(lambda: to("ana") and to("ben"))
    await asyncio.sleep(1.0)
    assert {s["token"] for s in to("ana")} == {"page-token-harbor"}
    assert {s["token"] for s in to("ben")} == {"page-token-bayview"}
    assert "911" in to("ana")[0]["body"]["message"]["text"]
    ana_text = " ".join(s["body"]["message"]["text"] for s in to("ana"))
    ben_text = " ".join(s["body"]["message"]["text"] for s in to("ben"))
    assert "Harbor City PD" in ana_text and "Bayview" not in ana_text
    assert "Bayview PD" in ben_text and "(555) 777-0100" in ben_text
    assert "Harbor" not in ben_text
    assert not to("cid")
    harbor, bayview = keys.AgencyKeys("harbor"), keys.AgencyKeys("bayview")
    await asyncio.sleep(0.5)
    assert await redis.zrange(harbor.queue, 0, -1) == [conv(PAGE_A, "ana")]
    assert await redis.zrange(bayview.queue, 0, -1) == [conv(PAGE_B, "ben")]
    assert not await redis.exists(keys.SINGLE.queue)
    assert not await redis.exists(keys.conversation(conv(PAGE_NOBODY, "cid")))
    # Each agency's report index and retention: Bayview keeps its records 30 days.
    assert 0 < await redis.ttl(keys.conversation(conv(PAGE_B, "ben"))) <= 30 * 86400
    assert await redis.ttl(keys.conversation(conv(PAGE_A, "ana"))) > 30 * 86400
    days = await redis.keys("beacon:agency:bayview:audit_day:*")
    assert days and conv(PAGE_B, "ben") in await redis.smembers(days[0])
    assert conv(PAGE_A, "ana") not in await redis.smembers(days[0])


async def test_metrics_carry_the_agency(county, platform, redis):
    await post_meta(county, PAGE_B, "eve", "there is a man with a gun outside my door")
    for _ in range(100):
        if await redis.zcard(keys.AgencyKeys("bayview").queue):
            break
        await asyncio.sleep(0.1)
    text = await (await county.get("/metrics")).text()
    assert 'beacon_queue_depth{agency="bayview",priority="urgent"} 1.0' in text
    assert 'beacon_queue_depth{agency="harbor",priority="urgent"} 0.0' in text
    assert re.search(r'beacon_messages_in_total\{agency="bayview",channel="messenger"\} [1-9]',
                     text)


async def test_web_chat_names_its_agency(county, redis):
    session = "s" * 20
    sent = await county.post("/chat/api/messages", json={
        "session": session, "text": "what time does the lobby open", "agency": "bayview"})
    assert sent.status == 202
    for body in ({"session": session, "text": "hi"},
                 {"session": session, "text": "hi", "agency": "nowhere"}):
        refused = await county.post("/chat/api/messages", json=body)
        assert refused.status == 404, body
    for _ in range(100):
        if await redis.zscore(keys.AgencyKeys("bayview").queue, f"webchat:bayview:{session}"):
            break
        await asyncio.sleep(0.1)
    assert await redis.zscore(keys.AgencyKeys("bayview").queue, f"webchat:bayview:{session}")


async def test_presence_is_per_agency(county, platform, redis):
    """Harbor's officer on duty does not make Bayview's page say someone is watching."""
    await console_login(county, "harbor")
    await StaffStore(redis, 3600, keys.AgencyKeys("harbor")).names()
    from bot.presence import Presence
    await Presence(redis).set_on_duty("alice", 120, keys.AgencyKeys("harbor"))
    assert not await Presence(redis).is_monitoring(keys.AgencyKeys("bayview"))
    await post_meta(county, PAGE_B, "dee", "can i get a copy of my accident report")
    await platform.wait_for(lambda: any(s["body"]["recipient"]["id"] == psid("dee")
                                        for s in platform.sent))
    await asyncio.sleep(1.0)
    texts = " ".join(s["body"]["message"]["text"] for s in platform.sent
                     if s["body"]["recipient"]["id"] == psid("dee"))
    assert "not monitored 24/7" in texts


# -- fair turns ---------------------------------------------------------------------------------

async def test_workers_take_turns_between_agencies(redis, redis_server, platform, tmp_path,
                                                   env_tokens):
    """Harbor has 200 conversations waiting for a worker (a flood), Bayview 2: Bayview's
    both come out within the next four pops, not after Harbor's 200."""
    deployment = load_deployment(county_settings(redis_server, platform, tmp_path))
    inbox = Inbox(redis, dedupe_ttl=60, deployment=deployment)
    harbor, bayview = deployment.get("harbor").keys, deployment.get("bayview").keys
    await redis.lpush(harbor.work, *[conv(PAGE_A, f"flood{i}") for i in range(200)])
    await redis.lpush(bayview.work, conv(PAGE_B, "b1"), conv(PAGE_B, "b2"))
    popped = [await inbox.next_conversation(timeout=1) for _ in range(4)]
    assert sorted(c for c in popped if c.startswith(f"messenger:{PAGE_B}")) == sorted(
        [conv(PAGE_B, "b1"), conv(PAGE_B, "b2")])
    # Alone, an agency's work comes out first come, first served.
    rest = [await inbox.next_conversation(timeout=1) for _ in range(3)]
    assert all(c.startswith(f"messenger:{PAGE_A}") for c in rest)


# -- the console ----------------------------------------------------------------------------------

async def test_staff_see_only_their_own_agency(county, platform, redis):
    """Signed in to Harbor: Harbor's queue, conversations, search, outbox and reports only;
    Bayview's conversation is unknown (404) to every route, bulk resolve leaves it alone,
    and Bayview's password does not open Harbor's account of the same name."""
    await post_meta(county, PAGE_A, "ana", "someone is breaking into my house right now")
    await post_meta(county, PAGE_B, "ben", "a man is waving a gun outside the school")
    b_conv = conv(PAGE_B, "ben")
    for _ in range(100):
        if await redis.zscore(keys.AgencyKeys("bayview").queue, b_conv) and await redis.zscore(
                keys.AgencyKeys("harbor").queue, conv(PAGE_A, "ana")):
            break
        await asyncio.sleep(0.1)
    assert await console_login(county, "harbor", password="bayview's own pass") is None
    assert await console_login(county, "nowhere") is None
    csrf = await console_login(county, "harbor")
    assert csrf
    headers = {"X-CSRF-Token": csrf}
    queue = await (await county.get("/console/api/queue")).json()
    assert [c["id"] for c in queue["waiting"]] == [conv(PAGE_A, "ana")]
    listed = await (await county.get("/console/api/conversations")).json()
    assert [c["id"] for c in listed["items"]] == [conv(PAGE_A, "ana")]
    found = await (await county.get("/console/api/conversations",
                                    params={"q": "gun"})).json()
    assert found["total"] == 0
    for method, path in [("GET", f"/console/api/conversations/{b_conv}"),
                         ("GET", f"/console/api/conversations/{b_conv}/export"),
                         ("POST", f"/console/api/conversations/{b_conv}/claim"),
                         ("POST", f"/console/api/conversations/{b_conv}/resolve"),
                         ("POST", f"/console/api/conversations/{b_conv}/reply"),
                         ("POST", f"/console/api/conversations/{b_conv}/notes")]:
        response = await county.request(method, path, headers=headers,
                                        json={"text": "x"} if method == "POST" else None)
        assert response.status == 404, (method, path, response.status)
    bulk = await county.post("/console/api/bulk-resolve", headers=headers,
                             json={"ids": [b_conv], "reason": "spam"})
    assert (await bulk.json())["refused"] == {b_conv: "no such conversation"}
    assert (await redis.hget(keys.conversation(b_conv), "status")) == "waiting"
    outbox = (await (await county.get("/console/api/outbox")).json())["outbox"]
    assert all(e["conversation"] != b_conv for e in outbox)
    report = await (await county.get("/console/api/reports")).json()
    assert report["messages"]["total"] == 1, report["messages"]
    # Bayview's own alice sees Bayview's.
    other = county.session.cookie_jar
    other.clear()
    assert await console_login(county, "bayview", password="bayview's own pass")
    queue = await (await county.get("/console/api/queue")).json()
    assert [c["id"] for c in queue["waiting"]] == [b_conv]


async def test_a_consoles_events_are_its_agencys_own(county, redis):
    csrf = await console_login(county, "harbor")
    assert csrf
    stream = await county.get("/console/api/events")
    first = await asyncio.wait_for(stream.content.readline(), 10)
    assert b"hello" in first or first.strip() == b""
    await redis.publish(keys.AgencyKeys("bayview").events,
                        json.dumps({"type": "message", "conversation": "bayview-secret"}))
    await redis.publish(keys.AgencyKeys("harbor").events,
                        json.dumps({"type": "message", "conversation": "harbor-own"}))
    seen = b""
    while b"harbor-own" not in seen:
        seen += await asyncio.wait_for(stream.content.readline(), 10)
    assert b"bayview-secret" not in seen
    stream.close()


# -- the browser --------------------------------------------------------------------------------

async def test_browser_agency_staff_cannot_see_another_agencys_queue_or_reports(
        aiohttp_server, redis, redis_server, platform, tmp_path, env_tokens):
    settings = county_settings(redis_server, platform, tmp_path)
    await StaffStore(redis, 3600, keys.AgencyKeys("harbor")).add("alice", PASSWORD, "supervisor")
    server = await aiohttp_server(create_app(settings))
    base = str(server.make_url("")).rstrip("/")
    from aiohttp import ClientSession
    async with ClientSession() as http:
        for page, name, text in [(PAGE_A, "ana", "my neighbors dog got out again, whos that"),
                                 (PAGE_B, "ben", "bayview only: the red truck on 5th st")]:
            item = messenger_item(name, text)
            item["recipient"]["id"] = page
            body, headers = signed(messenger_payload(item, page=page))
            assert (await http.post(base + "/webhooks/meta", data=body,
                                    headers=headers)).status == 200
    for _ in range(100):
        if await redis.zcard(keys.AgencyKeys("bayview").queue) and await redis.zcard(
                keys.AgencyKeys("harbor").queue):
            break
        await asyncio.sleep(0.1)
    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        await page.goto(base + "/console/login")
        assert await page.locator("select[name=agency] option").count() == 2
        await sign_in(page, base, "alice", agency="harbor")
        await page.get_by_text("neighbors dog").first.wait_for(timeout=15000)
        assert await page.get_by_text("bayview only").count() == 0
        status = await page.evaluate(
            f"fetch('/console/api/conversations/{conv(PAGE_B, 'ben')}').then(r => r.status)")
        assert status == 404
        await page.goto(base + "/console/reports")
        await page.wait_for_function(
            "document.querySelectorAll('canvas, svg').length > 0", timeout=15000)
        totals = await page.evaluate(
            "fetch('/console/api/reports').then(r => r.json()).then(j => j.messages)")
        assert totals["total"] == 1, totals
        assert "Harbor City PD" in await page.content()
        await page.screenshot(path=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                "beacon-agency-reports.png"))


# -- found by the live attack -----------------------------------------------------------------

async def test_an_agencys_console_log_is_no_conversation(county, redis):
    """A staff member exported their agency's console log (sign-ins, failed names, staff
    changes) through the conversation routes: the id "console:<agency>:log" has a
    conversation's shape."""
    await StaffStore(redis, 3600, keys.AgencyKeys("harbor")).add("sam", PASSWORD)
    csrf = await console_login(county, "harbor", "sam")
    for path in ("/console/api/conversations/console:harbor:log/export",
                 "/console/api/conversations/console:harbor:log"):
        assert (await county.get(path)).status == 404, path
    claim = await county.post("/console/api/conversations/console:harbor:log/claim",
                              headers={"X-CSRF-Token": csrf})
    assert claim.status == 404


async def test_revoking_or_removing_staff_takes_them_off_duty_in_their_agency(county, redis):
    from bot.presence import Presence

    harbor = keys.AgencyKeys("harbor")
    store = StaffStore(redis, 3600, harbor)
    await store.add("sam", PASSWORD)
    await store.add("tom", PASSWORD)
    for name in ("sam", "tom"):
        await Presence(redis).set_on_duty(name, 120, harbor)
    csrf = await console_login(county, "harbor")
    headers = {"X-CSRF-Token": csrf}
    assert (await county.post("/console/api/staff/members/sam/revoke",
                              headers=headers)).status == 200
    assert (await county.post("/console/api/staff/members/tom/remove",
                              headers=headers)).status == 200
    assert await Presence(redis).on_duty(harbor) == []


async def test_the_intake_lane_takes_turns_between_agencies():
    """One agency's viral post queued 1,200 safety checks on the one CPU lane; another
    agency's emergency waited behind all of them (10-13 s live). With turns, the other
    agency's check runs in the next batch after the one running."""
    from bot.cpu_lane import BATCH, CpuLane

    lane = CpuLane()
    finished: list[str] = []
    gate = threading.Event()

    def work(names: list[str]) -> list[str]:
        gate.wait(5)  # the flood and the other agency queue while the first batch runs
        finished.extend(names)
        return names

    first = asyncio.create_task(lane.run(0, work, "harbor-0", flow="harbor"))
    await asyncio.sleep(0.05)
    flood = [asyncio.create_task(lane.run(0, work, f"harbor-{i}", flow="harbor"))
             for i in range(1, 200)]
    await asyncio.sleep(0.05)
    other = asyncio.create_task(lane.run(0, work, "bayview-0", flow="bayview"))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, other, *flood)
    lane.close()
    assert finished.index("bayview-0") <= BATCH, finished[:6]
    # Within a flow, first come, first served.
    harbor = [n for n in finished if n.startswith("harbor")]
    assert harbor == [f"harbor-{i}" for i in range(200)]


async def test_an_agencys_web_chat_flood_does_not_cost_its_messenger_turns():
    """Turns are counted per lane: a web-chat flood on Harbor (a lane below) gave Harbor's
    Messenger checks tags behind all of Bayview's queued Messenger checks (48 ms to
    1.26 s; found by the live attack)."""
    from bot.cpu_lane import BATCH, LANE_PLATFORM, LANE_WEB_CHAT, CpuLane

    lane = CpuLane()
    finished: list[str] = []
    gate = threading.Event()

    def work(names: list[str]) -> list[str]:
        gate.wait(5)
        finished.extend(names)
        return names

    first = asyncio.create_task(lane.run(LANE_PLATFORM, work, "bayview-0", flow="bayview"))
    await asyncio.sleep(0.05)
    web = [asyncio.create_task(lane.run(LANE_WEB_CHAT, work, f"harbor-web-{i}", flow="harbor"))
           for i in range(300)]
    bayview = [asyncio.create_task(lane.run(LANE_PLATFORM, work, f"bayview-{i}",
                                            flow="bayview")) for i in range(1, 200)]
    await asyncio.sleep(0.05)
    harbor = asyncio.create_task(lane.run(LANE_PLATFORM, work, "harbor-messenger",
                                          flow="harbor"))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, harbor, *web, *bayview)
    lane.close()
    assert finished.index("harbor-messenger") <= BATCH, finished[:20]


async def test_a_page_moved_to_another_agency_takes_its_open_conversations(
        redis, redis_server, platform, tmp_path, env_tokens):
    """Bayview's page moved to Harbor in the agencies file: after the restart its waiting,
    held and pending conversations are Harbor's, in their place in line (they stayed in
    Bayview's lists, where no action worked and Harbor never saw them). Turning an agencies
    file on for a one-agency deployment moves its open queue the same way."""
    from bot.queue import HumanQueue

    bayview, harbor = keys.AgencyKeys("bayview"), keys.AgencyKeys("harbor")
    waiting, held, single = conv(PAGE_B, "w1"), conv(PAGE_B, "h1"), conv(PAGE_A, "old")
    await redis.zadd(bayview.queue, {waiting: 5})
    await redis.zadd(bayview.claimed, {held: 7})
    await redis.sadd(bayview.pending, waiting)
    await redis.zadd(keys.SINGLE.queue, {single: 3})
    path = write_county(tmp_path, harbor={"accounts": {"messenger": [PAGE_A, PAGE_B]}},
                        bayview={"accounts": {"webchat": ["bayview"]}})
    deployment = load_agencies(path, settings_for(redis_server, DEAD_RASA, platform.url))
    queue = HumanQueue(redis, retention_seconds=3600, deployment=deployment)
    assert await queue.rehome() == 4
    assert await redis.zrange(harbor.queue, 0, -1, withscores=True) == [(single, 3.0),
                                                                        (waiting, 5.0)]
    assert await redis.zrange(harbor.claimed, 0, -1, withscores=True) == [(held, 7.0)]
    assert await redis.smembers(harbor.pending) == {waiting}
    assert not await redis.exists(bayview.queue, bayview.claimed, bayview.pending,
                                  keys.SINGLE.queue)
    assert await queue.rehome() == 0  # every replica runs it at start-up: once is enough


async def test_a_web_chat_session_belongs_to_one_agency(county, redis):
    """One session id used with two agencies' keys read both agencies' replies and opened
    conversations past the per-address limit."""
    session = "z" * 20
    first = await county.post("/chat/api/messages", json={
        "session": session, "text": "hello", "agency": "harbor"})
    assert first.status == 202
    again = await county.post("/chat/api/messages", json={
        "session": session, "text": "hello", "agency": "bayview"})
    assert again.status == 409
    assert not await redis.exists(keys.inbox(f"webchat:bayview:{session}"))
    assert (await county.post("/chat/api/messages", json={
        "session": session, "text": "still me", "agency": "harbor"})).status == 202


async def test_one_agencys_outbox_cannot_push_out_anothers(county, redis):
    from bot.delivery import OUTBOX_LIMIT

    services = county.server.app[SERVICES]
    await services.delivery.record_outbox(conv(PAGE_B, "kept"), "messenger", "1", "bayview's",
                                          human_agent=False)
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(OUTBOX_LIMIT + 5):
            pipe.rpush(keys.AgencyKeys("harbor").outbox, json.dumps({"text": str(i)}))
        await pipe.execute()
    await services.delivery.record_outbox(conv(PAGE_A, "x"), "messenger", "1", "harbor's",
                                          human_agent=False)
    assert [e["text"] for e in await services.delivery.outbox(
        10, keys.AgencyKeys("bayview"))] == ["bayview's"]
    assert await redis.llen(keys.AgencyKeys("harbor").outbox) == OUTBOX_LIMIT


async def test_the_login_limit_per_address_counts_every_agency(county, redis):
    from bot.console.auth import ADDRESS_ATTEMPTS

    for i in range(ADDRESS_ATTEMPTS):
        agency = ("harbor", "bayview")[i % 2]
        assert await console_login(county, agency, f"guess{i}", "wrong password!") is None
    form = await (await county.get("/console/login")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    refused = await county.post("/console/login", allow_redirects=False, data={
        "csrf": csrf, "agency": "bayview", "name": "alice", "password": "bayview's own pass"})
    assert refused.status == 429


async def test_the_platform_limits_banner_shows_the_agencys_own(county, redis):
    services = county.server.app[SERVICES]
    await services.delivery.limits.block("meta", PAGE_B, 60)
    await console_login(county, "harbor")
    queue = await (await county.get("/console/api/queue")).json()
    assert queue["platform_limits"] == []
    county.session.cookie_jar.clear()
    await console_login(county, "bayview", password="bayview's own pass")
    queue = await (await county.get("/console/api/queue")).json()
    assert [limit["account"] for limit in queue["platform_limits"]] == [PAGE_B]


@pytest.mark.parametrize("text, message", [
    ("agencies:\n  harbor: {department: a.yml, accounts: {messenger: ['1']}}\n"
     "  harbor: {department: b.yml, accounts: {messenger: ['2']}}\n", "'harbor' is given twice"),
    ("agencies:\n  harbor: {department: harbor.yml, retention_days: 1000000000000,"
     " accounts: {messenger: ['1']}}\n", "at most 36500"),
    ("agencies:\n  harbor: {department: harbor.yml, retention_days: 1.9,"
     " accounts: {messenger: ['1']}}\n", "retention_days"),
    ("agencies:\n  harbor: {department: harbor.yml, retention_days: true,"
     " accounts: {messenger: ['1']}}\n", "retention_days"),
    ("agencies:\n  harbor: {department: harbor.yml, accounts: {x: [0x1F]}}\n", "accounts"),
    ("agencies:\n  harbor: {department: ., accounts: {messenger: ['1']}}\n",
     "not a regular file"),
    ("agencies:\n  harbor: {department: /dev/zero, accounts: {messenger: ['1']}}\n",
     "not a regular file"),
    ("agencies: " + "[" * 5000 + "]" * 5000 + "\n", "agencies"),
])
def test_a_hostile_agencies_file_is_refused_with_a_clear_message(
        redis_server, platform, tmp_path, env_tokens, text, message):
    write_county(tmp_path)  # the department files beside it
    path = tmp_path / "agencies.yml"
    path.write_text(text)
    with pytest.raises(AgenciesFileError, match=re.escape(message)):
        load_agencies(path, settings_for(redis_server, DEAD_RASA, platform.url))


def test_an_agencies_file_that_is_a_device_or_too_big_is_refused(redis_server, platform,
                                                                 tmp_path):
    settings = settings_for(redis_server, DEAD_RASA, platform.url)
    with pytest.raises(AgenciesFileError, match="not a regular file"):
        load_agencies(Path("/dev/zero"), settings)
    big = tmp_path / "big.yml"
    big.write_text("# " + "x" * (2 * 1024 * 1024))
    with pytest.raises(AgenciesFileError, match="larger than"):
        load_agencies(big, settings)
    many = tmp_path / "many.yml"
    many.write_text(yaml.safe_dump({"agencies": {
        f"a{i}": {"department": "x.yml", "accounts": {"messenger": [str(i)]}}
        for i in range(201)}}))
    with pytest.raises(AgenciesFileError, match="at most 200"):
        load_agencies(many, settings)


def test_start_up_says_which_tokens_are_not_used(redis_server, platform, tmp_path, env_tokens,
                                                 caplog):
    """With an agencies file the environment's page token is not used, and an account with
    no token of its agency's sends even the 911 notice to the outbox: both said at start-up."""
    path = write_county(tmp_path, bayview={"credentials": {}})
    with caplog.at_level("WARNING", logger="bot.agencies"):
        load_agencies(path, settings_for(redis_server, DEAD_RASA, platform.url),
                      env={**ENV, "META_PAGE_ACCESS_TOKEN": "page-token"})
    said = caplog.text
    assert "META_PAGE_ACCESS_TOKEN not used" in said
    assert f"agency bayview: messenger account {PAGE_B} has no token" in said
    assert "agency harbor" not in said


def test_the_cli_checks_a_county_and_adds_staff_to_an_agency(redis_server, platform, tmp_path):
    """`python -m bot check` validates every agency's file; `staff add` and `duty` take the
    agency (and refuse to guess it)."""
    from redis import Redis

    from tests.test_cli import run_bot

    env = {**ENV, "BEACON_AGENCIES_FILE": str(write_county(tmp_path)),
           "BEACON_REDIS_URL": redis_server["url"], "BEACON_STAFF_PASSWORD": PASSWORD}
    check = run_bot("check", env=env)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "harbor: OK (Harbor City Police Department; 2 accounts)" in check.stdout
    assert "bayview: OK (Bayview Police Department; 2 accounts)" in check.stdout
    added = run_bot("staff", "add", "kim", "--agency", "bayview", env=env)
    assert added.returncode == 0, added.stderr[-2000:]
    with Redis.from_url(redis_server["url"], decode_responses=True) as db:
        assert db.sismember("beacon:agency:bayview:staff", "kim")
        assert not db.sismember("beacon:agency:harbor:staff", "kim")
    unsure = run_bot("staff", "add", "kim", env=env)
    assert unsure.returncode == 2 and "give --agency, one of: bayview, harbor" in unsure.stderr
    duty = run_bot("duty", "on", "kim", "--agency", "bayview", env=env)
    assert json.loads(duty.stdout)["on_duty"] == ["kim"]
    broken = write_county(tmp_path, bayview={"accounts": {"messenger": [PAGE_A]}})
    refused = run_bot("check", env={**env, "BEACON_AGENCIES_FILE": str(broken)})
    assert refused.returncode == 2 and "is listed by both" in refused.stderr
