"""The human queue, staff presence and transcripts, in Redis.

Used by the Rasa actions now and by the gateway and staff console. Multi-key changes are
Lua scripts, so a conversation's metadata, transcript and queue position never disagree.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Sequence

from redis.asyncio import Redis

from bot import keys
from bot.agencies import every_keys, keys_of, retention_of

if TYPE_CHECKING:
    from bot.agencies import Deployment

# KEYS[1] queue zset, KEYS[2] conversation hash, KEYS[3] transcript list,
# KEYS[4] set of transcript entry ids already stored
# ARGV[1] conversation id, ARGV[2] now (ms), ARGV[3] priority (0 urgent, 1 normal),
# ARGV[4] JSON object of metadata fields, ARGV[5] JSON list of transcript entries
# (each with a numeric "ts", and an "id" when the gateway wrote it), ARGV[6] TTL seconds,
# ARGV[7] priority span
# Returns {status, priority, waiting_since}.
# A conversation that is already waiting keeps its waiting-since time and can only move up
# in priority; one held by staff stays with them (the new messages reach its transcript);
# a resolved or new one starts waiting now, as a new episode: what belonged to the last one
# (escalated, notice sent, urgent flag, holder) is cleared, so a returning caller's emergency
# is escalated and shown afresh.
# Entries are appended in the order they arrive, each numbered ("seq"), never re-ordered or
# dropped by their clock: an entry with an id (a message the gateway handled, once) is
# stored unless that id was; an entry without one is the action's replay of Rasa's history,
# and only the part newer than the last replay ("history_ts") is new. (Comparing every entry
# with the newest stamp of any kind lost a citizen's message that arrived while staff had
# just replied.)
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
  redis.call('HDEL', KEYS[2], 'escalated_at', 'notice_sent_at', 'urgent_flag', 'urgent_at',
             'urgent_language', 'claimed_by', 'escalation_error', 'delivery_error', 'suspect')
  redis.call('HSET', KEYS[2], 'status', status, 'waiting_since', since,
             'queued_at', now, 'first_response_at', '')
end
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', KEYS[2], k, tostring(v)) end
-- A conversation started by an address over its web-chat limit stays out of the top of the
-- queue (and so out of the pager) for its whole episode, whatever its later messages say:
-- otherwise a second message would undo it.
if redis.call('HGET', KEYS[2], 'suspect') == '1' and priority < 1 then priority = 1 end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'priority', priority, 'updated_at', now)
local last = tonumber(redis.call('HGET', KEYS[2], 'history_ts') or '0') or 0
for _, entry in ipairs(cjson.decode(ARGV[5])) do
  local new
  if entry['id'] then
    new = redis.call('SADD', KEYS[4], entry['id']) == 1
  else
    new = tonumber(entry['ts']) > last
    if new then last = tonumber(entry['ts']) end
  end
  if new then
    entry['seq'] = redis.call('HINCRBY', KEYS[2], 'seq', 1)
    redis.call('RPUSH', KEYS[3], cjson.encode(entry))
  end
end
redis.call('HSET', KEYS[2], 'history_ts', string.format('%.6f', last))
redis.call('EXPIRE', KEYS[4], ARGV[6])
if status == 'waiting' then
  redis.call('ZADD', KEYS[1], priority * tonumber(ARGV[7]) + since, ARGV[1])
end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return {status, priority, since}
"""

