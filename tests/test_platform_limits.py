"""Issue 10, item 6: the platforms' sending limits, with a real Redis and the gateway in front
of a fake X that answers as X documents (429 with x-rate-limit-reset)."""

from __future__ import annotations

import asyncio
import json
import time

from bot import keys, platform_limits
from bot.platform_limits import PlatformLimits, retry_after
from tests.gateway_support import X_ACCOUNT, x_payload, x_signature


def test_retry_after_reads_x_and_the_standard_headers():
    now = 1_764_460_800.0
    assert retry_after({"x-rate-limit-reset": str(int(now) + 600)}, now) == 600
    assert retry_after({"retry-after": "30"}, now) == 30
    assert retry_after({"retry-after": "Sun, 30 Nov 2025 00:01:00 GMT"}, now) == 60
    assert retry_after({}, now) is None and retry_after({"retry-after": "soon"}, now) is None
    # A reset in the past or absurdly far away is bounded.
    assert retry_after({"x-rate-limit-reset": "5"}, now) == 1.0
    assert retry_after({"retry-after": "99999999"}, now) == 86_400.0


async def test_x_sends_are_counted_against_its_windows(redis, monkeypatch):
    monkeypatch.setitem(platform_limits.LIMITS, "x", (("15m", 900, 3), ("24h", 86_400, 5),
                                                      ("app24h", 86_400, 15_000)))
    limits = PlatformLimits(redis)
    assert [await limits.take("x", "111") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limits.take("x", "111")
    assert 890 < wait <= 900  # the 15-minute window, not waited out
    # Another account has its own windows; the app's window counts both.
    assert await limits.take("x", "222") == 0.0
    assert await redis.get(keys.platform_sends("x", "app", "app24h")) == "4"
    [limited] = await limits.status()
    assert (limited.channel, limited.account, limited.why) == ("x", "111",
                                                               "3 sends per 15m reached")
    # Meta has no fixed count: only a 429 stops it.
    assert await limits.take("meta", "999") == 0.0


async def test_a_429_from_x_stops_sends_until_its_reset_and_the_console_says_so(
        offline, platform, redis):
    from bot.appkeys import SERVICES

    platform.x_reset = int(time.time()) + 600
    platform.x_fail = [429]
    body = json.dumps(x_payload("4242", "can someone call me back")).encode()
    response = await offline.post("/webhooks/x", data=body,
                                  headers={"x-twitter-webhooks-signature": x_signature(body)})
    assert response.status == 200
    conversation = f"x:{X_ACCOUNT}:4242"
    for _ in range(100):
        error = await redis.hget(keys.conversation(conversation), "delivery_error")
        if error:
            break
        await asyncio.sleep(0.1)
    assert error and "429" in error and "resumes in 10 min" in error
    # Not retried into the limit: one request reached X, and the block is shared.
    assert len(platform.x_refusals) == 1
    assert 590 < await redis.ttl(keys.platform_block("x", X_ACCOUNT)) <= 600
    sent = await offline.app[SERVICES].delivery.send(conversation, "x", "4242", "hello")
    assert not sent.ok and "resumes in" in sent.error
    assert len(platform.x_refusals) == 1 and not [s for s in platform.sent
                                                  if s["platform"] == "x"]
    [limited] = await offline.app[SERVICES].delivery.limits.status()
    assert limited.channel == "x" and limited.account == X_ACCOUNT
