"""Issue 11, item 0: a console for a busy shift. Filters, transcript search, paging past any
number of conversations, "mine", bulk resolve and private notes over HTTP; then the issue's
scenario in headless Chromium with 500 conversations waiting, the desktop and phone layouts,
and the web chat sending on Enter."""

from __future__ import annotations

import json
import os
import time

from bot import keys
from bot.queue import Entry, HumanQueue
from tests.test_console import chromium, login, sign_in
from tests.test_console import server as server  # noqa: F401 - the fixture

SHOTS = os.environ.get("TMPDIR", "/tmp")


async def fill(redis, n: int, *, start: int = 0, channel: str = "messenger",
               outcome: str = "human", language: str = "en", urgent_every: int = 0,
               text=lambda i: f"question number {i} about parking",
               age_s=lambda i: 0.0) -> list[str]:
    """``n`` waiting conversations straight through the queue API (no webhooks: fast)."""
    queue = HumanQueue(redis, retention_seconds=3600)
    now = time.time()
    ids = []
    for i in range(start, start + n):
        urgent = bool(urgent_every) and i % urgent_every == 0
        conversation = f"{channel}:acct:{i:05d}"
        when = now - age_s(i) - (start + n - i) / 1000  # distinct waiting-since times
        await queue.enqueue(conversation, priority=0 if urgent else 1, now=when, fields={
            "channel": channel, "sender": f"{i:05d}", "language": language,
            "outcome": "emergency" if urgent else outcome, "preview": f"conversation {i}"},
            entries=[Entry("citizen", text(i), when, id=f"m{i}")])
        ids.append(conversation)
    return ids


async def listing(client, **query) -> dict:
    response = await client.get("/console/api/conversations",
                                params={k: str(v) for k, v in query.items()})
    assert response.status == 200, await response.text()
    return await response.json()


async def test_new_routes_need_a_session_and_csrf(aiohttp_client, server, redis):  # noqa: F811
    await fill(redis, 1)
    client = await aiohttp_client(server)
    for method, path in [("GET", "/console/api/conversations"),
                         ("POST", "/console/api/bulk-resolve"),
                         ("POST", "/console/api/conversations/messenger:acct:00000/notes")]:
        assert (await client.request(method, path, json={})).status == 401, path
    await login(client)
    for path, body in [("/console/api/bulk-resolve", {"ids": ["messenger:acct:00000"],
                                                       "reason": "spam"}),
                       ("/console/api/conversations/messenger:acct:00000/notes",
                        {"text": "hello"})]:
        assert (await client.post(path, json=body)).status == 403, path
    assert await redis.hget(keys.conversation("messenger:acct:00000"), "status") == "waiting"
    assert not await redis.exists(keys.notes("messenger:acct:00000"))


async def test_each_filter(aiohttp_client, server, redis):  # noqa: F811
    await fill(redis, 10, urgent_every=5)  # 2 urgent (0, 5), 8 normal
    await fill(redis, 4, start=100, channel="webchat", outcome="report", language="es")
    await fill(redis, 3, start=200, channel="x", age_s=lambda i: 3600)
    client = await aiohttp_client(server)
    await login(client)
    everything = await listing(client)
    assert everything["total"] == 17 and everything["view"] == "waiting"
    # Urgent first, then oldest first: the queue's own order.
    assert [c["id"] for c in everything["items"][:2]] == ["messenger:acct:00000",
                                                          "messenger:acct:00005"]
    urgent = await listing(client, urgent=1)
    assert urgent["total"] == 2 and all(c["priority"] == 0 for c in urgent["items"])
    report = await listing(client, outcome="report")
    assert report["total"] == 4 and {c["outcome"] for c in report["items"]} == {"report"}
    assert report["scan"]["complete"] and report["scan"]["examined"] == 17
    x = await listing(client, channel="x")
    assert [c["channel"] for c in x["items"]] == ["x"] * 3
    spanish = await listing(client, language="es")
    assert {c["id"] for c in spanish["items"]} == {f"webchat:acct:{i:05d}"
                                                  for i in range(100, 104)}
    older = await listing(client, older_than=30)
    assert older["total"] == 3 and all(c["waiting_seconds"] >= 1800 for c in older["items"])
    # Filters combine.
    assert (await listing(client, channel="messenger", urgent=1, older_than=30))["total"] == 0
    assert (await listing(client, channel="webchat", language="es", outcome="report"))[
        "total"] == 4
    for bad in [{"outcome": "nonsense"}, {"channel": "fax"}, {"language": "english"},
                {"older_than": "soon"}, {"older_than": -1}, {"view": "everyone"},
                {"limit": 0}, {"limit": 201}, {"offset": -1}, {"q": "x"}, {"q": "y" * 101}]:
        response = await client.get("/console/api/conversations",
                                    params={k: str(v) for k, v in bad.items()})
        assert response.status == 400, bad
        assert "error" in await response.json()


