"""The staff console: sessions, CSRF and ownership over HTTP, then the real thing in a headless
Chromium (Debian's, driven by Playwright): log in, go on duty, see a new emergency appear
without reloading, claim it, reply, resolve."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil

import pytest

from bot import keys
from bot.app import create_app
from bot.console.auth import StaffStore, check_password, hash_password
from tests.gateway_support import (
    DEAD_RASA,
    conv_id,
    messenger_item,
    messenger_payload,
    settings_for,
    signed,
)

PASSWORD = "correct horse battery"
CHROMIUM = os.environ.get("BEACON_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture
async def server(aiohttp_server, redis, redis_server, platform):
    store = StaffStore(redis, 3600)
    await store.add("alice", PASSWORD)
    await store.add("bob", PASSWORD)
    return await aiohttp_server(create_app(settings_for(redis_server, DEAD_RASA, platform.url)))


async def login(client, name: str = "alice") -> str:
    """Log in through the form; returns the session's CSRF token."""
    form = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await form.text()).group(1)
    response = await client.post("/console/login", data={"csrf": csrf, "name": name,
                                                          "password": PASSWORD},
                                 allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/console/"
    page = await (await client.get("/console/")).text()
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_password_hashing():
    stored = hash_password("s3cret-passphrase")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert check_password("s3cret-passphrase", stored)
    assert not check_password("wrong", stored)
    assert not check_password("s3cret-passphrase", "garbage")


async def test_every_console_route_needs_a_session(aiohttp_client, server):
    client = await aiohttp_client(server)
    page = await client.get("/console/", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/console/login"
    for method, path in [("GET", "/console/api/queue"), ("GET", "/console/api/events"),
                         ("POST", "/console/api/duty"), ("GET", "/console/api/outbox"),
                         ("POST", "/console/api/conversations/x/claim"),
                         ("GET", "/console/api/conversations/x/export")]:
        response = await client.request(method, path)
        assert response.status == 401, path


async def test_login_rejects_bad_password_and_missing_csrf(aiohttp_client, server):
    client = await aiohttp_client(server)
    form = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await form.text()).group(1)
    wrong = await client.post("/console/login", data={"csrf": csrf, "name": "alice",
                                                       "password": "nope"},
                              allow_redirects=False)
    assert wrong.headers["Location"].endswith("error=1")
    forged = await client.post("/console/login", data={"csrf": "forged", "name": "alice",
                                                        "password": PASSWORD},
                               allow_redirects=False)
    assert forged.status == 403


async def test_csrf_and_ownership(aiohttp_client, server, redis):
    from bot.queue import HumanQueue

    queue = HumanQueue(redis, retention_seconds=3600)
    await queue.enqueue("messenger:p:c1", priority=0, fields={"channel": "messenger",
                                                              "sender": "c1"}, entries=[])
    alice = await aiohttp_client(server)
    csrf = await login(alice, "alice")
    no_token = await alice.post("/console/api/conversations/messenger:p:c1/claim")
    assert no_token.status == 403
    claim = await alice.post("/console/api/conversations/messenger:p:c1/claim",
                             headers={"X-CSRF-Token": csrf})
    assert claim.status == 200
    bob = await aiohttp_client(server)
    bob_csrf = await login(bob, "bob")
    for path, body in [("claim", {}), ("reply", {"text": "hi"}), ("resolve", {})]:
        response = await bob.post(f"/console/api/conversations/messenger:p:c1/{path}",
                                  json=body, headers={"X-CSRF-Token": bob_csrf})
        assert response.status == 409, path
        assert "held by alice" in (await response.json())["error"]
    moved = await alice.post("/console/api/conversations/messenger:p:c1/transfer",
                             json={"to": "bob"}, headers={"X-CSRF-Token": csrf})
    assert moved.status == 200
    reply = await bob.post("/console/api/conversations/messenger:p:c1/reply",
                           json={"text": "Hello, this is Bob."},
                           headers={"X-CSRF-Token": bob_csrf})
    assert reply.status == 200
    export = await bob.get("/console/api/conversations/messenger:p:c1/export?format=csv")
    lines = (await export.text()).splitlines()
    assert lines[0] == "time,actor,action,detail"
    assert any(",bob,reply," in line for line in lines)
    jsonl = await bob.get("/console/api/conversations/messenger:p:c1/export")
    assert jsonl.content_type == "application/x-ndjson"


@contextlib.asynccontextmanager
async def chromium():
    """Debian's chromium, headless, as every browser test runs it, closed afterwards. A
    missing Chromium fails the test, never skips it."""
    if not HAVE_CHROMIUM:
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page, base: str, name: str, agency: str | None = None) -> None:
    """Sign in through the console's form in the browser (``agency`` where the deployment
    has several) and wait for the console page."""
    if not page.url.endswith("/console/login"):
        await page.goto(base + "/console/login")
    if agency is not None:
        await page.select_option("select[name=agency]", agency)
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/console/")


