"""The gateway over real HTTP: signed Meta and X webhooks, web chat, fast path, dedupe,
ordering, hand-off, Rasa down, health. Only the platforms (Graph API, X API) are fakes."""

from __future__ import annotations

import asyncio
import json

from bot import keys, urgency
from bot.app import create_app
from bot.appkeys import SERVICES
from bot.logs import conversation_ref
from bot.replies import EMERGENCY_NOTICE
from tests.gateway_support import (
    DEAD_RASA,
    META_VERIFY,
    X_ACCOUNT,
    X_SECRET,
    conv_id,
    messenger_item,
    messenger_payload,
    post_meta,
    psid,
    settings_for,
    x_payload,
    x_signature,
)

# -- Meta --------------------------------------------------------------------------------------

async def test_meta_verification(offline):
    ok = await offline.get("/webhooks/meta", params={
        "hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "12345"})
    assert ok.status == 200 and await ok.text() == "12345"
    bad = await offline.get("/webhooks/meta", params={
        "hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "12345"})
    assert bad.status == 403


async def test_meta_signatures_are_enforced(offline, redis):
    body = json.dumps(messenger_payload(messenger_item("u1", "hello"))).encode()
    for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                    {"X-Hub-Signature-256": "sha1=abc"}):
        response = await offline.post("/webhooks/meta", data=body, headers=headers)
        assert response.status == 403
        assert "signature" in (await response.json())["error"].lower()
    assert await redis.llen(keys.SINGLE.work) == 0


async def test_malformed_signed_payloads_are_400(offline):
    for raw in (b"{not json", b"\xff\xfe", b"[]", b'{"object": "page"}'):
        response = await offline.post("/webhooks/meta", data=raw,
                                      headers={"X-Hub-Signature-256": _sig(raw)})
        assert response.status == 400, raw
        assert (await response.json())["error"]


def _sig(raw: bytes) -> str:
    from tests.gateway_support import meta_signature

    return meta_signature(raw)


async def test_oversized_body_is_413(offline):
    raw = b"x" * (300 * 1024)
    response = await offline.post("/webhooks/meta", data=raw,
                                  headers={"X-Hub-Signature-256": _sig(raw)})
    assert response.status == 413


async def test_text_message_answered_through_rasa(online, platform, department):
    response = await post_meta(online, messenger_payload(
        messenger_item("citizen-a", "how do i get fingerprinted")))
    assert response.status == 200
    await platform.wait_for(lambda: platform.texts_to("citizen-a"))
    assert platform.texts_to("citizen-a") == [department.faq_answer("fingerprinting")]
    assert platform.sent[0]["token"] == "page-token"


async def test_batched_post_handles_every_entry_and_item(online, platform):
    payload = messenger_payload(messenger_item("b1", "hi"), messenger_item("b2", "hello"))
    second = messenger_payload(messenger_item("b3", "thanks!"), page="99887766")
    payload["entry"] += second["entry"]
    response = await post_meta(online, payload)
    assert (await response.json())["received"] == 3
    await platform.wait_for(lambda: all(platform.texts_to(u) for u in ("b1", "b2", "b3")))


async def test_retry_is_answered_once(online, platform, redis):
    payload = messenger_payload(messenger_item("dup", "what are your lobby hours", mid="m-dup-1"))
    for _ in range(3):
        assert (await post_meta(online, payload)).status == 200
    await platform.wait_for(lambda: platform.texts_to("dup"))
    await asyncio.sleep(1.0)
    assert len(platform.texts_to("dup")) == 1


async def test_burst_from_one_sender_is_processed_in_order(online, platform, redis):
    texts = [f"message number {i} about my parking ticket" for i in range(12)]
    for i, text in enumerate(texts):  # each POST returns once accepted, long before Rasa
        assert (await post_meta(online, messenger_payload(
            messenger_item("burst", text, mid=f"burst-{i}")))).status == 200
    conversation = conv_id("burst")
    await platform.wait_for(lambda: len(platform.texts_to("burst")) >= len(texts), timeout=90)
    log = [json.loads(e) for e in await redis.lrange(keys.audit(conversation), 0, -1)]
    assert [e["detail"] for e in log if e["action"] == "message_in"] == texts
    # One at a time: every message's replies go out before the next message is handled.
    kinds = [e["action"] for e in log]
    starts = [i for i, kind in enumerate(kinds) if kind == "message_in"]
    for here, following in zip(starts, starts[1:] + [len(kinds)], strict=True):
        assert "message_out" in kinds[here + 1:following]


async def test_burst_across_two_gateway_processes_stays_in_order(
        aiohttp_client, redis, redis_server, platform):
    settings = settings_for(redis_server, DEAD_RASA, platform.url)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    texts = [f"update {i} on my complaint" for i in range(40)]
    for i, text in enumerate(texts):
        client = first if i % 2 == 0 else second
        assert (await post_meta(client, messenger_payload(
            messenger_item("two", text, mid=f"two-{i}")))).status == 200
    conversation = conv_id("two")
    for _ in range(300):
        log = [json.loads(e) for e in await redis.lrange(keys.audit(conversation), 0, -1)]
        seen = [e["detail"] for e in log if e["action"] == "message_in"]
        if len(seen) == len(texts):
            break
        await asyncio.sleep(0.1)
    assert seen == texts
    assert await redis.llen(keys.inbox(conversation)) == 0


async def test_emergency_notice_goes_out_while_rasa_is_down(offline, platform, redis):
    await post_meta(offline, messenger_payload(
        messenger_item("e1", "thanks for the post! also theres a man with a gun at the school")))
    await platform.wait_for(lambda: len(platform.texts_to("e1")) >= 2)
    texts = platform.texts_to("e1")
    assert texts[0] == EMERGENCY_NOTICE["en"]
    assert texts.count(EMERGENCY_NOTICE["en"]) == 1
    conversation = conv_id("e1")
    assert await redis.zrange(keys.SINGLE.queue, 0, 0) == [conversation]
    meta = await redis.hgetall(keys.conversation(conversation))
    assert meta["priority"] == "0" and meta["outcome"] == "emergency"


async def test_model_only_emergency_gets_the_notice_at_intake_with_rasa_stopped(
        offline, platform, redis):
    """The urgency model, not a rule, recognises it; Rasa is down; the notice goes first."""
    from tests.test_urgency import model_only_urgent

    (text,) = model_only_urgent(limit=1)
    await post_meta(offline, messenger_payload(messenger_item("tier1", text)))
    await platform.wait_for(lambda: platform.texts_to("tier1"))
    texts = platform.texts_to("tier1")
    assert texts[0] in (EMERGENCY_NOTICE["en"], EMERGENCY_NOTICE["es"]), texts
    # The notice goes out first; the conversation is queued right after it.
    for _ in range(100):
        meta = await redis.hgetall(keys.conversation(conv_id("tier1")))
        if meta.get("notice_sent_at"):
            break
        await asyncio.sleep(0.05)
    assert meta["priority"] == "0" and meta["tier"] == "model" and meta["notice_sent_at"]


async def test_one_notice_per_burst_and_followups_stay_urgent(offline, platform, redis):
    """Two urgent messages and a question in a row: one notice, no FAQ or routing answer
    that would contradict it, and the conversation stays at the top of the queue."""
    from tests.gateway_support import urgent_follow_up

    for text in ("someone is breaking into my house right now",
                 "he has a knife and he is coming up the stairs",
                 "what are your lobby hours"):
        await post_meta(offline, messenger_payload(messenger_item("burst911", text)))
    await platform.wait_for(
        lambda: platform.texts_to("burst911").count(urgent_follow_up()) >= 2)
    texts = platform.texts_to("burst911")
    assert texts[0] == EMERGENCY_NOTICE["en"]
    assert texts.count(EMERGENCY_NOTICE["en"]) == 1
    assert not any("lobby" in t.lower() or "shortly" in t for t in texts), texts
    meta = await redis.hgetall(keys.conversation(conv_id("burst911")))
    assert meta["priority"] == "0" and meta["outcome"] == "emergency"
    assert await redis.zrange(keys.SINGLE.queue, 0, 0) == [conv_id("burst911")]


async def test_a_new_notice_after_the_window(aiohttp_client, redis, redis_server, platform):
    client = await aiohttp_client(create_app(settings_for(
        redis_server, DEAD_RASA, platform.url, notice_window=1)))
    await post_meta(client, messenger_payload(
        messenger_item("win1", "someone is breaking into my house right now")))
    await platform.wait_for(lambda: platform.texts_to("win1"))
    await asyncio.sleep(1.5)
    await post_meta(client, messenger_payload(
        messenger_item("win1", "he came back, he is kicking the door in")))
    await platform.wait_for(
        lambda: platform.texts_to("win1").count(EMERGENCY_NOTICE["en"]) == 2)


async def test_other_language_gets_its_line_and_goes_to_staff(offline, platform, redis,
                                                              department):
    await post_meta(offline, messenger_payload(
        messenger_item("lang1", "我的车被拖走了，我应该去哪里取车？")))
    await platform.wait_for(lambda: platform.texts_to("lang1"))
    assert platform.texts_to("lang1")[0] == department.other_languages["zh"]
    meta = await redis.hgetall(keys.conversation(conv_id("lang1")))
    assert meta["language"] == "zh" and meta["outcome"] == "human"


async def test_a_failed_fast_path_notice_is_sent_by_the_worker(offline, platform, redis):
    """Issue 8, item 2: "notice sent" is a fact recorded after the send. The platform refuses
    the fast path's notice (503 on every attempt), so the worker sends it."""
    platform.fail_next = 3  # the fast path's three attempts at the notice
    await post_meta(offline, messenger_payload(
        messenger_item("nf1", "someone is breaking into my house right now")))
    await platform.wait_for(lambda: EMERGENCY_NOTICE["en"] in platform.texts_to("nf1"),
                            timeout=30)
    meta = await redis.hgetall(keys.conversation(conv_id("nf1")))
    assert meta["priority"] == "0"


async def test_rasa_down_routes_to_a_person(offline, platform, redis):
    await post_meta(offline, messenger_payload(messenger_item("d1", "what time do you open")))
    await platform.wait_for(lambda: platform.texts_to("d1"))
    assert "not monitored 24/7" in platform.texts_to("d1")[0] \
        or "nobody is on duty" in platform.texts_to("d1")[0]
    meta = await redis.hgetall(keys.conversation(conv_id("d1")))
    assert meta["outcome"] == "human" and meta["reason"].startswith("rasa unavailable")
    transcript = await redis.lrange(keys.transcript(conv_id("d1")), 0, -1)
    assert "what time do you open" in transcript[0]


async def test_emergency_with_rasa_up_does_not_repeat_the_notice(online, platform, redis):
    await post_meta(online, messenger_payload(
        messenger_item("e2", "someone is breaking into my house right now")))
    await platform.wait_for(lambda: platform.texts_to("e2"))
    conversation = conv_id("e2")
    # Wait until Rasa's action has answered too (it records the intent it saw).
    for _ in range(300):
        if await redis.hget(keys.conversation(conversation), "intent"):
            break
        await asyncio.sleep(0.1)
    assert await redis.hget(keys.conversation(conversation), "outcome") == "emergency"
    await asyncio.sleep(1.0)
    texts = platform.texts_to("e2")
    assert texts[0] == EMERGENCY_NOTICE["en"]
    assert texts.count(EMERGENCY_NOTICE["en"]) == 1


async def held_by_staff(client, platform, redis, sender: str, first_message: str):
    """A conversation the bot answered once and officer-lee then claimed."""
    from bot.queue import HumanQueue

    queue = HumanQueue(redis, retention_seconds=3600)
    await post_meta(client, messenger_payload(messenger_item(sender, first_message)))
    await platform.wait_for(lambda: platform.texts_to(sender))
    conversation = conv_id(sender)
    await queue.claim(conversation, "officer-lee")
    return queue, conversation


async def test_handoff_bot_stays_silent_then_notice_after_timeout(offline, platform, redis):
    queue, conversation = await held_by_staff(offline, platform, redis, "h1",
                                              "i need a detective")
    before = len(platform.texts_to("h1"))
    await post_meta(offline, messenger_payload(messenger_item("h1", "ok so what now")))
    await asyncio.sleep(1.5)
    assert len(platform.texts_to("h1")) == before, "the bot must stay silent during hand-off"
    transcript = [json.loads(e) for e in await redis.lrange(keys.transcript(conversation), 0, -1)]
    assert transcript[-1]["text"] == "ok so what now"
    # An urgent message with no staff reply: the notice goes out after the timeout (1 s here).
    await post_meta(offline, messenger_payload(
        messenger_item("h1", "he just came back and has a knife")))
    await platform.wait_for(lambda: EMERGENCY_NOTICE["en"] in platform.texts_to("h1"), 15)
    meta = await redis.hgetall(keys.conversation(conversation))
    assert meta["urgent_flag"] == "emergency" and meta["claimed_by"] == "officer-lee"
    # Resolved: the bot takes the conversation back and answers the next message.
    await queue.resolve(conversation, "officer-lee")
    count = len(platform.texts_to("h1"))
    await post_meta(offline, messenger_payload(messenger_item("h1", "thank you")))
    await platform.wait_for(lambda: len(platform.texts_to("h1")) > count)


async def test_staff_reply_in_time_cancels_the_notice(offline, platform, redis):
    queue, conversation = await held_by_staff(offline, platform, redis, "h2",
                                              "need to talk to someone")
    await post_meta(offline, messenger_payload(messenger_item("h2", "someone is following me")))
    await asyncio.sleep(0.3)
    await queue.reply(conversation, "officer-lee", "Call 911 now, I am alerting dispatch.")
    await asyncio.sleep(2.5)
    assert EMERGENCY_NOTICE["en"] not in platform.texts_to("h2")


async def test_attachment_only_goes_to_a_person(offline, platform, redis):
    item = messenger_item("att", "")
    item["message"] = {"mid": "m-att-1", "attachments": [
        {"type": "image", "payload": {"url": "https://example.invalid/p.jpg"}}]}
    await post_meta(offline, messenger_payload(item))
    await platform.wait_for(lambda: platform.texts_to("att"))
    meta = await redis.hgetall(keys.conversation(conv_id("att")))
    assert meta["outcome"] == "human"


# -- X --------------------------------------------------------------------------------------------

async def test_x_crc_and_signed_dm(offline, platform):
    import base64
    import hashlib
    import hmac

    crc = await offline.get("/webhooks/x", params={"crc_token": "abc123"})
    expected = base64.b64encode(hmac.new(X_SECRET.encode(), b"abc123", hashlib.sha256)
                                .digest()).decode()
    assert (await crc.json()) == {"response_token": "sha256=" + expected}
    body = json.dumps(x_payload("777", "is this account monitored 24/7?")).encode()
    bad = await offline.post("/webhooks/x", data=body,
                             headers={"x-twitter-webhooks-signature": "sha256=AAAA"})
    assert bad.status == 403
    ok = await offline.post("/webhooks/x", data=body,
                            headers={"x-twitter-webhooks-signature": x_signature(body)})
    assert ok.status == 200
    await platform.wait_for(lambda: any(s["platform"] == "x" for s in platform.sent))
    sent = [s for s in platform.sent if s["platform"] == "x"][0]
    assert sent["participant"] == "777" and sent["auth"] == "Bearer x-token"
    own = json.dumps(x_payload(X_ACCOUNT, "our own message")).encode()
    response = await offline.post("/webhooks/x", data=own,
                                  headers={"x-twitter-webhooks-signature": x_signature(own)})
    assert (await response.json())["received"] == 0


async def test_x_crc_cannot_sign_a_forged_delivery(offline, platform):
    """The attack of issue 8 item 1: ask the CRC endpoint to "sign" a JSON body, then post
    that body with the answer as its signature. The CRC endpoint refuses such a token."""
    forged = json.dumps(x_payload("../../../2/tweets?", "fake emergency, gun at the school"))
    crc = await offline.get("/webhooks/x", params={"crc_token": forged})
    assert crc.status == 400
    # Had it answered, this is the header the attacker would send: refused either way.
    import base64
    import hashlib
    import hmac
    token = "sha256=" + base64.b64encode(hmac.new(X_SECRET.encode(), forged.encode(),
                                                  hashlib.sha256).digest()).decode()
    assert token == x_signature(forged.encode())  # the same HMAC, hence the token's shape rule
    signed_by_secret = await offline.post("/webhooks/x", data=forged.encode(),
                                          headers={"x-twitter-webhooks-signature": token})
    # Even a body signed with the real secret cannot smuggle a path into the send URL.
    assert signed_by_secret.status == 200 and (await signed_by_secret.json())["received"] == 0
    await asyncio.sleep(0.5)
    assert not [s for s in platform.sent if s["platform"] == "x"]


async def test_delivery_refuses_an_invalid_recipient(offline, platform):
    from bot.appkeys import SERVICES

    delivery = offline.app[SERVICES].delivery
    sent = await delivery.send("x:4455:evil", "x", "../../2/tweets?", "hello")
    assert not sent.ok and sent.error == "invalid recipient id"
    sent = await delivery.send("messenger:1:evil", "messenger", "1/../me", "hello")
    assert not sent.ok
    assert platform.sent == []


# -- web chat, outbox, health -------------------------------------------------------------------

async def test_web_chat_round_trip(online):
    session = (await (await online.get("/chat/api/session")).json())["session"]
    page = await online.get("/chat")
    assert page.status == 200 and "call 911" in (await page.text()).lower()
    sent = await online.post("/chat/api/messages", json={"session": session,
                                                         "text": "where is the station"})
    assert sent.status == 202
    for _ in range(200):
        body = await (await online.get("/chat/api/messages",
                                       params={"session": session, "after": 0})).json()
        if body["messages"]:
            break
        await asyncio.sleep(0.1)
    assert "410 Harbor Street" in body["messages"][0]["text"]
    assert (await online.post("/chat/api/messages", json={"session": "short",
                                                          "text": "x"})).status == 400
    assert (await online.post("/chat/api/messages", json={"session": session,
                                                          "text": "  "})).status == 400


async def test_no_credentials_means_outbox(aiohttp_client, redis, redis_server, platform):
    settings = settings_for(redis_server, DEAD_RASA, platform.url, meta_page_access_token="")
    client = await aiohttp_client(create_app(settings))
    await post_meta(client, messenger_payload(messenger_item("ob", "hello there")))
    for _ in range(100):
        if await redis.llen(keys.SINGLE.outbox):
            break
        await asyncio.sleep(0.1)
    entry = json.loads((await redis.lrange(keys.SINGLE.outbox, 0, 0))[0])
    assert entry["recipient"] == psid("ob") and entry["channel"] == "messenger"
    assert platform.sent == []


async def test_delivery_retries_then_succeeds(offline, platform):
    platform.fail_next = 1
    await post_meta(offline, messenger_payload(messenger_item("retry", "hello")))
    await platform.wait_for(lambda: platform.texts_to("retry"), timeout=20)


async def test_healthz(offline, online, monkeypatch):
    down = await offline.get("/healthz")
    assert down.status == 503
    assert (await down.json())["dependencies"] == {"redis": "up", "rasa": "down"}
    up = await online.get("/healthz")
    assert up.status == 200 and (await up.json())["status"] == "ok"
    assert (await up.json())["urgency_model"] == urgency.model_path().stem
    # Started before the model was trained: the rules alone, said where an operator looks.
    monkeypatch.setattr(online.server.app[SERVICES].net, "urgency", None)
    assert (await (await online.get("/healthz")).json())["urgency_model"] == "missing"


async def test_unknown_routes_are_closed(offline):
    for path in ("/", "/admin", "/webhooks/rest/webhook", "/console/api/queue"):
        response = await offline.get(path)
        assert response.status in (401, 404), path


async def test_unclaimed_emergency_escalates_once(aiohttp_client, redis, redis_server,
                                                  platform):
    settings = settings_for(redis_server, DEAD_RASA, platform.url, escalate_after=1)
    client = await aiohttp_client(create_app(settings))
    await post_meta(client, messenger_payload(
        messenger_item("esc", "my neighbor has a gun and is threatening people")))
    await platform.wait_for(lambda: any(s["platform"] == "alert" for s in platform.sent), 20)
    await asyncio.sleep(2.5)
    alerts = [s["body"] for s in platform.sent if s["platform"] == "alert"]
    assert len(alerts) == 1
    # The pager is a third party: it gets the pseudonym, never the platform's sender id.
    assert alerts[0]["conversation"] == conversation_ref(conv_id("esc"))
    assert psid("esc") not in json.dumps(alerts[0])
    assert alerts[0]["outcome"] == "emergency" and "unclaimed" in alerts[0]["text"]
    meta = await redis.hgetall(keys.conversation(conv_id("esc")))
    assert meta["escalated_at"] and "escalation_error" not in meta


async def test_a_pager_that_is_down_is_retried_then_falls_back(aiohttp_client, aiohttp_server,
                                                               redis, redis_server, platform,
                                                               monkeypatch):
    """Issue 8, item 8: marked escalated only after delivery; retried; then the outbox and
    the console show it. Meanwhile the hand-off notices are not held up."""
    from aiohttp import web

    from bot.gateway import monitor

    monkeypatch.setattr(monitor, "ESCALATION_BACKOFF", (0.2, 0.2))
    calls = []

    async def down(request):
        calls.append(await request.json())
        return web.json_response({"error": "maintenance"}, status=503)

    pager = web.Application()
    pager.router.add_post("/page", down)
    server = await aiohttp_server(pager)
    settings = settings_for(redis_server, DEAD_RASA, platform.url, escalate_after=1,
                            escalation_webhook=str(server.make_url("/page")))
    client = await aiohttp_client(create_app(settings))
    await post_meta(client, messenger_payload(
        messenger_item("pager1", "my neighbor has a gun and is threatening people")))
    conversation = conv_id("pager1")
    for _ in range(100):
        meta = await redis.hgetall(keys.conversation(conversation))
        if meta.get("escalated_at"):
            break
        await asyncio.sleep(0.1)
    assert len(calls) == 3 and meta["escalation_error"] == "HTTP 503"
    outbox = [json.loads(e) for e in await redis.lrange(keys.SINGLE.outbox, 0, -1)]
    assert any(e.get("channel") == "escalation" for e in outbox)
    audit = [json.loads(e)["action"] for e in await redis.lrange(keys.audit(conversation), 0, -1)]
    assert "escalation_failed" in audit
