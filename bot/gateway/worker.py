"""Workers: each conversation's messages, one at a time and in order, through Rasa.

Any number of workers in any number of gateway processes share the work list; a
conversation's lock (bot.inbox) makes sure only one of them handles it at a time. A message
leaves the inbox only after it was answered (or queued for staff), so a crash or a dead
Redis loses nothing: the sweeper hands stranded conversations out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import time
from typing import List

from redis.exceptions import RedisError

from bot import keys, metrics
from bot.channels.meta import UNSUPPORTED
from bot.gateway.intake import ELSEWHERE, conversation_fields, notice_texts
from bot.inbox import Taken
from bot.logs import about
from bot.messages import DELETED, Inbound
from bot.outbound import send_out, sender_actions
from bot.queue import Entry, suspect_fields
from bot.rasa_client import RasaAnswer, RasaUnavailable
from bot.replies import follow_up_text, render_replies, routing_reply, throttled_text
from bot.safety_result import SAFETY_NET_KEY, SafetyResult
from bot.services import Services
from bot.triage import Outcome, decide

logger = logging.getLogger(__name__)

# How long a worker waits for the fast path to confirm the notice it is sending (beside the
# worker, perhaps in another process) before sending Rasa's notice itself: a second notice
# is a small cost, none at all is not.
NOTICE_CONFIRM_WAIT_S = 3.0
# Starts at one message before it goes to staff and the dead-letter list.
MAX_ATTEMPTS = 3
DEAD_LETTER_LIMIT = 1000


async def run_worker(services: Services, stop: asyncio.Event) -> None:
    """Pop conversations from the work list until ``stop`` is set."""
    while not stop.is_set():
        try:
            # Block for less than the client's socket timeout, or every idle poll is an error.
            conversation = await services.inbox.next_conversation(
                timeout=min(1.0, services.settings.redis_timeout / 2))
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
    """Handle a conversation's next message while holding its lock, then give it up: back to
    the end of the work list if more messages wait (fair workers), released if none do.

    The lock is kept alive for as long as a message is in hand (a slow Rasa or platform must
    not let a second worker start the same message). A message whose handling fails is
    retried by the sweeper; after MAX_ATTEMPTS starts it goes to staff and to the dead-letter
    list instead, so one bad message never blocks the conversation."""
    taken = await services.inbox.take(conversation)
    if taken is None:
        return  # another worker holds it (and will see this message too), or none waits
    token = taken.token
    heartbeat = asyncio.create_task(_keep_lock(services, conversation, token))
    done = False
    try:
        with about(conversation):
            await handle_or_give_up(services, json.loads(taken.raw), taken)
        if not await services.inbox.ack(conversation, token, taken.raw):
            with about(conversation):
                logger.warning("lost the conversation lock")
        done = True
    finally:
        heartbeat.cancel()
        if not done:
            # Failed or cancelled mid-message: let the sweeper hand it out again now rather
            # than after the lock expires.
            with contextlib.suppress(RedisError, OSError):
                await services.inbox.unlock(conversation, token)


async def _keep_lock(services: Services, conversation: str, token: str) -> None:
    every = services.inbox.lock_ttl_ms / 3000
    while True:
        await asyncio.sleep(every)
        try:
            if not await services.inbox.refresh(conversation, token):
                with about(conversation):
                    logger.warning("conversation lock lost while handling a message")
                return
        except (RedisError, OSError) as exc:
            logger.error("could not refresh the conversation lock: %s", exc)


def citizen_entry(message: Inbound, item: dict) -> Entry:
    """The citizen's message as a transcript entry; its message id stores it once."""
    return Entry("citizen", message.readable, item.get("received", time.time()),
                 id=message.message_id)


async def handle_or_give_up(services: Services, item: dict, taken: Taken) -> None:
    """Handle one message; after MAX_ATTEMPTS failed starts, hand it to staff instead."""
    message = Inbound.from_dict(item["inbound"])
    if taken.attempt > MAX_ATTEMPTS:
        await dead_letter(services, message, item, f"failed {MAX_ATTEMPTS} times")
        await record_outcome(services, message, item, "human")
        return
    await handle(services, {**item, "attempt": taken.attempt, "status": taken.status})