async def test_search_over_transcripts_is_bounded_and_says_so(aiohttp_client, server, redis,
                                                              monkeypatch):
    await fill(redis, 60, text=lambda i: f"my bicycle was stolen from the garage {i}"
               if i == 42 else f"question {i} about a parking ticket")
    client = await aiohttp_client(server)
    await login(client)
    found = await listing(client, q="BICYCLE")  # case does not matter
    assert [c["id"] for c in found["items"]] == ["messenger:acct:00042"]
    assert "bicycle was stolen" in found["items"][0]["hit"]
    assert found["search"] == {"query": "BICYCLE", "transcripts_read": 60, "cap": 2000,
                               "entries_per_transcript": 500, "complete": True}
    # Staff replies are searched too; the preview is not what matched here.
    queue = HumanQueue(redis, retention_seconds=3600)
    await queue.claim("messenger:acct:00007", "alice")
    await queue.reply("messenger:acct:00007", "alice", "Please bring the serial number.")
    held = await listing(client, view="mine", q="serial number")
    assert [c["id"] for c in held["items"]] == ["messenger:acct:00007"]
    assert (await listing(client, q="serial number"))["total"] == 0  # not waiting any more
    # Bounded: past the cap, the answer says the search did not read everything.
    monkeypatch.setattr("bot.queue_view.MAX_TRANSCRIPTS", 10)
    capped = await listing(client, q="parking")
    assert capped["total"] == 10 and capped["search"]["transcripts_read"] == 10
    assert capped["search"]["complete"] is False


async def test_paging_past_a_hundred(aiohttp_client, server, redis):
    ids = await fill(redis, 250, urgent_every=10)
    order = await redis.zrange(keys.SINGLE.queue, 0, -1)
    assert sorted(order) == sorted(ids)
    client = await aiohttp_client(server)
    await login(client)
    seen = []
    for offset in range(0, 250, 40):
        page = await listing(client, offset=offset, limit=40)
        assert page["total"] == 250
        seen += [c["id"] for c in page["items"]]
    assert seen == order
    last = await listing(client, offset=240, limit=40)
    assert [c["id"] for c in last["items"]] == order[240:]
    assert (await listing(client, offset=250, limit=40))["items"] == []
    # Across the end of the urgent band (25 urgent first): exact, no repeats, no gaps.
    normal = [c for c in order if not c.endswith("0")]
    page = await listing(client, older_than=0, offset=20, limit=15)
    assert [c["id"] for c in page["items"]] == order[20:35]
    # A filter needing hash fields pages the same way.
    page = await listing(client, outcome="human", offset=200, limit=50)
    assert page["total"] == 225 and [c["id"] for c in page["items"]] == normal[200:]
    # The existing queue route pages past 100 too.
    queue = await (await client.get("/console/api/queue",
                                    params={"offset": "200", "limit": "100"})).json()
    assert [c["id"] for c in queue["waiting"]] == order[200:]


async def test_mine_lists_what_the_officer_holds(aiohttp_client, server, redis):  # noqa: F811
    ids = await fill(redis, 6, urgent_every=3)
    queue = HumanQueue(redis, retention_seconds=3600)
    for conversation in ids[:2]:
        await queue.claim(conversation, "alice")
    await queue.claim(ids[2], "bob")
    client = await aiohttp_client(server)
    await login(client, "alice")
    mine = await listing(client, view="mine")
    assert {c["id"] for c in mine["items"]} == set(ids[:2]) and mine["total"] == 2
    assert all(c["claimed_by"] == "alice" for c in mine["items"])
    assert (await listing(client, view="mine", urgent=1))["total"] == 1  # ids[0]
    assert (await listing(client, view="held"))["total"] == 3
    bob = await aiohttp_client(server)
    await login(bob, "bob")
    assert [c["id"] for c in (await listing(bob, view="mine"))["items"]] == [ids[2]]


