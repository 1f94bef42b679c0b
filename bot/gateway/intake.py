"""What happens to a platform message before the webhook is acknowledged.

1. The safety net runs on it: its rules and the urgency model (about a millisecond).
2. One Redis script drops a retried delivery, appends the message to its conversation's
   inbox and decides whether the 911 notice goes out now (not while staff hold the
   conversation, and once per notice window).
3. A flagged message goes to the top of the human queue at once, with the notice sent
   first when it is due, without waiting for Rasa. Everything else happens in the workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from typing import List, Set

from redis.exceptions import RedisError

from bot import metrics
from bot.channels import ThreadControl
from bot.cpu_lane import LANE_PLATFORM, LANE_WEB_CHAT
from bot.inbox import Accepted
from bot.logs import about
from bot.messages import WEBCHAT, Inbound
from bot.nlp import language_is_clear
from bot.outbound import send_out
from bot.queue import suspect_fields
from bot.replies import follow_up_text, render_replies
from bot.safety_result import SafetyResult
from bot.services import Services
from bot.thread_control import delivery
from bot.triage import Decision, Outcome

logger = logging.getLogger(__name__)

# The queue's reason for a message in a Meta thread another app (the page's own inbox) owns.
ELSEWHERE = ("another app (the page's inbox) owns this Meta thread: Beacon sent nothing; "
             "answer there")


def notice_texts(services: Services, conversation_id: str, flag: str,
                 language: str) -> List[str]:
    """The fast-path replies for a safety-net flag (the worker drops them from Rasa's), in
    the words of the conversation's agency."""
    outcome = Outcome.CRISIS if flag == "crisis" else Outcome.EMERGENCY
    return render_replies(Decision(outcome, None, "safety net"),
                          services.department(conversation_id),
                          monitoring=False, now=dt.datetime.now(dt.timezone.utc), language=language)


def conversation_fields(message: Inbound) -> dict:
    """The queue fields every path that queues a citizen's message sets."""
    return {"channel": message.channel, "sender": message.sender, "account": message.account,
            "preview": (message.text or message.readable)[:200],
            "last_citizen_at": message.timestamp}


async def check(services: Services, message: Inbound, lane: int | None = None) -> SafetyResult:
    """The safety net on one message, on the CPU thread (bounded to a few milliseconds by
    ``SafetyNet.check`` itself, and never on the event loop that answers everyone else)."""
    # Its words and the words of what it shared (a post's caption): both can be a cry for
    # help ("my friend posted this").
    text = message.safety_text
    if not text:
        return SafetyResult(flag=None, language="en")
    if lane is None:
        lane = LANE_WEB_CHAT if message.channel == WEBCHAT else LANE_PLATFORM
    agency = services.deployment.for_account(message.channel, message.account)
    # Stripped, as Rasa strips a message before its pipeline reads it: the rules read a long
    # message's first and last 200 characters, and 200 newlines around the danger hid it
    # from intake while Rasa, reading intake's result, no longer looked again (live attack).
    return await services.check_off_loop(text[: services.settings.max_text_chars].strip(),
                                         lane=lane,
                                         flow=agency.id if agency is not None else "")


async def thread_control(services: Services, event: ThreadControl) -> None:
    """A ``messaging_handovers`` event: record who owns the thread now, and say so in the
    conversation's audit log. Raises only if Redis is down (the platform then retries)."""
    line = await services.threads.apply(event)
    await services.audit(event.conversation_id, "meta", "thread_control", line)
    with about(event.conversation_id):
        logger.info("thread control changed", extra={"channel": event.channel,
                                                     "action": event.action})
    await services.publish("thread_control", event.conversation_id, channel=event.channel)


async def accept(services: Services, message: Inbound, background: Set[asyncio.Task],
                 suspect: str | None = None, safety: SafetyResult | None = None) -> Accepted:
    """Take one message in; returns whether it was new. Raises only if Redis is down.

    ``suspect`` (why) keeps an urgent message's conversation out of the top of the queue
    and the pager; the citizen still gets the notice."""
    safety = safety or await check(services, message)  # once per message
    # Another app owns the thread (Meta delivered it on the standby channel): no notice from
    # Beacon (nor its notice window), but an urgent message still goes to the top of the
    # queue (fast_path, below).
    elsewhere = message.standby
    item = {
        "inbound": message.as_dict(),
        "received": time.time(),
        "flag": safety.flag,
        "language": safety.language,
        # The whole result, for Rasa's pipeline to read rather than check the text again
        # (bot.gateway.worker._answer, bot.nlu_component.SafetyNetFlagger).
        "safety": safety.as_dict(),
        "suspect": suspect,
        "elsewhere": elsewhere,
    }
    try:
        accepted = await services.inbox.accept(
            message.channel, message.message_id, message.conversation_id, item,
            flag=None if elsewhere else safety.flag,
            language_clear=language_is_clear(message.text or "", safety.language),
            # The thread's owner record and the consoles' event, in the same step.
            delivered=delivery(message), owner_ttl=services.threads.ttl,
            event=services.event("message", message.conversation_id,
                                 channel=message.channel),
        )
    except (RedisError, OSError):
        # The platform gets a 503 and retries later, but a person in danger must not wait
        # for Redis to come back: the notice goes out now, straight to the platform.
        if safety.flag and not elsewhere and services.offline_notices.add(
                message.channel, message.message_id):
            _spawn(background, message.conversation_id,
                   offline_notice(services, message, safety, item["received"]))
        raise
    with about(message.conversation_id):
        if not accepted.new:
            metrics.DEDUPE_HITS.labels(message.channel).inc()
            logger.info("retry of an accepted message dropped", extra={"channel": message.channel})
            return accepted
        metrics.MESSAGES_IN.labels(message.channel,
                                   services.agency(message.conversation_id).id).inc()
        if accepted.throttled:
            metrics.RATE_LIMITED.labels(message.channel).inc()
        logger.info("message accepted", extra={
            "channel": message.channel, "safety_net": safety.flag, "tier": safety.tier,
            "language": safety.language, "notice": accepted.notice,
            "throttled": accepted.throttled})
        if accepted.language != safety.language:
            # The conversation's language for a message that showed none ("ok", "7:30?").
            safety = dataclasses.replace(safety, language=accepted.language)
        if safety.flag and accepted.status != "claimed":
            # Already sent while Redis was down: the retry only queues the conversation.
            sent = services.offline_notices.pop(message.channel, message.message_id)
            _spawn(background, message.conversation_id,
                   fast_path(services, message, safety, item["received"],
                             send_notice=accepted.notice and not sent,
                             send_ack=accepted.urgent_ack,
                             sent_offline=sent, item_suspect=suspect, elsewhere=elsewhere))
    return accepted


def _spawn(background: Set[asyncio.Task], conversation_id: str, coro) -> None:
    """Run ``coro`` after the platform got its answer; kept in a set so it is neither
    garbage-collected nor lost at shutdown (the app awaits the set). The task gets its own
    copy of the context, naming the conversation for its log lines."""
    with about(conversation_id):
        task = asyncio.create_task(coro)
    background.add(task)
    task.add_done_callback(background.discard)


async def offline_notice(services: Services, message: Inbound, safety: SafetyResult,
                         received: float) -> None:
    """Redis is down: send the notice on the platform's own API (no outbox, no audit)."""
    logger.warning("Redis down: sending the 911 notice before the message can be stored")
    delivered = False
    try:
        delivered = await _send_notice(services, message, safety, received, redis_down=True)
    except (RedisError, OSError) as exc:  # web chat and the outbox live in Redis
        logger.error("could not send the notice while Redis is down: %s", exc)
    # A fact after the send: only a delivered notice spares the retry from sending it.
    services.offline_notices.sent(message.channel, message.message_id, delivered)
    if delivered:
        # Redis may only have been slow: the intake script ran after the client gave up,
        # the message is stored with its notice due, and the platform's retry is dropped
        # as seen. The worker then waits for this fact, or sends a second notice (found
        # by the live attack). Where Redis is down indeed, nothing is lost by trying.
        try:
            await services.inbox.record_notice(message.channel, message.message_id)
        except (RedisError, OSError) as exc:
            logger.info("offline notice not recorded in Redis (%s)", exc)


async def _send_notice(services: Services, message: Inbound, safety: SafetyResult,
                       received: float, redis_down: bool = False) -> bool:
    """Send the notice; True only when every part of it reached the platform."""
    outcome = Outcome.CRISIS if safety.flag == "crisis" else Outcome.EMERGENCY

    def first(_sent) -> None:
        metrics.REPLY_SECONDS.labels("notice", services.agency(message.conversation_id).id
                                     ).observe(time.time() - received)
        logger.info("911 notice sent (fast path)",
                    extra={"channel": message.channel, "outcome": outcome.value})

    sent = await send_out(services, message.conversation_id, message.channel, message.sender,
                          notice_texts(services, message.conversation_id, outcome.value,
                                       safety.language),
                          actor="bot", outcome=outcome.value, on_first=first,
                          language=safety.language, notice_received=received,
                          redis_down=redis_down)
    return all(s.ok for s in sent)


async def fast_path(services: Services, message: Inbound, safety: SafetyResult,
                    received: float, *, send_notice: bool = True, send_ack: bool = False,
                    sent_offline: bool = False, item_suspect: str | None = None,
                    elsewhere: bool = False) -> None:
    """The notice first when it is due (every millisecond counts for the person), then the
    queue: a flagged message inside the notice window only raises the queue flag."""
    conversation = message.conversation_id
    outcome = Outcome.CRISIS if safety.flag == "crisis" else Outcome.EMERGENCY
    delivered = sent_offline
    if send_notice:
        try:
            delivered = await _send_notice(services, message, safety, received)
        except Exception:  # noqa: BLE001 - the worker sends it then; nothing else may stop
            logger.exception("fast path could not send the notice; the worker will")
            delivered = False
    acknowledged = False
    if send_ack and not send_notice:
        # Inside the notice window: the person wrote again; the short line now, not after
        # Rasa's turn (the worker drops it from Rasa's answer once this is confirmed).
        try:
            line = follow_up_text(services.department(conversation), safety.language)
            sent = await send_out(services, conversation, message.channel, message.sender,
                                  [line], actor="bot", outcome=outcome.value,
                                  language=safety.language)
            acknowledged = all(s.ok for s in sent)
        except Exception:  # noqa: BLE001 - the worker sends it then
            logger.exception("fast path could not send the acknowledgement; the worker will")
    try:
        if delivered or acknowledged:
            # The fact the worker waits for; recorded after the send, never before it.
            await services.inbox.record_notice(message.channel, message.message_id)
        if sent_offline:  # sent while Redis was down: the audit log gets it now
            for text in notice_texts(services, conversation, outcome.value, safety.language):
                await services.audit(conversation, "bot", "message_out", text)
        fields = {**conversation_fields(message), "outcome": outcome.value,
                  "safety_net": safety.flag, "tier": safety.tier, "language": safety.language}
        if delivered:
            fields["notice_sent_at"] = time.time()
        if item_suspect:
            fields.update(reason=item_suspect, **suspect_fields(item_suspect))
        if elsewhere:
            fields["reason"] = ELSEWHERE
        await services.queue.enqueue(conversation, entries=[], fields=fields,
                                     priority=outcome.priority)
        await services.publish("urgent", conversation, outcome=outcome.value)
    except (RedisError, OSError):
        # The worker queues it too (at the top: the message is flagged), once Redis answers.
        logger.exception("fast path could not queue")
