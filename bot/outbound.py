"""The one way out: every message Beacon sends (the fast-path notice, Rasa's replies, the
Rasa-down answer, hand-off notices, staff replies) goes through :func:`send_out`, which
sends, counts, audits and tells the consoles, in that order.

The platform request itself (URL, body, chunking, retries) is the channel's business
(``bot.delivery`` and ``bot.channels``); this is everything around it that must be the same
for every sender. The audit and the console event are a record of a message the platform
already has: with Redis down they are logged and skipped, never a reason to send again.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Sequence

from redis.exceptions import RedisError

from bot import metrics
from bot.delivery import Sent
from bot.services import Services

logger = logging.getLogger(__name__)


async def send_out(services: Services, conversation: str, channel: str, recipient: str,
                   texts: Sequence[str], *, actor: str, outcome: str,
                   human_agent: bool = False, marks: Sequence[str] | None = None,
                   on_first: Callable[[Sent], None] | None = None) -> List[Sent]:
    """Send ``texts`` in order to one recipient and return what became of each.

    ``marks`` (one Redis key per text) make the sends idempotent: a text whose mark exists
    was sent before (a message handled again after a crash) and is skipped; a mark is set
    only after the platform took the text. ``on_first`` runs right after the first text
    went out (the notice's latency is measured there, not after the whole batch).
    ``outcome`` labels the counter (the triage outcome, or "staff")."""
    results: List[Sent] = []
    for i, text in enumerate(texts):
        mark = marks[i] if marks else None
        if mark and await services.redis.exists(mark):
            results.append(Sent(True, "sent before"))
            continue
        sent = await services.delivery.send(conversation, channel, recipient, text,
                                            human_agent=human_agent)
        results.append(sent)
        if mark and sent.ok:
            await services.redis.set(mark, "1", ex=services.settings.dedupe_ttl)
        if i == 0 and on_first is not None:
            on_first(sent)
        metrics.MESSAGES_OUT.labels(channel, outcome).inc()
        try:
            await services.audit(conversation, actor, "message_out", text)
        except (RedisError, OSError) as exc:
            logger.error("message sent but not audited (Redis: %s)", exc)
    if results:
        try:
            await services.publish("message_out", conversation, channel=channel)
        except (RedisError, OSError):
            pass  # consoles refresh on their next poll
    return results