async def test_bulk_resolve_writes_the_reason_to_each_audit_log(aiohttp_client, server,
                                                                redis, platform):
    ids = await fill(redis, 30, text=lambda i: "buy cheap followers at spam.example")
    queue = HumanQueue(redis, retention_seconds=3600)
    await queue.claim(ids[0], "bob")     # someone else's: left alone
    await queue.claim(ids[1], "alice")   # her own: resolved with the rest
    client = await aiohttp_client(server)
    csrf = await login(client, "alice")
    headers = {"X-CSRF-Token": csrf}
    url = "/console/api/bulk-resolve"
    for bad in [{}, {"ids": [], "reason": "spam"}, {"ids": "messenger:acct:00002",
                                                    "reason": "spam"},
                {"ids": ids[2:3]}, {"ids": ids[2:3], "reason": "   "},
                {"ids": ids[2:3], "reason": "x" * 301}, {"ids": [7], "reason": "spam"},
                {"ids": ["../../etc"], "reason": "spam"},
                {"ids": [f"messenger:acct:{i}" for i in range(201)], "reason": "spam"}]:
        response = await client.post(url, json=bad, headers=headers)
        assert response.status == 400, bad
    assert (await client.post(url, data="not json", headers=headers)).status == 400
    assert await queue.waiting_count() == 28  # nothing happened
    found = await listing(client, q="cheap followers", limit=200)
    chosen = [c["id"] for c in found["items"]] + ids[:2] + ids[5:6]  # a repeat, too
    response = await client.post(url, json={"ids": chosen, "reason": "spam flood: followers"},
                                 headers=headers)
    assert response.status == 200
    body = await response.json()
    assert body["refused"] == {ids[0]: "held by bob"}
    assert set(body["resolved"]) == set(ids[1:])
    assert await queue.waiting_count() == 0
    for conversation in ids[1:]:
        assert await redis.hget(keys.conversation(conversation), "status") == "resolved"
        audit = [json.loads(e) for e in await redis.lrange(keys.audit(conversation), 0, -1)]
        assert audit[-1]["action"] == "bulk_resolve" and audit[-1]["actor"] == "alice"
        assert audit[-1]["detail"] == "spam flood: followers"
    assert await redis.hget(keys.conversation(ids[0]), "status") == "claimed"
    console = [json.loads(e) for e in await redis.lrange(keys.audit("console"), 0, -1)]
    assert console[-1]["action"] == "bulk_resolve" and "29 resolved" in console[-1]["detail"]
    # Already resolved: refused, not resolved twice.
    again = await (await client.post(url, json={"ids": ids[1:3], "reason": "again"},
                                     headers=headers)).json()
    assert again == {"resolved": [], "refused": {ids[1]: "conversation is resolved",
                                                 ids[2]: "conversation is resolved"}}
    assert platform.sent == []  # nothing went to any citizen


async def test_notes_stay_between_staff(aiohttp_client, server, redis, platform):
    queue = HumanQueue(redis, retention_seconds=3600)
    conversation = "webchat:web:abcdefghijklmnop1234"
    await queue.enqueue(conversation, priority=1, fields={"channel": "webchat",
                                                          "sender": "abcdefghijklmnop1234"},
                        entries=[Entry("citizen", "someone keeps calling me", time.time())])
    await queue.claim(conversation, "bob")
    client = await aiohttp_client(server)
    csrf = await login(client, "alice")  # notes need no claim: a colleague can leave one
    headers = {"X-CSRF-Token": csrf}
    url = f"/console/api/conversations/{conversation}/notes"
    note = "Caller known to us, see report 2025-1187; do not give out the address."
    response = await client.post(url, json={"text": note}, headers=headers)
    assert response.status == 200
    shown = await (await client.get(f"/console/api/conversations/{conversation}")).json()
    assert [(n["staff"], n["text"]) for n in shown["notes"]] == [("alice", note)]
    assert note not in json.dumps(shown["transcript"])
    assert [e.text for e in await queue.transcript(conversation)] == ["someone keeps calling me"]
    audit = [json.loads(e) for e in await redis.lrange(keys.audit(conversation), 0, -1)]
    assert audit[-1] == {**audit[-1], "actor": "alice", "action": "note", "detail": note}
    # Never sent: not to the platform, not to the web chat page.
    assert platform.sent == []
    assert not await redis.exists(keys.webchat("abcdefghijklmnop1234"))
    assert await redis.ttl(keys.notes(conversation)) > 0
    for bad in [{}, {"text": " "}, {"text": "n" * 2001}, {"text": 5}]:
        assert (await client.post(url, json=bad, headers=headers)).status == 400, bad
    missing = await client.post("/console/api/conversations/messenger:1:2/notes",
                                json={"text": "hello"}, headers=headers)
    assert missing.status == 404


