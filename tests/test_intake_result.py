"""One safety-net check per message (issue 9): intake's result travels to Rasa in the
message's metadata, and Rasa's pipeline reads it instead of checking the text again.

The gateway half runs against a Rasa stand-in that records what it was sent; the Rasa half
against the real Rasa server with the trained model (``rasa_stack``)."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from bot import keys, urgency
from bot.app import create_app
from bot.nlu_component import intake_result
from bot.replies import EMERGENCY_NOTICE
from bot.safety_net import get_safety_net
from tests.gateway_support import (
    FakeRasa,
    instagram_item,
    instagram_payload,
    messenger_item,
    messenger_payload,
    post_instagram,
    post_meta,
    settings_for,
)

URGENT = "someone is kicking in my back door right now please help"


@pytest.fixture
async def recorded(aiohttp_client, aiohttp_server, redis, redis_server, platform):
    rasa = FakeRasa()
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


# Found by the live attack (2026-12-01): Rasa strips a message before its pipeline reads it,
# intake did not, and the rules read a long message's first and last 200 characters: with
# 200 newlines around it the danger was out of intake's window, and Rasa, reading intake's
# result instead of checking, no longer found it either.
PADDED = [
    "\n" * 200 + "someone is breaking into my house right now. "
    + "what are your lobby hours " * 10,
    "what are your lobby hours " * 10 + " he has a gun." + "\n" * 200,
    "\n" * 200 + "i am going to kill myself. "
    + "Hi, I have a question about paying a parking ticket online. " * 4,
    # A review (2026-12-02): blank lines inside the message filled both windows.
    "hi" + "\n \n" * 150 + "someone is breaking into my house right now" + "\n \n" * 150
    + "thanks",
    # A live attack (2026-12-02): a short line repeated filled both windows.
    "hey\n" * 70 + "he has a gun and is shooting\n" + "hey\n" * 70,
]
PADDED_IDS = ["newlines-before-a-break-in", "a-gun-then-newlines", "newlines-before-a-crisis",
              "blank-lines-around-a-break-in", "short-lines-around-a-gun"]


@pytest.mark.parametrize("text", PADDED, ids=PADDED_IDS)
async def test_intake_checks_the_text_as_rasa_reads_it(recorded, platform, text):
    client, rasa = recorded
    await post_meta(client, messenger_payload(messenger_item("ir-pad", text)))
    (body,) = await rasa.wait_for(1)
    expected = get_safety_net().check(text.strip()).as_dict()
    assert expected["flag"] in ("emergency", "crisis")
    assert body["metadata"]["safety_net"] == expected
    await platform.wait_for(lambda: platform.texts_to("ir-pad"))
    assert platform.texts_to("ir-pad")[0] == EMERGENCY_NOTICE["en"]


@pytest.mark.parametrize("text", PADDED, ids=PADDED_IDS)
async def test_a_padded_urgent_message_gets_the_notice_end_to_end(online, platform, text):
    """The same through the real Rasa server: the notice first, and Rasa's answer urgent."""
    await post_meta(online, messenger_payload(messenger_item("ir-e2e", text)))
    await platform.wait_for(lambda: len(platform.texts_to("ir-e2e")) >= 2)
    sent = platform.texts_to("ir-e2e")
    assert sent[0] == EMERGENCY_NOTICE["en"]
    assert not any("lobby" in reply.lower() or "ticket" in reply.lower() for reply in sent)


# A calm result as a check writes it, with the model named; each case below changes one
# thing about it, so each is refused for its own reason.
MODEL = "urgency-0123456789abcdef"
CALM = {"flag": None, "language": "en", "hits": [], "cues": [], "tier": None,
        "urgency": 0.01, "model": MODEL}
GUN = {"label": "emergency.weapon", "text": "gun", "suppressed": None}


def _calm(**changes) -> dict:
    return {"safety_net": {**CALM, **changes}}


