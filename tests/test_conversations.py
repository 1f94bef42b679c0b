"""End to end through the real Rasa server's REST channel, the action server and Redis."""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest

from bot import keys

pytestmark = pytest.mark.usefixtures("rasa_stack")


async def say(stack, text: str, sender: str | None = None) -> tuple[str, list[str]]:
    sender = sender or f"test-{uuid.uuid4().hex[:10]}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack['url']}/webhooks/rest/webhook",
                             json={"sender": sender, "message": text},
                             timeout=aiohttp.ClientTimeout(total=60)) as response:
            assert response.status == 200
            body = await response.json()
    return sender, [m["text"] for m in body if "text" in m]


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("someone is breaking into my house right now please send help", "emergency"),
        ("i want to end my life", "crisis"),
        ("my bike was stolen from my garage last night", "report"),
        ("can i speak to a detective about my case", "human"),
    ],
)
async def test_routed_outcomes_reply_and_queue(rasa_stack, redis, text, outcome):
    sender, replies = await say(rasa_stack, text)
    assert replies, "the citizen got no reply"
    meta = await redis.hgetall(keys.conversation(sender))
    assert meta["outcome"] == outcome
    assert sender in await redis.zrange(keys.SINGLE.queue, 0, -1)
    if outcome in ("emergency", "crisis"):
        assert "call 911" in replies[0]
        assert meta["priority"] == "0"
    if outcome == "crisis":
        assert any("988" in r for r in replies)
    transcript = await redis.lrange(keys.transcript(sender), 0, -1)
    assert text in transcript[0]


async def test_faq_answered_from_department_not_queued(rasa_stack, redis, department):
    sender, replies = await say(rasa_stack, "how do i get a copy of a police report")
    assert replies == [department.faq_answer("records_request")]
    assert not await redis.exists(keys.conversation(sender))


async def test_smalltalk(rasa_stack, redis):
    _, replies = await say(rasa_stack, "are you a bot?")
    assert "automated assistant" in replies[0]


async def test_spanish_emergency_is_bilingual(rasa_stack, redis):
    _, replies = await say(rasa_stack, "hay un hombre con una pistola afuera de mi casa")
    assert replies[0].startswith("Si es una emergencia, llame al 911")
    assert "call 911" in replies[1]


async def test_urgency_wins_in_a_mixed_message(rasa_stack, redis):
    sender, replies = await say(
        rasa_stack,
        "thanks for the post! also someone just broke into my neighbor's car and they're "
        "still there",
    )
    assert "call 911" in replies[0]
    assert (await redis.hgetall(keys.conversation(sender)))["outcome"] == "emergency"


async def test_conversation_keeps_history_in_transcript(rasa_stack, redis):
    sender, greeting = await say(rasa_stack, "hi")
    _, replies = await say(rasa_stack, "can a detective call me back about my case", sender)
    entries = [json.loads(e) for e in await redis.lrange(keys.transcript(sender), 0, -1)]
    assert [e["text"] for e in entries] == [
        "hi", *greeting, "can a detective call me back about my case", *replies]
    assert [e["role"] for e in entries][:2] == ["citizen", "bot"]


async def test_parse_data_carries_the_safety_net(rasa_stack):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rasa_stack['url']}/model/parse",
                             params={"token": rasa_stack["token"]},
                             json={"text": "he has a knife to her throat"}) as response:
            parse = await response.json()
    assert parse["safety_net"]["flag"] == "emergency"


async def test_api_needs_the_token(rasa_stack):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rasa_stack['url']}/model/parse", json={"text": "hi"}) as r:
            assert r.status == 401
