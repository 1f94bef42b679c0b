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
        {"id": "11002200", "time": 1700000000000, "messaging": [
            {"sender": {"id": "2001"}, "recipient": {"id": "11002200"}, "timestamp": 1700000000100,
             "message": {"mid": "m_1", "text": "hello"}},
            {"sender": {"id": "11002200"}, "recipient": {"id": "2001"}, "timestamp": 1700000000200,
             "message": {"mid": "m_2", "text": "echo", "is_echo": True, "app_id": 1}},
        ]},
        {"id": "11002200", "time": 1700000001000, "messaging": [
            {"sender": {"id": "2002"}, "recipient": {"id": "11002200"}, "timestamp": 1700000001000,
             "read": {"watermark": 1700000000000}},
            {"sender": {"id": "2002"}, "recipient": {"id": "11002200"}, "timestamp": 1700000001000,
             "delivery": {"mids": ["m_1"], "watermark": 1700000000000}},
            {"sender": {"id": "2002"}, "recipient": {"id": "11002200"}, "timestamp": 1700000001500,
             "message": {"mid": "m_3", "attachments": [
                 {"type": "image", "payload": {"url": "https://example.invalid/i.jpg"}}]}},
            {"sender": {"id": "2003"}, "recipient": {"id": "11002200"}, "timestamp": 1700000001600,
             "postback": {"title": "Talk to a person", "payload": "HUMAN", "mid": "m_4"}},
            {"sender": "not-an-object", "timestamp": 1},
            {"sender": {"id": "2004"}, "recipient": {"id": "11002200"}, "timestamp": 1700000001700,
             "message": {"mid": "m_5", "text": "second entry text"}},
        ]},
    ],
}

INSTAGRAM = {"object": "instagram", "entry": [{"id": "17841", "time": 1700000000000, "messaging": [
    {"sender": {"id": "3001"}, "recipient": {"id": "17841"}, "timestamp": 1700000000000,
     "message": {"mid": "ig_1", "text": "hola"}}]}]}