# -- the scenario in Chromium -----------------------------------------------------------

async def test_a_busy_shift_in_chromium(server, platform, redis, aiohttp_client):  # noqa: F811
    """500 conversations waiting: the officer goes on duty (notifications granted), filters
    to urgent ones, finds one by a word of its transcript, pages to the end, and is alerted
    (sound and notification) when a new emergency arrives. The desktop layout puts the queue
    and the conversation side by side; the phone layout is one column."""

    from tests.gateway_support import messenger_item, messenger_payload, signed

    def text(i: int) -> str:
        return ("there is a strange smell of gas near the school" if i == 317
                else f"question {i} about a parking permit")

    ids = await fill(redis, 500, urgent_every=25, text=text)  # 20 urgent
    order = await redis.zrange(keys.SINGLE.queue, 0, -1)
    base = str(server.make_url("")).rstrip("/")
    webhooks = await aiohttp_client(server)
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1366, "height": 800})
        await context.grant_permissions(["notifications"], origin=base)
        page = await context.new_page()
        await page.add_init_script("""
            window.beaconNotifications = [];
            const Real = window.Notification;
            window.Notification = class extends Real {
              constructor(title, options) { super(title, options);
                window.beaconNotifications.push(title); }
            };
            window.Notification.requestPermission = Real.requestPermission.bind(Real);
            Object.defineProperty(window.Notification, "permission",
                                  { get: () => Real.permission });
        """)
        await sign_in(page, base, "alice")
        await page.locator("#waiting .card").first.wait_for(timeout=15000)
        assert await page.inner_text("#waiting-count") == "500"
        assert await page.evaluate("Notification.permission") == "granted"
        await page.check("#duty")
        await page.wait_for_function("() => document.body.dataset.duty === 'on'")

        # The page is one screen: the list scrolls inside its pane, not the page.
        assert await page.evaluate(
            "document.documentElement.scrollHeight <= window.innerHeight + 1")

        # Urgent only: 20, every one urgent.
        await page.check("#f-urgent")
        await page.wait_for_function(
            "() => document.getElementById('waiting-count').textContent === '20'")
        cards = page.locator("#waiting .card")
        assert await cards.count() == 20
        assert await page.locator("#waiting .card:not(.urgent)").count() == 0
        await page.uncheck("#f-urgent")
        await page.wait_for_function(
            "() => document.getElementById('waiting-count').textContent === '500'")

        # A word of one transcript (not its preview) finds it.
        await page.fill("#f-q", "gas")
        await page.press("#f-q", "Enter")
        await page.wait_for_function(
            "() => document.getElementById('waiting-count').textContent === '1'")
        hit = page.locator("#waiting .card").first
        assert await hit.get_attribute("data-id") == "messenger:acct:00317"
        assert "smell of gas" in await hit.locator(".hit").inner_text()
        # Opened beside the queue (desktop: side by side).
        await hit.click()
        await page.wait_for_function(
            "() => document.getElementById('transcript').textContent.includes('gas')")
        queue_box = await page.locator("#queue-pane").bounding_box()
        conv_box = await page.locator("#conversation-pane").bounding_box()
        assert conv_box["x"] >= queue_box["x"] + queue_box["width"] - 1, (queue_box,
                                                                         conv_box)
        assert conv_box["y"] < queue_box["y"] + queue_box["height"]
        assert queue_box["width"] >= 300 and conv_box["width"] >= 500
        # A private note for the next officer.
        await page.fill("#note", "Gas company called, on their way.")
        await page.click("#add-note")
        await page.locator("#notes li").first.wait_for(timeout=5000)
        await page.screenshot(path=os.path.join(SHOTS, "beacon-console-desktop.png"))
        await page.fill("#f-q", "")
        await page.press("#f-q", "Enter")
        await page.wait_for_function(
            "() => document.getElementById('waiting-count').textContent === '500'")

        # Page to the end.
        await page.click("#last-page")
        await page.wait_for_function(
            "() => document.getElementById('page-info').textContent.startsWith('476')")
        assert await page.inner_text("#page-info") == "476–500 of 500"
        last = await page.eval_on_selector_all("#waiting .card",
                                               "cs => cs.map(c => c.dataset.id)")
        assert last == order[475:]
        assert await page.is_disabled("#next-page")

        # A new emergency arrives while on duty: a sound and a notification, once.
        assert await page.evaluate("window.beaconAlerts") == 0
        body, headers = signed(messenger_payload(
            messenger_item("citizen-fire", "help my neighbours house is on fire")))
        assert (await webhooks.post("/webhooks/meta", data=body, headers=headers)).ok
        await page.wait_for_function("() => window.beaconAlerts >= 1", timeout=15000)
        await page.wait_for_timeout(1500)  # the worker's own event must not alert again
        assert await page.evaluate("window.beaconAlerts") == 1
        assert await page.evaluate("window.beaconAlertLog[0].sound") is True
        assert await page.evaluate("window.beaconNotifications.length") == 1
        assert "emergency" in (await page.evaluate("window.beaconNotifications[0]")).lower()

        # The phone: one column, the list first, the conversation instead of it.
        phone = await (await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True)).new_page()
        await sign_in(phone, base, "bob")
        await phone.locator("#waiting .card").first.wait_for(timeout=15000)
        pane = await phone.locator("#queue-pane").bounding_box()
        assert pane["width"] >= 390 - 40
        assert await phone.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth + 1")
        # Paged: a screenful of cards at a time, not 9,000 pixels of them.
        assert await phone.evaluate("document.documentElement.scrollHeight") < 6000
        await phone.screenshot(path=os.path.join(SHOTS, "beacon-console-phone.png"),
                               full_page=True)
        await phone.locator("#waiting .card").first.click()
        await phone.locator("#conversation-pane").wait_for(state="visible")
        assert not await phone.is_visible("#queue-pane")
        conv = await phone.locator("#conversation-pane").bounding_box()
        assert conv["width"] >= 390 - 40
        assert ids  # the 500 were there all along


