"""The notice window: after the 911 notice, a conversation stays urgent for a while.

Intake opens it atomically in its Lua script (``bot.inbox``) when it sends the notice; the
action and the Rasa-down path open it when the notice went out after Rasa's turn (the intent
model saw what intake did not). While it is open the notice is not repeated and follow-ups
stay urgent (``bot.triage.decide``'s ``urgent_context``).

The key's value is "<outcome>|<when the urgent message was received>": only a message
received after it is its follow-up (a question sent a moment before the emergency, and
answered after it, is not).
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import keys

logger = logging.getLogger(__name__)


class NoticeWindow:
    """One string key per conversation (``keys.notice_window``) whose TTL is the window."""

    def __init__(self, redis: Redis, seconds: int) -> None:
        self.redis = redis
        self.seconds = seconds

    async def outcome(self, conversation_id: str, received: float | None = None) -> str | None:
        """"emergency" or "crisis" while the window is open for a message received at
        ``received`` (after the urgent one); None when it is not, or when Redis cannot say
        (then the message is triaged on its own, which is safe: an urgent one gets the
        notice again)."""
        try:
            value = await self.redis.get(keys.notice_window(conversation_id))
        except (RedisError, OSError) as exc:
            logger.error("notice window unreadable: %s", exc)
            return None
        if not value:
            return None
        outcome, _, opened = value.partition("|")
        try:
            if received is not None and opened and received <= float(opened):
                return None
        except ValueError:
            pass
        return outcome

    async def open(self, conversation_id: str, outcome: str, received: float) -> None:
        """Open the window for an urgent message received at ``received``."""
        try:
            await self.redis.set(keys.notice_window(conversation_id), f"{outcome}|{received!r}",
                                 ex=self.seconds)
        except (RedisError, OSError) as exc:
            logger.error("could not open the notice window: %s", exc)