async def test_console_in_chromium(server, platform, redis, aiohttp_client):
    base = str(server.make_url("")).rstrip("/")
    webhooks = await aiohttp_client(server)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 390, "height": 844})
        await page.goto(base + "/console/")
        assert page.url.endswith("/console/login")
        await page.fill("input[name=name]", "alice")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        assert page.url == base + "/console/", (page.url, await page.content())
        await page.check("#duty")
        await page.wait_for_function(
            "() => document.getElementById('duty').checked === true")
        for _ in range(50):
            if await redis.exists(keys.SINGLE.on_duty("alice")):
                break
            await page.wait_for_timeout(100)
        assert await redis.exists(keys.SINGLE.on_duty("alice"))

        # A new emergency arrives through the webhook; the page shows it without reload.
        body, headers = signed(messenger_payload(
            messenger_item("citizen-z", "help someone is breaking into my house")))
        assert (await webhooks.post("/webhooks/meta", data=body, headers=headers)).ok
        card = page.locator("#waiting .card.urgent")
        await card.first.wait_for(timeout=15000)
        assert "breaking into my house" in await card.first.inner_text()
        # Phone-sized screen: nothing overflows sideways.
        assert await page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth + 1")

        await card.first.click()
        await page.click("#claim")
        await page.wait_for_function("() => !document.getElementById('send').disabled")
        await page.fill("#reply", "This is Alice at Harbor City PD. Are you safe?")
        await page.click("#send")
        await platform.wait_for(lambda: "This is Alice at Harbor City PD. Are you safe?"
                                in platform.texts_to("citizen-z"), timeout=15)
        await page.locator("#transcript li.staff").first.wait_for(timeout=10000)
        await page.click("#resolve")
        conversation = conv_id("citizen-z")
        for _ in range(50):
            if (await redis.hget(keys.conversation(conversation), "status")) == "resolved":
                break
            await page.wait_for_timeout(100)
        assert await redis.hget(keys.conversation(conversation), "status") == "resolved"
        await page.screenshot(path=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                "beacon-console.png"))


async def test_the_queue_shows_dead_letters(aiohttp_client, server, redis):
    """Issue 8, item 3: a message the workers gave up on is listed for staff, with why."""
    await redis.lpush(keys.SINGLE.dead_letters, json.dumps({
        "conversation": "messenger:1:2", "message_id": "m_1", "channel": "messenger",
        "reason": "failed 3 times", "ts": 1764460800.0}))
    client = await aiohttp_client(server)
    csrf = await login(client)
    queue = await (await client.get("/console/api/queue",
                                    headers={"X-CSRF-Token": csrf})).json()
    assert queue["dead_letters"][0]["reason"] == "failed 3 times"
    assert queue["dead_letters"][0]["conversation"] == "messenger:1:2"


# -- issue 8, item 5: login throttling, audit, revocation --------------------------------------

async def _try_login(client, name: str, password: str):
    form = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await form.text()).group(1)
    return await client.post("/console/login", data={"csrf": csrf, "name": name,
                                                      "password": password},
                             allow_redirects=False)


async def test_guessing_a_password_is_throttled_and_audited(aiohttp_client, server, redis):
    from bot.console.auth import PAIR_ATTEMPTS

    client = await aiohttp_client(server)
    for _ in range(PAIR_ATTEMPTS):
        wrong = await _try_login(client, "alice", "guess-guess-guess")
        assert wrong.status == 302 and wrong.headers["Location"].endswith("error=1")
    refused = await _try_login(client, "alice", PASSWORD)  # even the right one, for now
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    audit = [json.loads(e)["action"] for e in await redis.lrange(keys.audit("console"), 0, -1)]
    assert audit.count("login_failed") == PAIR_ATTEMPTS
    # Another account from another client is not locked out by alice's guesser.
    other = await aiohttp_client(server)
    assert (await _try_login(other, "bob", PASSWORD)).headers["Location"] == "/console/"


