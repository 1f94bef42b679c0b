"""Operations: /metrics, JSON logs without citizens' words, the per-sender rate limit and
retention. Real Redis, the real gateway over HTTP; Rasa is down (nothing listens at its URL),
which is all these need."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from bot import keys, logs
from bot.app import create_app
from bot.audit import AuditLog
from bot.queue import Entry, HumanQueue
from bot.replies import EMERGENCY_NOTICE
from tests.gateway_support import (
    DEAD_RASA,
    conv_id,
    messenger_item,
    messenger_payload,
    post_meta,
    settings_for,
    throttled_line,
)


async def _audit(redis, conversation: str) -> list[dict]:
    return [json.loads(e) for e in await redis.lrange(keys.audit(conversation), 0, -1)]


async def _wait(check, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


# -- /metrics ----------------------------------------------------------------------------------

def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} " if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in metrics")


async def test_metrics_count_messages_and_read_the_queue(offline, platform, redis):
    before = await (await offline.get("/metrics")).text()
    # A single agency's series carry agency="" (bot.metrics: Prometheus reads it as absent);
    # labels are written in name order.
    seen = _sample(before, "beacon_messages_in_total", agency="", channel="messenger") \
        if 'beacon_messages_in_total{agency="",channel="messenger"}' in before else 0.0
    payload = messenger_payload(messenger_item("mx", "there's a man with a gun outside",
                                               mid="m-metrics-1"))
    await post_meta(offline, payload)
    await post_meta(offline, payload)  # a platform retry: a dedupe hit, not a second message
    await platform.wait_for(lambda: len(platform.texts_to("mx")) >= 2)

    async def queued():  # the fast path queues right after sending the notice
        return await redis.zscore(keys.SINGLE.queue, conv_id("mx")) is not None
    await _wait(queued)
    response = await offline.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert _sample(text, "beacon_messages_in_total", agency="", channel="messenger") == seen + 1
    assert _sample(text, "beacon_dedupe_hits_total", channel="messenger") >= 1
    assert _sample(text, "beacon_messages_out_total", agency="", channel="messenger",
                   outcome="emergency") >= 1
    assert _sample(text, "beacon_reply_seconds_count", agency="", kind="notice") >= 1
    assert _sample(text, "beacon_queue_depth", agency="", priority="urgent") == 1
    assert _sample(text, "beacon_queue_depth", agency="", priority="normal") == 0
    assert 0 <= _sample(text, "beacon_oldest_waiting_seconds", agency="") < 600


async def test_metrics_are_not_public(offline, aiohttp_client, redis_server, platform, redis):
    relayed = await offline.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status == 403
    settings = settings_for(redis_server, DEAD_RASA, platform.url, metrics_token="s3cret")
    client = await aiohttp_client(create_app(settings, workers=False))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status == 401
    ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200 and "beacon_queue_depth" in await ok.text()


# -- logs -------------------------------------------------------------------------------------

@pytest.fixture
def json_logs():
    """Beacon's JSON logging at INFO into a buffer; the test's own handlers put back after."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("info", "json", stream=buffer)
    yield buffer
    root.handlers[:] = saved
    root.setLevel(level)


async def test_logs_are_json_name_the_conversation_and_hide_the_citizen(
        json_logs, offline, platform, redis):
    secret_text = "my neighbor Zebulon Quartermaine keeps parking on my lawn"
    sender = "9988776655443322"
    await post_meta(offline, messenger_payload(messenger_item(sender, secret_text)))
    await post_meta(offline, messenger_payload(messenger_item(sender, "someone broke in and "
                                                              "is still inside my house")))
    await platform.wait_for(lambda: len(platform.texts_to(sender)) >= 3)
    await asyncio.sleep(0.3)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    ours = [line for line in lines if line.get("logger", "").startswith("bot")]
    assert {"message accepted", "911 notice sent (fast path)",
            "routed to staff without Rasa"} <= {line["event"] for line in ours}
    ref = logs.conversation_ref(conv_id(sender))
    assert all(line["conv"] == ref for line in ours), ours
    assert all("timestamp" in line and "level" in line for line in lines)
    raw = json_logs.getvalue()
    assert "Zebulon" not in raw and "still inside" not in raw and sender not in raw


# -- per-sender rate limit -----------------------------------------------------------------

