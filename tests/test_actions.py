"""ActionTriage with a real Redis, a CollectingDispatcher and hand-built trackers."""

from __future__ import annotations

import time

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import BeaconAction
from actions.triage import ActionTriage
from bot import keys
from bot.rasa_client import TRIAGE_PAYLOAD
from bot.safety_net import get_safety_net
from bot.settings import PROJECT_ROOT
from bot.topics import ALL_INTENTS, FALLBACK_INTENT

DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())


async def reset_services():
    """Forget the actions' cached services, closing their Redis client."""
    if BeaconAction._queue is not None:
        await BeaconAction._queue.redis.close(close_connection_pool=True)
    BeaconAction._settings = BeaconAction._department = BeaconAction._queue = None
    BeaconAction._window = BeaconAction._presence = None


@pytest.fixture
async def action(redis_server, redis, monkeypatch):
    monkeypatch.setenv("BEACON_REDIS_URL", redis_server["url"])
    monkeypatch.setenv("BEACON_REDIS_TIMEOUT_MS", "500")
    # Each test starts a fresh conversation: no notice window left by an earlier one.
    await redis.delete(keys.notice_window("citizen-1"))
    await reset_services()
    yield ActionTriage()
    await reset_services()


def tracker(text: str, intent: str, confidence: float, sender: str = "citizen-1",
            metadata: dict | None = None) -> Tracker:
    now = time.time()
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": intent, "confidence": confidence}],
        "safety_net": get_safety_net().check(text).as_dict(),
    }
    events = [
        {"event": "action", "name": "action_listen", "timestamp": now - 60},
        {"event": "user", "text": "hello", "timestamp": now - 30, "parse_data": {}},
        {"event": "bot", "text": "Hi! This is the automated assistant", "timestamp": now - 29},
        {"event": "user", "text": text, "timestamp": now - 1, "parse_data": parse,
         "input_channel": "rest", "metadata": metadata or {}},
    ]
    return Tracker(sender, {}, parse, events, False, None, None, "action_listen")


async def run(action, t):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, DOMAIN)
    # The last message tells the gateway the decision (for its metrics and logs), the same
    # one the slots record; it is not for the citizen.
    *texts, decision = dispatcher.messages
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert decision["custom"] == {TRIAGE_PAYLOAD: {"outcome": slots["outcome"],
                                                   "topic": slots["topic"]}}
    return [m["text"] for m in texts], events


async def test_emergency_replies_notice_and_queues_on_top(action, redis):
    await action.queue.enqueue("someone-else", priority=1, fields={}, entries=[], now=1)
    texts, events = await run(action, tracker(
        "thanks for the post! also someone is breaking into my neighbors car rn", "thanks", 0.9))
    assert "call 911" in texts[0]
    assert {"event": "slot", "name": "outcome", "value": "emergency", "timestamp": None} in events
    assert await redis.zrange(keys.SINGLE.queue, 0, -1) == ["citizen-1", "someone-else"]
    meta = await redis.hgetall(keys.conversation("citizen-1"))
    assert meta["outcome"] == "emergency" and meta["priority"] == "0"
    assert meta["channel"] == "rest" and meta["safety_net"] == "emergency"
    transcript = await action.queue.transcript("citizen-1")
    assert [e.role for e in transcript] == ["citizen", "bot", "citizen"] + ["bot"] * len(texts)
    assert transcript[2].text.startswith("thanks for the post")
    assert transcript[-len(texts)].text == texts[0]


async def test_faq_answers_and_does_not_queue(action, redis, department):
    texts, events = await run(action, tracker("how do i get fingerprinted", "faq_fingerprinting",
                                              0.97))
    assert texts == [department.faq_answer("fingerprinting")]
    assert await redis.zcard(keys.SINGLE.queue) == 0
    topic = {"event": "slot", "name": "topic", "value": "fingerprinting", "timestamp": None}
    assert topic in events


async def test_human_after_hours_vs_on_duty(action, redis):
    texts, _ = await run(action, tracker("can a detective call me about my case", "human", 0.9))
    assert "not monitored 24/7" in texts[-1] or "nobody is on duty" in texts[-1]
    await action.presence.set_on_duty("alice", ttl=30)
    texts, _ = await run(action, tracker("hello? anyone there", "human", 0.9, sender="c-2"))
    assert texts[-1] == "A member of our staff will reply here shortly."
    assert await redis.zrange(keys.SINGLE.queue, 0, -1) == ["citizen-1", "c-2"]


async def test_an_urgent_answer_opens_the_notice_window(action, redis, department):
    """The notice came from Rasa's turn (no intake flag): the action opens the window, so
    the next message, a question, is a follow-up of the urgent conversation."""
    from tests.gateway_support import urgent_follow_up

    await run(action, tracker("i dont want to be alive anymore", "crisis", 0.8))
    assert (await redis.get(keys.notice_window("citizen-1"))).startswith("crisis|")
    texts, events = await run(action, tracker("what are your lobby hours",
                                              "faq_hours_location", 0.95))
    assert texts == [urgent_follow_up()]
    assert {"event": "slot", "name": "outcome", "value": "crisis", "timestamp": None} in events
    meta = await redis.hgetall(keys.conversation("citizen-1"))
    assert meta["priority"] == "0" and meta["outcome"] == "crisis"


async def test_the_message_that_opened_the_window_is_not_its_own_followup(action, redis):
    # Intake flagged it, sent the notice and opened the window (the gateway says so in the
    # metadata): Rasa's answer is the full notice, which the gateway drops as already sent.
    await redis.set(keys.notice_window("citizen-1"), "emergency", ex=60)
    texts, _ = await run(action, tracker("someone is breaking in right now", "emergency", 0.9,
                                         metadata={"notice": True}))
    assert "call 911" in texts[0] and len(texts) > 1


async def test_crisis_includes_988(action, redis):
    texts, _ = await run(action, tracker("i dont want to be alive anymore", "crisis", 0.8))
    assert "call 911" in texts[0] and any("988" in t for t in texts)
    assert (await redis.hgetall(keys.conversation("citizen-1")))["outcome"] == "crisis"


async def test_redis_down_still_answers(redis_server, monkeypatch):
    monkeypatch.setenv("BEACON_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setenv("BEACON_REDIS_TIMEOUT_MS", "200")
    await reset_services()
    try:
        texts, events = await run(ActionTriage(), tracker("someone is in my house", "human", 0.6))
    finally:
        await reset_services()
    assert "call 911" in texts[0]
    assert events[0]["value"] == "emergency"


def test_domain_and_rules_cover_every_intent():
    assert set(DOMAIN["intents"]) == set(ALL_INTENTS)
    rules = yaml.safe_load((PROJECT_ROOT / "data/rules/triage.yml").read_text())["rules"]
    routed = {r["steps"][0]["intent"] for r in rules if r["steps"][1]["action"] == "action_triage"}
    assert routed == set(ALL_INTENTS) | {FALLBACK_INTENT}
    assert DOMAIN["actions"] == ["action_triage"]
    assert set(DOMAIN["slots"]) == {"outcome", "topic"}


def test_training_data_has_every_intent():
    seen = {}
    for path in (PROJECT_ROOT / "data/nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            if "intent" in item:
                lines = [x for x in item["examples"].splitlines() if x.strip()]
                seen[item["intent"]] = seen.get(item["intent"], 0) + len(lines)
    assert set(seen) == set(ALL_INTENTS)
    assert min(seen.values()) >= 30, seen
