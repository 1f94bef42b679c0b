"""Rasa's conversation lock in Redis, one atomic script per step (endpoints.yml names it).

Rasa's ``RedisLockStore`` keeps each conversation's ticket lock as one JSON value and
changes it by reading it, editing it in Python and writing it back: seven round trips per
message (issue: GET, SET; acquire: GET; release: GET, SET, GET, DEL), each a blocking call
on Rasa's event loop, and a read-modify-write that two Sanic workers can interleave (two
messages of one conversation given the same ticket, or a ticket lost).

This store keeps Rasa's lock format, key names and ticket rules (``rasa.core.lock``:
expired tickets dropped, numbers in order, the first ticket served) and does each step
in one Lua script, so a message costs two round trips (issue, and acquire when it is
served at once, in one; release in another) and no step can interleave with another.
Waiting for a ticket (another request of the same conversation holds the lock) is Rasa's
own polling, with the refresh made atomic as well. Beacon's gateway already runs one
message per conversation at a time, so that path is rare.

Times are the caller's clock, as in Rasa (``Ticket.has_expired`` compares with
``time.time()``), passed to the scripts, so both stores agree on what has expired.
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from typing import AsyncGenerator, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

# Shared by the scripts: the lock's live tickets (as stored: JSON strings, with number and
# expiry) after dropping the expired ones and, when given, the ticket numbered ``drop``;
# and the lock written back, or deleted when no ticket is left. The key lives until
# GRACE_SECONDS after its last ticket expires: a lock whose Rasa died mid-turn does not
# stay in Redis for ever (Rasa's own store keeps it until the conversation's next message).
_LIVE = """
local function live(raw, now, drop)
  local kept = {}
  if raw then
    for _, t in ipairs(cjson.decode(raw).tickets or {}) do
      local ticket = cjson.decode(t)
      local expires = tonumber(ticket.expires)
      if expires >= now and ticket.number ~= drop then
        table.insert(kept, {t, ticket.number, expires})
      end
    end
  end
  return kept
end
local function store(key, conversation, kept, now)
  if #kept == 0 then
    redis.call('DEL', key)
    return false
  end
  local parts, last = {}, now
  for i, k in ipairs(kept) do
    parts[i] = cjson.encode(k[1])
    if k[3] > last then last = k[3] end
  end
  local lock = '{"conversation_id": ' .. cjson.encode(conversation) .. ', "tickets": [' ..
    table.concat(parts, ', ') .. ']}'
  redis.call('SET', key, lock, 'EX', math.ceil(last - now) + tonumber(ARGV[#ARGV]))
  return lock
end
"""

# KEYS[1] the lock; ARGV: conversation id, now, the new ticket's expiry (as Python wrote
# it), GRACE_SECONDS. Returns {ticket number, the lock as stored}.
_ISSUE = _LIVE + """
local now = tonumber(ARGV[2])
local kept = live(redis.call('GET', KEYS[1]), now, nil)
local number = 0
if #kept > 0 then number = kept[#kept][2] + 1 end
table.insert(kept, {'{"number": ' .. number .. ', "expires": ' .. ARGV[3] .. '}', number,
                    tonumber(ARGV[3])})
return {number, store(KEYS[1], ARGV[1], kept, now)}
"""

# KEYS[1] the lock; ARGV: conversation id, now, the finished ticket's number,
# GRACE_SECONDS. Rasa's cleanup: the ticket and the expired ones go; the lock goes when
# nobody waits. Returns the lock as stored, or nil when it is gone.
_RELEASE = _LIVE + """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local now = tonumber(ARGV[2])
return store(KEYS[1], ARGV[1], live(raw, now, tonumber(ARGV[3])), now)
"""

# KEYS[1] the lock; ARGV: conversation id, now, GRACE_SECONDS. Rasa's update_lock: drop
# expired tickets (the lock goes with the last one).
_REFRESH = _LIVE + """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local now = tonumber(ARGV[2])
return store(KEYS[1], ARGV[1], live(raw, now, nil), now)
"""

GRACE_SECONDS = 60


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store with each step in one atomic script (module docstring)."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs) -> None:
        # Rasa builds a custom lock store as ``cls(endpoint_config=...)``; tests may pass
        # RedisLockStore's own arguments.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)
        self._issue = self.red.register_script(_ISSUE)
        self._release = self.red.register_script(_RELEASE)
        self._refresh = self.red.register_script(_REFRESH)

    def issue(self, conversation_id: str,
              lock_lifetime: float = LOCK_LIFETIME) -> Tuple[int, TicketLock]:
        """A new ticket and the lock as it stands with it (one round trip)."""
        try:
            now = time.time()
            number, raw = self._issue(
                keys=[self.key_prefix + conversation_id],
                args=[conversation_id, repr(now), repr(now + lock_lifetime), GRACE_SECONDS])
            return int(number), TicketLock.from_dict(json.loads(raw))
        except Exception as e:  # as Rasa's issue_ticket: the caller sees a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def issue_ticket(self, conversation_id: str,
                     lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self.issue(conversation_id, lock_lifetime)[0]

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ``LockStore.lock``, with the first look at the lock taken from the issue
        step's answer instead of another read."""
        ticket, lock = self.issue(conversation_id, lock_lifetime)
        try:
            if lock.is_locked(ticket):
                lock = await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
            yield lock
        finally:
            self.cleanup(conversation_id, ticket)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        deleted = self._release(
            keys=[self.key_prefix + conversation_id],
            args=[conversation_id, repr(time.time()), ticket_number, GRACE_SECONDS]) is None
        self._log_deletion(conversation_id, deleted)

    def update_lock(self, conversation_id: str) -> None:
        self._refresh(keys=[self.key_prefix + conversation_id],
                      args=[conversation_id, repr(time.time()), GRACE_SECONDS])

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        # Rasa calls it only from cleanup (overridden above); atomic for any other caller.
        self.cleanup(conversation_id, ticket_number)