async def test_a_guesser_cannot_lock_a_colleague_out(aiohttp_client, aiohttp_server, redis,
                                                     redis_server, platform):
    """The attempt limit for one account counts per client address: behind the department's
    proxy, a guesser elsewhere does not lock alice out of her own console."""
    store = StaffStore(redis, 3600)
    await store.add("alice", PASSWORD)
    server = await aiohttp_server(create_app(settings_for(
        redis_server, DEAD_RASA, platform.url, trusted_proxies=("127.0.0.1",))))
    guesser = await aiohttp_client(server, headers={"X-Forwarded-For": "198.51.100.66"})
    for _ in range(6):
        await _try_login(guesser, "alice", "guess-guess-guess")
    assert (await _try_login(guesser, "alice", PASSWORD)).status == 429
    alice = await aiohttp_client(server, headers={"X-Forwarded-For": "198.51.100.10"})
    assert (await _try_login(alice, "alice", PASSWORD)).headers["Location"] == "/console/"


async def test_a_distributed_guesser_does_not_lock_out_a_known_browser(
        aiohttp_client, aiohttp_server, redis, redis_server, platform):
    """Second live attack: 21 addresses x 6 guesses passed the account-wide limit and locked
    alice out for everyone. A browser she signed in from before carries a device cookie for
    her account and is counted on its own; a new browser, or a cookie for another account or
    a made-up one, still meets the account-wide limit."""
    from bot.console.app import DEVICE_COOKIE
    from bot.console.auth import ACCOUNT_ATTEMPTS, PAIR_ATTEMPTS

    store = StaffStore(redis, 3600)
    await store.add("alice", PASSWORD)
    await store.add("bob", PASSWORD)
    server = await aiohttp_server(create_app(settings_for(
        redis_server, DEAD_RASA, platform.url, trusted_proxies=("127.0.0.1",))))
    laptop = await aiohttp_client(server, headers={"X-Forwarded-For": "198.51.100.10"})
    assert (await _try_login(laptop, "alice", PASSWORD)).headers["Location"] == "/console/"
    bobs = await aiohttp_client(server, headers={"X-Forwarded-For": "198.51.100.11"})
    assert (await _try_login(bobs, "bob", PASSWORD)).headers["Location"] == "/console/"
    assert await redis.hlen(keys.SINGLE.staff_devices("alice")) == 1
    # The distributed guesser: fewer guesses per address than the pair limit, many addresses.
    addresses = ACCOUNT_ATTEMPTS // PAIR_ATTEMPTS + 2
    for n in range(addresses):
        guesser = await aiohttp_client(server, headers={"X-Forwarded-For": f"203.0.113.{n}"})
        for _ in range(PAIR_ATTEMPTS):
            await _try_login(guesser, "alice", "guess-guess-guess")
    fresh = await aiohttp_client(server, headers={"X-Forwarded-For": "198.51.100.12"})
    assert (await _try_login(fresh, "alice", PASSWORD)).status == 429
    # Bob's browser is trusted for bob, not for alice; a made-up cookie is not trusted at all.
    assert (await _try_login(bobs, "alice", PASSWORD)).status == 429
    fresh.session.cookie_jar.update_cookies({DEVICE_COOKIE: "made-up-device-cookie"})
    assert (await _try_login(fresh, "alice", PASSWORD)).status == 429
    # Alice's own browser signs in.
    assert (await _try_login(laptop, "alice", PASSWORD)).headers["Location"] == "/console/"
    # Removing the account forgets its browsers.
    assert await store.remove("alice")
    assert not await redis.exists(keys.SINGLE.staff_devices("alice"))


async def test_simultaneous_guesses_are_counted_before_checking(aiohttp_client, server):
    """Each attempt is counted before its password is checked: 40 guesses at once, at most
    the limit are evaluated (before, all 40 were)."""
    import asyncio

    from bot.console.auth import PAIR_ATTEMPTS

    client = await aiohttp_client(server)
    form = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await form.text()).group(1)
    responses = await asyncio.gather(*[
        client.post("/console/login", data={"csrf": csrf, "name": "bob",
                                             "password": f"guess-{n}"}, allow_redirects=False)
        for n in range(40)])
    statuses = [r.status for r in responses]
    assert statuses.count(302) <= PAIR_ATTEMPTS and statuses.count(429) >= 40 - PAIR_ATTEMPTS


