"""The platforms' own sending limits, kept in Redis so every gateway process shares them.

X documents fixed DM limits (https://docs.x.com/x-api/direct-messages/manage/introduction):
200 send requests per 15 minutes and 1,000 per 24 hours for each user (the department's
account), 15,000 per 24 hours for each app. Beacon counts its own sends against them before
it sends, instead of learning of the limit from a refused request, and any platform's 429
(with ``x-rate-limit-reset`` or ``Retry-After``) stops sends on that channel and account
until the time it names. A send that would break a limit waits when the limit clears within
``WAIT_S``; otherwise it fails at once with an error that says when sending resumes, which
the conversation and the console's banner show (``status``), and a retry does not burn the
platform's patience. Meta publishes no fixed per-page count; its 429s are handled the same.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Tuple

from redis.asyncio import Redis

from bot import keys

# (name, window seconds, sends allowed) per channel, per account unless named "app".
LIMITS: Dict[str, Tuple[Tuple[str, int, int], ...]] = {
    "x": (("15m", 900, 200), ("24h", 86_400, 1_000), ("app24h", 86_400, 15_000)),
}
# A send waits this long at most for a limit to clear (a worker must not hold a
# conversation for the rest of a 15-minute window).
WAIT_S = 2.0

# KEYS[1] the channel's block (set on a 429), KEYS[2..] the windows' counters
# ARGV: for each counter, its limit then its window in ms
# Returns 0 and counts one send, or the milliseconds until sending may resume (counts
# nothing). All windows are checked before any is counted, in one step.
_TAKE = """
local blocked = redis.call('PTTL', KEYS[1])
if blocked > 0 then return blocked end
for i = 2, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[2 * i - 3]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then ttl = tonumber(ARGV[2 * i - 2]) end
    return ttl
  end
end
for i = 2, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i - 2]) end
end
return 0
"""


@dataclass(frozen=True)
class Limited:
    channel: str
    account: str
    resumes_in_s: int
    why: str


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until a 429 says sending may resume: X's ``x-rate-limit-reset`` (epoch
    seconds) or the standard ``Retry-After`` (seconds or an HTTP date); None if neither."""
    now = time.time() if now is None else now
    reset = headers.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(1.0, min(float(reset) - now, 86_400.0))
    after = (headers.get("retry-after") or "").strip()
    if after.isdigit():
        return max(1.0, min(float(after), 86_400.0))
    if after:
        try:
            when = email.utils.parsedate_to_datetime(after).timestamp()
        except (TypeError, ValueError):
            return None
        return max(1.0, min(when - now, 86_400.0))
    return None


class PlatformLimits:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._take = redis.register_script(_TAKE)

    def _keys(self, channel: str, account: str) -> List[str]:
        return [keys.platform_block(channel, account)] + [
            keys.platform_sends(channel, "app" if name.startswith("app") else account, name)
            for name, _, _ in LIMITS.get(channel, ())]

    async def take(self, channel: str, account: str) -> float:
        """Count one send; 0.0, or the seconds to wait before sending (nothing counted)."""
        args: List[int] = []
        for _, window, limit in LIMITS.get(channel, ()):
            args += [limit, window * 1000]
        waited = 0.0
        while True:
            wait_ms = int(await self._take(keys=self._keys(channel, account), args=args))
            if wait_ms <= 0:
                return 0.0
            if waited + wait_ms / 1000 > WAIT_S:
                return wait_ms / 1000
            await asyncio.sleep(wait_ms / 1000)
            waited += wait_ms / 1000

    async def block(self, channel: str, account: str, seconds: float) -> None:
        """The platform refused with 429: no sends on this channel and account until then."""
        await self.redis.set(keys.platform_block(channel, account), "429",
                             px=max(1000, int(seconds * 1000)))

    async def status(self) -> List[Limited]:
        """The limits in force now, for the console's banner (a few keys: one per channel
        and account that sent recently)."""
        out: Dict[Tuple[str, str], Limited] = {}
        async for key in self.redis.scan_iter(match=keys.platform_block("*", "*"), count=100):
            channel, account = key.rsplit(":", 2)[-2:]
            ttl = await self.redis.pttl(key)
            if ttl > 0:
                out[(channel, account)] = Limited(channel, account, -(-ttl // 1000),
                                                  "the platform answered 429")
        async for key in self.redis.scan_iter(match=keys.platform_sends("*", "*", "*"),
                                              count=100):
            channel, account, window = key.rsplit(":", 3)[-3:]
            limit = {name: n for name, _, n in LIMITS.get(channel, ())}.get(window)
            if limit is None or (channel, account) in out:
                continue
            if int(await self.redis.get(key) or 0) >= limit:
                ttl = await self.redis.pttl(key)
                out[(channel, account)] = Limited(channel, account, max(1, -(-ttl // 1000)),
                                                  f"{limit} sends per {window} reached")
        return list(out.values())
