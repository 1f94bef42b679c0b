"""Instagram (issue 10, item 4): both setups (an account linked to the Facebook Page, and one
connected with the Instagram API with Instagram Login), and Instagram's event shapes, on the
payloads Meta documents ("Webhooks for Instagram Messaging",
https://developers.facebook.com/docs/instagram-messaging/webhooks; post shares,
https://developers.facebook.com/docs/instagram-platform/webhooks/new).

The first half is the adapters alone; the second posts signed deliveries to the gateway with
Rasa down (its answers are the safety net's and the routing line) and reads what reached the
fake Graph hosts (tests/gateway_support.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import keys
from bot.channels import PayloadError, instagram, meta
from bot.messages import DELETED, MESSAGE
from bot.replies import EMERGENCY_NOTICE
from bot.settings import Settings, SettingsError
from tests.gateway_support import (
    IG_ACCOUNT,
    META_SECRET,
    META_VERIFY,
    PAGE_ID,
    ig_conv_id,
    instagram_item,
    instagram_payload,
    messenger_item,
    messenger_payload,
    post_instagram,
    post_meta,
    psid,
    signed,
)

IGID, IGSID = "17841400000001", "3001"
CDN = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18139494541428835&signature=AbC"


def delivery(*items: dict, field: str = "messaging") -> dict:
    return {"object": "instagram",
            "entry": [{"id": IGID, "time": 1569262486134, field: list(items)}]}


def item(message: dict | None = None, **other) -> dict:
    """A messaging item as the documented examples have it: IGSID to IGID."""
    base = {"sender": {"id": IGSID}, "recipient": {"id": IGID}, "timestamp": 1569262485349}
    if message is not None:
        base["message"] = message
    return {**base, **other}


def only(payload: dict):
    parsed = meta.parse(payload)
    assert len(parsed.messages) == 1, parsed
    return parsed.messages[0]


# -- the documented event shapes ---------------------------------------------------------------

def test_text_message():
    message = only(delivery(item({"mid": "MESSAGE-ID", "text": "MESSAGE-TEXT"})))
    assert (message.channel, message.account, message.sender, message.message_id) == (
        "instagram", IGID, IGSID, "MESSAGE-ID")
    assert message.text == "MESSAGE-TEXT" and message.kind == MESSAGE and not message.standby
    assert message.timestamp == 1569262485.349


def test_echoes_are_ignored():
    # "is_echo flag will be present to indicate that the message is sent from the Instagram
    # account itself": sender and recipient swapped...
    echo = {"sender": {"id": IGID}, "recipient": {"id": IGSID}, "timestamp": 1,
            "message": {"mid": "m-echo", "text": "our reply", "is_echo": True}}
    # ...and the flag alone is enough (another app's message on the standby channel).
    flagged = item({"mid": "m-echo-2", "text": "the inbox's reply", "is_echo": True})
    parsed = meta.parse(delivery(echo, flagged))
    assert parsed.messages == () and parsed.ignored == 2


def test_seen_and_reactions_start_no_turn():
    """messaging_seen and message_reactions are ignored: no words for Rasa or the safety
    net, and Meta's own inbox shows them (bot/channels/meta.py says why)."""
    seen = item(read={"mid": "MESSAGE-ID"})
    react = item(reaction={"mid": "MESSAGE-ID", "action": "react", "reaction": "love",
                           "emoji": "\u2764\ufe0f"})
    unreact = item(reaction={"mid": "MESSAGE-ID", "action": "unreact"})
    parsed = meta.parse(delivery(seen, react, unreact))
    assert parsed.messages == () and parsed.events == () and parsed.ignored == 3


def test_a_deleted_message_is_an_item_of_its_own():
    message = only(delivery(item({"mid": "MESSAGE-ID", "is_deleted": True})))
    assert message.kind == DELETED and message.refers_to == "MESSAGE-ID"
    # Its own id: the message's is remembered by dedupe, and the deletion must not be lost.
    assert message.message_id != "MESSAGE-ID" and message.text == ""


