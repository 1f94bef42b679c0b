"""Saying that Beacon is a machine: one line in the first reply of a conversation, the first
after staff hand it back (resolve it), and the first after a long silence.

California's bot-disclosure law (Cal. Bus. & Prof. Code § 17941) and Meta's messaging policy
ask an automated account to say so. The line rides in the first reply rather than as a
message of its own (one platform send, not two); in an urgent reply it rides in the last
text, decided after the 911 notice went out, which stays first and never waits for it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot import keys

# KEYS[1] the conversation's "disclosed" mark; ARGV[1] the silence window in seconds. Returns
# 1 when this reply must carry the line, else 0 (and keeps the mark alive: the silence is
# counted from Beacon's last reply). The mark is set by ``mark`` once the reply carrying the
# line reached the platform, never before (a failed send must not spend it).
_DUE = """
if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 1 then
  return 0
end
return 1
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

    async def mark(self, conversation_id: str) -> None:
        """The line reached the citizen: not again until the silence window passes."""
        await self.redis.set(keys.disclosed(conversation_id), "1", ex=self.silence)


def with_disclosure(text: str, line: str, after: bool) -> str:
    """``text`` carrying the disclosure line: before it, or ``after`` it (the last text of
    an urgent reply, whose 911 notice stays first)."""
    return f"{text}\n\n{line}" if after else f"{line}\n\n{text}"
