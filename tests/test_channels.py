"""Platform adapters on the platforms' documented payload shapes (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from bot.channels import PayloadError, meta, x

SECRET = "app-secret"

# A Messenger webhook as Meta documents it: one entry per page, a `messaging` list per entry.
BATCH = {
    "object": "page",
    "entry": [
        {"id": "PAGE1", "time": 1700000000000, "messaging": [
            {"sender": {"id": "USER1"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000000100,
             "message": {"mid": "m_1", "text": "hello"}},
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "USER1"}, "timestamp": 1700000000200,
             "message": {"mid": "m_2", "text": "echo", "is_echo": True, "app_id": 1}},
        ]},
        {"id": "PAGE1", "time": 1700000001000, "messaging": [
            {"sender": {"id": "USER2"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001000,
             "read": {"watermark": 1700000000000}},
            {"sender": {"id": "USER2"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001000,
             "delivery": {"mids": ["m_1"], "watermark": 1700000000000}},
            {"sender": {"id": "USER2"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001500,
             "message": {"mid": "m_3", "attachments": [
                 {"type": "image", "payload": {"url": "https://example.invalid/i.jpg"}}]}},
            {"sender": {"id": "USER3"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001600,
             "postback": {"title": "Talk to a person", "payload": "HUMAN", "mid": "m_4"}},
            {"sender": "not-an-object", "timestamp": 1},
            {"sender": {"id": "USER4"}, "recipient": {"id": "PAGE1"}, "timestamp": 1700000001700,
             "message": {"mid": "m_5", "text": "second entry text"}},
        ]},
    ],
}

INSTAGRAM = {"object": "instagram", "entry": [{"id": "IG1", "time": 1700000000000, "messaging": [
    {"sender": {"id": "IGUSER"}, "recipient": {"id": "IG1"}, "timestamp": 1700000000000,
     "message": {"mid": "ig_1", "text": "hola"}}]}]}

X_DMS = {
    "for_user_id": "ACCOUNT",
    "direct_message_events": [
        {"type": "message_create", "id": "1001", "created_timestamp": "1700000000000",
         "message_create": {"target": {"recipient_id": "ACCOUNT"}, "sender_id": "FAN",
                            "message_data": {"text": "is anyone there?", "entities": {}}}},
        {"type": "message_create", "id": "1002", "created_timestamp": "1700000000500",
         "message_create": {"target": {"recipient_id": "FAN"}, "sender_id": "ACCOUNT",
                            "message_data": {"text": "our own reply", "entities": {}}}},
    ],
    "users": {},
}


def test_meta_signature():
    body = json.dumps(BATCH).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert meta.signature_valid(SECRET, body, good)
    assert not meta.signature_valid(SECRET, body + b" ", good)
    assert not meta.signature_valid("other", body, good)
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    for header in (None, "", "sha256=", "sha256=zz", sha1, good.upper()[7:]):
        assert not meta.signature_valid(SECRET, body, header)
    assert not meta.signature_valid("", body, good)


def test_meta_verify_challenge():
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "42"}
    assert meta.verify_challenge(params, "tok") == "42"
    assert meta.verify_challenge({**params, "hub.verify_token": "nope"}, "tok") is None
    assert meta.verify_challenge({**params, "hub.mode": "unsubscribe"}, "tok") is None
    assert meta.verify_challenge(params, "") is None


def test_meta_batch_every_entry_and_item():
    parsed = meta.parse(BATCH)
    assert [(m.sender, m.message_id, m.text) for m in parsed.messages] == [
        ("USER1", "m_1", "hello"), ("USER2", "m_3", ""), ("USER3", "m_4", "Talk to a person"),
        ("USER4", "m_5", "second entry text")]
    assert parsed.ignored == 4  # echo, read, delivery, malformed
    first = parsed.messages[0]
    assert first.channel == "messenger" and first.account == "PAGE1"
    assert first.timestamp == 1700000000.1
    assert first.conversation_id == "messenger:PAGE1:USER1"
    assert parsed.messages[1].attachments == ("image",)


def test_instagram():
    (message,) = meta.parse(INSTAGRAM).messages
    assert message.channel == "instagram" and message.conversation_id == "instagram:IG1:IGUSER"


@pytest.mark.parametrize("payload", [[], "x", None, {}, {"object": "user", "entry": []},
                                     {"object": "page"}, {"object": "page", "entry": {}}])
def test_meta_garbage_is_a_payload_error(payload):
    with pytest.raises(PayloadError):
        meta.parse(payload)


def test_x_crc_and_signature():
    expected = base64.b64encode(hmac.new(b"consumer", b"token", hashlib.sha256).digest())
    assert x.crc_response("consumer", "token") == {
        "response_token": "sha256=" + expected.decode()}
    body = json.dumps(X_DMS).encode()
    header = "sha256=" + base64.b64encode(
        hmac.new(b"consumer", body, hashlib.sha256).digest()).decode()
    assert x.signature_valid("consumer", body, header)
    assert not x.signature_valid("consumer", body[:-1], header)
    assert not x.signature_valid("consumer", body, None)
    assert not x.signature_valid("", body, header)


def test_x_direct_messages():
    parsed = x.parse(X_DMS)
    (message,) = parsed.messages
    assert (message.channel, message.account, message.sender, message.message_id) == (
        "x", "ACCOUNT", "FAN", "1001")
    assert message.text == "is anyone there?" and message.timestamp == 1700000000.0
    assert parsed.ignored == 1  # the account's own message
    tweets = x.parse({"for_user_id": "ACCOUNT", "tweet_create_events": [{"id": 1}]})
    assert tweets.messages == () and tweets.ignored == 0
    with pytest.raises(PayloadError):
        x.parse({"direct_message_events": []})
    bad = x.parse({"for_user_id": "A", "direct_message_events": [{"type": "message_create"},
                                                                  "junk"]})
    assert bad.messages == () and bad.ignored == 2
