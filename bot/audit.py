"""Each conversation's audit log: every message in and out and every staff action, kept
for the retention period (a record for the department, exported from the console)."""

from __future__ import annotations

import json
import time
from typing import Dict, List

from redis.asyncio import Redis

from bot import keys

# KEYS[1] a list; ARGV[1] the entry, ARGV[2] TTL seconds. One round trip, and one command
# for redis-py's retry on a dead pooled connection (a pipeline would not be retried).
_APPEND = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class AuditLog:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.retention_seconds = retention_seconds
        self._append = redis.register_script(_APPEND)

    async def append(self, conversation_id: str, actor: str, action: str,
                     detail: str = "") -> None:
        entry = {"ts": time.time(), "actor": actor, "action": action, "detail": detail}
        await self._append(keys=[keys.audit(conversation_id)],
                           args=[json.dumps(entry, ensure_ascii=False), self.retention_seconds])

    async def read(self, conversation_id: str) -> List[Dict]:
        raw = await self.redis.lrange(keys.audit(conversation_id), 0, -1)
        return [json.loads(item) for item in raw]
