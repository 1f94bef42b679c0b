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
from typing import TYPE_CHECKING, Dict, List, Tuple

from redis.asyncio import Redis

from bot import keys
from bot.agencies import keys_of, retention_of

if TYPE_CHECKING:
    from bot.agencies import Deployment

# KEYS[1] a list, KEYS[2] the day's index of audited conversations (a set), KEYS[3] (when
# given) a text's sent mark; ARGV[1] the entry, ARGV[2] TTL seconds, ARGV[3] the
# conversation id, ARGV[4] the mark's TTL, ARGV[5] a console channel ('' for none),
# ARGV[6] the event published on it.
# One round trip, and one command for redis-py's retry on a dead pooled connection (a
# pipeline would not be retried); the entry and its index never disagree. The day's
# index gets its TTL when the conversation joins it: every later entry of the day would
# only set it again (a message's three or four entries, one EXPIRE each, before). A text
# sent to a citizen is marked, audited and announced to the consoles in this one step
# (bot.outbound): three round trips per reply before.
_APPEND = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('SADD', KEYS[2], ARGV[3]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'EX', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
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
                     mark: Tuple[str, int] | None = None,
                     publish: Tuple[str, str] | None = None, **facts: object) -> None:
        """Append one entry (``facts``: JSON values kept beside the four usual fields).

        In the same step, ``mark`` (key, TTL) sets a sent text's mark and ``publish``
        (channel, event) tells the consoles (see _APPEND)."""
        ts = now if now is not None else time.time()
        entry = {**facts, "ts": ts, "actor": actor, "action": action, "detail": detail}
        scope = keys_of(self.deployment, conversation_id)
        retention = retention_of(self.deployment, conversation_id, self.retention_seconds)
        channel, event = publish or ("", "")
        await self._append(
            keys=[keys.audit(conversation_id), scope.audit_day(utc_day(ts)),
                  *([mark[0]] if mark else [])],
            args=[json.dumps(entry, ensure_ascii=False), retention, conversation_id,
                  mark[1] if mark else 0, channel, event])

    async def read(self, conversation_id: str) -> List[Dict]:
        raw = await self.redis.lrange(keys.audit(conversation_id), 0, -1)
        return [json.loads(item) for item in raw]