async def dead_letter(services: Services, message: Inbound, item: dict, reason: str) -> None:
    logger.error("message given up after repeated failures: %s", reason,
                 extra={"channel": message.channel})
    dead_letters = services.agency(message.conversation_id).keys.dead_letters
    await services.redis.lpush(dead_letters, json.dumps({
        "conversation": message.conversation_id, "message_id": message.message_id,
        "channel": message.channel, "reason": reason, "ts": time.time()}))
    await services.redis.ltrim(dead_letters, 0, DEAD_LETTER_LIMIT - 1)
    await services.redis.expire(dead_letters, services.settings.retention_seconds)
    flagged = item.get("flag") is not None
    await services.queue.enqueue(
        message.conversation_id, priority=0 if flagged else 1,
        entries=[citizen_entry(message, item)],
        fields={**conversation_fields(message), "reason": f"dead letter: {reason}"},
    )
    await services.publish("dead_letter", message.conversation_id)


async def handle(services: Services, item: dict) -> None:
    """Handle one message, then record what became of it (its outcome entry)."""
    message = Inbound.from_dict(item["inbound"])
    if message.kind == DELETED:
        await mark_deleted(services, message)
        return
    outcome = await _handle(services, message, item)
    await record_outcome(services, message, item, outcome)


async def record_outcome(services: Services, message: Inbound, item: dict,
                         outcome: str) -> None:
    """The audit entry the supervisors' reports count a message by (``bot.reports``): its
    outcome, channel, when it arrived and whether anyone was on duty as it was handled."""
    await services.audit(message.conversation_id, "bot", "outcome", outcome,
                         message_id=message.message_id, channel=message.channel,
                         received=item.get("received", time.time()),
                         on_duty=await services.presence.is_monitoring(
                             services.agency(message.conversation_id).keys))


async def _handle(services: Services, message: Inbound, item: dict) -> str:
    """Answer or queue one message; returns its outcome (a triage outcome, "held" when
    staff hold the conversation, "elsewhere" when another app owns the thread)."""
    conversation = message.conversation_id
    text = message.text[: services.settings.max_text_chars]
    await services.audit(conversation, "citizen", "message_in",
                         message.readable[: 2 * services.settings.max_text_chars])
    if item.get("elsewhere"):
        return await routed_elsewhere(services, message, item)
    # The queue status as the worker took the message (bot.inbox._TAKE).
    if item.get("status") == "claimed":
        return await hand_off(services, message, item)
    logger.debug("message in: %r", text, extra={"channel": message.channel})
    if not text.strip():
        return await route_to_person(services, message, item, (
            "unsupported message: read it in the Instagram app"
            if UNSUPPORTED in message.attachments else "attachment only"))
    if item.get("throttled"):
        return await queue_throttled(services, message, item)
    started = time.monotonic()
    # "Seen", then "typing", while Rasa works (Meta only; best effort, off to the side).
    answered = asyncio.Event()
    sender_actions(services, message.conversation_id, message.channel, message.sender,
                   answered)
    try:
        answer = await _answer(services, message, text, item)
    except RasaUnavailable as exc:
        answered.set()
        metrics.RASA_UNAVAILABLE.inc()
        logger.warning("Rasa unavailable (%s): answering with the safety net", exc,
                       extra={"channel": message.channel})
        return await route_to_person(services, message, item, f"rasa unavailable: {exc}")
    answered.set()
    metrics.TRIAGE_SECONDS.observe(time.monotonic() - started)
    replies = answer.texts
    if (item.get("notice") or item.get("urgent_ack")) and await services.inbox.notice_confirmed(
            message.channel, message.message_id, wait=NOTICE_CONFIRM_WAIT_S):
        # The fast path sent the notice (or, inside the window, the short line) already.
        department = services.department(message.conversation_id)
        already = set(notice_texts(services, message.conversation_id, item["flag"],
                                   item.get("language", "en"))
                      if item.get("notice") else [follow_up_text(department,
                                                              item.get("language") or "en")])
        replies = [r for r in replies if r not in already]
    logger.info("answered by Rasa", extra={
        "channel": message.channel, "outcome": answer.outcome, "topic": answer.topic,
        "rasa_ms": round((time.monotonic() - started) * 1000, 1), "replies": len(replies)})
    await send_all(services, message, replies, answer.outcome, item)
    return answer.outcome