@pytest.mark.parametrize("metadata", [
    None, "a string", {"safety_net": "emergency"}, _calm(flag="maybe"),
    _calm(hits="abc"),
    _calm(hits=[{"label": 1, "text": "x"}]),
    _calm(hits=[{"label": "a", "text": "b", "extra": 1}]),
    _calm(urgency="high"),
    _calm(urgency={"x": 1}),
    _calm(urgency=float("nan")),
    _calm(urgency="inf"),
    _calm(language=["en"]),
    _calm(cues=[1, 2]),
    _calm(tier="guess"),
    # From the live attack: an integer too big for a float failed Rasa's whole turn; any
    # language string, a string of cues (read as its characters) and 200,000 hits (a 5 s
    # turn, kept in the tracker) were taken.
    _calm(urgency=10 ** 400),
    _calm(language="zz"),
    _calm(flag="emergency", language=""),
    _calm(language="x" * 100_000),
    _calm(cues="cue.help"),
    _calm(hits=[GUN] * 101),
    _calm(hits=[{**GUN, "text": "g" * 501}]),
    _calm(hits=GUN),
    # From a review (2026-12-02): an empty result read as calm English; a bool, a string
    # and numbers outside 0-1 as the urgency; hits without words; "calm" beside an active
    # emergency hit; cues no hit has; a model's flag without a model.
    {"safety_net": {}},
    {"safety_net": {"flag": None, "language": "en"}},
    _calm(urgency=True), _calm(urgency=7), _calm(urgency=-3), _calm(urgency=" 1_0 "),
    _calm(hits=[{"label": None, "text": "gun"}]),
    _calm(hits=[{"label": "emergency.weapon", "text": None}]),
    _calm(hits=[{**GUN, "suppressed": 5}]),
    _calm(hits=[GUN]),
    _calm(hits=[GUN], flag="emergency", tier="model"),
    _calm(cues=["cue.help"]),
    _calm(flag="emergency"),
    _calm(flag="emergency", tier="model", model=None),
    _calm(model=5),
    # A live attack (2026-12-02): a 1 MB name stayed in Rasa's memory and its log, and a
    # line break in one wrote a line of its own into the log.
    _calm(model="urgency-" + "0" * 1_000_000),
    _calm(model="urgency-0123456789abcdef\nbot.fake - forged line"),
    _calm(model="urgency-0123456789ABCDEF"),
])
def test_what_does_not_read_as_a_result_is_checked_again(metadata):
    assert intake_result(metadata, MODEL) is None


@pytest.mark.parametrize("metadata", [
    _calm(),
    _calm(hits=[GUN], flag="emergency", tier="rules", urgency=1),
    _calm(hits=[GUN], flag="crisis", tier="rules", urgency=0.9),  # the model's crisis wins
    _calm(hits=[{**GUN, "suppressed": "negated"}], flag="crisis", tier="model", urgency=0.5),
    _calm(hits=[{"label": "cue.help", "text": "help", "suppressed": None}],
          cues=["cue.help"]),
])
def test_a_result_as_a_check_writes_it_is_read(metadata):
    assert intake_result(metadata, MODEL) == metadata["safety_net"]


@pytest.mark.parametrize("intake_model, rasa_model", [
    (None, MODEL), (MODEL, None), ("urgency-fedcba9876543210", MODEL)])
def test_a_result_from_another_model_is_checked_again(intake_model, rasa_model):
    """A gateway started without the urgency model (or with an older one) while Rasa has
    its own: the rules alone must not stand in for Rasa's model (a review, 2026-12-02)."""
    assert intake_result(_calm(model=intake_model), rasa_model) is None
    assert intake_result(_calm(model=None), None) == _calm(model=None)["safety_net"]


def test_forged_model_names_are_not_remembered_without_end(monkeypatch):
    from bot import nlu_component

    monkeypatch.setattr(nlu_component, "_MISMATCHES_SEEN", set())
    for i in range(200):
        assert intake_result(_calm(model=f"urgency-{i:016x}"), MODEL) is None
    assert len(nlu_component._MISMATCHES_SEEN) <= 16


def test_a_result_reads_back_as_itself():
    net = get_safety_net()
    result = net.check(URGENT).as_dict()
    assert result["flag"] == "emergency" and result["hits"]
    assert result["model"] == net.model_name is not None
    assert intake_result({"safety_net": result}, net.model_name) == result


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
                         "suppressed": None}], "cues": [],
               "model": urgency.model_path().stem}
    sender, replies = await _say(rasa_stack, text, {"safety_net": flagged})
    assert "call 911" in replies[0]
    assert (await redis.hgetall(keys.conversation(sender)))["outcome"] == "emergency"
    # Malformed, none, or made without Rasa's urgency model (a gateway started before the
    # model was trained): checked again.
    for metadata in ({"safety_net": {"flag": "maybe"}}, None,
                     {"safety_net": {**flagged, "model": None}}):
        sender, replies = await _say(rasa_stack, text, metadata)
        assert not any("call 911" in reply for reply in replies)
        assert not await redis.exists(keys.conversation(sender))
