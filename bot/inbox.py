"""Accepting platform messages exactly once and processing each conversation in order.

Intake (in the webhook handler) is one Lua script: remember the message id (dedupe), append
the message to its conversation's inbox, and announce the conversation on the work list.
Workers (any number, in any number of gateway processes) pop a conversation, take its lock,
and drain its inbox oldest first, removing a message only after it was handled, so a crash
loses nothing and no two workers ever handle one conversation at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Tuple

from redis.asyncio import Redis

from bot import keys
from bot.agencies import every_keys, keys_of
from bot.thread_control import OTHER as OTHER_APP

if TYPE_CHECKING:
    from bot.agencies import Deployment

# KEYS[1] seen marker, KEYS[2] inbox list, KEYS[3] work list, KEYS[4] pending set,
# KEYS[5] conversation hash, KEYS[6] the conversation's rate-limit window (hash),
# KEYS[7] the conversation's notice window (string: the outcome the notice was sent for),
# KEYS[8] the conversation's reply language, KEYS[9] the Meta thread's owner record
# ARGV[1] conversation id, ARGV[2] JSON item (without "notice"), ARGV[3] dedupe TTL seconds,
# ARGV[4] the safety net's flag ('' when none), ARGV[5] messages allowed per window,
# ARGV[6] window seconds, ARGV[7] notice window seconds, ARGV[8] the time the message was
# received (the notice window's value is "<outcome>|<that time>": see bot.notice_window),
# ARGV[9] '1' when the message itself shows its language (item.language), ARGV[10] how long
# a conversation's language is kept, ARGV[11] how Meta delivered the message ('here': on
# the primary channel, the thread is Beacon's; 'standby': another app owns it; '': not a
# Meta message), ARGV[12] the owner record's TTL, ARGV[13] its value for an app Meta did not
# name, ARGV[14] the consoles' event channel, ARGV[15] the "message" event for it
# Returns {0, '', 0, 0, 0, ''} for a message seen before (nothing is written), else
# {1, status, notice, throttled, ack, language}: the conversation's queue status ('' when
# none), 1 when
# the gateway must send the 911 notice now, 1 when the sender is over the rate limit, 1 when
# the gateway must send the short urgent acknowledgement now (a flagged message inside the
# notice window: the person in danger wrote again, and must not wait for Rasa to hear back).
# The notice must not go out while staff hold the conversation (they answer; the hand-off
# timer sends it if they do not), nor again within the notice window (one notice per burst;
# the window is claimed here, atomically, so two flagged messages at once send one notice).
# The item records the decisions, so the worker drops the notice from Rasa's answer instead
# of sending it twice, treats a message inside the window as a follow-up of the urgent
# conversation, and lets a throttled message skip Rasa (it still reaches staff). A flagged
# message is never throttled. A conversation is put on the work list only when it becomes
# pending. The reply language is the message's when it shows one (and becomes the
# conversation's), else the conversation's: a Spanish speaker's "ok" is answered in Spanish.
# A new message also keeps the thread's owner record in step with the delivery channel
# (bot.thread_control) and tells the consoles, in this same round trip (two more before).
_INTAKE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) == false then
  return {0, '', 0, 0, 0, ''}
end
local status = redis.call('HGET', KEYS[5], 'status') or ''
local notice = 0
local in_window = redis.call('EXISTS', KEYS[7]) == 1
if ARGV[4] ~= '' and status ~= 'claimed' then
  if redis.call('SET', KEYS[7], ARGV[4] .. '|' .. ARGV[8], 'NX', 'EX', ARGV[7]) then
    notice = 1
  end
end
local count = redis.call('HINCRBY', KEYS[6], 'n', 1)
if count == 1 then redis.call('EXPIRE', KEYS[6], ARGV[6]) end
local throttled = 0
local item = cjson.decode(ARGV[2])
if ARGV[9] == '1' then
  redis.call('SET', KEYS[8], item['language'], 'EX', ARGV[10])
else
  local known = redis.call('GET', KEYS[8])
  if known then
    item['language'] = known
    redis.call('EXPIRE', KEYS[8], ARGV[10])
  end
end
if count > tonumber(ARGV[5]) and ARGV[4] == '' then
  throttled = 1
  -- The sender is told once per window; later messages are queued silently.
  item['tell_throttled'] = (redis.call('HSETNX', KEYS[6], 'told', '1') == 1)
end
item['notice'] = (notice == 1)
item['urgent_context'] = in_window
-- A flagged message inside the window gets the short acknowledgement at once instead.
local ack = 0
if ARGV[4] ~= '' and notice == 0 and in_window and status ~= 'claimed' then ack = 1 end
item['urgent_ack'] = (ack == 1)
item['throttled'] = (throttled == 1)
redis.call('RPUSH', KEYS[2], cjson.encode(item))
-- Announced once while pending: a worker holding the conversation hands it back itself
-- when more messages wait (see _ACK), so one citizen's burst is one place in the line.
if redis.call('SADD', KEYS[4], ARGV[1]) == 1 then redis.call('LPUSH', KEYS[3], ARGV[1]) end
if ARGV[11] == 'here' then
  redis.call('DEL', KEYS[9])
elseif ARGV[11] == 'standby' then
  if not redis.call('SET', KEYS[9], ARGV[13], 'NX', 'EX', ARGV[12]) then
    redis.call('EXPIRE', KEYS[9], ARGV[12])
  end
end
redis.call('PUBLISH', ARGV[14], ARGV[15])
return {1, status, notice, throttled, ack, item['language']}
"""

