"""Workers: each conversation's messages, one at a time and in order, through Rasa.

Any number of workers in any number of gateway processes share the work list; a
conversation's lock (bot.inbox) makes sure only one of them handles it at a time. A message
leaves the inbox only after it was answered (or queued for staff), so a crash or a dead
Redis loses nothing: the sweeper hands stranded conversations out again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import List

from redis.exceptions import RedisError

from bot import metrics
from bot.gateway.intake import notice_texts
from bot.logs import about
from bot.messages import Inbound
from bot.queue import Entry
from bot.rasa_client import RasaUnavailable
from bot.replies import THROTTLED, render_replies, routing_reply
from bot.safety_net import SafetyResult
from bot.services import Services
from bot.triage import Outcome, decide

logger = logging.getLogger(__name__)


async def run_worker(services: Services, stop: asyncio.Event) -> None:
    """Pop conversations from the work list until ``stop`` is set."""
    while not stop.is_set():
        try:
            conversation = await services.inbox.next_conversation(timeout=1)
            if conversation:
                await drain(services, conversation)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            logger.error("worker: Redis unavailable (%s); retrying", exc)
            await asyncio.sleep(1)
        except Exception:  # noqa: BLE001 - one bad message must not stop the worker
            logger.exception("worker: unexpected error")
            await asyncio.sleep(0.1)


async def drain(services: Services, conversation: str) -> None:
    token = await services.inbox.lock(conversation)
    if token is None:
        return  # another worker holds it and will see this message too
    while True:
        raw = await services.inbox.head(conversation)
        if raw is not None:
            await services.inbox.refresh(conversation, token)
            with about(conversation):
                await handle(services, json.loads(raw))
            if not await services.inbox.ack(conversation, token, raw):
                with about(conversation):
                    logger.warning("lost the conversation lock")
                return
            continue
        if await services.inbox.release(conversation, token):
            return


async def handle(services: Services, item: dict) -> None:
    message = Inbound.from_dict(item["inbound"])
    conversation = message.conversation_id
    text = message.text[: services.settings.max_text_chars]
    await services.audit(conversation, "citizen", "message_in",
                         text or f"[{', '.join(message.attachments) or 'empty'}]")
    meta = await services.queue.conversation(conversation)
    if meta.get("status") == "claimed":
        await hand_off(services, message, item)
        return
    logger.debug("message in: %r", text, extra={"channel": message.channel})
    if not text.strip():
        await route_to_person(services, message, item, "attachment only")
        return
    if item.get("throttled"):
        await queue_throttled(services, message, item)
        return
    started = time.monotonic()
    try:
        answer = await services.rasa.send(conversation, text, {
            "channel": message.channel, "message_id": message.message_id,
            "account": message.account, "sender": message.sender,
            "notice": bool(item.get("notice")),
        })
    except RasaUnavailable as exc:
        metrics.RASA_UNAVAILABLE.inc()
        logger.warning("Rasa unavailable (%s): answering with the safety net", exc,
                       extra={"channel": message.channel})
        await route_to_person(services, message, item, f"rasa unavailable: {exc}")
        return
    metrics.TRIAGE_SECONDS.observe(time.monotonic() - started)
    replies = answer.texts
    if item.get("notice"):
        already = set(notice_texts(services, item["flag"], item.get("language", "en")))
        replies = [r for r in replies if r not in already]
    logger.info("answered by Rasa", extra={
        "channel": message.channel, "outcome": answer.outcome, "topic": answer.topic,
        "rasa_ms": round((time.monotonic() - started) * 1000, 1), "replies": len(replies)})
    await send_all(services, message, replies, answer.outcome, item)


async def send_all(services: Services, message: Inbound, replies: List[str], outcome: str,
                   item: dict | None = None) -> None:
    for i, text in enumerate(replies):
        await services.delivery.send(message.conversation_id, message.channel, message.sender,
                                     text)
        if i == 0 and item and not item.get("notice"):
            # The first answer to this message (the fast path times its own notice).
            metrics.REPLY_SECONDS.labels("bot").observe(
                time.time() - item.get("received", time.time()))
        metrics.MESSAGES_OUT.labels(message.channel, outcome).inc()
        await services.audit(message.conversation_id, "bot", "message_out", text)


async def queue_throttled(services: Services, message: Inbound, item: dict) -> None:
    """Over the sender's rate limit: staff read it; Rasa's time goes to other citizens."""
    await services.queue.enqueue(
        message.conversation_id, priority=1,
        entries=[Entry("citizen", message.text, item.get("received", time.time()))],
        fields={"outcome": "human", "channel": message.channel, "sender": message.sender,
                "account": message.account, "reason": "rate limited",
                "preview": message.text[:200], "last_citizen_at": message.timestamp},
    )
    await services.publish("queued", message.conversation_id, outcome="human")
    logger.info("over the rate limit: queued for staff without Rasa",
                extra={"channel": message.channel})
    if item.get("tell_throttled"):
        await send_all(services, message, [services.department.render(THROTTLED)], "human",
                       item)


async def route_to_person(services: Services, message: Inbound, item: dict, reason: str) -> None:
    """No Rasa answer (down, failing, or nothing to read): safety net decides, staff follow up."""
    # The intake's flag is the safety net's: its rules and the urgency model, so an urgent
    # message gets the notice here too, with no Rasa at all.
    safety = SafetyResult(flag=item.get("flag"), language=item.get("language", "en"))
    context = None if item.get("notice") else await services.window.outcome(
        message.conversation_id)
    decision = decide(None, 0.0, safety, urgent_context=context)
    now = dt.datetime.now(dt.timezone.utc)
    monitoring = await services.queue.is_monitoring()
    if item.get("notice"):
        replies = [routing_reply(services.department, monitoring, now)]
    else:
        replies = render_replies(decision, services.department, monitoring=monitoring,
                                 now=now, language=safety.language)
        if decision.outcome.urgent and not decision.followup:
            replies.append(routing_reply(services.department, monitoring, now))
            await services.window.open(message.conversation_id, decision.outcome.value)
    entries = [Entry("citizen", message.text or f"[{', '.join(message.attachments)}]",
                     item.get("received", time.time()))]
    entries += [Entry("bot", r, entries[0].ts + (i + 1) / 1000) for i, r in enumerate(replies)]
    outcome = decision.outcome if decision.outcome.urgent else Outcome.HUMAN
    await services.queue.enqueue(
        message.conversation_id, priority=outcome.priority, entries=entries,
        fields={"outcome": outcome.value, "channel": message.channel, "sender": message.sender,
                "account": message.account, "safety_net": safety.flag,
                "language": safety.language, "reason": reason, "preview": message.text[:200],
                "last_citizen_at": message.timestamp},
    )
    await services.publish("queued", message.conversation_id, outcome=outcome.value)
    logger.info("routed to staff without Rasa", extra={
        "channel": message.channel, "outcome": outcome.value, "reason": reason.split(":")[0]})
    await send_all(services, message, replies, outcome.value, item)


async def hand_off(services: Services, message: Inbound, item: dict) -> None:
    """Staff hold the conversation: the bot stays silent, the message goes to them."""
    conversation = message.conversation_id
    urgent = item.get("flag") is not None
    await services.queue.enqueue(
        conversation, priority=0 if urgent else 1,
        entries=[Entry("citizen", message.text or f"[{', '.join(message.attachments)}]",
                       item.get("received", time.time()))],
        fields={"last_citizen_at": message.timestamp},
    )
    if urgent:
        await services.queue.flag_urgent(conversation, item["flag"], item.get("language", "en"),
                                         services.settings.handoff_notice_after)
        await services.publish("urgent", conversation, outcome=item["flag"])
    await services.publish("message", conversation)