async def _answer(services: Services, message: Inbound, text: str, item: dict) -> RasaAnswer:
    """Rasa's answer, asked once per message: a retried message reuses the stored one. A
    first attempt has none to look for: an answer is stored only after its message's
    attempt was counted, and the count is kept as long (bot.inbox)."""
    key = keys.answer(message.channel, message.message_id)
    stored = await services.redis.get(key) if item.get("attempt", 2) > 1 else None
    if stored:
        data = json.loads(stored)
        return RasaAnswer(data["texts"], data["outcome"], data.get("topic"))
    answer = await services.rasa.send(message.conversation_id, text, {
        "channel": message.channel, "message_id": message.message_id,
        "account": message.account, "sender": message.sender,
        "notice": bool(item.get("notice")),
        "received": item.get("received"),
        # The conversation's reply language (bot.conversation_language): Rasa's pipeline
        # sees only this message's text.
        "language": item.get("language"),
        "suspect": item.get("suspect"),
        # Intake's check of this very text (not of a shared post's caption beside it; both
        # cut to the same length and stripped, as Rasa strips it): Rasa's pipeline reads it
        # instead of running the safety net again (2-3 ms a message).
        # (Read back through from_dict: Redis's cjson stores an empty list as {}.)
        SAFETY_NET_KEY: (SafetyResult.from_dict(item["safety"]).as_dict()
                         if item.get("safety") and message.safety_text == message.text
                         else None),
    })
    await services.redis.set(key, json.dumps(dataclasses.asdict(answer)),
                             ex=services.settings.dedupe_ttl)
    return answer


async def send_all(services: Services, message: Inbound, replies: List[str], outcome: str,
                   item: dict | None = None) -> None:
    """Send a message's replies in order; each is sent once, even if the message is handled
    again after a crash or a lost lock (a reply is marked after it reached the platform)."""
    marks = [keys.reply_sent(message.channel, message.message_id, i)
             for i in range(len(replies))] if item else None

    def first(_sent) -> None:
        if item and not item.get("notice"):
            # The first answer to this message (the fast path times its own notice).
            metrics.REPLY_SECONDS.labels(
                "bot", services.agency(message.conversation_id).id).observe(
                time.time() - item.get("received", time.time()))

    language = (item or {}).get("language") or "en"
    # The 911 notice sent here (the fast path did not send it): timed for the reports.
    notice = (item is not None and outcome in ("emergency", "crisis") and bool(replies)
              and replies[0] in notice_texts(services, message.conversation_id, outcome, language))
    await send_out(services, message.conversation_id, message.channel, message.sender,
                   replies, actor="bot", outcome=outcome, marks=marks, on_first=first,
                   language=language,
                   notice_received=item.get("received") if notice and item else None)


async def queue_throttled(services: Services, message: Inbound, item: dict) -> str:
    """Over the sender's rate limit: staff read it; Rasa's time goes to other citizens.

    In an urgent conversation (notice window open) the flood is the person in danger
    writing: the conversation keeps its urgent outcome and place, and they are told once
    that their messages were added for staff, not that they sent too many."""
    urgent = await services.window.outcome(message.conversation_id,
                                           item.get("received", time.time()))
    fields = conversation_fields(message)
    if not urgent:
        fields.update(outcome="human", reason="rate limited")
    await services.queue.enqueue(
        message.conversation_id, priority=0 if urgent else 1,
        entries=[citizen_entry(message, item)],
        fields=fields,
    )
    await services.publish("queued", message.conversation_id, outcome=urgent or "human")
    logger.info("over the rate limit: queued for staff without Rasa",
                extra={"channel": message.channel, "urgent": bool(urgent)})
    if item.get("tell_throttled"):
        language = item.get("language") or "en"
        department = services.department(message.conversation_id)
        text = (follow_up_text(department, language) if urgent
                else throttled_text(department, language))
        await send_all(services, message, [text], urgent or "human", item)
    return urgent or "human"