async def test_removing_a_staff_member_ends_their_sessions_at_once(aiohttp_client, server,
                                                                   redis):
    from bot.console.auth import StaffStore

    client = await aiohttp_client(server)
    csrf = await login(client, "bob")
    assert (await client.get("/console/api/queue", headers={"X-CSRF-Token": csrf})).status \
        == 200
    assert await StaffStore(redis, 3600).remove("bob")
    assert (await client.get("/console/api/queue", headers={"X-CSRF-Token": csrf})).status \
        == 401
    assert "bob" not in await StaffStore(redis, 3600).names()


async def test_a_session_in_use_does_not_slide(aiohttp_client, server, redis):
    client = await aiohttp_client(server)
    csrf = await login(client)
    (token,) = [k for k in await redis.keys("beacon:session:*")]
    await redis.expire(token, 100)
    await client.get("/console/api/queue", headers={"X-CSRF-Token": csrf})
    assert await redis.ttl(token) <= 100


async def test_a_revoked_session_loses_its_live_feed(aiohttp_client, server, redis):
    """Found by the live attack: the event stream of a removed staff member kept reading."""
    import asyncio

    client = await aiohttp_client(server)
    await login(client, "bob")
    stream = await client.get("/console/api/events")
    first = await asyncio.wait_for(stream.content.readline(), 5)
    assert b"hello" in first or first.strip() == b""
    await StaffStore(redis, 3600).remove("bob")
    await redis.publish(keys.SINGLE.events,
                        json.dumps({"type": "message", "conversation": "x:1:2"}))
    rest = await asyncio.wait_for(stream.content.read(), 20)
    assert b"x:1:2" not in rest


async def test_web_chat_in_chromium_keeps_a_reload_but_not_the_next_visitor(
        server, platform, redis):
    """The chat page keeps its session per tab: a reload shows the conversation again, a new
    tab in the same browser (the next person at a shared computer) starts afresh."""

    base = str(server.make_url("")).rstrip("/")
    async with chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(base + "/chat")
        await page.fill("#text", "can someone call me back about my case")
        await page.click("button[type=submit]")
        reply = page.locator("#log li.bot")
        await reply.first.wait_for(timeout=20000)
        await page.reload()
        await page.locator("#log li.bot").first.wait_for(timeout=10000)
        next_visitor = await context.new_page()
        await next_visitor.goto(base + "/chat")
        await next_visitor.wait_for_timeout(3000)  # two polls
        assert await next_visitor.locator("#log li.bot").count() == 0


async def test_a_spanish_conversation_in_chromium(server, platform, redis):
    """Issue 10: a Spanish speaker asks in the web chat after hours (nobody on duty, Rasa
    down), gets the routing reply in Spanish, and the officer's console offers the canned
    replies in Spanish; the one sent reaches the chat page."""

    from bot.department import load_department
    from bot.settings import PROJECT_ROOT

    department = load_department(PROJECT_ROOT / "data/department.yml")
    canned = department.canned("es")["call_non_emergency"]
    base = str(server.make_url("")).rstrip("/")
    async with chromium() as browser:
        chat = await (await browser.new_context()).new_page()
        await chat.goto(base + "/chat")
        await chat.fill("#text", "buenas noches, quiero hablar con alguien sobre el "
                                 "reporte de mi accidente")
        await chat.click("button[type=submit]")
        bot = chat.locator("#log li.bot")
        await bot.first.wait_for(timeout=20000)
        first = await bot.first.inner_text()
        assert department.reply("disclosure", "es") in first
        assert "Esta cuenta no se vigila" in first or "Un miembro" in first, first

        console = await (await browser.new_context()).new_page()
        await console.set_viewport_size({"width": 1280, "height": 800})
        await sign_in(console, base, "alice")
        card = console.locator("#waiting .card")
        await card.first.wait_for(timeout=15000)
        assert " es " in f" {await card.first.inner_text()} ".replace("·", " ")
        await card.first.click()
        await console.click("#claim")
        await console.wait_for_function("() => !document.getElementById('send').disabled")
        # Only the conversation's language is offered.
        offered = await console.eval_on_selector_all(
            "#canned option[data-lang]", "os => os.filter(o => !o.hidden).map(o => o.value)")
        assert offered and set(offered) == set(department.canned("es").values())
        await console.select_option("#canned", value=canned)
        assert await console.input_value("#reply") == canned
        await console.click("#send")
        await chat.locator("#log li", has_text=canned[:40]).first.wait_for(timeout=20000)
