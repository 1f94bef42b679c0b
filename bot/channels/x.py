"""X (Twitter) direct messages through the Account Activity API."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Dict, List

from bot.channels import Parsed, PayloadError
from bot.messages import Inbound, X


def _digest(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response(consumer_secret: str, crc_token: str) -> Dict[str, str]:
    """The answer to X's challenge-response check (GET with ``crc_token``)."""
    return {"response_token": "sha256=" + _digest(consumer_secret, crc_token.encode())}


def signature_valid(consumer_secret: str, body: bytes, header: str | None) -> bool:
    if not consumer_secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(header[len("sha256="):].strip(), _digest(consumer_secret, body))


def parse(payload: object) -> Parsed:
    if not isinstance(payload, dict) or not isinstance(payload.get("for_user_id"), (str, int)):
        raise PayloadError("expected a JSON object with 'for_user_id'")
    account = str(payload["for_user_id"])
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
    sender = create.get("sender_id")
    data = create.get("message_data")
    if not isinstance(sender, (str, int)) or str(sender) == account or not isinstance(data, dict):
        return None
    event_id, text = event.get("id"), data.get("text", "")
    if not isinstance(event_id, (str, int)) or not isinstance(text, str):
        return None
    try:
        ts = float(event.get("created_timestamp", 0)) / 1000
    except (TypeError, ValueError):
        ts = 0.0
    attachment = data.get("attachment")
    kinds = (str(attachment.get("type", "media")),) if isinstance(attachment, dict) else ()
    return Inbound(X, account, str(sender), str(event_id), text, ts, kinds)
