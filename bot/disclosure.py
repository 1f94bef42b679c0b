"""Saying that Beacon is a machine: one line in the first reply of a conversation, the first
after staff hand it back (resolve it), and the first after a long silence.

California's bot-disclosure law (Cal. Bus. & Prof. Code § 17941) and Meta's messaging policy
ask an automated account to say so. The line rides in the first reply rather than as a
message of its own (one platform send, not two); in an urgent reply it comes after the 911
notice, which stays first.
"""

from __future__ import annotations

from typing import List, Sequence

from redis.asyncio import Redis

from bot import keys

# KEYS[1] the conversation's "disclosed" mark; ARGV[1] the silence window in seconds. Returns
# 1 when this reply must carry the line (and marks it), else 0 (and keeps the mark alive).
_DUE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 1
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 0
"""


class Disclosure:
    def __init__(self, redis: Redis, silence_seconds: int) -> None:
        self.redis = redis
        self.silence = silence_seconds
        self._due = redis.register_script(_DUE)

    async def due(self, conversation_id: str) -> bool:
        """Whether Beacon's next reply in this conversation must say it is automated."""
        return bool(await self._due(keys=[keys.disclosed(conversation_id)],
                                    args=[self.silence]))


def with_disclosure(texts: Sequence[str], line: str, urgent: bool) -> List[str]:
    """``texts`` with the disclosure line in the first one: before it, or after it when the
    first is the 911 notice (urgent replies keep the notice first)."""
    if not texts:
        return list(texts)
    first = f"{texts[0]}\n\n{line}" if urgent else f"{line}\n\n{texts[0]}"
    return [first, *texts[1:]]
