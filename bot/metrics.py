"""Prometheus metrics of one gateway process (each replica is scraped on its own).

Counters and histograms are updated where things happen; the queue gauges are read from
Redis when /metrics is scraped, because the queue is shared by every replica and only
Redis knows its depth.
"""

from __future__ import annotations

import time
from typing import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis

from bot import keys

# Latency buckets in seconds: the notice target is 0.3 s; Rasa under load takes seconds.
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30)

# ``agency``: the agency's id in a several-agency deployment (bot.agencies), "" otherwise
# (Prometheus treats an empty label as absent, so a single agency's series look as before).
MESSAGES_IN = Counter("beacon_messages_in_total", "Citizen messages accepted",
                      ["channel", "agency"])
MESSAGES_OUT = Counter("beacon_messages_out_total", "Replies handed to a platform or outbox",
                       ["channel", "outcome", "agency"])
DEDUPE_HITS = Counter("beacon_dedupe_hits_total", "Platform retries of an accepted message",
                      ["channel"])
RATE_LIMITED = Counter("beacon_rate_limited_total",
                       "Messages over the per-sender limit, sent to staff without Rasa",
                       ["channel"])
DELIVERY_FAILURES = Counter("beacon_delivery_failures_total",
                            "Replies a platform refused after retries", ["channel"])
RASA_UNAVAILABLE = Counter("beacon_rasa_unavailable_total",
                           "Messages answered by the safety net because Rasa could not")
TRIAGE_SECONDS = Histogram("beacon_triage_seconds", "Rasa round trip per message",
                           buckets=_BUCKETS)
REPLY_SECONDS = Histogram("beacon_reply_seconds",
                          "Webhook receipt to the first reply handed to delivery; "
                          "kind=notice is the emergency fast path",
                          ["kind", "agency"], buckets=_BUCKETS)
QUEUE_DEPTH = Gauge("beacon_queue_depth", "Conversations waiting for staff",
                    ["priority", "agency"])
OLDEST_WAITING = Gauge("beacon_oldest_waiting_seconds",
                       "Age of the longest-waiting conversation (0 when none)", ["agency"])

_PRIORITIES = {0: "urgent", 1: "normal"}


async def refresh_queue_gauges(redis: Redis, scopes: Sequence[keys.AgencyKeys] = (keys.SINGLE,),
                               now: float | None = None) -> None:
    """Each agency's queue depth and oldest wait (``scopes``: every agency's keys)."""
    now = now if now is not None else time.time()
    for scope in scopes:
        oldest_ms = None
        for priority, label in _PRIORITIES.items():
            low, high = priority * keys.PRIORITY_SPAN, (priority + 1) * keys.PRIORITY_SPAN - 1
            QUEUE_DEPTH.labels(label, scope.agency).set(await redis.zcount(scope.queue, low, high))
            first = await redis.zrangebyscore(scope.queue, low, high, start=0, num=1,
                                              withscores=True)
            if first:
                since = first[0][1] - low
                oldest_ms = since if oldest_ms is None else min(oldest_ms, since)
        OLDEST_WAITING.labels(scope.agency).set(
            max(0.0, now - oldest_ms / 1000) if oldest_ms is not None else 0.0)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