async def test_web_chat_sends_on_enter_in_chromium(server, platform, redis):  # noqa: F811
    """Enter sends, Shift+Enter starts a new line; the page shows a reply is coming; a
    reload keeps both sides of the conversation, a new tab (the next visitor) starts empty."""

    base = str(server.make_url("")).rstrip("/")
    async with chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(base + "/chat")
        await page.click("#text")
        await page.keyboard.type("my bike was stolen")
        await page.keyboard.press("Shift+Enter")
        await page.keyboard.type("last night, from the station")
        assert await page.input_value("#text") == \
            "my bike was stolen\nlast night, from the station"
        assert await page.locator("#log li.me").count() == 0
        await page.keyboard.press("Enter")
        mine = page.locator("#log li.me")
        await mine.first.wait_for(timeout=5000)
        assert await mine.first.inner_text() == \
            "my bike was stolen\nlast night, from the station"
        assert await page.input_value("#text") == ""
        assert await page.evaluate("window.beaconTypingShown") >= 1
        await page.locator("#log li.bot").first.wait_for(timeout=20000)
        await page.wait_for_function("() => document.getElementById('typing').hidden")
        session = await page.evaluate(
            "JSON.parse(sessionStorage.getItem('beacon-chat')).session")
        await page.reload()
        await page.locator("#log li.me").first.wait_for(timeout=5000)
        await page.wait_for_timeout(2000)  # a poll: nothing shown twice
        assert await page.locator("#log li.me").count() == 1
        # Every reply once, after the reload as before it.
        assert await page.locator("#log li.bot").count() == \
            await redis.llen(keys.webchat(session)) > 0
        next_visitor = await context.new_page()
        await next_visitor.goto(base + "/chat")
        await next_visitor.wait_for_timeout(2000)
        assert await next_visitor.locator("#log li").count() == 0
