"""X direct messages through the X Activity API (XAA) and the Account Activity API (AAA),
replies through the v2 and v1.1 DM endpoints, on X's documented payloads.

Documents followed (their examples are the payloads below):
- https://docs.x.com/x-api/activity/event-payloads (`dm.received`, `dm.sent`,
  `chat.received`, `chat.sent`, `oauth.revoke`; the `users` maps trimmed to a few fields,
  which Beacon does not read);
- https://docs.x.com/x-api/webhooks/quickstart (the CRC answer and the signature header);
- https://docs.x.com/x-api/direct-messages/manage/integrate (v2 send: request and response);
- https://developer.x.com/en/docs/direct-messages/sending-and-receiving/api-reference/new-event
  (v1.1 send);
- https://docs.x.com/fundamentals/authentication/oauth-1-0a/creating-a-signature (OAuth 1.0a).

The pure tests run in milliseconds; the gateway tests run the real gateway on the tests' own
redis-server with Rasa down (every DM then goes to a person, and the citizen is told when
someone will answer: a reply that goes out through X's send API like any other).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
from typing import Dict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import keys
from bot.app import create_app
from bot.channels import PayloadError, x
from bot.delivery import BACKOFF
from bot.replies import EMERGENCY_NOTICE
from bot.settings import Settings, SettingsError
from tests.gateway_support import (
    DEAD_RASA,
    X_ACCOUNT,
    X_SECRET,
    settings_for,
    x_payload,
    x_signature,
)

ACCOUNT = "1111111111111111111"  # the filtered (subscribed) user in X's examples
CITIZEN = "2222222222222222222"

# -- X's documented payloads -------------------------------------------------------------------

DM_RECEIVED = {
    "data": {
        "event_uuid": "-6850472171600526495",
        "filter": {"user_id": ACCOUNT},
        "event_type": "dm.received",
        "tag": "dm-inbound",
        "payload": {
            "direct_message_events": [{
                "type": "message_create",
                "id": "2080765901528535096",
                "created_timestamp": "1784928224372",
                "message_create": {
                    "target": {"recipient_id": ACCOUNT},
                    "sender_id": CITIZEN,
                    "message_data": {
                        "text": "hello!",
                        "entities": {"hashtags": [], "symbols": [], "user_mentions": [],
                                     "urls": []},
                    },
                },
            }],
            "users": {
                CITIZEN: {"data": {"id": CITIZEN, "username": "OtherUser",
                                   "name": "OtherUser", "protected": False}},
                ACCOUNT: {"data": {"id": ACCOUNT, "username": "ExampleUser",
                                   "name": "Example User", "protected": False}},
            },
        },
    },
}

DM_SENT = {
    "data": {
        "event_uuid": "-3577827201104920132",
        "filter": {"user_id": ACCOUNT},
        "event_type": "dm.sent",
        "tag": "dm-outbound",
        "payload": {
            "direct_message_events": [{
                "type": "message_create",
                "id": "2080763914820927863",
                "created_timestamp": "1784927750704",
                "message_create": {
                    "target": {"recipient_id": "2244994945"},
                    "sender_id": ACCOUNT,
                    "message_data": {
                        "text": "Thanks for the update!",
                        "entities": {"hashtags": [], "symbols": [], "user_mentions": [],
                                     "urls": []},
                    },
                },
            }],
            "users": {ACCOUNT: {"data": {"id": ACCOUNT, "username": "ExampleUser"}},
                      "2244994945": {"data": {"id": "2244994945",
                                              "username": "XDevelopers"}}},
        },
    },
}

# The encoded crypto fields are truncated in X's own example too.
CHAT_RECEIVED = {
    "data": {
        "event_uuid": "8511582263942905822",
        "filter": {"user_id": ACCOUNT},
        "event_type": "chat.received",
        "tag": "chat-inbound",
        "payload": {
            "conversation_token": "eyJhbGciOiJIUzI1NiJ9.eyJyZXF1ZXN0aW5nVXN…(truncated)",
            "id": "e4f4d3fc-8bbf-4928-92eb-e5058d6bb6f6",
            "created_at_msec": "1784841183370",
            "sender_id": CITIZEN,
            "conversation_id": f"{CITIZEN}:{ACCOUNT}",
            "conversation_key_version": "1768236281331",
            "encoded_event": "CwABAAAAEzIwODA0MDA4MjUyMjcxMDAxNjALAAIA…(truncated)",
            "conversation_key_change_event": "CwABAAAAEzIwMTA3NTQ4MTkxMTY0NDk5MDULAAIA…",
            "message_event_signature": {
                "public_key_version": "1765382634817",
                "signature": "6IK9SZIMXBe5SFcB7vGZJd5A5Eb5MLvnwrhUFfBGv4S5GsSX3WWPGuInXVNfSla3",
                "signature_version": "7",
                "signing_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ2c+3BYZs7ZCEY",
            },
        },
    },
}

CHAT_SENT = copy.deepcopy(CHAT_RECEIVED)
CHAT_SENT["data"].update(event_uuid="3723060601307155846", event_type="chat.sent",
                         tag="chat-outbound")
CHAT_SENT["data"]["payload"].update(id="8e75466b-56ec-4e88-bddf-b18f7cc6030e",
                                    sender_id=ACCOUNT, created_at_msec="1784841233939")

OAUTH_REVOKE = {"data": {"event_uuid": "5934540941047412905", "filter": {},
                         "event_type": "oauth.revoke",
                         "payload": {"date_time": "2026-07-23T21:44:05+00:00",
                                     "user_id": ACCOUNT, "app_id": "29820954"}}}


def dm_received(sender: str, text: str, event_id: str, account: str = X_ACCOUNT) -> Dict:
    """A `dm.received` delivery shaped as X documents it, for the gateway tests."""
    payload = copy.deepcopy(DM_RECEIVED)
    data = payload["data"]
    data["filter"]["user_id"] = account
    data["event_uuid"] = f"-{event_id}"
    event = data["payload"]["direct_message_events"][0]
    event.update(id=event_id)
    event["message_create"].update(sender_id=sender, target={"recipient_id": account})
    event["message_create"]["message_data"]["text"] = text
    return payload


# -- parsing (pure) -------------------------------------------------------------------------------

def test_dm_received_is_a_citizen_message():
    parsed = x.parse(DM_RECEIVED)
    (message,) = parsed.messages
    assert (message.channel, message.account, message.sender, message.message_id) == (
        "x", ACCOUNT, CITIZEN, "2080765901528535096")
    assert message.text == "hello!" and message.timestamp == 1784928224.372
    assert message.conversation_id == f"x:{ACCOUNT}:{CITIZEN}"
    assert parsed.ignored == 0


def test_the_accounts_own_messages_are_echoes():
    # dm.sent and chat.sent: the department's own messages (Beacon's replies among them).
    for payload in (DM_SENT, CHAT_SENT):
        assert x.parse(payload).messages == () and x.parse(payload).ignored == 1
    # A dm.received whose sender is the filtered account itself is no citizen's either.
    own = dm_received(ACCOUNT, "note to self", "2080765901528535097", account=ACCOUNT)
    parsed = x.parse(own)
    assert parsed.messages == () and parsed.ignored == 1


def test_other_activity_events_are_ignored_not_refused():
    # oauth.revoke may come with an empty filter; it is a valid delivery, not a 400.
    for event_type in ("oauth.revoke", "dm.read", "dm.indicate_typing", "profile.update.bio",
                       "chat.conversation_join"):
        payload = copy.deepcopy(OAUTH_REVOKE)
        payload["data"]["event_type"] = event_type
        assert x.parse(payload) == x.parse(OAUTH_REVOKE)
        assert x.parse(payload).messages == () and x.parse(payload).ignored == 1


def test_an_encrypted_chat_goes_to_a_person_unread():
    parsed = x.parse(CHAT_RECEIVED)
    (message,) = parsed.messages
    assert (message.account, message.sender, message.text) == (ACCOUNT, CITIZEN, "")
    assert message.message_id == "chat-e4f4d3fc-8bbf-4928-92eb-e5058d6bb6f6"
    assert message.attachments == (x.ENCRYPTED_CHAT,)
    assert message.timestamp == 1784841183.37


@pytest.mark.parametrize("chat_id", ["../../2/tweets", "2080765901528535096", "", 5,
                                     "e4f4d3fc-8bbf-4928-92eb-e5058d6bb6f6/../x"])
def test_chat_ids_must_be_uuids(chat_id):
    payload = copy.deepcopy(CHAT_RECEIVED)
    payload["data"]["payload"]["id"] = chat_id
    assert x.parse(payload).messages == ()


@pytest.mark.parametrize("sender", ["../../../2/tweets?", "12/../34", "FAN", "", True,
                                    "1" * 21, "１２３"])
def test_activity_sender_ids_must_be_digits(sender):
    for payload in (copy.deepcopy(DM_RECEIVED), copy.deepcopy(CHAT_RECEIVED)):
        body = payload["data"]["payload"]
        if "direct_message_events" in body:
            body["direct_message_events"][0]["message_create"]["sender_id"] = sender
        else:
            body["sender_id"] = sender
        parsed = x.parse(payload)
        assert parsed.messages == () and parsed.ignored == 1


@pytest.mark.parametrize("payload", [
    {"data": "dm.received"},
    {"data": {"event_type": 7, "payload": {}}},
    {"data": {"event_type": "dm.received", "filter": {"user_id": "../2/tweets"},
              "payload": DM_RECEIVED["data"]["payload"]}},
    {"data": {"event_type": "dm.received", "filter": {}, "payload": {}}},
    {"data": {"event_type": "dm.received", "filter": {"user_id": ACCOUNT}, "payload": []}},
    {"data": {"event_type": "dm.received", "filter": {"user_id": ACCOUNT}, "payload": {}}},
    {"data": {"event_type": "dm.received", "filter": {"user_id": ACCOUNT},
              "payload": {"direct_message_events": {}}}},
    {**DM_RECEIVED, "for_user_id": ACCOUNT, "direct_message_events": []},  # both shapes
    {"event_type": "dm.received"},
])
def test_malformed_activity_deliveries_are_payload_errors(payload):
    with pytest.raises(PayloadError):
        x.parse(payload)


def test_one_dm_through_both_products_is_one_message():
    """While an account migrates, a DM may come through AAA and XAA alike: the same
    conversation and message id, so the intake's dedupe answers it once."""
    aaa = {"for_user_id": ACCOUNT,
           "direct_message_events": DM_RECEIVED["data"]["payload"]["direct_message_events"]}
    (old,) = x.parse(aaa).messages
    (new,) = x.parse(DM_RECEIVED).messages
    assert (old.conversation_id, old.message_id) == (new.conversation_id, new.message_id)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
