"""Who is on duty: a key per staff member with a TTL the console's heartbeat refreshes, and
an index of names. "Monitoring" means at least one key is alive."""

from __future__ import annotations

import time
from typing import List

from redis.asyncio import Redis

from bot import keys

# KEYS[1] duty index (set); ARGV[1] the on-duty key prefix. Names whose key expired leave
# the index in the same step, so the index never lists someone who went home.
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


class Presence:
    def __init__(self, redis: Redis, duty_ttl: int = 120) -> None:
        self.redis = redis
        self.duty_ttl = duty_ttl
        self._on_duty = redis.register_script(_ON_DUTY)

    # Each agency has its own staff on duty (``scope``: its keys, bot.keys.AgencyKeys).
    async def set_on_duty(self, staff: str, ttl: int | None = None,
                          scope: keys.AgencyKeys = keys.SINGLE) -> None:
        """Mark (or keep) a staff member on duty for ``ttl`` seconds; a heartbeat repeats it."""
        ttl = ttl or self.duty_ttl
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(scope.on_duty(staff), int(time.time()), ex=ttl)
            pipe.sadd(scope.duty_index, staff)
            pipe.expire(scope.duty_index, max(ttl, self.duty_ttl) * 10)
            await pipe.execute()

    async def set_off_duty(self, staff: str, scope: keys.AgencyKeys = keys.SINGLE) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(scope.on_duty(staff))
            pipe.srem(scope.duty_index, staff)
            await pipe.execute()

    async def on_duty(self, scope: keys.AgencyKeys = keys.SINGLE) -> List[str]:
        """Staff currently on duty (their presence key has not expired)."""
        names = await self._on_duty(keys=[scope.duty_index], args=[scope.on_duty("")])
        return sorted(names)

    async def is_monitoring(self, scope: keys.AgencyKeys = keys.SINGLE) -> bool:
        return bool(await self.on_duty(scope))