def test_unsupported_media_is_noted_for_staff():
    message = only(delivery(item({"mid": "m-u", "is_unsupported": True})))
    assert message.text == "" and message.attachments == (meta.UNSUPPORTED,)
    assert "Instagram app" in message.readable


def test_story_reply_keeps_the_words_and_says_what_they_answer():
    message = only(delivery(item({"mid": "m-s", "text": "he is outside my door right now",
                                  "reply_to": {"story": {"url": CDN, "id": "STORY-ID"}}})))
    assert message.text == "he is outside my door right now"  # what Rasa and the net read
    assert message.attachments == (f"{meta.STORY_REPLY}: {CDN}",)
    # An inline reply to an earlier message is just a message.
    inline = only(delivery(item({"mid": "m-i", "text": "yes", "reply_to": {"mid": "m-1"}})))
    assert inline.attachments == ()


def test_story_mention_reels_and_shares_are_readable():
    mention = only(delivery(item({"mid": "m-1", "attachments": [
        {"type": "story_mention", "payload": {"url": CDN}}]})))
    assert mention.text == "" and mention.attachments == (f"{meta.STORY_MENTION}: {CDN}",)
    reel = only(delivery(item({"mid": "m-2", "attachments": [
        {"type": "ig_reel", "payload": {"reel_video_id": "17873858025351922",
                                         "title": "Night patrol #police", "url": CDN}}]})))
    assert reel.attachments == (f'shared a reel: "Night patrol #police" {CDN}',)
    assert reel.shared_text == "Night patrol #police"
    plain_reel = only(delivery(item({"mid": "m-3", "attachments": [
        {"type": "reel", "payload": {"url": CDN}}]})))
    assert plain_reel.attachments == (f"shared a reel: {CDN}",)


def test_a_post_share_during_metas_transition_is_described_once():
    """Since November 2025 a shared post comes as "share" and "ig_post" with the same media
    (https://developers.facebook.com/docs/instagram-platform/webhooks/new)."""
    payload = {"ig_post_media_id": "18139494541428835", "url": CDN,
               "title": "Build a workspace that attracts talent."}
    message = only(delivery(item({"mid": "m-p", "attachments": [
        {"type": "share", "payload": payload}, {"type": "ig_post", "payload": payload}]})))
    assert message.attachments == (f'shared a post: "{payload["title"]}" {CDN}',)
    assert message.shared_text == payload["title"]
    assert message.safety_text == payload["title"]


def test_plain_media_keep_their_kind_and_odd_urls_are_dropped():
    message = only(delivery(item({"mid": "m-m", "text": "look", "attachments": [
        {"type": "image", "payload": {"url": CDN}},
        {"type": "video", "payload": {"url": CDN}},
        {"type": "ephemeral"},
        {"type": "share", "payload": {"url": "javascript:alert(1)"}},
        {"type": "story_mention", "payload": {"url": "https://x.test/a b"}}]})))
    assert message.attachments == ("image", "video", meta.EPHEMERAL, "shared a post",
                                   meta.STORY_MENTION)


# -- the Instagram Login channel module ----------------------------------------------------------

def test_instagram_login_parse_takes_instagram_only():
    assert instagram.parse(delivery(item({"mid": "m", "text": "hi"}))).messages
    with pytest.raises(PayloadError):
        instagram.parse({"object": "page", "entry": []})


def test_instagram_login_send_request():
    out = instagram.outgoing("https://graph.instagram.test", "IGAAtoken", IGID, IGSID, "hello")
    assert out.url == f"https://graph.instagram.test/v21.0/{IGID}/messages"
    # The token goes in a header, never in the URL that proxies log.
    assert out.headers == {"Authorization": "Bearer IGAAtoken"} and out.params == {}
    assert out.bodies == ({"recipient": {"id": IGSID}, "message": {"text": "hello"},
                           "messaging_type": "RESPONSE"},)
    tagged = instagram.outgoing("https://g", "t", IGID, IGSID, "hi", human_agent=True)
    assert tagged.bodies[0]["tag"] == "HUMAN_AGENT"
    for account, recipient in (("../me", IGSID), (IGID, "../../me/feed"), ("1?x=1", IGSID)):
        with pytest.raises(ValueError):
            instagram.outgoing("https://g", "t", account, recipient, "hi")


