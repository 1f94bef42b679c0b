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

Tickets' times are the caller's clock, as in Rasa (``Ticket.has_expired`` compares with
``time.time()``), passed to the scripts, so both stores agree on what has expired; only
the issue's deadline is on Redis's clock (the offset between the two is measured).
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from typing import AsyncGenerator, Tuple

from rasa.core.lock import TicketLock
from rasa.core.lock_store import (
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    RedisLockStore,
)
from rasa.utils.endpoints import EndpointConfig

# Shared by the scripts. ``tickets``: the lock's tickets as stored, nil without a lock, none
# when the value is not a lock (anything else at the key is overwritten: a corrupt lock
# silences a conversation for good with Rasa's own store; found by the live attack).
# ``live``: the tickets Rasa's rules keep (expired ones dropped and, when given, the ticket
# numbered ``drop``), each with its number and expiry, and only well-formed ones (whole
# numbers, a finite expiry within a day: a ticket numbered 1.5 made Lua issue 2.5 while
# Rasa read 2, and nobody was ever served). ``store``: the lock written back, or deleted
# when no ticket is left; the key lives until GRACE_SECONDS after its last ticket expires,
# so a lock whose Rasa died mid-turn does not stay in Redis for ever (Rasa's own store keeps
# it until the conversation's next message).
_LIVE = """
local function tickets(key)
  local raw = redis.pcall('GET', key)
  if raw == false then return nil end
  if type(raw) ~= 'string' then return {} end
  local ok, lock = pcall(cjson.decode, raw)
  if not ok or type(lock) ~= 'table' or type(lock.tickets) ~= 'table' then return {} end
  return lock.tickets
end
local function live(list, now, drop)
  local kept = {}
  for _, t in ipairs(list) do
    local ok, ticket = false, nil
    if type(t) == 'string' then ok, ticket = pcall(cjson.decode, t) end
    if ok and type(ticket) == 'table' and type(ticket.number) == 'number'
        and type(ticket.expires) == 'number' then
      local number, expires = ticket.number, ticket.expires
      if number >= 0 and number == math.floor(number) and number < 2^52
          and expires >= now and expires <= now + 86400 and number ~= drop then
        table.insert(kept, {t, number, expires})
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
# it), the caller's deadline on Redis's clock, GRACE_SECONDS. Returns {ticket number, the
# lock as stored}, or {-1} when Redis runs it after the caller gave up waiting: a ticket
# nobody holds would keep the conversation waiting for its lifetime (a Redis stalled 12 s
# left one, and the next message waited 48 s; Rasa's own store reads first, so a timeout
# there leaves nothing; found by the live attack).
_ISSUE = _LIVE + """
local clock = redis.call('TIME')
if tonumber(clock[1]) + tonumber(clock[2]) / 1e6 > tonumber(ARGV[4]) then return {-1} end
local now = tonumber(ARGV[2])
local kept = live(tickets(KEYS[1]) or {}, now, nil)
local number = 0
for _, k in ipairs(kept) do
  if k[2] >= number then number = k[2] + 1 end
end
table.insert(kept, {'{"number": ' .. string.format('%d', number) .. ', "expires": ' ..
                    ARGV[3] .. '}', number, tonumber(ARGV[3])})
return {number, store(KEYS[1], ARGV[1], kept, now)}
"""

# KEYS[1] the lock; ARGV: conversation id, now, the finished ticket's number (-1 for none),
# GRACE_SECONDS. Rasa's cleanup: the ticket and the expired ones go; the lock goes when
# nobody waits. With no ticket, Rasa's update_lock: expired tickets dropped. Returns the
# lock as stored, or nil when it is gone.
_RELEASE = _LIVE + """
local list = tickets(KEYS[1])
if not list then return false end
local now = tonumber(ARGV[2])
return store(KEYS[1], ARGV[1], live(list, now, tonumber(ARGV[3])), now)
"""
# No ticket has this number (``live`` keeps whole numbers from 0 up).
NO_TICKET = -1

GRACE_SECONDS = 60
# How often the clock offset between this host and Redis's is measured again.
OFFSET_EVERY_SECONDS = 600


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store with each step in one atomic script (module docstring)."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs) -> None:
        # Rasa builds a custom lock store as ``cls(endpoint_config=...)``; tests may pass
        # RedisLockStore's own arguments.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs, **kwargs}
        super().__init__(**kwargs)
        # How long a call waits for Redis (the deadline the issue script checks).
        self._timeout = float(kwargs.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT_IN_SECONDS))
        # Redis's clock minus ours, measured now and then: the deadline is given on Redis's
        # clock, so a skew between the hosts never refuses a ticket.
        self._offset: float | None = None
        self._offset_at = 0.0
        self._issue = self.red.register_script(_ISSUE)
        self._release = self.red.register_script(_RELEASE)

    def issue(self, conversation_id: str,
              lock_lifetime: float = LOCK_LIFETIME) -> Tuple[int, TicketLock]:
        """A new ticket and the lock as it stands with it (one round trip)."""
        try:
            now = time.time()
            deadline = now + self._clock_offset(now) + self._timeout
            number, *stored = self._issue(
                keys=[self.key_prefix + conversation_id],
                args=[conversation_id, repr(now), repr(now + lock_lifetime), repr(deadline),
                      GRACE_SECONDS])
            if number < 0:  # only seen by a caller whose call outlived its timeout
                raise LockError("Redis ran the ticket's issue after its caller gave up")
            return int(number), TicketLock.from_dict(json.loads(stored[0]))
        except Exception as e:  # as Rasa's issue_ticket: the caller sees a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def _clock_offset(self, now: float) -> float:
        if self._offset is None or now - self._offset_at > OFFSET_EVERY_SECONDS:
            before = time.time()
            seconds, micros = self.red.time()
            after = time.time()
            self._offset = seconds + micros / 1e6 - (before + after) / 2
            self._offset_at = after
        return self._offset

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
        self._release(keys=[self.key_prefix + conversation_id],
                      args=[conversation_id, repr(time.time()), NO_TICKET, GRACE_SECONDS])

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        # Rasa calls it only from cleanup (overridden above); atomic for any other caller.
        self.cleanup(conversation_id, ticket_number)