XAA_LIKE = st.fixed_dictionaries({"data": st.fixed_dictionaries({
    "event_type": st.sampled_from(["dm.received", "chat.received", "dm.sent"]) | _JSON,
    "filter": _JSON | st.fixed_dictionaries({"user_id": _JSON | st.just(ACCOUNT)}),
    "payload": _JSON | st.fixed_dictionaries({
        "direct_message_events": _JSON | st.lists(st.fixed_dictionaries({
            "type": st.just("message_create") | _JSON, "id": _JSON,
            "created_timestamp": _JSON,
            "message_create": _JSON | st.fixed_dictionaries({
                "sender_id": _JSON, "message_data": _JSON}),
        }), max_size=3),
        "id": _JSON | st.uuids().map(str), "sender_id": _JSON, "created_at_msec": _JSON,
    }),
})})


@given(XAA_LIKE)
@settings(max_examples=300, deadline=None)
def test_activity_parse_never_crashes(payload):
    try:
        parsed = x.parse(payload)
    except PayloadError:
        return
    for message in parsed.messages:
        assert isinstance(message.text, str) and message.sender != message.account
        assert x.valid_id(message.sender) and x.valid_id(message.account)


# -- sending (pure) -------------------------------------------------------------------------------

# The keys, nonce and timestamp of X's "Creating a signature" page, and the signature it gives.
DOC_KEYS = x.OAuth1Keys("xvz1evFS4wEEPTGEFPHBog", "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                        "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
                        "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE")


