"""The human queue, staff presence and transcripts, in Redis.

Used by the Rasa actions now and by the gateway and staff console. Multi-key changes are
Lua scripts, so a conversation's metadata, transcript and queue position never disagree.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence

from redis.asyncio import Redis

from bot import keys

# KEYS[1] queue zset, KEYS[2] conversation hash, KEYS[3] transcript list
# ARGV[1] conversation id, ARGV[2] now (ms), ARGV[3] priority (0 urgent, 1 normal),
# ARGV[4] JSON object of metadata fields, ARGV[5] JSON list of transcript entries
# (each with a numeric "ts"), ARGV[6] TTL seconds, ARGV[7] priority span
# Returns {status, priority, waiting_since}.
# A conversation that is already waiting keeps its waiting-since time and can only move up
# in priority; one held by staff stays with them (the new messages reach its transcript);
# a resolved or new one starts waiting now. Entries not newer than the last stored one are
# skipped, so re-sending a transcript is harmless.
_ENQUEUE = """
local now = tonumber(ARGV[2])
local priority = tonumber(ARGV[3])
local status = redis.call('HGET', KEYS[2], 'status')
local since = tonumber(redis.call('HGET', KEYS[2], 'waiting_since'))
local old = tonumber(redis.call('HGET', KEYS[2], 'priority'))
if status == 'waiting' or status == 'claimed' then
  if old and old < priority then priority = old end
else
  status = 'waiting'
  since = now
  redis.call('HSET', KEYS[2], 'status', status, 'waiting_since', since,
             'queued_at', now, 'first_response_at', '')
end
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', KEYS[2], k, tostring(v)) end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'priority', priority, 'updated_at', now)
local last = tonumber(redis.call('HGET', KEYS[2], 'last_ts') or '0') or 0
for _, entry in ipairs(cjson.decode(ARGV[5])) do
  if tonumber(entry['ts']) > last then
    redis.call('RPUSH', KEYS[3], cjson.encode(entry))
    last = tonumber(entry['ts'])
  end
end
redis.call('HSET', KEYS[2], 'last_ts', string.format('%.6f', last))
if status == 'waiting' then
  redis.call('ZADD', KEYS[1], priority * tonumber(ARGV[7]) + since, ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return {status, priority, since}
"""

# KEYS[1] duty index set; ARGV: the prefix of presence keys.
# Returns the names of staff whose presence key still exists, pruning the rest from the index.
_ON_DUTY = """
local present = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. name) == 1 then
    table.insert(present, name)
  else
    redis.call('SREM', KEYS[1], name)
  end
end
return present
"""


@dataclass(frozen=True)
class Entry:
    """One line of a transcript."""

    role: str  # "citizen", "bot" or "staff"
    text: str
    ts: float

    def as_dict(self) -> Dict:
        return {"role": self.role, "text": self.text, "ts": self.ts}


@dataclass(frozen=True)
class Enqueued:
    status: str
    priority: int
    waiting_since_ms: int


class HumanQueue:
    """The queue and presence API over one Redis client (``decode_responses=True``)."""

    def __init__(self, redis: Redis, *, retention_seconds: int, duty_ttl: int = 120) -> None:
        self.redis = redis
        self.retention_seconds = retention_seconds
        self.duty_ttl = duty_ttl
        self._enqueue = redis.register_script(_ENQUEUE)
        self._on_duty = redis.register_script(_ON_DUTY)

    async def enqueue(
        self,
        conversation_id: str,
        *,
        priority: int,
        fields: Dict[str, object],
        entries: Sequence[Entry],
        now: float | None = None,
    ) -> Enqueued:
        """Put (or keep) a conversation in the queue with its latest transcript entries."""
        now_ms = int((now if now is not None else time.time()) * 1000)
        status, prio, since = await self._enqueue(
            keys=[keys.QUEUE, keys.conversation(conversation_id),
                  keys.transcript(conversation_id)],
            args=[
                conversation_id,
                now_ms,
                priority,
                json.dumps({k: v for k, v in fields.items() if v is not None}),
                json.dumps([e.as_dict() for e in entries]),
                self.retention_seconds,
                keys.PRIORITY_SPAN,
            ],
        )
        return Enqueued(status=status, priority=int(prio), waiting_since_ms=int(since))

    async def waiting(self, limit: int = 100) -> List[str]:
        """Waiting conversation ids, first to serve first."""
        return await self.redis.zrange(keys.QUEUE, 0, limit - 1)

    async def conversation(self, conversation_id: str) -> Dict[str, str]:
        return await self.redis.hgetall(keys.conversation(conversation_id))

    async def transcript(self, conversation_id: str) -> List[Entry]:
        raw = await self.redis.lrange(keys.transcript(conversation_id), 0, -1)
        return [Entry(**json.loads(item)) for item in raw]

    # -- presence ------------------------------------------------------------------------

    async def set_on_duty(self, staff: str, ttl: int | None = None) -> None:
        """Mark (or keep) a staff member on duty for ``ttl`` seconds; a heartbeat repeats it."""
        ttl = ttl or self.duty_ttl
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.on_duty(staff), int(time.time()), ex=ttl)
            pipe.sadd(keys.DUTY_INDEX, staff)
            pipe.expire(keys.DUTY_INDEX, max(ttl, self.duty_ttl) * 10)
            await pipe.execute()

    async def set_off_duty(self, staff: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.on_duty(staff))
            pipe.srem(keys.DUTY_INDEX, staff)
            await pipe.execute()

    async def on_duty(self) -> List[str]:
        """Staff currently on duty (their presence key has not expired)."""
        names = await self._on_duty(keys=[keys.DUTY_INDEX], args=[keys.on_duty("")])
        return sorted(names)

    async def is_monitoring(self) -> bool:
        return bool(await self.on_duty())