async def test_a_flooding_sender_goes_to_staff_but_emergencies_still_get_the_notice(
        aiohttp_client, redis_server, platform, redis):
    settings = settings_for(redis_server, DEAD_RASA, platform.url, rate_limit=3)
    client = await aiohttp_client(create_app(settings))
    texts = [f"complaint number {i} about the noise" for i in range(6)]
    texts.append("he has a knife and is coming at me")
    for i, text in enumerate(texts):
        assert (await post_meta(client, messenger_payload(
            messenger_item("flood", text, mid=f"flood-{i}")))).status == 200
    # Someone else writing at the same time is not limited by the flood.
    await post_meta(client, messenger_payload(messenger_item("calm", "what are your hours")))
    conversation = conv_id("flood")

    async def all_in():
        return len([e for e in await _audit(redis, conversation)
                    if e["action"] == "message_in"]) == len(texts)
    await _wait(all_in)
    await platform.wait_for(lambda: platform.texts_to("calm"))
    sent = platform.texts_to("flood")
    assert sent.count(EMERGENCY_NOTICE["en"]) == 1  # over the limit, and still notified
    assert sent.count(throttled_line()) == 1  # told once, then queued silently
    meta = await redis.hgetall(keys.conversation(conversation))
    assert meta["outcome"] == "emergency" and meta["priority"] == "0"
    transcript = [json.loads(e)["text"] for e in
                  await redis.lrange(keys.transcript(conversation), 0, -1)]
    for text in texts:  # nothing the flooder wrote is lost
        assert text in transcript
    assert "rate limited" not in (await redis.hgetall(
        keys.conversation(conv_id("calm")))).get("reason", "")


# -- retention -----------------------------------------------------------------------------

async def test_records_are_removed_after_the_retention_period(redis):
    queue = HumanQueue(redis, retention_seconds=1)
    await queue.enqueue("old", priority=1, fields={"outcome": "human"},
                        entries=[Entry("citizen", "hello", 1.0)])
    await queue.claim("old", "dana")
    await queue.enqueue("older", priority=0, fields={"outcome": "emergency"}, entries=[])
    await redis.rpush(keys.SINGLE.outbox, json.dumps({"ts": 0, "text": "long ago"}),
                      json.dumps({"ts": 9e12, "text": "recent"}))
    assert await AuditLog(queue.redis, 1).read("old") and await queue.transcript("old")
    await asyncio.sleep(1.2)
    assert await queue.prune_expired() == 2
    assert await queue.waiting() == [] and await queue.claimed() == []
    for conversation in ("old", "older"):
        assert not await redis.exists(keys.conversation(conversation),
                                      keys.transcript(conversation), keys.audit(conversation))
    outbox = await redis.lrange(keys.SINGLE.outbox, 0, -1)
    assert [json.loads(e)["text"] for e in outbox] == ["recent"]
    # A conversation still within its period stays.
    kept = HumanQueue(redis, retention_seconds=3600)
    await kept.enqueue("new", priority=1, fields={"outcome": "human"}, entries=[])
    assert await kept.prune_expired() == 0 and await kept.waiting() == ["new"]


def test_console_paths_are_logged_with_pseudonyms():
    """Issue 8, item 10: a web-chat conversation id holds the session id, which reads the
    session's replies; the access log names conversations by pseudonym only."""
    from bot.logs import conversation_ref, safe_path

    session = "s3cr3t-session-id-1234"
    path = f"/console/api/conversations/webchat:web:{session}/export"
    logged = safe_path(path)
    assert session not in logged
    assert logged == f"/console/api/conversations/{conversation_ref('webchat:web:' + session)}" \
        "/export"
    quoted = safe_path("/console/api/conversations/messenger%3A1%3A2/claim")
    assert quoted == f"/console/api/conversations/{conversation_ref('messenger:1:2')}/claim"
    assert safe_path("/chat/api/messages") == "/chat/api/messages"


def test_aiohttp_runs_its_c_http_parser():
    """aiohttp 3.9.5 is the newest Rasa 3.6 allows (<3.10). The request-smuggling advisories
    published since (CVE-2024-52304, CVE-2025-53643) concern its pure-Python parser, used
    only without the C extension or with AIOHTTP_NO_EXTENSIONS: keep it that way."""
    import os

    import aiohttp
    from aiohttp import http_parser

    assert aiohttp.__version__ == "3.9.5"
    assert http_parser.HttpRequestParser.__module__ == "aiohttp._http_parser"
    assert not os.environ.get("AIOHTTP_NO_EXTENSIONS")