def test_oauth1_signature_matches_xs_worked_example():
    header = x.oauth1_authorization(
        "POST", "https://api.x.com/1.1/statuses/update.json", DOC_KEYS,
        params={"status": "Hello Ladies + Gentlemen, a signed OAuth request!",
                "include_entities": "true"},
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", timestamp="1318622958")
    assert header == (
        'OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", '
        'oauth_nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", '
        'oauth_signature="Ls93hJiZbQ3akF3HF3x1Bz8%2FzU4%3D", '
        'oauth_signature_method="HMAC-SHA1", oauth_timestamp="1318622958", '
        'oauth_token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", '
        'oauth_version="1.0"')
    assert "kAcSO" not in repr(DOC_KEYS)  # no secret in a log line or traceback


def test_v2_send_request_with_a_user_token_or_oauth1():
    bearer = x.outgoing("https://api.x.test", "user-token", "7788", "hello")
    assert bearer.url == "https://api.x.test/2/dm_conversations/with/7788/messages"
    assert bearer.bodies == ({"text": "hello"},) and bearer.sign is None
    assert bearer.headers == {"Authorization": "Bearer user-token"}
    signed = x.outgoing("https://api.x.test", DOC_KEYS.token, "7788", "hello", oauth1=DOC_KEYS)
    assert signed.url == bearer.url and signed.bodies == bearer.bodies
    assert "Authorization" not in signed.headers
    first, second = signed.sign()["Authorization"], signed.sign()["Authorization"]
    assert first.startswith('OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog"')
    assert first != second  # a fresh nonce for every attempt


def test_v1_send_request_is_the_documented_event_and_takes_oauth1_only():
    out = x.outgoing("https://api.x.test", DOC_KEYS.token, "7788", "hello", api=x.API_V1,
                     oauth1=DOC_KEYS)
    assert out.url == "https://api.x.test/1.1/direct_messages/events/new.json"
    assert out.bodies == ({"event": {"type": "message_create", "message_create": {
        "target": {"recipient_id": "7788"}, "message_data": {"text": "hello"}}}},)
    assert out.sign()["Authorization"].startswith("OAuth ")
    with pytest.raises(ValueError):
        x.outgoing("https://api.x.test", "user-token", "7788", "hello", api=x.API_V1)
    for bad in ("../../2/tweets?", "7788/", "7788?x=1", "%2e%2e"):
        with pytest.raises(ValueError):
            x.outgoing("https://api.x.test", "t", bad, "hello", api=x.API_V1, oauth1=DOC_KEYS)


def test_x_dm_api_setting():
    assert Settings.from_env({}).x_dm_api == "v2"
    oauth1 = {"X_CONSUMER_KEY": "ck", "X_CONSUMER_SECRET": "cs", "X_ACCESS_TOKEN": "at",
              "X_ACCESS_TOKEN_SECRET": "ats"}
    chosen = Settings.from_env({**oauth1, "X_DM_API": "v1.1"})
    assert (chosen.x_dm_api, chosen.x_consumer_key, chosen.x_access_token_secret) == (
        "v1.1", "ck", "ats")
    for env in ({"X_DM_API": "v3"},
                {"X_DM_API": "v1.1", "X_ACCESS_TOKEN": "an-oauth2-token"},
                {**oauth1, "X_CONSUMER_KEY": ""}):
        with pytest.raises(SettingsError, match="X_DM_API|X_CONSUMER_KEY"):
            Settings.from_env(env)


# -- the gateway ---------------------------------------------------------------------------------

def _x_sent(platform) -> list:
    return [s for s in platform.sent if s["platform"] == "x"]


async def _post(client, payload: Dict, signature: str | None = "good"):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "good":
        headers["x-twitter-webhooks-signature"] = x_signature(body)
    elif signature is not None:
        headers["x-twitter-webhooks-signature"] = signature
    return await client.post("/webhooks/x", data=body, headers=headers)


async def test_crc_is_answered_as_documented_and_only_for_xs_tokens(offline):
    token = base64.b64encode(b"a random challenge from X").decode()
    response = await offline.get("/webhooks/x", params={"crc_token": token})
    digest = hmac.new(X_SECRET.encode(), token.encode(), hashlib.sha256).digest()
    assert await response.json() == {
        "response_token": "sha256=" + base64.b64encode(digest).decode()}
    # A JSON body as a "token" would make the CRC endpoint sign a forged delivery.
    forged = json.dumps(dm_received("777", "gun at the school", "9001"))
    assert (await offline.get("/webhooks/x", params={"crc_token": forged})).status == 400


async def test_signed_dm_received_is_answered_through_v2(offline, platform, redis):
    response = await _post(offline, dm_received("777", "is this account monitored 24/7?",
                                                "2080765901528535100"))
    assert response.status == 200
    assert await response.json() == {"received": 1, "ignored": 0}
    await platform.wait_for(lambda: _x_sent(platform))
    sent = _x_sent(platform)[0]
    assert (sent["api"], sent["participant"], sent["auth"]) == ("v2", "777", "Bearer x-token")
    assert set(sent["body"]) == {"text"} and sent["body"]["text"]
    meta = await redis.hgetall(keys.conversation(f"x:{X_ACCOUNT}:777"))
    assert meta["channel"] == "x" and meta["outcome"] == "human"


async def test_forged_or_unsigned_activity_deliveries_are_refused(offline, platform, redis):
    payload = dm_received("777", "fake emergency, gun at the school", "2080765901528535101")
    body = json.dumps(payload).encode()
    other_secret = "sha256=" + base64.b64encode(
        hmac.new(b"not-our-secret", body, hashlib.sha256).digest()).decode()
    tampered = json.dumps({**payload, "x": 1}).encode()
    for signature in (None, "sha256=AAAA", other_secret, "sha1=" + x_signature(body)[7:]):
        assert (await _post(offline, payload, signature)).status == 403
    response = await offline.post("/webhooks/x", data=tampered,
                                  headers={"x-twitter-webhooks-signature": x_signature(body)})
    assert response.status == 403
    await asyncio.sleep(0.5)
    assert await redis.llen(keys.SINGLE.work) == 0 and _x_sent(platform) == []


async def test_echoes_are_ignored(offline, platform):
    sent = copy.deepcopy(DM_SENT)
    sent["data"]["filter"]["user_id"] = X_ACCOUNT
    sent["data"]["payload"]["direct_message_events"][0]["message_create"]["sender_id"] = X_ACCOUNT
    for payload in (sent, dm_received(X_ACCOUNT, "our own message", "2080765901528535102")):
        response = await _post(offline, payload)
        assert response.status == 200
        assert await response.json() == {"received": 0, "ignored": 1}
    await asyncio.sleep(0.5)
    assert _x_sent(platform) == []


async def test_a_retried_or_migrating_dm_is_answered_once(offline, platform):
    payload = dm_received("778", "how do i get a copy of a police report", "2080765901528535103")
    for _ in range(2):  # X retries a delivery
        assert (await _post(offline, payload)).status == 200
    # ...and the same DM through the Account Activity API during a migration.
    aaa = x_payload("778", "how do i get a copy of a police report",
                    event_id="2080765901528535103")
    assert (await _post(offline, aaa)).status == 200
    await platform.wait_for(lambda: _x_sent(platform))
    await asyncio.sleep(1.0)
    replies = [s for s in _x_sent(platform) if s["participant"] == "778"]
    assert len(replies) == 1


async def test_an_urgent_dm_gets_the_notice_at_once_through_v2(offline, platform):
    await _post(offline, dm_received("779", "someone is trying to break in my back door",
                                     "2080765901528535104"))
    await platform.wait_for(lambda: any(
        s["body"]["text"].startswith(EMERGENCY_NOTICE["en"]) for s in _x_sent(platform)))
    assert {s["participant"] for s in _x_sent(platform)} == {"779"}


async def test_an_encrypted_chat_is_queued_for_a_person(offline, platform, redis):
    payload = copy.deepcopy(CHAT_RECEIVED)
    payload["data"]["filter"]["user_id"] = X_ACCOUNT
    payload["data"]["payload"]["sender_id"] = "780"
    response = await _post(offline, payload)
    assert await response.json() == {"received": 1, "ignored": 0}
    await platform.wait_for(lambda: _x_sent(platform))
    assert _x_sent(platform)[0]["participant"] == "780"
    conversation = f"x:{X_ACCOUNT}:780"
    meta = await redis.hgetall(keys.conversation(conversation))
    assert meta["outcome"] == "human"
    transcript = [json.loads(e) for e in await redis.lrange(keys.transcript(conversation), 0, -1)]
    assert transcript[0]["text"] == f"[{x.ENCRYPTED_CHAT}]"


async def test_429_is_retried_with_a_fresh_oauth1_signature(aiohttp_client, redis, redis_server,
                                                            platform):
    client = await aiohttp_client(create_app(settings_for(
        redis_server, DEAD_RASA, platform.url, x_consumer_key="consumer-key",
        x_access_token_secret="token-secret")))
    platform.x_fail = [429]
    await _post(client, dm_received("781", "what are your lobby hours", "2080765901528535105"))
    await platform.wait_for(lambda: _x_sent(platform))
    (refused,), sent = platform.x_refusals, _x_sent(platform)[0]
    assert refused["status"] == 429 and sent["api"] == "v2" and sent["participant"] == "781"
    assert refused["body"] == sent["body"]  # the same reply, sent on the retry
    for auth in (refused["auth"], sent["auth"]):
        assert auth.startswith('OAuth oauth_consumer_key="consumer-key"')
        assert 'oauth_token="x-token"' in auth
    assert refused["auth"] != sent["auth"]  # a new nonce: X refuses one it has seen


async def test_a_refused_send_is_not_retried_and_is_recorded(offline, platform, redis):
    platform.x_fail = [403] * 10
    await _post(offline, dm_received("782", "hello", "2080765901528535106"))
    conversation = keys.conversation(f"x:{X_ACCOUNT}:782")
    for _ in range(100):
        if await redis.hget(conversation, "delivery_error"):
            break
        await asyncio.sleep(0.1)
    assert (await redis.hget(conversation, "delivery_error")).split(" ", 1)[1].startswith(
        "HTTP 403")
    await asyncio.sleep(BACKOFF[0] + 0.5)  # time enough for a retry, if there were one
    texts = [r["body"]["text"] for r in platform.x_refusals]
    assert texts and len(texts) == len(set(texts)) and _x_sent(platform) == []


async def test_account_activity_dms_still_answered_through_v2(offline, platform):
    body = json.dumps(x_payload("783", "is this account monitored 24/7?")).encode()
    response = await offline.post("/webhooks/x", data=body,
                                  headers={"x-twitter-webhooks-signature": x_signature(body)})
    assert await response.json() == {"received": 1, "ignored": 0}
    await platform.wait_for(lambda: _x_sent(platform))
    sent = _x_sent(platform)[0]
    assert (sent["api"], sent["participant"], sent["auth"]) == ("v2", "783", "Bearer x-token")


async def test_account_activity_dms_answered_through_v1(aiohttp_client, redis, redis_server,
                                                        platform):
    """X_DM_API=v1.1, for an Account Activity app without v2 access: the documented
    direct_messages/events/new body, signed with OAuth 1.0a."""
    client = await aiohttp_client(create_app(settings_for(
        redis_server, DEAD_RASA, platform.url, x_dm_api="v1.1", x_consumer_key="consumer-key",
        x_access_token_secret="token-secret")))
    body = json.dumps(x_payload("784", "is this account monitored 24/7?")).encode()
    response = await client.post("/webhooks/x", data=body,
                                 headers={"x-twitter-webhooks-signature": x_signature(body)})
    assert await response.json() == {"received": 1, "ignored": 0}
    await platform.wait_for(lambda: _x_sent(platform))
    sent = _x_sent(platform)[0]
    assert (sent["api"], sent["participant"]) == ("v1.1", "784")
    event = sent["body"]["event"]
    assert event["type"] == "message_create"
    assert event["message_create"]["target"] == {"recipient_id": "784"}
    assert event["message_create"]["message_data"]["text"]
    assert sent["auth"].startswith('OAuth oauth_consumer_key="consumer-key"')