def test_instagram_text_is_split_at_1000_bytes():
    text = "¿Dónde está la comisaría? " * 90  # about 2,400 bytes of UTF-8
    for out in (instagram.outgoing("https://g", "t", IGID, IGSID, text),
                meta.outgoing("https://g", "t", IGSID, text,
                              max_bytes=meta.INSTAGRAM_MAX_BYTES)):
        parts = [b["message"]["text"] for b in out.bodies]
        assert len(parts) == 3
        assert all(len(p.encode()) <= meta.INSTAGRAM_MAX_BYTES for p in parts)
        assert " ".join(parts).split() == text.split()


def test_sender_action_requests():
    page = meta.sender_action("https://graph.test", "page-token", IGSID, "mark_seen")
    assert page.url == "https://graph.test" + meta.SEND_PATH
    assert page.bodies == ({"recipient": {"id": IGSID}, "sender_action": "mark_seen"},)
    assert page.params == {"access_token": "page-token"}
    login = instagram.sender_action("https://g", "IGAA", IGID, IGSID, "typing_on")
    assert login.bodies[0] == {"recipient": {"id": IGSID}, "sender_action": "typing_on"}
    assert login.headers == {"Authorization": "Bearer IGAA"}
    for action, recipient in (("react", IGSID), ("typing_on", "me")):
        with pytest.raises(ValueError):
            meta.sender_action("https://g", "t", recipient, action)


def test_account_of_a_conversation():
    assert instagram.account_of(f"instagram:{IGID}:{IGSID}") == IGID
    assert instagram.account_of(f"messenger:{IGID}:{IGSID}") is None
    assert instagram.account_of("instagram:../x:1") is None


def test_instagram_login_settings():
    settings = Settings.from_env({"INSTAGRAM_ACCESS_TOKEN": "IGAA", "INSTAGRAM_ACCOUNT_ID": IGID,
                                  "INSTAGRAM_APP_SECRET": "s", "INSTAGRAM_APP_ID": "99"})
    assert settings.instagram_graph_url == "https://graph.instagram.com"
    assert (settings.instagram_account_id, settings.instagram_app_id) == (IGID, "99")
    with pytest.raises(SettingsError, match="INSTAGRAM_ACCOUNT_ID"):
        Settings.from_env({"INSTAGRAM_ACCESS_TOKEN": "IGAA"})
    for name in ("INSTAGRAM_ACCOUNT_ID", "META_APP_ID", "INSTAGRAM_APP_ID"):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: "../me"})
    with pytest.raises(SettingsError, match="INSTAGRAM_GRAPH_URL"):
        Settings.from_env({"INSTAGRAM_GRAPH_URL": "graph.instagram.com"})


# -- through the gateway ---------------------------------------------------------------------------

async def queued(redis, conversation: str, timeout: float = 15.0) -> dict:
    for _ in range(int(timeout / 0.05)):
        meta_ = await redis.hgetall(keys.conversation(conversation))
        if meta_.get("status"):
            return meta_
        await asyncio.sleep(0.05)
    raise AssertionError(f"{conversation} never queued")


async def transcript(redis, conversation: str) -> list:
    return [json.loads(e) for e in await redis.lrange(keys.transcript(conversation), 0, -1)]


async def audit(redis, conversation: str) -> list:
    return [json.loads(e) for e in await redis.lrange(keys.audit(conversation), 0, -1)]


