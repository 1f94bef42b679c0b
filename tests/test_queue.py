"""The human queue and presence, against a real redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import keys
from bot.audit import AuditLog
from bot.queue import Entry, HumanQueue, QueueConflict

DAY = 86400


def queue_for(redis) -> HumanQueue:
    return HumanQueue(redis, retention_seconds=30 * DAY)


async def test_urgent_first_then_oldest(redis):
    q = queue_for(redis)
    await q.enqueue("old-human", priority=1, fields={"outcome": "human"}, entries=[], now=1000)
    await q.enqueue("new-human", priority=1, fields={"outcome": "human"}, entries=[], now=2000)
    await q.enqueue("new-urgent", priority=0, fields={"outcome": "emergency"}, entries=[],
                    now=3000)
    await q.enqueue("old-urgent", priority=0, fields={"outcome": "crisis"}, entries=[], now=1500)
    assert await q.waiting() == ["old-urgent", "new-urgent", "old-human", "new-human"]


async def test_requeue_keeps_waiting_time_and_only_moves_up(redis):
    q = queue_for(redis)
    first = await q.enqueue("c1", priority=1, fields={"outcome": "human"}, entries=[], now=1000)
    again = await q.enqueue("c1", priority=1, fields={"outcome": "report"}, entries=[], now=5000)
    assert first.waiting_since_ms == again.waiting_since_ms == 1_000_000
    urgent = await q.enqueue("c1", priority=0, fields={"outcome": "emergency"}, entries=[],
                             now=6000)
    assert urgent.priority == 0
    calm = await q.enqueue("c1", priority=1, fields={"outcome": "human"}, entries=[], now=7000)
    assert calm.priority == 0, "a conversation once urgent stays at the top"
    assert await q.waiting() == ["c1"]
    meta = await q.conversation("c1")
    assert meta["status"] == "waiting" and meta["priority"] == "0"
    assert meta["outcome"] == "human"


async def test_transcript_appends_only_new_entries(redis):
    q = queue_for(redis)
    e1 = Entry("citizen", "my bike was stolen", 10.0)
    e2 = Entry("bot", "Thank you for letting us know.", 10.5)
    e3 = Entry("citizen", "it was red", 20.0)
    await q.enqueue("c2", priority=1, fields={}, entries=[e1, e2], now=11)
    await q.enqueue("c2", priority=1, fields={}, entries=[e1, e2, e3], now=21)
    await q.enqueue("c2", priority=1, fields={}, entries=[e1, e2, e3], now=22)
    stored = await q.transcript("c2")
    assert [(e.role, e.text, e.ts) for e in stored] == [(e.role, e.text, e.ts)
                                                         for e in (e1, e2, e3)]
    assert [e.seq for e in stored] == [1, 2, 3]


async def test_a_message_is_never_lost_to_an_earlier_clock(redis):
    """Issue 8, item 6: staff reply at 100.0; a citizen message the worker received at 99.5
    reaches the transcript after it (before: skipped as "not newer"), and a retried message
    is stored once."""
    q = queue_for(redis)
    await q.enqueue("c10", priority=1, fields={}, entries=[Entry("citizen", "hi", 90.0)],
                    now=91)
    await q.claim("c10", "alice")
    await q.reply("c10", "alice", "Hello, this is Alice.", now=100.0)
    late = Entry("citizen", "my car was broken into", 99.5, id="m_late")
    await q.enqueue("c10", priority=1, fields={}, entries=[late], now=101)
    await q.enqueue("c10", priority=1, fields={}, entries=[late], now=102)  # handled again
    # A rate-limited message after the action's replay of Rasa's history.
    await q.enqueue("c10", priority=1, fields={}, entries=[Entry("citizen", "hello?", 95.0,
                                                                 id="m_throttled")], now=103)
    texts = [(e.role, e.text) for e in await q.transcript("c10")]
    assert texts == [("citizen", "hi"), ("staff", "Hello, this is Alice."),
                     ("citizen", "my car was broken into"), ("citizen", "hello?")]
    assert [e.seq for e in await q.transcript("c10")] == [1, 2, 3, 4]


async def test_keys_are_prefixed_and_expire(redis):
    q = queue_for(redis)
    await q.enqueue("c3", priority=1, fields={"channel": "rest", "topic": None},
                    entries=[Entry("citizen", "hi", 1.0)], now=1)
    names = set(await redis.keys("*"))
    assert names == {keys.SINGLE.queue, keys.conversation("c3"), keys.transcript("c3")}
    assert all(name.startswith("beacon:") for name in names)
    for name in names - {keys.SINGLE.queue}:
        ttl = await redis.ttl(name)
        assert 29 * DAY < ttl <= 30 * DAY
    assert "topic" not in await q.conversation("c3")


async def test_audit_entries_and_their_day_index_expire(redis):
    """The log lives its retention after its last entry; the day's index gets its TTL when
    a conversation joins it (later entries of the day leave it as it is)."""
    log = AuditLog(redis, 30 * DAY)
    day = keys.SINGLE.audit_day("2026-11-30")
    noon = 1_796_040_000.0  # 2026-11-30 12:00 UTC
    await log.append("c20", "citizen", "message_in", "hi", now=noon)
    await redis.expire(day, 10 * DAY)  # as if the day's index had aged
    await log.append("c20", "bot", "message_out", "hello", now=noon + 1)
    assert 9 * DAY < await redis.ttl(day) <= 10 * DAY
    await log.append("c21", "citizen", "message_in", "hey", now=noon + 2)
    assert 29 * DAY < await redis.ttl(day) <= 30 * DAY
    assert await redis.smembers(day) == {"c20", "c21"}
    assert 29 * DAY < await redis.ttl(keys.audit("c20")) <= 30 * DAY
    assert [e["action"] for e in await log.read("c20")] == ["message_in", "message_out"]


async def test_concurrent_enqueues_are_atomic(redis):
    q = queue_for(redis)
    await asyncio.gather(*[
        q.enqueue("c4", priority=i % 2, fields={"n": i},
                  entries=[Entry("citizen", f"m{i}", float(i))], now=100 + i)
        for i in range(1, 51)
    ])
    assert await q.waiting() == ["c4"]
    meta = await q.conversation("c4")
    assert meta["priority"] == "0"
    entries = await q.transcript("c4")
    stamps = [e.ts for e in entries]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_presence_with_ttl(redis):
    from bot.presence import Presence

    q = Presence(redis)
    assert not await q.is_monitoring()
    await q.set_on_duty("alice", ttl=60)
    await q.set_on_duty("bob", ttl=1)
    assert await q.on_duty() == ["alice", "bob"]
    assert 0 < await redis.ttl(keys.SINGLE.on_duty("alice")) <= 60
    await asyncio.sleep(1.2)
    assert await q.on_duty() == ["alice"]
    assert not await redis.sismember(keys.SINGLE.duty_index, "bob")
    await q.set_off_duty("alice")
    assert not await q.is_monitoring()


async def test_transcript_entries_are_json(redis):
    q = queue_for(redis)
    await q.enqueue("c5", priority=1, fields={}, entries=[Entry("citizen", "¿dónde? 🚓", 5.0)],
                    now=6)
    raw = await redis.lrange(keys.transcript("c5"), 0, -1)
    assert json.loads(raw[0]) == {"role": "citizen", "text": "¿dónde? 🚓", "ts": 5.0, "seq": 1}


async def test_claim_is_atomic_between_two_staff(redis):
    q = queue_for(redis)
    await q.enqueue("c6", priority=0, fields={"outcome": "emergency"}, entries=[], now=1)
    results = await asyncio.gather(q.claim("c6", "alice"), q.claim("c6", "bob"),
                                   return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, QueueConflict)]
    assert len(winners) == 1 and len(losers) == 1
    holder = (await q.conversation("c6"))["claimed_by"]
    assert str(losers[0]) == f"held by {holder}"
    assert await q.waiting() == [] and await q.claimed() == ["c6"]
    await q.claim("c6", holder)  # claiming again is harmless


async def test_only_the_holder_acts_until_transferred(redis):
    q = queue_for(redis)
    await q.enqueue("c7", priority=1, fields={}, entries=[Entry("citizen", "hi", 1.0)], now=2)
    await q.claim("c7", "alice", now=10)
    for action in (q.reply("c7", "bob", "hello"), q.resolve("c7", "bob"),
                   q.transfer("c7", "bob", "carol")):
        with pytest.raises(QueueConflict, match="held by alice"):
            await action
    await q.transfer("c7", "alice", "bob", now=11)
    with pytest.raises(QueueConflict):
        await q.reply("c7", "alice", "still mine?")
    entry = await q.reply("c7", "bob", "Hi, this is Bob from records.", now=12)
    meta = await q.conversation("c7")
    assert meta["first_response_at"] == "12000" and meta["claimed_by"] == "bob"
    last = (await q.transcript("c7"))[-1]
    assert (last.role, last.text, last.staff, last.seq) == (entry.role, entry.text,
                                                            entry.staff, 2)
    await q.resolve("c7", "bob", now=13)
    meta = await q.conversation("c7")
    assert meta["status"] == "resolved" and meta["resolved_by"] == "bob"
    assert await q.claimed() == []
    actions = [(a["actor"], a["action"]) for a in await AuditLog(redis, 60).read("c7")]
    assert actions == [("alice", "claim"), ("alice", "transfer"), ("bob", "reply"),
                       ("bob", "resolve")]


async def test_resolved_conversation_starts_waiting_again(redis):
    q = queue_for(redis)
    await q.enqueue("c8", priority=0, fields={}, entries=[], now=1)
    await q.claim("c8", "alice")
    await q.resolve("c8", "alice")
    with pytest.raises(QueueConflict, match="resolved"):
        await q.claim("c8", "bob")
    again = await q.enqueue("c8", priority=1, fields={}, entries=[], now=50)
    assert again.status == "waiting" and again.priority == 1
    assert again.waiting_since_ms == 50_000
    with pytest.raises(QueueConflict, match="unknown"):
        await q.claim("nope", "alice")


async def test_a_returning_callers_emergency_is_a_new_episode(redis):
    """Issue 8, item 7: escalation, notice and urgent flag belong to one episode."""
    q = queue_for(redis)
    await q.enqueue("c9", priority=0, fields={"outcome": "emergency", "notice_sent_at": 5},
                    entries=[], now=10)
    assert await q.unclaimed_urgent(60, now=100) == ["c9"]  # escalated once
    assert await q.unclaimed_urgent(60, now=150) == []  # leased to the first caller
    await q.mark_escalated("c9", now=101)
    assert await q.unclaimed_urgent(60, now=200) == []
    await q.claim("c9", "alice")
    await q.flag_urgent("c9", "emergency", "en", 60)
    await redis.set(keys.notice_window("c9"), "emergency", ex=600)
    await q.resolve("c9", "alice")
    assert not await redis.exists(keys.notice_window("c9"))  # the next emergency: a notice
    await q.enqueue("c9", priority=0, fields={"outcome": "emergency"}, entries=[], now=300)
    meta = await q.conversation("c9")
    for stale in ("escalated_at", "notice_sent_at", "urgent_flag", "claimed_by"):
        assert stale not in meta, stale
    assert await q.unclaimed_urgent(60, now=400) == ["c9"]  # escalated again


async def test_only_messages_after_the_urgent_one_are_its_followups(redis):
    """A question received a moment before the emergency, and answered after it, is not
    a follow-up of it (found running the stack: it got "added to your urgent message")."""
    from bot.notice_window import NoticeWindow

    window = NoticeWindow(redis, 600)
    await window.open("c11", "emergency", received=100.0)
    assert await window.outcome("c11", received=99.5) is None
    assert await window.outcome("c11", received=100.5) == "emergency"
    assert await window.outcome("c11") == "emergency"
    assert await window.outcome("nobody", received=100.5) is None


async def test_a_worker_takes_a_conversation_in_one_step(redis):
    """take: the lock, the head message, its start count and the queue status at once; a
    conversation held elsewhere is refused; one with nothing waiting is released, so a
    message arriving after announces it again."""
    from bot.inbox import Inbox

    inbox = Inbox(redis, dedupe_ttl=60)
    conversation = "messenger:page:c1"
    first, second = json.dumps({"n": 1}), json.dumps({"n": 2})
    await redis.rpush(keys.inbox(conversation), first, second)
    await redis.sadd(keys.SINGLE.pending, conversation)
    await redis.hset(keys.conversation(conversation), "status", "claimed")

    taken = await inbox.take(conversation)
    assert (taken.raw, taken.attempt, taken.status) == (first, 1, "claimed")
    assert await redis.get(keys.conversation_lock(conversation)) == taken.token
    assert await inbox.take(conversation) is None  # held
    assert await redis.ttl(keys.attempts(conversation)) > 0

    # Given up without an ack (a crash): the same message, started a second time.
    await inbox.unlock(conversation, taken.token)
    again = await inbox.take(conversation)
    assert (again.raw, again.attempt) == (first, 2)
    assert await inbox.ack(conversation, again.token, first) == 2  # more waits: handed back
    nxt = await inbox.take(conversation)
    assert (nxt.raw, nxt.attempt) == (second, 1)
    assert await inbox.ack(conversation, nxt.token, second) == 1  # released

    # Popped again with nothing waiting: released, no lock left behind.
    await redis.sadd(keys.SINGLE.pending, conversation)
    assert await inbox.take(conversation) is None
    assert not await redis.exists(keys.conversation_lock(conversation))
    assert not await redis.sismember(keys.SINGLE.pending, conversation)


async def test_a_sent_text_is_marked_audited_and_announced_in_one_step(redis):
    """The audit script's optional parts: the sent mark and the console event."""
    log = AuditLog(redis, retention_seconds=3600)
    conversation = "messenger:page:c2"
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe("events-test")
        await pubsub.get_message(timeout=1)  # the subscription's own confirmation
        await log.append(conversation, "bot", "message_out", "hello",
                         mark=("mark-test", 120), publish=("events-test", '{"type": "x"}'))
        event = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    assert event["data"] == '{"type": "x"}'
    assert 0 < await redis.ttl("mark-test") <= 120
    assert (await log.read(conversation))[0]["detail"] == "hello"
    # Without them, an entry as before: nothing marked, nothing published.
    await log.append(conversation, "bot", "message_out", "again")
    assert len(await log.read(conversation)) == 2


async def test_the_sweeper_puts_back_only_what_nobody_will_pop(redis):
    """A conversation waiting in line is not added again (under a backlog the list filled
    with duplicates); one that is pending, unlocked and not in line is put back once."""
    from bot.inbox import Inbox

    inbox = Inbox(redis, dedupe_ttl=60)
    await redis.sadd(keys.SINGLE.pending, "waiting", "lost", "held")
    await redis.lpush(keys.SINGLE.work, "waiting")
    await redis.set(keys.conversation_lock("held"), "token", ex=60)
    assert await inbox.sweep() == ["lost"]
    assert await inbox.sweep() == []
    assert sorted(await redis.lrange(keys.SINGLE.work, 0, -1)) == ["lost", "waiting"]