# KEYS[1] conversation lock, KEYS[2] inbox list, KEYS[3] pending set, KEYS[4] attempts
# hash, KEYS[5] conversation hash
# ARGV[1] lock token, ARGV[2] lock TTL ms, ARGV[3] conversation id, ARGV[4] attempts TTL
# A worker's start on a conversation, in one step (four round trips before): take the
# lock, read the head message, count one more start at it, and read the conversation's
# queue status. Returns false if another worker holds the conversation; {false} when no
# message waits (the conversation is released in the same step, so one that arrives
# meanwhile finds it pending no more and announces it again: never stranded); else
# {head item, its start count, queue status}. A start is counted per item (its SHA-1: the
# item holds the message id and the time it arrived).
_TAKE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[3])
  return {false}
end
local n = redis.call('HINCRBY', KEYS[4], redis.sha1hex(head), 1)
redis.call('EXPIRE', KEYS[4], ARGV[4])
return {head, n, redis.call('HGET', KEYS[5], 'status') or ''}
"""

# KEYS[1] conversation lock, KEYS[2] inbox, KEYS[3] pending set, KEYS[4] work list
# ARGV[1] token, ARGV[2] expected head item, ARGV[3] conversation id
# Removes the handled head item, only while still holding the lock, and gives the
# conversation up in the same step: to the back of the work list when more of its messages
# wait (a citizen who keeps writing does not hold a worker while others wait: at 200
# citizens that was the latency tail), out of the pending set when none do.
# Returns 0 if the lock was no longer ours, 1 if released, 2 if handed back.
_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[2])
redis.call('DEL', KEYS[1])
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('LPUSH', KEYS[4], ARGV[3])
  return 2
end
redis.call('SREM', KEYS[3], ARGV[3])
return 1
"""


# KEYS[1] conversation lock; ARGV[1] token, ARGV[2] TTL ms. Extends the lock if it is ours.
_REFRESH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS[1] pending set, KEYS[2] work list; ARGV[1] the conversation-lock key prefix.
# A pending conversation nobody holds and nobody will pop (a worker died between popping and
# locking it, or its announcement was lost) goes back on the work list; one that is simply
# waiting in line is left alone (re-adding those filled the list with duplicates under a
# backlog: 163 entries for 40 conversations, found by the live attack).
_SWEEP = """
local in_line = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do in_line[id] = true end
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not in_line[id] and redis.call('EXISTS', ARGV[1] .. id) == 0 then
    redis.call('LPUSH', KEYS[2], id)
    table.insert(out, id)
  end
end
return out
"""

# KEYS[1] conversation lock; ARGV[1] token. Deletes the lock if it is ours.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


@dataclass(frozen=True)
class Taken:
    """A conversation a worker holds: its lock token, the message to handle next (the raw
    inbox item), how many times a worker started on it, and the conversation's queue
    status ('' when not queued)."""

    token: str
    raw: str
    attempt: int
    status: str


@dataclass(frozen=True)
class Accepted:
    new: bool
    status: str  # the conversation's queue status: '', 'waiting', 'claimed' or 'resolved'
    notice: bool = False  # send the 911 notice now (the fast path)
    throttled: bool = False  # over the sender's rate limit: straight to staff, no Rasa
    urgent_ack: bool = False  # send the short "added to your urgent message" line now
    language: str = "en"  # the reply language (the message's, or the conversation's)