async def route_to_person(services: Services, message: Inbound, item: dict, reason: str) -> str:
    """No Rasa answer (down, failing, or nothing to read): safety net decides, staff follow up."""
    # The intake's flag is the safety net's: its rules and the urgency model, so an urgent
    # message gets the notice here too, with no Rasa at all.
    safety = SafetyResult(flag=item.get("flag"), language=item.get("language", "en"))
    received = item.get("received", time.time())
    context = None if item.get("notice") else await services.window.outcome(
        message.conversation_id, received)
    decision = decide(None, 0.0, safety, urgent_context=context)
    now = dt.datetime.now(dt.timezone.utc)
    agency = services.agency(message.conversation_id)
    department = agency.department
    monitoring = await services.presence.is_monitoring(agency.keys)
    if item.get("notice") and await services.inbox.notice_confirmed(
            message.channel, message.message_id, wait=NOTICE_CONFIRM_WAIT_S):
        replies = [routing_reply(department, monitoring, now, safety.language)]
    else:
        replies = render_replies(decision, department, monitoring=monitoring,
                                 now=now, language=safety.language)
        if decision.followup and item.get("urgent_ack") and await \
                services.inbox.notice_confirmed(message.channel, message.message_id,
                                                wait=NOTICE_CONFIRM_WAIT_S):
            replies = []  # the fast path sent the short line already
        if decision.outcome.urgent and not decision.followup:
            replies.append(routing_reply(department, monitoring, now,
                                         safety.language))
            await services.window.open(message.conversation_id, decision.outcome.value,
                                       received)
    entries = [citizen_entry(message, item)]
    entries += [Entry("bot", r, entries[0].ts + (i + 1) / 1000,
                      id=f"{message.message_id}:reply:{i}") for i, r in enumerate(replies)]
    outcome = decision.outcome if decision.outcome.urgent else Outcome.HUMAN
    await services.queue.enqueue(
        message.conversation_id, entries=entries,
        priority=outcome.priority,
        fields={**conversation_fields(message), "outcome": outcome.value,
                "safety_net": safety.flag, "language": safety.language, "reason": reason,
                **suspect_fields(item.get("suspect"))},
    )
    await services.publish("queued", message.conversation_id, outcome=outcome.value)
    logger.info("routed to staff without Rasa", extra={
        "channel": message.channel, "outcome": outcome.value, "reason": reason.split(":")[0]})
    await send_all(services, message, replies, outcome.value, item)
    return outcome.value


async def routed_elsewhere(services: Services, message: Inbound, item: dict) -> str:
    """Another app (the page's own inbox) owns this Meta thread (bot.thread_control): Beacon
    sends nothing, not even the notice. An urgent message was queued at the top by intake
    (``fast_path``, without the notice; the pager follows if nobody claims it) and its text
    reaches the transcript here, flagged. A message Meta delivered on the standby channel
    reaches Beacon's transcript only while the conversation is in Beacon's queue already:
    the other app has it (and the audit log). Only standby deliveries come here: a message
    Meta delivers to Beacon itself makes the thread Beacon's (intake goes by the delivery
    channel, never by the record a handover left)."""
    conversation = message.conversation_id
    flag = item.get("flag")
    meta = await services.queue.conversation(conversation)
    logger.info("thread owned by another app: nothing sent", extra={
        "channel": message.channel, "safety_net": flag, "standby": message.standby})
    if flag is None and message.standby and meta.get("status") not in ("waiting", "claimed"):
        return "elsewhere"
    fields = {**conversation_fields(message), "reason": ELSEWHERE}
    if flag is not None:
        language = item.get("language") or "en"
        fields.update(outcome=flag, safety_net=flag, language=language, urgent_flag=flag,
                      urgent_at=time.time(), urgent_language=language)
    await services.queue.enqueue(conversation, priority=0 if flag else 1,
                                 entries=[citizen_entry(message, item)], fields=fields)
    if flag is not None:
        await services.publish("urgent", conversation, outcome=flag)
    await services.publish("message", conversation)
    return flag or "human"


async def mark_deleted(services: Services, message: Inbound) -> None:
    """The citizen deleted an earlier message (Instagram's ``is_deleted``): no turn, nothing
    sent. Its transcript entry is marked for staff and the audit log records the deletion;
    the text stays, since what a police department keeps is its records schedule's call."""
    conversation = message.conversation_id
    marked = await services.queue.mark_deleted(conversation, message.refers_to)
    await services.audit(conversation, "citizen", "message_deleted", message.refers_to)
    logger.info("citizen deleted a message", extra={"channel": message.channel,
                                                    "in_transcript": bool(marked)})
    await services.publish("message_deleted", conversation)


async def hand_off(services: Services, message: Inbound, item: dict) -> str:
    """Staff hold the conversation: the bot stays silent, the message goes to them."""
    conversation = message.conversation_id
    urgent = item.get("flag") is not None
    await services.queue.enqueue(
        conversation, priority=0 if urgent else 1,
        entries=[citizen_entry(message, item)],
        # The language too: the officer's canned replies follow the citizen's switch.
        fields={"last_citizen_at": message.timestamp,
                "language": item.get("language") or "en"},
    )
    if urgent:
        await services.queue.flag_urgent(conversation, item["flag"], item.get("language", "en"),
                                         services.settings.handoff_notice_after)
        await services.publish("urgent", conversation, outcome=item["flag"])
    await services.publish("message", conversation)
    return item["flag"] if urgent else "held"
