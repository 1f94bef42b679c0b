"""Property-based tests (hypothesis): adapters and signature checks never crash, and the
webhook answers hostile input with a clear 4xx, never a 500, while a valid message in the
same batch is still taken."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.channels import PayloadError, meta, x
from tests.gateway_support import (
    DEAD_RASA,
    messenger_item,
    messenger_payload,
    meta_signature,
    settings_for,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
# Shapes close to real payloads, with any value anywhere.
META_LIKE = st.fixed_dictionaries({
    "object": st.sampled_from(["page", "instagram", "user", 3]),
    "entry": st.lists(st.fixed_dictionaries({
        "id": JSON,
        "messaging": st.lists(st.fixed_dictionaries({
            "sender": st.one_of(JSON, st.fixed_dictionaries({"id": JSON})),
            "timestamp": JSON,
            "message": st.one_of(JSON, st.fixed_dictionaries(
                {"mid": JSON, "text": JSON, "is_echo": JSON, "attachments": JSON})),
        }), max_size=4) | JSON,
    }), max_size=3),
})
X_LIKE = st.fixed_dictionaries({
    "for_user_id": JSON,
    "direct_message_events": st.lists(st.fixed_dictionaries({
        "type": st.sampled_from(["message_create", "other"]) | JSON,
        "id": JSON,
        "created_timestamp": JSON,
        "message_create": JSON | st.fixed_dictionaries({
            "sender_id": JSON, "message_data": JSON | st.fixed_dictionaries({"text": JSON})}),
    }), max_size=4) | JSON,
})
HOSTILE_TEXT = st.one_of(
    st.text(max_size=300),
    st.just("\u200b" * 50 + "help"),
    st.just("\u202e" + "ecilop eht llac"),
    st.just("🚨" * 10_000),
    st.just("a\x00b"),
)


@given(st.one_of(JSON, META_LIKE))
@settings(max_examples=300, deadline=None)
def test_meta_parse_never_crashes(payload):
    try:
        parsed = meta.parse(payload)
    except PayloadError:
        return
    for message in parsed.messages:
        assert isinstance(message.text, str) and message.message_id and message.sender


@given(st.one_of(JSON, X_LIKE))
@settings(max_examples=300, deadline=None)
def test_x_parse_never_crashes(payload):
    try:
        parsed = x.parse(payload)
    except PayloadError:
        return
    for message in parsed.messages:
        assert isinstance(message.text, str) and message.sender != message.account


@given(st.binary(max_size=2000), st.one_of(st.none(), st.text(max_size=80)), st.text())
@settings(max_examples=300, deadline=None)
def test_signature_checks_never_crash_and_reject_forgeries(body, header, secret):
    assert meta.signature_valid(secret, body, header) in (True, False)
    assert x.signature_valid(secret, body, header) in (True, False)
    if secret and header != meta_signature(body, secret):
        assert not meta.signature_valid(secret, body, header)


@pytest.fixture
async def gateway(aiohttp_client, redis, redis_server, platform):
    return await aiohttp_client(create_app(settings_for(redis_server, DEAD_RASA, platform.url)))


@given(raw=st.binary(max_size=3000))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_signed_garbage_gets_a_4xx(gateway, raw):
    response = await gateway.post("/webhooks/meta", data=raw,
                                  headers={"X-Hub-Signature-256": meta_signature(raw)})
    assert 200 <= response.status < 500
    if response.status >= 400:
        assert (await response.json())["error"]


@given(text=HOSTILE_TEXT)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_hostile_text_is_accepted_beside_a_valid_message(gateway, text):
    payload = messenger_payload(messenger_item("prop-a", text),
                                messenger_item("prop-b", "what are your hours"))
    body = json.dumps(payload).encode()
    response = await gateway.post("/webhooks/meta", data=body,
                                  headers={"X-Hub-Signature-256": meta_signature(body)})
    assert response.status == 200
    assert (await response.json())["received"] == 2


async def test_invalid_utf8_and_huge_bodies(gateway):
    raw = b'{"object": "page", "entry": [\xff\xfe]}'
    response = await gateway.post("/webhooks/meta", data=raw,
                                  headers={"X-Hub-Signature-256": meta_signature(raw)})
    assert response.status == 400
    huge = b"{" + b" " * (1024 * 1024) + b"}"
    response = await gateway.post("/webhooks/meta", data=io.BytesIO(huge),
                                  headers={"X-Hub-Signature-256": meta_signature(huge)})
    assert response.status == 413


# -- the safety net's work is bounded, whatever the text (issue 8, item 4) ---------------------

# Characters that made the rules' tokenizer and matcher slow: emoji, a ligature that NFKC
# turns into 18 characters, combining marks, punctuation, digits, short words, spaces.
PATHOLOGICAL = st.lists(
    st.sampled_from(list("😀😂🚨\ufdfa\u0301\u0302!?.,;-[]{}1 \n\t\u200bab") +
                    ["is ", "my ", "no ", "ha "]),
    max_size=2000).map("".join)


@given(text=PATHOLOGICAL)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_the_rules_read_a_bounded_window_of_any_text(text):
    from bot.safety_net import MAX_CHECK_CHARS, RULE_WINDOW_CHARS, SafetyResult
    from bot.text import bounded, normalize, rule_window

    window = rule_window(normalize(bounded(text, MAX_CHECK_CHARS)), RULE_WINDOW_CHARS)
    assert len(window) <= 2 * RULE_WINDOW_CHARS + 3
    assert "  " not in window
    assert isinstance(_RULES.check(text), SafetyResult)


_RULES = None


def setup_module(module):
    from bot.safety_net import SafetyNet

    module._RULES = SafetyNet()
