"""X (Twitter) direct messages through the Account Activity API.

X signs its CRC challenge and its webhook bodies with the same HMAC-SHA256 of the consumer
secret, so a CRC endpoint that signs any string is a signing oracle for forged bodies. A
CRC token is therefore only answered when it has the shape X sends (base64 characters), which
no JSON body can have: a body must open with ``{``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Dict, List
from urllib.parse import quote

from bot.channels import Outgoing, Parsed, PayloadError, timestamp_ms
from bot.messages import Inbound, X

# X's user ids and event ids are decimal snowflakes (64-bit: at most 20 digits).
_ID = re.compile(r"[0-9]{1,20}")
# X sends a random base64 string; URL-safe base64 is accepted too. No braces, quotes,
# spaces or colons, so a CRC answer can never be the signature of a JSON object.
_CRC_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")


def valid_id(value: object) -> str | None:
    """The id as a string when it is an X id (digits), else None."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if _ID.fullmatch(text) else None


def _digest(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response(consumer_secret: str, crc_token: str) -> Dict[str, str]:
    """The answer to X's challenge-response check (GET with ``crc_token``).

    Raises PayloadError for a token X would not send (see the module docstring)."""
    if not _CRC_TOKEN.fullmatch(crc_token):
        raise PayloadError("crc_token must be 1-128 base64 characters")
    return {"response_token": "sha256=" + _digest(consumer_secret, crc_token.encode())}


def signature_valid(consumer_secret: str, body: bytes, header: str | None) -> bool:
    if not consumer_secret or not header or not header.startswith("sha256="):
        return False
    # Defence in depth beside the CRC token's shape: only a JSON object is ever a delivery.
    if not body.lstrip().startswith(b"{"):
        return False
    given = header[len("sha256="):].strip().encode("ascii", "replace")
    return hmac.compare_digest(given, _digest(consumer_secret, body).encode())


def send_url(api_url: str, participant: str) -> str:
    """The v2 send endpoint for one participant; the id is checked and quoted, never pasted."""
    if valid_id(participant) is None:
        raise ValueError("not an X user id")
    return f"{api_url}/2/dm_conversations/with/{quote(participant, safe='')}/messages"


def outgoing(api_url: str, access_token: str, participant: str, text: str) -> Outgoing:
    """The DM send request for one reply."""
    return Outgoing(send_url(api_url, participant), ({"text": text},),
                    headers={"Authorization": f"Bearer {access_token}"})


def parse(payload: object) -> Parsed:
    if not isinstance(payload, dict):
        raise PayloadError("expected a JSON object with 'for_user_id'")
    account = valid_id(payload.get("for_user_id"))
    if account is None:
        raise PayloadError("'for_user_id' must be an X user id (digits)")
    events = payload.get("direct_message_events", [])
    if not isinstance(events, list):
        raise PayloadError("'direct_message_events' must be a list")
    messages: List[Inbound] = []
    ignored = 0
    for event in events:
        message = _message(account, event)
        if message is None:
            ignored += 1
        else:
            messages.append(message)
    return Parsed(tuple(messages), ignored)


def _message(account: str, event: object) -> Inbound | None:
    if not isinstance(event, dict) or event.get("type") != "message_create":
        return None
    create = event.get("message_create")
    if not isinstance(create, dict):
        return None
    # Ids go into Redis keys, log pseudonyms and the send URL: only digits get that far.
    sender = valid_id(create.get("sender_id"))
    data = create.get("message_data")
    if sender is None or sender == account or not isinstance(data, dict):
        return None
    event_id, text = valid_id(event.get("id")), data.get("text", "")
    if event_id is None or not isinstance(text, str):
        return None
    ts = timestamp_ms(event.get("created_timestamp", 0))
    attachment = data.get("attachment")
    kinds = (str(attachment.get("type", "media")),) if isinstance(attachment, dict) else ()
    return Inbound(X, account, sender, event_id, text, ts, kinds)
