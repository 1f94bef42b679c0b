"""One safety-net check per message (issue 9): intake's result travels to Rasa in the
message's metadata, and Rasa's pipeline reads it instead of checking the text again.

The gateway half runs against a Rasa stand-in that records what it was sent; the Rasa half
against the real Rasa server with the trained model (``rasa_stack``)."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from aiohttp import web

from bot import keys
from bot.app import create_app
from bot.nlu_component import intake_result
from bot.replies import EMERGENCY_NOTICE
from bot.safety_net import get_safety_net
from tests.gateway_support import (
    instagram_item,
    instagram_payload,
    messenger_item,
    messenger_payload,
    post_instagram,
    post_meta,
    settings_for,
)

URGENT = "someone is kicking in my back door right now please help"


class RecordingRasa:
    """Rasa's REST channel: records each request's body, answers a FAQ reply."""

    def __init__(self) -> None:
        self.bodies: list = []
        self.app = web.Application()
        self.app.router.add_post("/webhooks/rest/webhook", self._answer)
        self.app.router.add_get("/", self._health)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        return web.json_response([
            {"recipient_id": body["sender"], "text": "Our lobby is open 8 to 5."},
            {"recipient_id": body["sender"],
             "custom": {"beacon_triage": {"outcome": "faq", "topic": "hours"}}}])

    async def wait_for(self, count: int) -> list:
        for _ in range(300):
            if len(self.bodies) >= count:
                return self.bodies
            await asyncio.sleep(0.05)
        raise AssertionError(f"Rasa was asked {len(self.bodies)} times, not {count}")


@pytest.fixture
async def recorded(aiohttp_client, aiohttp_server, redis, redis_server, platform):
    rasa = RecordingRasa()
    server = await aiohttp_server(rasa.app)
    url = str(server.make_url("")).rstrip("/")
    client = await aiohttp_client(create_app(settings_for(redis_server, url, platform.url)))
    return client, rasa


@pytest.mark.parametrize("text", [URGENT, "when is the lobby open", "hola buenas tardes"])
async def test_rasa_is_sent_intakes_own_result(recorded, text):
    client, rasa = recorded
    await post_meta(client, messenger_payload(messenger_item("ir-1", text)))
    (body,) = await rasa.wait_for(1)
    assert body["message"] == text
    assert body["metadata"]["safety_net"] == get_safety_net().check(text).as_dict()


async def test_a_shared_posts_result_is_not_sent_as_the_texts(recorded, platform):
    """Intake read the caption beside the words; Rasa reads the words alone, so it checks
    them itself."""
    client, rasa = recorded
    await post_instagram(client, instagram_payload(instagram_item(
        "ir-share", "look at this", attachments=[{"type": "share", "payload": {
            "url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1",
            "title": "I am going to kill myself tonight, goodbye"}}])))
    (body,) = await rasa.wait_for(1)
    assert body["message"] == "look at this"
    assert body["metadata"]["safety_net"] is None
    await platform.wait_for(lambda: platform.instagram_texts_to("ir-share"))
    assert platform.instagram_texts_to("ir-share")[0] == EMERGENCY_NOTICE["en"]


@pytest.mark.parametrize("metadata", [
    None, "a string", {"safety_net": "emergency"}, {"safety_net": {"flag": "maybe"}},
    {"safety_net": {"flag": None, "hits": "abc"}},
    {"safety_net": {"flag": None, "hits": [{"label": 1, "text": "x"}]}},
    {"safety_net": {"flag": None, "hits": [{"label": "a", "text": "b", "extra": 1}]}},
    {"safety_net": {"flag": None, "urgency": "high"}},
    {"safety_net": {"flag": None, "urgency": {"x": 1}}},
    {"safety_net": {"flag": None, "language": ["en"]}},
    {"safety_net": {"flag": None, "cues": [1, 2]}},
    {"safety_net": {"flag": None, "tier": "guess"}},
])
def test_what_does_not_read_as_a_result_is_checked_again(metadata):
    assert intake_result(metadata) is None


def test_a_result_reads_back_as_itself():
    result = get_safety_net().check(URGENT).as_dict()
    assert result["flag"] == "emergency" and result["hits"]
    assert intake_result({"safety_net": result}) == result


async def _say(stack, text: str, metadata: dict | None) -> tuple[str, list[str]]:
    sender = f"test-{uuid.uuid4().hex[:10]}"
    body = {"sender": sender, "message": text}
    if metadata is not None:
        body["metadata"] = metadata
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack['url']}/webhooks/rest/webhook", json=body,
                             timeout=aiohttp.ClientTimeout(total=60)) as response:
            assert response.status == 200
            answer = await response.json()
    return sender, [m["text"] for m in answer if "text" in m]


async def test_rasa_decides_on_the_result_it_is_given(rasa_stack, redis):
    """The real Rasa server: a calm text sent with an emergency result is answered as an
    emergency, so the pipeline read the result rather than the text; the same text with a
    malformed result, or none, is checked again and answered as the FAQ it is."""
    text = "how do i get a copy of a police report"
    flagged = {"flag": "emergency", "language": "en", "tier": "rules", "urgency": 0.9,
               "hits": [{"label": "emergency.intrusion", "text": "kicking in",
                         "suppressed": None}], "cues": []}
    sender, replies = await _say(rasa_stack, text, {"safety_net": flagged})
    assert "call 911" in replies[0]
    assert (await redis.hgetall(keys.conversation(sender)))["outcome"] == "emergency"
    for metadata in ({"safety_net": {"flag": "maybe"}}, None):
        sender, replies = await _say(rasa_stack, text, metadata)
        assert not any("call 911" in reply for reply in replies)
        assert not await redis.exists(keys.conversation(sender))
