"""Each conversation's audit log: every message in and out and every staff action, kept
for the retention period (a record for the department, exported from the console)."""

from __future__ import annotations

import json
import time
from typing import Dict, List

from redis.asyncio import Redis

from bot import keys


class AuditLog:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.retention_seconds = retention_seconds

    async def append(self, conversation_id: str, actor: str, action: str,
                     detail: str = "") -> None:
        entry = {"ts": time.time(), "actor": actor, "action": action, "detail": detail}
        # Two plain commands, not a pipeline: redis-py retries a single command on a dead
        # pooled connection (after a Redis restart) but not a pipeline, and losing an audit
        # entry is worse than a moment without a TTL (the next entry sets it again).
        await self.redis.rpush(keys.audit(conversation_id), json.dumps(entry, ensure_ascii=False))
        await self.redis.expire(keys.audit(conversation_id), self.retention_seconds)

    async def read(self, conversation_id: str) -> List[Dict]:
        raw = await self.redis.lrange(keys.audit(conversation_id), 0, -1)
        return [json.loads(item) for item in raw]
