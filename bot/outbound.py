"""The one way out: every message Beacon sends (the fast-path notice, Rasa's replies, the
Rasa-down answer, hand-off notices, staff replies) goes through :func:`send_out`, which
sends, counts, audits and tells the consoles, in that order.

The platform request itself (URL, body, chunking, retries) is the channel's business
(``bot.delivery`` and ``bot.channels``); this is everything around it that must be the same
for every sender. The audit and the console event are a record of a message the platform
already has: with Redis down they are logged and skipped, never a reason to send again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, List, Sequence

from redis.exceptions import RedisError

from bot import metrics
from bot.delivery import Sent
from bot.disclosure import with_disclosure
from bot.messages import INSTAGRAM, MESSENGER
from bot.replies import disclosure_text
from bot.services import Services

logger = logging.getLogger(__name__)


async def send_out(services: Services, conversation: str, channel: str, recipient: str,
                   texts: Sequence[str], *, actor: str, outcome: str,
                   human_agent: bool = False, marks: Sequence[str] | None = None,
                   on_first: Callable[[Sent], None] | None = None,
                   language: str = "en", notice_received: float | None = None,
                   redis_down: bool = False) -> List[Sent]:
    """Send ``texts`` in order to one recipient and return what became of each.

    ``marks`` (one Redis key per text) make the sends idempotent: a text whose mark exists
    was sent before (a message handled again after a crash) and is skipped; a mark is set
    only after the platform took the text, and a mark that cannot be set (Redis) ends the
    batch with the error. ``on_first`` runs right after the first text
    went out (the notice's latency is measured there, not after the whole batch).
    ``outcome`` labels the counter (the triage outcome, or "staff"). Beacon's own replies
    (``actor`` "bot") carry the line that says it is automated when it is due
    (``bot.disclosure``), in ``language``: in the first text, or, in an urgent reply, in the
    last one, decided only after the notice went out (the notice never waits on Redis for
    it). ``notice_received`` says the texts are a 911 notice for a message received then:
    the first one's audit entry records it once the platform took it, for the reports'
    notice latency (``bot.reports``). ``redis_down``: the offline notice, sent straight to
    the platform with nothing asked of Redis."""
    texts = list(texts)
    results: List[Sent] = []
    disclose = actor == "bot" and bool(texts) and not redis_down
    urgent = outcome in ("emergency", "crisis")
    # The text that carries the disclosure line: the first, or in an urgent reply the last,
    # decided once the notice (the first text) went out.
    carrier = None
    if disclose and not urgent and await _due(services, conversation):
        carrier = 0
    # Which texts went out before (one read for all; the conversation's lock keeps anyone
    # else from sending them meanwhile).
    before = [bool(v) for v in await services.redis.mget(marks)] if marks else []
    announced = False
    for i, text in enumerate(texts):
        if i == 1 and disclose and urgent and await _due(services, conversation):
            carrier = len(texts) - 1
        if i == carrier:
            text = texts[i] = with_disclosure(
                text, disclosure_text(services.department(conversation), language), after=urgent)
        if before and before[i]:
            results.append(Sent(True, "sent before"))
            continue
        sent = await services.delivery.send(conversation, channel, recipient, text,
                                            human_agent=human_agent, counted=not redis_down)
        results.append(sent)
        if i == 0 and on_first is not None:
            on_first(sent)
        if i == carrier and sent.ok:
            await _disclosed(services, conversation)
        metrics.MESSAGES_OUT.labels(channel, outcome, services.agency(conversation).id).inc()
        if redis_down:
            continue
        facts = ({"notice_received": notice_received}
                 if i == 0 and sent.ok and notice_received is not None else {})
        # The mark only once the platform took the text; the consoles hear of the batch
        # with its last text (one event, as before, now in the audit's round trip).
        last = i == len(texts) - 1
        try:
            await services.audit(
                conversation, actor, "message_out", text,
                mark=(marks[i], services.settings.dedupe_ttl) if marks and sent.ok else None,
                publish=(services.event("message_out", conversation, channel=channel)
                         if last else None),
                **facts)
            announced = announced or last
        except (RedisError, OSError) as exc:
            if marks:
                # Not marked: stop here, or every later text goes out unmarked as well and
                # is sent again when the message is retried (found by the live attack).
                # Only the text in flight may be sent twice.
                raise
            logger.error("message sent but not audited (Redis: %s)", exc)
    if results and not redis_down and not announced:
        try:
            await services.publish("message_out", conversation, channel=channel)
        except (RedisError, OSError):
            pass  # consoles refresh on their next poll
    return results


async def _due(services: Services, conversation: str) -> bool:
    try:
        return await services.disclosure.due(conversation)
    except (RedisError, OSError) as exc:
        # The reply matters, the line does not: it comes with a later reply instead.
        logger.warning("disclosure not checked (Redis: %s)", exc)
        return False


async def _disclosed(services: Services, conversation: str) -> None:
    """The text with the line reached the platform: only now is the line spent."""
    try:
        await services.disclosure.mark(conversation)
    except (RedisError, OSError) as exc:
        logger.warning("disclosure not recorded (Redis: %s)", exc)


def sender_actions(services: Services, conversation: str, channel: str, recipient: str,
                   answered: asyncio.Event) -> asyncio.Task | None:
    """Show the citizen that their message was seen and is being answered: ``mark_seen``,
    then ``typing_on`` unless ``answered`` is set by then (a typing bubble after the reply
    would say more is coming). Messenger and Instagram only.

    Not a message (nothing is counted, audited or kept), and best effort: it runs beside
    the caller, which never waits for it, so it cannot delay the reply or the 911 notice
    (sent by intake's fast path, apart from this); one attempt each, a failure only logged
    (``bot.delivery.Delivery.sender_action``)."""
    if channel not in (MESSENGER, INSTAGRAM):
        return None

    async def run() -> None:
        for action in ("mark_seen", "typing_on"):
            if action == "typing_on" and answered.is_set():
                return
            if not await services.delivery.sender_action(conversation, channel, recipient,
                                                         action):
                return

    return services.delivery.in_background(run())