class Inbox:
    """Intake, locking and acknowledgement over one Redis client."""

    def __init__(self, redis: Redis, *, dedupe_ttl: int, rate_limit: int = 20,
                 rate_window: int = 60, lock_ttl_ms: int = 15_000,
                 notice_window: int = 600, language_ttl: int = 30 * 86400,
                 deployment: Deployment | None = None) -> None:
        self.redis = redis
        # Each agency has its own work list (bot.agencies); a single agency has one.
        self.deployment = deployment
        self._work_lists = every_keys(deployment)
        self._turn = itertools.count()
        self.dedupe_ttl = dedupe_ttl
        self.language_ttl = language_ttl
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.lock_ttl_ms = lock_ttl_ms
        self.notice_window = notice_window
        self._intake = redis.register_script(_INTAKE)
        self._take = redis.register_script(_TAKE)
        self._ack = redis.register_script(_ACK)
        self._refresh = redis.register_script(_REFRESH)
        self._unlock = redis.register_script(_UNLOCK)
        self._sweep = redis.register_script(_SWEEP)

    def scope(self, conversation_id: str) -> keys.AgencyKeys:
        return keys_of(self.deployment, conversation_id)

    async def accept(self, channel: str, message_id: str, conversation_id: str,
                     item: Dict, *, flag: str | None, event: Tuple[str, str],
                     language_clear: bool = True, delivered: str = "",
                     owner_ttl: int = 0) -> Accepted:
        """Store one message (see _INTAKE); ``item["language"]`` is the message's language,
        ``language_clear`` whether the message showed it, ``event`` the consoles' (channel,
        payload), ``delivered`` how Meta delivered it (``bot.thread_control.delivery``)
        and ``owner_ttl`` how long the owner record then lasts."""
        scope = self.scope(conversation_id)
        new, status, notice, throttled, ack, language = await self._intake(
            keys=[keys.seen(channel, message_id), keys.inbox(conversation_id), scope.work,
                  scope.pending, keys.conversation(conversation_id), keys.rate(conversation_id),
                  keys.notice_window(conversation_id),
                  keys.conversation_language(conversation_id),
                  keys.thread_owner(conversation_id)],
            args=[conversation_id, json.dumps(item, ensure_ascii=False), self.dedupe_ttl,
                  flag or "", self.rate_limit, self.rate_window, self.notice_window,
                  repr(float(item.get("received", 0.0))), "1" if language_clear else "0",
                  self.language_ttl, delivered, owner_ttl, OTHER_APP, *event],
        )
        return Accepted(new=bool(new), status=status, notice=bool(notice),
                        throttled=bool(throttled), urgent_ack=bool(ack),
                        language=language or item.get("language") or "en")

    async def record_notice(self, channel: str, message_id: str) -> None:
        """The fast path's notice for this message went out (see ``keys.notice_sent``)."""
        await self.redis.set(keys.notice_sent(channel, message_id), "1", ex=self.dedupe_ttl)

    async def notice_confirmed(self, channel: str, message_id: str, wait: float) -> bool:
        """Whether the fast path sent this message's notice, waiting up to ``wait`` seconds
        for it (it runs beside the worker, perhaps in another gateway process)."""
        key = keys.notice_sent(channel, message_id)
        deadline = time.monotonic() + wait
        while True:
            if await self.redis.exists(key):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def next_conversation(self, timeout: float = 1.0) -> str | None:
        """The next conversation with work, taking turns between agencies: BRPOP takes from
        the first non-empty list it is given, and each call starts the list one agency
        further on, so one agency's flood gets one turn in N while the others have work
        (bench/flood.py --agencies measures it)."""
        lists = [s.work for s in self._work_lists]
        if len(lists) > 1:
            start = next(self._turn) % len(lists)
            lists = lists[start:] + lists[:start]
        popped = await self.redis.brpop(lists, timeout=timeout)
        return popped[1] if popped else None

    async def take(self, conversation_id: str) -> Taken | None:
        """Hold the conversation and its next message (see _TAKE), or None: another worker
        holds it, or no message waits (and it is released)."""
        token = secrets.token_hex(8)
        taken = await self._take(
            keys=[keys.conversation_lock(conversation_id), keys.inbox(conversation_id),
                  self.scope(conversation_id).pending, keys.attempts(conversation_id),
                  keys.conversation(conversation_id)],
            args=[token, self.lock_ttl_ms, conversation_id, self.dedupe_ttl])
        if not taken or not taken[0]:
            return None
        raw, attempt, status = taken
        return Taken(token, raw, int(attempt), status)

    async def refresh(self, conversation_id: str, token: str) -> bool:
        """Extend the lock; False when it is no longer ours."""
        return bool(await self._refresh(keys=[keys.conversation_lock(conversation_id)],
                                        args=[token, self.lock_ttl_ms]))

    async def unlock(self, conversation_id: str, token: str) -> None:
        """Give the conversation up after a failure: its messages stay in the inbox and the
        sweeper hands it out again."""
        await self._unlock(keys=[keys.conversation_lock(conversation_id)], args=[token])

    async def ack(self, conversation_id: str, token: str, raw_item: str) -> int:
        """Done with the head message: 0 if the lock was lost, 1 if the conversation is
        released (nothing else waits), 2 if it went to the back of the work list."""
        scope = self.scope(conversation_id)
        return int(await self._ack(
            keys=[keys.conversation_lock(conversation_id), keys.inbox(conversation_id),
                  scope.pending, scope.work],
            args=[token, raw_item, conversation_id]))

    async def sweep(self) -> List[str]:
        """Put back on the work list the conversations with unprocessed messages that no
        worker holds and that are not already waiting in line; returns them."""
        swept: List[str] = []
        for scope in self._work_lists:
            swept += await self._sweep(keys=[scope.pending, scope.work],
                                       args=[keys.conversation_lock("")])
        return swept
