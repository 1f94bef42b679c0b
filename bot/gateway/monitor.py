"""Background duties of every gateway process: lost work, hand-off timers, escalations."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Set

import aiohttp
from redis.exceptions import RedisError

from bot.gateway.intake import notice_texts
from bot.logs import about, conversation_ref
from bot.outbound import send_out
from bot.services import Services

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
SWEEP_EVERY = 5  # ticks
PRUNE_EVERY = 600  # ticks: expired records leave the indexes within ten minutes
# Seconds between attempts at the escalation webhook.
ESCALATION_BACKOFF = (1.0, 3.0, 9.0)


async def run_monitor(services: Services, stop: asyncio.Event) -> None:
    """Every tick: hand out stranded work, send due hand-off notices, escalate. Sends run as
    tasks of their own: a slow pager or platform must not hold up the next tick (a 10 s
    escalation POST used to delay every hand-off notice behind it)."""
    tick = 0
    running: Set[asyncio.Task] = set()
    try:
        while not stop.is_set():
            try:
                if tick % SWEEP_EVERY == 0:
                    await services.inbox.sweep()
                if tick % PRUNE_EVERY == 0:
                    pruned = await services.queue.prune_expired()
                    if pruned:
                        logger.info("retention: %d expired conversations left the queue", pruned)
                for meta in await services.queue.due_notices():
                    _spawn(running, send_due_notice(services, meta))
                for conversation in await services.queue.unclaimed_urgent(
                        services.settings.escalate_after):
                    _spawn(running, escalate(services, conversation))
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
    finally:
        for task in running:
            task.cancel()


def _spawn(running: Set[asyncio.Task], coro) -> None:
    task = asyncio.create_task(_guarded(coro))
    running.add(task)
    task.add_done_callback(running.discard)


async def _guarded(coro) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - one failed send must not end the others
        logger.exception("monitor task failed")


async def send_due_notice(services: Services, meta: dict) -> None:
    """A held conversation's urgent message had no staff reply in time: send the notice."""
    conversation = meta["id"]
    with about(conversation):
        logger.warning("no staff reply to an urgent message: sending the 911 notice")
    flag = meta.get("urgent_flag") or "emergency"
    language = meta.get("urgent_language") or "en"
    await send_out(services, conversation, meta.get("channel", ""), meta.get("sender", ""),
                   notice_texts(services, conversation, flag, language), actor="bot", outcome=flag,
                   language=language,
                   notice_received=float(meta["urgent_at"]) if meta.get("urgent_at") else None)
    await services.queue.notice_done(conversation)
    await services.publish("notice_sent", conversation)


async def escalate(services: Services, conversation: str) -> None:
    """An emergency or crisis nobody has claimed in time: alert beyond the console.

    The alert names the conversation by its pseudonym only (the pager is a third party).
    It is retried with backoff; only a delivered alert marks the conversation escalated.
    If the pager stays down, the alert goes to the outbox and the console shows the failure,
    and the conversation counts as escalated (staff see it there) so it is not re-sent."""
    meta = await services.queue.conversation(conversation)
    waited = time.time() - int(meta.get("waiting_since") or 0) / 1000
    alert = {
        "text": (f"Beacon: unclaimed {meta.get('outcome', 'urgent')} conversation "
                 f"{conversation_ref(conversation)} waiting {int(waited // 60)} min "
                 f"{int(waited % 60)} s ({meta.get('channel')})."),
        "conversation": conversation_ref(conversation),
        "outcome": meta.get("outcome"),
        "waiting_seconds": int(waited),
    }
    agency = services.agency(conversation)
    if agency.id:
        alert["agency"] = agency.id
    # Each agency's own pager; a single agency's is BEACON_ESCALATION_WEBHOOK.
    url = agency.credentials.escalation_webhook
    error = "no escalation webhook configured" if not url else ""
    if url:
        for attempt, pause in enumerate((*ESCALATION_BACKOFF, None)):
            error = await _post_alert(services, url, alert)
            if not error:
                break
            with about(conversation):
                logger.error("escalation webhook failed (attempt %d): %s", attempt + 1, error)
            if pause is not None:
                await asyncio.sleep(pause)
    if error:
        await services.delivery.record_outbox(conversation, "escalation", "staff",
                                              alert["text"], human_agent=False)
    await services.queue.mark_escalated(conversation, error if url else "")
    await services.audit(conversation, "bot", "escalation_failed" if url and error
                         else "escalated", alert["text"])
    await services.publish("escalated", conversation)


async def _post_alert(services: Services, url: str, alert: dict) -> str:
    """'' when the pager took the alert, else what went wrong."""
    try:
        async with services.http.post(url, json=alert,
                                      timeout=aiohttp.ClientTimeout(total=10)) as response:
            return "" if response.status < 300 else f"HTTP {response.status}"
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