async def test_instagram_login_webhook_verification_and_signature(offline):
    ok = await offline.get("/webhooks/instagram", params={
        "hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "7"})
    assert ok.status == 200 and await ok.text() == "7"
    payload = instagram_payload(instagram_item("ig-sig", "hello"))
    # Signed with the Page app's secret: not this app's, refused.
    body, headers = signed(payload, META_SECRET)
    assert (await offline.post("/webhooks/instagram", data=body, headers=headers)).status == 403
    # A Page's delivery does not belong on this route.
    response = await post_instagram(offline, messenger_payload(messenger_item("ig-x", "hi")))
    assert response.status == 400


async def test_instagram_login_reply_goes_to_the_instagram_host(offline, platform, redis):
    response = await post_instagram(offline, instagram_payload(
        instagram_item("ig-login", "what time do you open")))
    assert (await response.json())["received"] == 1
    await platform.wait_for(lambda: platform.instagram_texts_to("ig-login"))
    sent = next(s for s in platform.sent if s["platform"] == "instagram")
    assert sent["account"] == IG_ACCOUNT and sent["auth"] == "Bearer ig-token"
    assert sent["token"] is None  # never in the URL
    assert not platform.texts_to("ig-login")  # nothing through the Page's endpoint
    meta_ = await queued(redis, ig_conv_id("ig-login"))
    assert meta_["channel"] == "instagram" and meta_["account"] == IG_ACCOUNT


async def test_both_setups_side_by_side(offline, platform):
    """An Instagram account linked to the Page answers with the Page's token on the Graph
    host; the Instagram Login account with its own token on the Instagram host."""
    linked = "17841499999999"
    await post_meta(offline, instagram_payload(instagram_item("ig-page", "hello?"),
                                               account=linked))
    await post_meta(offline, messenger_payload(messenger_item("fb-page", "hello?")))
    await post_instagram(offline, instagram_payload(instagram_item("ig-own", "hello?")))
    await platform.wait_for(lambda: platform.texts_to("ig-page") and platform.texts_to("fb-page")
                            and platform.instagram_texts_to("ig-own"))
    by_page = [s for s in platform.sent if s["platform"] == "meta"]
    assert {s["token"] for s in by_page} == {"page-token"}
    assert not platform.instagram_texts_to("ig-page")


async def test_urgent_story_reply_gets_the_notice_on_instagram(offline, platform, redis):
    await post_instagram(offline, instagram_payload(instagram_item(
        "ig-story", "he is outside my door right now with a knife",
        reply_to={"story": {"url": CDN, "id": "STORY-ID"}})))
    await platform.wait_for(lambda: platform.instagram_texts_to("ig-story"))
    assert platform.instagram_texts_to("ig-story")[0] == EMERGENCY_NOTICE["en"]
    conversation = ig_conv_id("ig-story")
    meta_ = await queued(redis, conversation)
    assert meta_["priority"] == "0" and meta_["outcome"] == "emergency"
    for _ in range(100):
        entries = await transcript(redis, conversation)
        if entries:
            break
        await asyncio.sleep(0.05)
    assert entries[0]["text"].startswith("he is outside my door")
    assert meta.STORY_REPLY in entries[0]["text"] and CDN in entries[0]["text"]


async def test_a_shared_post_with_an_urgent_caption_is_flagged(offline, platform, redis):
    """Someone sends the department a friend's post: the safety net reads its caption."""
    await post_instagram(offline, instagram_payload(instagram_item("ig-share", attachments=[
        {"type": "share", "payload": {"url": CDN,
                                      "title": "I am going to kill myself tonight, goodbye"}}])))
    await platform.wait_for(lambda: platform.instagram_texts_to("ig-share"))
    assert platform.instagram_texts_to("ig-share")[0] == EMERGENCY_NOTICE["en"]
    meta_ = await queued(redis, ig_conv_id("ig-share"))
    assert meta_["outcome"] == "crisis" and meta_["priority"] == "0"
    assert meta_["preview"].startswith("[shared a post")


async def test_story_mention_goes_to_a_person_readable(offline, platform, redis):
    await post_instagram(offline, instagram_payload(instagram_item("ig-mention", attachments=[
        {"type": "story_mention", "payload": {"url": CDN}}])))
    conversation = ig_conv_id("ig-mention")
    meta_ = await queued(redis, conversation)
    assert meta_["outcome"] == "human" and meta_["reason"] == "attachment only"
    assert meta.STORY_MENTION in meta_["preview"]
    assert (await transcript(redis, conversation))[0]["text"] == (
        f"[{meta.STORY_MENTION}: {CDN}]")


async def test_unsupported_message_reaches_staff_with_a_note(offline, platform, redis):
    await post_instagram(offline, instagram_payload(instagram_item("ig-unsup",
                                                                   is_unsupported=True)))
    conversation = ig_conv_id("ig-unsup")
    meta_ = await queued(redis, conversation)
    assert meta_["reason"] == "unsupported message: read it in the Instagram app"
    assert meta.UNSUPPORTED in (await transcript(redis, conversation))[0]["text"]
    # The citizen is told a person will follow up.
    await platform.wait_for(lambda: platform.instagram_texts_to("ig-unsup"))


async def test_a_deleted_message_is_marked_for_staff(offline, platform, redis):
    mid = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"
    await post_instagram(offline, instagram_payload(instagram_item(
        "ig-del", "please call me about my stolen bike", mid=mid)))
    conversation = ig_conv_id("ig-del")
    await queued(redis, conversation)
    await platform.wait_for(lambda: platform.instagram_texts_to("ig-del"))
    answered = len(platform.instagram_texts_to("ig-del"))
    response = await post_instagram(offline, instagram_payload(instagram_item(
        "ig-del", mid=mid, is_deleted=True)))
    assert (await response.json())["received"] == 1
    for _ in range(200):
        entries = await transcript(redis, conversation)
        if entries and entries[0].get("deleted_at"):
            break
        await asyncio.sleep(0.05)
    assert entries[0]["id"] == mid and entries[0]["deleted_at"]
    assert entries[0]["text"] == "please call me about my stolen bike"  # kept for the record
    log = await audit(redis, conversation)
    assert [e["detail"] for e in log if e["action"] == "message_deleted"] == [mid]
    await asyncio.sleep(0.5)
    assert len(platform.instagram_texts_to("ig-del")) == answered  # no reply to a deletion
    assert len(entries) == len(await transcript(redis, conversation))  # no new turn


async def test_seen_reactions_and_echoes_start_nothing(offline, platform, redis):
    sender = psid("ig-quiet")
    seen = {"sender": {"id": sender}, "recipient": {"id": IG_ACCOUNT}, "timestamp": 1,
            "read": {"mid": "m-1"}}
    reaction = {"sender": {"id": sender}, "recipient": {"id": IG_ACCOUNT}, "timestamp": 2,
                "reaction": {"mid": "m-1", "action": "react", "reaction": "like",
                             "emoji": "\U0001f44d"}}
    echo = {"sender": {"id": IG_ACCOUNT}, "recipient": {"id": sender}, "timestamp": 3,
            "message": {"mid": "m-2", "text": "our reply", "is_echo": True}}
    response = await post_instagram(offline, instagram_payload(seen, reaction, echo))
    assert await response.json() == {"received": 0, "ignored": 3}
    await asyncio.sleep(0.5)
    assert platform.sent == [] and platform.actions == []
    assert not await redis.exists(keys.conversation(ig_conv_id("ig-quiet")))
    assert await redis.llen(keys.SINGLE.work) == 0


async def test_instagram_ids_are_checked_before_any_url(offline, platform):
    payload = instagram_payload(instagram_item("ig-bad", "hello"), account="../../me")
    assert (await (await post_instagram(offline, payload)).json())["received"] == 0
    bad = instagram_item("ig-bad", "hello")
    bad["sender"]["id"] = "12/../34"
    assert (await (await post_instagram(offline, instagram_payload(bad))).json())[
        "received"] == 0
    await asyncio.sleep(0.3)
    assert platform.sent == []
    # A staff reply to a stored conversation builds its request through the same checks.
    from bot.appkeys import SERVICES

    sent = await offline.app[SERVICES].delivery.send(
        f"instagram:{IG_ACCOUNT}:evil", "instagram", "../me", "hi")
    assert not sent.ok and sent.error == "invalid recipient id"


def test_page_id_still_names_messenger_conversations():
    assert only(messenger_payload(messenger_item("m", "hi"))).account == PAGE_ID