# KEYS[1] queue, KEYS[2] claimed zset, KEYS[3] conversation hash, KEYS[4] audit list,
# KEYS[5] transcript list, KEYS[6] the conversation's disclosure mark (bot.disclosure),
# KEYS[7] the conversation's staff notes list
# ARGV[1] operation: claim | transfer | resolve | reply | bulk_resolve | note
# ARGV[2] conversation id, ARGV[3] staff member acting, ARGV[4] now (ms),
# ARGV[5] target staff (transfer), JSON transcript entry (reply), the reason (bulk_resolve)
# or JSON note (note), ARGV[6] TTL seconds
# Returns {1, status} on success, {0, reason} when the conversation is not the caller's to
# act on. Only a waiting conversation can be claimed; only its holder can transfer, reply to
# or resolve it, so two staff members can never work the same conversation. bulk_resolve
# (clearing a spam flood) also closes a waiting conversation without claiming it, never one
# another staff member holds; its reason goes to the audit log. A note may be left on any
# conversation by any staff member: it goes to the notes list and the audit log, never to
# the transcript (what the citizen's side of the record holds).
_STAFF_OP = """
local op, id, staff, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local status = redis.call('HGET', KEYS[3], 'status')
if not status then return {0, 'unknown conversation'} end
local holder = redis.call('HGET', KEYS[3], 'claimed_by') or ''
local detail = ''
local function resolve()
  redis.call('HSET', KEYS[3], 'status', 'resolved', 'claimed_by', '', 'resolved_at', now,
             'resolved_by', staff)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  -- Handed back to Beacon: its next reply says again that it is automated.
  redis.call('DEL', KEYS[6])
  status = 'resolved'
end
if op == 'note' then
  local note = cjson.decode(ARGV[5])
  redis.call('RPUSH', KEYS[7], ARGV[5])
  redis.call('EXPIRE', KEYS[7], ARGV[6])
  detail = note['text']
elseif op == 'bulk_resolve' then
  if not (status == 'waiting' or (status == 'claimed' and holder == staff)) then
    return {0, status == 'claimed' and ('held by ' .. holder) or ('conversation is ' .. status)}
  end
  resolve()
  detail = ARGV[5]
elseif op == 'claim' then
  if status == 'claimed' and holder == staff then return {1, status} end
  if status ~= 'waiting' then
    return {0, status == 'claimed' and ('held by ' .. holder) or ('conversation is ' .. status)}
  end
  redis.call('HSET', KEYS[3], 'status', 'claimed', 'claimed_by', staff, 'claimed_at', now)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now, id)
  status = 'claimed'
else
  if status ~= 'claimed' or holder ~= staff then
    return {0, status == 'claimed' and ('held by ' .. holder) or ('conversation is ' .. status)}
  end
  if op == 'transfer' then
    redis.call('HSET', KEYS[3], 'claimed_by', ARGV[5], 'claimed_at', now)
    redis.call('ZADD', KEYS[2], now, id)
    detail = ARGV[5]
  elseif op == 'resolve' then
    resolve()
  elseif op == 'reply' then
    local entry = cjson.decode(ARGV[5])
    entry['seq'] = redis.call('HINCRBY', KEYS[3], 'seq', 1)
    redis.call('RPUSH', KEYS[5], cjson.encode(entry))
    redis.call('HSET', KEYS[3], 'last_staff_reply_at', now)
    if (redis.call('HGET', KEYS[3], 'first_response_at') or '') == '' then
      redis.call('HSET', KEYS[3], 'first_response_at', now)
    end
    detail = entry['text']
  else
    return {0, 'unknown operation ' .. op}
  end
end
redis.call('RPUSH', KEYS[4],
           cjson.encode({ts = now / 1000, actor = staff, action = op, detail = detail}))
for i = 3, 5 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return {1, status}
"""


# KEYS[1] queue, KEYS[2] claimed, KEYS[3] hand-off schedule, KEYS[4] conversation hash
# ARGV[1] conversation id
# The hash, transcript and audit log expire by themselves at the end of the retention
# period; this drops the id from the indexes once its hash is gone. Checked and removed in
# one step, so a conversation that comes back at that moment is never dropped.
_PRUNE = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS[1] outbox list; ARGV[1] cutoff (epoch seconds). Drops entries older than the cutoff
# (the list is in time order). Returns how many.
_TRIM_OUTBOX = """
local n = 0
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or tonumber(cjson.decode(head)['ts']) >= tonumber(ARGV[1]) then return n end
  redis.call('LPOP', KEYS[1])
  n = n + 1
end
"""


# How long one process may take to send a due hand-off notice before another may.
NOTICE_LEASE_S = 60
# How long one process may take over an escalation (its retries included) before another
# process may try it.
ESCALATION_LEASE_S = 120


# KEYS[1] hand-off schedule (zset); ARGV[1] conversation id, ARGV[2] now, ARGV[3] lease end
# Takes a due entry by moving its time to the lease's end; returns 1 if this caller got it.
_LEASE_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


# KEYS[1] transcript list; ARGV[1] the id of a citizen's message, ARGV[2] when it was deleted
# Marks the transcript entry of a message the citizen deleted (Instagram's is_deleted). The
# text stays: the transcript is the department's record for the retention period, and staff
# should know what was said and that it was taken back. Returns how many entries it marked.
_MARK_DELETED = """
local n = 0
for i, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local entry = cjson.decode(raw)
  if entry['id'] == ARGV[1] and entry['role'] == 'citizen' and not entry['deleted_at'] then
    entry['deleted_at'] = tonumber(ARGV[2])
    redis.call('LSET', KEYS[1], i - 1, cjson.encode(entry))
    n = n + 1
  end
end
return n
"""