async def test_signed_platform_work_runs_before_web_chat_work():
    """The one CPU thread serves the signed platforms first: a web-chat flood cannot make a
    Messenger emergency's safety-net check wait behind it (beyond the batch running)."""
    import asyncio
    import time

    from bot.cpu_lane import LANE_OVER_LIMIT, LANE_PLATFORM, LANE_WEB_CHAT, CpuLane

    lane = CpuLane()
    order, batches = [], []

    def work(names):
        batches.append(list(names))
        time.sleep(0.01 * len(names))
        order.extend(names)
        return list(names)

    # Costs as long texts: two refused items fill a batch.
    flood = [asyncio.create_task(lane.run(LANE_OVER_LIMIT, work, f"refused{i}", cost=900))
             for i in range(20)]
    await asyncio.sleep(0.005)  # the first refused batch is already running
    citizen = asyncio.create_task(lane.run(LANE_WEB_CHAT, work, "web chat citizen"))
    urgent = asyncio.create_task(lane.run(LANE_PLATFORM, work, "messenger"))
    assert await urgent == "messenger"
    assert await citizen == "web chat citizen"
    assert await asyncio.gather(*flood) == [f"refused{i}" for i in range(20)]
    # Messenger first, then the web-chat citizen, then the address over its limit; a batch
    # never mixes lanes, nor goes over its cost.
    assert order.index("messenger") <= 2
    assert order.index("messenger") < order.index("web chat citizen") <= 3
    assert all(len(b) <= 2 for b in batches if b[0].startswith("refused"))
    assert ["messenger"] in batches and ["web chat citizen"] in batches
    lane.close()


async def test_the_cpu_lane_runs_a_burst_in_batches_and_fails_items_alone():
    """A burst queued at once runs in batches (the urgency model's cost is per call), each
    caller gets its own item's result, and one failing item fails alone."""
    import asyncio
    import threading

    from bot.cpu_lane import BATCH, LANE_PLATFORM, CpuLane

    lane = CpuLane()
    calls = []
    gate = threading.Event()

    def work(items):
        calls.append(len(items))
        gate.wait(5)  # the burst queues behind the first call
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    first = asyncio.create_task(lane.run(LANE_PLATFORM, work, "first"))
    await asyncio.sleep(0.05)
    burst = [asyncio.create_task(lane.run(LANE_PLATFORM, work, f"m{i}")) for i in range(40)]
    bad = asyncio.create_task(lane.run(LANE_PLATFORM, work, "bad"))
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == "FIRST"
    assert await asyncio.gather(*burst) == [f"M{i}" for i in range(40)]
    with pytest.raises(ValueError):
        await bad
    assert calls[0] == 1 and max(calls) == BATCH
    assert sum(calls) >= 42 and len(calls) < 20  # 42 items in batches, the bad one's again
    lane.close()


def test_the_log_pseudonym_is_keyed(monkeypatch):
    """With BEACON_LOG_KEY set, the pseudonym cannot be computed from a public platform id
    alone (it was a plain SHA-256); the same key gives the same pseudonym in every process."""
    import hashlib

    from bot import logs

    conversation = "x:dept:1234567890"
    plain = "c-" + hashlib.sha256(conversation.encode()).hexdigest()[:12]
    monkeypatch.setenv("BEACON_LOG_KEY", "k" * 64)
    logs._log_key.cache_clear()
    try:
        keyed = logs.conversation_ref(conversation)
        assert keyed != plain and keyed.startswith("c-") and len(keyed) == 14
        assert logs.conversation_ref(conversation) == keyed
        monkeypatch.setenv("BEACON_LOG_KEY", "another key")
        logs._log_key.cache_clear()
        assert logs.conversation_ref(conversation) != keyed
    finally:
        monkeypatch.delenv("BEACON_LOG_KEY")
        logs._log_key.cache_clear()
    assert logs.conversation_ref(conversation) == plain


async def test_a_checks_cost_is_the_text_the_rules_read(offline, monkeypatch):
    """A batch is capped by cost; one character can become eighteen under NFKC, so the cost
    is counted after it (16 texts of 125 U+FDFA counted 2,000 and were 36,000 characters
    of work; found by the live attack)."""
    from bot.appkeys import SERVICES
    from bot.cpu_lane import LANE_PLATFORM

    services = offline.app[SERVICES]
    costs = []
    run = services._lane.run

    async def recorded(priority, fn, item, *, flow="", cost=1):
        costs.append(cost)
        return await run(priority, fn, item, flow=flow, cost=cost)

    monkeypatch.setattr(services._lane, "run", recorded)
    result = await services.check_off_loop("\ufdfa" * 125, lane=LANE_PLATFORM)
    assert result.flag is None
    assert costs == [125 * 18]
