"""Each conversation's audit log: every message in and out and every staff action, kept
for the retention period (a record for the department, exported from the console).

An entry is ``{"ts", "actor", "action", "detail"}`` plus, for some actions, facts the
supervisors' reports count (``bot.reports``): ``outcome`` entries carry the message's
``message_id``, ``channel``, ``received`` and ``on_duty``; the first text of a 911 notice
(a ``message_out``) carries ``notice_received``, the time the message it answers arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Dict, List

from redis.asyncio import Redis

from bot import keys
from bot.agencies import keys_of, retention_of

if TYPE_CHECKING:
    from bot.agencies import Deployment

# KEYS[1] a list, KEYS[2] the day's index of audited conversations (a set);
# ARGV[1] the entry, ARGV[2] TTL seconds, ARGV[3] the conversation id.
# One round trip, and one command for redis-py's retry on a dead pooled connection (a
# pipeline would not be retried); the entry and its index never disagree. The day's
# index gets its TTL when the conversation joins it: every later entry of the day would
# only set it again (a message's three or four entries, one EXPIRE each, before).
_APPEND = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('SADD', KEYS[2], ARGV[3]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""


def utc_day(ts: float) -> str:
    """The UTC date of an epoch time, as the day index names it."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date().isoformat()


class AuditLog:
    def __init__(self, redis: Redis, retention_seconds: int,
                 deployment: Deployment | None = None) -> None:
        self.redis = redis
        self.retention_seconds = retention_seconds
        # Each agency's day index and retention are its own (bot.agencies).
        self.deployment = deployment
        self._append = redis.register_script(_APPEND)

    async def append(self, conversation_id: str, actor: str, action: str,
                     detail: str = "", *, now: float | None = None,
                     **facts: object) -> None:
        """Append one entry (``facts``: JSON values kept beside the four usual fields)."""
        ts = now if now is not None else time.time()
        entry = {**facts, "ts": ts, "actor": actor, "action": action, "detail": detail}
        scope = keys_of(self.deployment, conversation_id)
        retention = retention_of(self.deployment, conversation_id, self.retention_seconds)
        await self._append(keys=[keys.audit(conversation_id), scope.audit_day(utc_day(ts))],
                           args=[json.dumps(entry, ensure_ascii=False), retention,
                                 conversation_id])

    async def read(self, conversation_id: str) -> List[Dict]:
        raw = await self.redis.lrange(keys.audit(conversation_id), 0, -1)
        return [json.loads(item) for item in raw]