class QueueConflict(Exception):
    """A staff action on a conversation that is not (or no longer) the caller's to act on."""


@dataclass(frozen=True)
class Entry:
    """One line of a transcript."""

    role: str  # "citizen", "bot" or "staff"
    text: str
    ts: float
    staff: str | None = None
    # Set by the gateway for what it handled once (a message id, or that plus a reply
    # number); the action's replay of Rasa's history has none (see _ENQUEUE).
    id: str | None = None
    seq: int | None = None
    # When the citizen deleted this message (Instagram's is_deleted); the text is kept.
    deleted_at: float | None = None

    def as_dict(self) -> Dict:
        data: Dict = {"role": self.role, "text": self.text, "ts": self.ts}
        for name in ("staff", "id", "seq", "deleted_at"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data


@dataclass(frozen=True)
class Enqueued:
    status: str
    priority: int
    waiting_since_ms: int


def suspect_fields(suspect: str | None) -> Dict[str, str]:
    """The field that keeps a conversation out of the top of the queue for its episode
    (the enqueue script caps its priority): set by every path that queues a message the
    gateway marked suspect."""
    return {"suspect": "1"} if suspect else {}


# KEYS[1] a zset (queue or claims) or set (pending) of one agency, KEYS[2] the same of the
# agency that owns the conversation now; ARGV[1] conversation id. Moves the entry with its
# score (its place in line, or when it was claimed), in one step.
_REHOME = """
if redis.call('TYPE', KEYS[1])['ok'] == 'set' then
  return redis.call('SMOVE', KEYS[1], KEYS[2], ARGV[1])
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZADD', KEYS[2], score, ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


class HumanQueue:
    """The queue and presence API over one Redis client (``decode_responses=True``)."""

    def __init__(self, redis: Redis, *, retention_seconds: int,
                 deployment: Deployment | None = None) -> None:
        self.redis = redis
        # The default; an agency of a several-agency deployment may keep its records longer
        # or shorter (bot.agencies).
        self.retention_seconds = retention_seconds
        self.deployment = deployment
        self._enqueue = redis.register_script(_ENQUEUE)
        self._staff_op = redis.register_script(_STAFF_OP)
        self._prune = redis.register_script(_PRUNE)
        self._trim_outbox = redis.register_script(_TRIM_OUTBOX)
        self._lease_due = redis.register_script(_LEASE_DUE)
        self._mark_deleted = redis.register_script(_MARK_DELETED)
        self._rehome = redis.register_script(_REHOME)

    def scope(self, conversation_id: str) -> keys.AgencyKeys:
        """The agency keys the conversation's queue entry lives under."""
        return keys_of(self.deployment, conversation_id)

    def retention(self, conversation_id: str) -> int:
        return retention_of(self.deployment, conversation_id, self.retention_seconds)

    def scopes(self) -> List[keys.AgencyKeys]:
        """Every agency's keys (the gateway's sweeps walk each agency's queue)."""
        return every_keys(self.deployment)

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
            keys=[self.scope(conversation_id).queue, keys.conversation(conversation_id),
                  keys.transcript(conversation_id), keys.transcript_ids(conversation_id)],
            args=[
                conversation_id,
                now_ms,
                priority,
                json.dumps({k: v for k, v in fields.items() if v is not None}),
                json.dumps([e.as_dict() for e in entries]),
                self.retention(conversation_id),
                keys.PRIORITY_SPAN,
            ],
        )
        return Enqueued(status=status, priority=int(prio), waiting_since_ms=int(since))

    async def waiting(self, limit: int = 100, offset: int = 0,
                      scope: keys.AgencyKeys = keys.SINGLE) -> List[str]:
        """An agency's waiting conversation ids, first to serve first (a page of them)."""
        return await self.redis.zrange(scope.queue, offset, offset + limit - 1)

    async def waiting_count(self, scope: keys.AgencyKeys = keys.SINGLE) -> int:
        return int(await self.redis.zcard(scope.queue))

    async def conversation(self, conversation_id: str) -> Dict[str, str]:
        return await self.redis.hgetall(keys.conversation(conversation_id))

    async def transcript(self, conversation_id: str) -> List[Entry]:
        raw = await self.redis.lrange(keys.transcript(conversation_id), 0, -1)
        return [Entry(**json.loads(item)) for item in raw]

    # -- staff actions ---------------------------------------------------------------------

    async def _act(self, op: str, conversation_id: str, staff: str, arg: str = "",
                   now: float | None = None) -> str:
        now_ms = int((now if now is not None else time.time()) * 1000)
        scope = self.scope(conversation_id)
        ok, status = await self._staff_op(
            keys=[scope.queue, scope.claimed, keys.conversation(conversation_id),
                  keys.audit(conversation_id), keys.transcript(conversation_id),
                  keys.disclosed(conversation_id), keys.notes(conversation_id)],
            args=[op, conversation_id, staff, now_ms, arg, self.retention(conversation_id)],
        )
        if not ok:
            raise QueueConflict(status)
        return status

    async def claim(self, conversation_id: str, staff: str, now: float | None = None) -> None:
        """Take a waiting conversation; raises QueueConflict when someone else holds it."""
        await self._act("claim", conversation_id, staff, now=now)

    async def transfer(self, conversation_id: str, staff: str, to: str,
                       now: float | None = None) -> None:
        """Hand a held conversation to another staff member."""
        await self._act("transfer", conversation_id, staff, to, now=now)

    async def resolve(self, conversation_id: str, staff: str, now: float | None = None) -> None:
        """Close the episode; the next message starts a new one (with a new 911 notice when
        it is urgent: the notice window closes with the episode)."""
        await self._act("resolve", conversation_id, staff, now=now)
        await self.redis.delete(keys.notice_window(conversation_id),
                                keys.escalating(conversation_id))

    async def bulk_resolve(self, conversation_ids: Sequence[str], staff: str, reason: str,
                           now: float | None = None) -> Dict[str, str]:
        """Close many conversations at once (a spam flood), each waiting or held by
        ``staff``, each atomically and audited with ``reason``. Returns, per id, "resolved"
        or why it was left alone (held by someone else, already resolved, unknown)."""
        results: Dict[str, str] = {}
        for conversation_id in conversation_ids:
            try:
                await self._act("bulk_resolve", conversation_id, staff, reason, now=now)
            except QueueConflict as exc:
                results[conversation_id] = str(exc)
                continue
            await self.redis.delete(keys.notice_window(conversation_id),
                                    keys.escalating(conversation_id))
            results[conversation_id] = "resolved"
        return results

    async def add_note(self, conversation_id: str, staff: str, text: str,
                       now: float | None = None) -> Dict:
        """A private note between staff on a conversation (any status, any staff member):
        stored with it and audited, never in the transcript nor sent to the citizen."""
        note = {"ts": now if now is not None else time.time(), "staff": staff, "text": text}
        await self._act("note", conversation_id, staff, json.dumps(note, ensure_ascii=False),
                        now=note["ts"])
        return note

    async def notes(self, conversation_id: str) -> List[Dict]:
        """The conversation's staff notes, oldest first."""
        return [json.loads(n) for n in await self.redis.lrange(keys.notes(conversation_id),
                                                               0, -1)]

    async def reply(self, conversation_id: str, staff: str, text: str,
                    now: float | None = None) -> Entry:
        """Record a staff reply in the transcript (delivery is the gateway's job)."""
        entry = Entry("staff", text, now if now is not None else time.time(), staff)
        await self._act("reply", conversation_id, staff, json.dumps(entry.as_dict()),
                        now=entry.ts)
        return entry

    async def claimed(self, scope: keys.AgencyKeys = keys.SINGLE) -> List[str]:
        """An agency's conversations held by staff, oldest claim first."""
        return await self.redis.zrange(scope.claimed, 0, -1)

    async def mark_deleted(self, conversation_id: str, message_id: str,
                           now: float | None = None) -> int:
        """Mark the transcript entry of a message its citizen deleted; returns how many
        entries were marked (0 when the message never reached the transcript)."""
        return int(await self._mark_deleted(
            keys=[keys.transcript(conversation_id)],
            args=[message_id, repr(now if now is not None else time.time())]))

    # -- urgent messages in held conversations --------------------------------------------

    async def flag_urgent(self, conversation_id: str, flag: str, language: str,
                          notice_after: int, now: float | None = None) -> None:
        """Mark a held conversation urgent; the notice is due unless staff reply in time."""
        now = now if now is not None else time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.conversation(conversation_id),
                      mapping={"urgent_at": now, "urgent_flag": flag, "urgent_language": language})
            pipe.zadd(keys.HANDOFF_DUE, {conversation_id: now + notice_after})
            await pipe.execute()

    async def due_notices(self, now: float | None = None) -> List[Dict[str, str]]:
        """Held conversations whose urgent message got no staff reply in time.

        Each is returned once (removed from the schedule); those where staff replied after
        the urgent message are dropped silently.
        """
        now = now if now is not None else time.time()
        due = []
        for conversation_id in await self.redis.zrangebyscore(keys.HANDOFF_DUE, 0, now):
            # Leased, not removed: if this process dies before the notice is sent, it is
            # due again when the lease ends (notice_done removes it once sent).
            if not await self._lease_due(keys=[keys.HANDOFF_DUE],
                                         args=[conversation_id, now, now + NOTICE_LEASE_S]):
                continue  # another gateway process took it
            meta = await self.conversation(conversation_id)
            replied = float(meta.get("last_staff_reply_at") or 0) / 1000
            if meta and replied < float(meta.get("urgent_at") or 0):
                due.append(meta)
            else:
                await self.notice_done(conversation_id)
        return due

    async def notice_done(self, conversation_id: str) -> None:
        """The hand-off notice went out (or is no longer needed): off the schedule."""
        await self.redis.zrem(keys.HANDOFF_DUE, conversation_id)

    async def unclaimed_urgent(self, older_than: float, now: float | None = None,
                               lease: int = ESCALATION_LEASE_S) -> List[str]:
        """Waiting emergency/crisis conversations older than ``older_than`` seconds, not yet
        escalated. Each is leased to the caller as it is returned (one gateway process
        escalates it); :meth:`mark_escalated` records the outcome, and a lease that ends
        without it (the process died) lets another process try."""
        now = now if now is not None else time.time()
        cutoff_ms = int((now - older_than) * 1000)
        out = []
        waiting = [c for scope in self.scopes()
                   for c in await self.redis.zrangebyscore(scope.queue, 0, cutoff_ms)]
        for conversation_id in waiting:
            if await self.redis.hexists(keys.conversation(conversation_id), "escalated_at"):
                continue
            if await self.redis.set(keys.escalating(conversation_id), "1", nx=True, ex=lease):
                out.append(conversation_id)
        return out

    async def mark_escalated(self, conversation_id: str, error: str = "",
                             now: float | None = None) -> None:
        """The alert went out (or, with ``error``, went to the outbox instead)."""
        fields = {"escalated_at": now if now is not None else time.time()}
        if error:
            fields["escalation_error"] = error
        await self.redis.hset(keys.conversation(conversation_id), mapping=fields)

    # -- agencies ---------------------------------------------------------------------------

    async def rehome(self) -> int:
        """Move waiting, held and pending conversations to the agency that owns their account
        now (run at start-up): a page moved to another agency in the agencies file, or an
        agencies file turned on for a deployment that had one agency, would otherwise leave
        its open conversations where no console lists them (found by the live attack).
        Returns how many entries moved; a conversation no agency owns stays put."""
        if self.deployment is None:
            return 0
        scopes = self.scopes() + ([] if self.deployment.single else [keys.SINGLE])
        moved = 0
        for scope in scopes:
            for kind in ("queue", "claimed", "pending"):
                source = getattr(scope, kind)
                members = (await self.redis.smembers(source) if kind == "pending"
                           else await self.redis.zrange(source, 0, -1))
                for conversation_id in members:
                    owner = self.deployment.for_conversation(conversation_id)
                    if owner is None or owner.keys is scope:
                        continue
                    moved += int(await self._rehome(
                        keys=[source, getattr(owner.keys, kind)], args=[conversation_id]))
        return moved

    # -- retention ---------------------------------------------------------------------

    async def prune_expired(self, now: float | None = None) -> int:
        """Forget conversations whose records expired (the retention period passed since
        their last activity); returns how many were dropped from the indexes."""
        now = now if now is not None else time.time()
        pruned = 0
        due = await self.redis.zrange(keys.HANDOFF_DUE, 0, -1)  # one schedule for all
        for scope in self.scopes():
            ids = set(await self.redis.zrange(scope.queue, 0, -1))
            ids |= set(await self.redis.zrange(scope.claimed, 0, -1))
            ids |= {c for c in due if self.scope(c) is scope}
            for conversation_id in ids:
                pruned += await self._prune(
                    keys=[scope.queue, scope.claimed, keys.HANDOFF_DUE,
                          keys.conversation(conversation_id)],
                    args=[conversation_id])
        for scope in self.scopes():
            await self._trim_outbox(keys=[scope.outbox], args=[now - self.retention_seconds])
        return pruned
