"""Background duties of every gateway process: lost work, hand-off timers, escalations."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from redis.exceptions import RedisError

from bot import metrics
from bot.gateway.intake import notice_texts
from bot.logs import about
from bot.services import Services

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
SWEEP_EVERY = 5  # ticks
PRUNE_EVERY = 600  # ticks: expired records leave the indexes within ten minutes


async def run_monitor(services: Services, stop: asyncio.Event) -> None:
    tick = 0
    while not stop.is_set():
        try:
            if tick % SWEEP_EVERY == 0:
                await services.inbox.reannounce(await services.inbox.stranded())
            if tick % PRUNE_EVERY == 0:
                pruned = await services.queue.prune_expired()
                if pruned:
                    logger.info("retention: %d expired conversations left the queue", pruned)
            await send_due_notices(services)
            await escalate(services)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            logger.error("monitor: Redis unavailable (%s)", exc)
        except Exception:  # noqa: BLE001 - keep watching
            logger.exception("monitor: unexpected error")
        tick += 1
        try:
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)
        except asyncio.TimeoutError:
            pass


async def send_due_notices(services: Services) -> None:
    """A held conversation's urgent message had no staff reply in time: send the notice."""
    for meta in await services.queue.due_notices():
        conversation = meta["id"]
        with about(conversation):
            logger.warning("no staff reply to an urgent message: sending the 911 notice")
        flag = meta.get("urgent_flag") or "emergency"
        for text in notice_texts(services, flag, meta.get("urgent_language") or "en"):
            await services.delivery.send(conversation, meta.get("channel", ""),
                                         meta.get("sender", ""), text)
            metrics.MESSAGES_OUT.labels(meta.get("channel", ""), flag).inc()
            await services.audit(conversation, "bot", "message_out", text)
        await services.publish("notice_sent", conversation)


async def escalate(services: Services) -> None:
    """An emergency or crisis nobody has claimed in time: alert beyond the console."""
    overdue = await services.queue.unclaimed_urgent(services.settings.escalate_after)
    for conversation in overdue:
        meta = await services.queue.conversation(conversation)
        waited = time.time() - int(meta.get("waiting_since") or 0) / 1000
        alert = {
            "text": (f"Beacon: unclaimed {meta.get('outcome', 'urgent')} conversation waiting "
                     f"{int(waited // 60)} min {int(waited % 60)} s ({meta.get('channel')})."),
            "conversation": conversation,
            "outcome": meta.get("outcome"),
            "waiting_seconds": int(waited),
        }
        url = services.settings.escalation_webhook
        if url:
            try:
                async with services.http.post(url, json=alert,
                                              timeout=aiohttp.ClientTimeout(total=10)) as r:
                    if r.status >= 300:
                        logger.error("escalation webhook answered %s", r.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                logger.error("escalation webhook failed: %s", exc)
        else:
            await services.delivery.record_outbox(conversation, "escalation", "staff",
                                                  alert["text"], human_agent=False)
        await services.audit(conversation, "bot", "escalated", alert["text"])
        await services.publish("escalated", conversation)