X_DMS = {
    "for_user_id": "4455",
    "direct_message_events": [
        {"type": "message_create", "id": "1001", "created_timestamp": "1700000000000",
         "message_create": {"target": {"recipient_id": "4455"}, "sender_id": "7788",
                            "message_data": {"text": "is anyone there?", "entities": {}}}},
        {"type": "message_create", "id": "1002", "created_timestamp": "1700000000500",
         "message_create": {"target": {"recipient_id": "7788"}, "sender_id": "4455",
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
        ("2001", "m_1", "hello"), ("2002", "m_3", ""), ("2003", "m_4", "Talk to a person"),
        ("2004", "m_5", "second entry text")]
    assert parsed.ignored == 4  # echo, read, delivery, malformed
    first = parsed.messages[0]
    assert first.channel == "messenger" and first.account == "11002200"
    assert first.timestamp == 1700000000.1
    assert first.conversation_id == "messenger:11002200:2001"
    assert parsed.messages[1].attachments == ("image",)


def test_instagram():
    (message,) = meta.parse(INSTAGRAM).messages
    assert message.channel == "instagram" and message.conversation_id == "instagram:17841:3001"


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
        "x", "4455", "7788", "1001")
    assert message.text == "is anyone there?" and message.timestamp == 1700000000.0
    assert parsed.ignored == 1  # the account's own message
    tweets = x.parse({"for_user_id": "4455", "tweet_create_events": [{"id": 1}]})
    assert tweets.messages == () and tweets.ignored == 0
    with pytest.raises(PayloadError):
        x.parse({"direct_message_events": []})
    bad = x.parse({"for_user_id": "1", "direct_message_events": [{"type": "message_create"},
                                                                  "junk"]})
    assert bad.messages == () and bad.ignored == 2


# -- ids are validated at the edge; the CRC endpoint is not a signing oracle (issue 8, item 1) --

def test_x_crc_refuses_tokens_x_never_sends():
    body = json.dumps(X_DMS).encode()
    for token in (body.decode(), "{", "a b", "a:b", "x" * 129, "", "tok\n"):
        with pytest.raises(PayloadError):
            x.crc_response("consumer", token)
    assert x.crc_response("consumer", "Zm9v+/bar_-=")["response_token"].startswith("sha256=")


def test_x_only_json_objects_carry_a_valid_signature():
    # Even signed with the right secret, a body that is not a JSON object is refused.
    for body in (b"abc123", b"[1]", b"\"s\""):
        header = "sha256=" + base64.b64encode(
            hmac.new(b"consumer", body, hashlib.sha256).digest()).decode()
        assert not x.signature_valid("consumer", body, header)
    assert not x.signature_valid("consumer", b"{}", "sha256=\u00e9\u00e9")  # non-ASCII: no crash


@pytest.mark.parametrize("sender", ["../../../2/tweets?", "12/../34", "FAN", "1e5", "", True,
                                    "1" * 21, "12 34", "１２３"])
def test_x_sender_ids_must_be_digits(sender):
    payload = json.loads(json.dumps(X_DMS))
    payload["direct_message_events"][0]["message_create"]["sender_id"] = sender
    parsed = x.parse(payload)
    assert parsed.messages == () and parsed.ignored == 2


def test_x_account_id_must_be_digits():
    with pytest.raises(PayloadError):
        x.parse({**X_DMS, "for_user_id": "../2/tweets"})


def test_x_send_url_quotes_and_checks_the_id():
    assert x.send_url("https://api.x.test", "7788") == (
        "https://api.x.test/2/dm_conversations/with/7788/messages")
    for bad in ("../../2/tweets?", "7788/", "7788?x=1", "%2e%2e"):
        with pytest.raises(ValueError):
            x.send_url("https://api.x.test", bad)


@pytest.mark.parametrize("sender", ["../me", "USER1", "", "1 2", None, 12.5])
def test_meta_sender_ids_must_be_digits(sender):
    payload = json.loads(json.dumps(INSTAGRAM))
    payload["entry"][0]["messaging"][0]["sender"]["id"] = sender
    parsed = meta.parse(payload)
    assert parsed.messages == () and parsed.ignored == 1


def test_meta_page_id_and_mid_are_checked():
    payload = json.loads(json.dumps(INSTAGRAM))
    payload["entry"][0]["id"] = "../../me"
    assert meta.parse(payload).messages == ()
    payload = json.loads(json.dumps(INSTAGRAM))
    payload["entry"][0]["messaging"][0]["message"]["mid"] = "m 1\n"
    assert meta.parse(payload).messages == ()


def test_meta_comparisons_take_any_text():
    assert meta.verify_challenge({"hub.mode": "subscribe", "hub.verify_token": "é",
                                  "hub.challenge": "c"}, "token") is None
    assert not meta.signature_valid("secret", b"{}", "sha256=é")


# -- each channel's module builds its own send request (issue 9, item 4) ------------------------

def test_meta_builds_its_send_requests_and_chunks_long_replies():
    from bot.channels import meta as meta_channel

    out = meta_channel.outgoing("https://graph.test", "tok", "12345", "x " * 1500)
    assert out.url == "https://graph.test" + meta_channel.SEND_PATH
    assert out.params == {"access_token": "tok"}
    assert len(out.bodies) == 2
    assert all(b["recipient"] == {"id": "12345"} and b["messaging_type"] == "RESPONSE"
               and len(b["message"]["text"]) <= meta_channel.MAX_TEXT for b in out.bodies)
    tagged = meta_channel.outgoing("https://graph.test", "tok", "12345", "hi",
                                   human_agent=True)
    assert tagged.bodies[0]["messaging_type"] == "MESSAGE_TAG"
    assert tagged.bodies[0]["tag"] == "HUMAN_AGENT"
    with pytest.raises(ValueError):
        meta_channel.outgoing("https://graph.test", "tok", "../me/feed", "hi")


def test_meta_reply_windows():
    from bot.channels import meta as meta_channel

    assert meta_channel.reply_window(3600) == (True, False)
    assert meta_channel.reply_window(2 * 86400) == (True, True)
    assert meta_channel.reply_window(8 * 86400) == (False, True)


def test_x_builds_its_send_request():
    out = x.outgoing("https://api.x.test", "xtok", "7788", "hello")
    assert out.url == "https://api.x.test/2/dm_conversations/with/7788/messages"
    assert out.bodies == ({"text": "hello"},)
    assert out.headers == {"Authorization": "Bearer xtok"}
