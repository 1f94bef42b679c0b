"""Messenger and Instagram, through Meta's webhooks and Send API.

Meta batches: one POST may hold several ``entry`` objects, each with several ``messaging``
items. Every one is handled (Rasa's own connector reads only the first). Signatures are
``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app secret); SHA-1 is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import textwrap
from typing import List, Mapping, Tuple

from bot.channels import Outgoing, Parsed, PayloadError, timestamp_ms
from bot.messages import INSTAGRAM, MESSENGER, Inbound
from bot.text import same_secret

OBJECTS = {"page": MESSENGER, "instagram": INSTAGRAM}
SEND_PATH = "/v18.0/me/messages"
MAX_TEXT = 2000  # the Send API's limit per message
# Meta's reply windows: a page may answer freely for 24 hours after the citizen's last
# message, then for 7 days only as a human agent (with the HUMAN_AGENT tag), then not at all.
STANDARD_WINDOW_S = 24 * 3600
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
# Page ids, page-scoped ids (PSID) and Instagram-scoped ids (IGSID) are decimal numbers.
_ID = re.compile(r"[0-9]{1,32}")
# Message ids: "m_..." on Messenger, base64 on Instagram.
_MID = re.compile(r"[A-Za-z0-9_\-.:=+/]{1,512}")


def valid_id(value: object) -> str | None:
    """The id as a string when it is a Meta page/user id (digits), else None."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if _ID.fullmatch(text) else None




def verify_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when the subscription request carries our token."""
    if not verify_token or params.get("hub.mode") != "subscribe":
        return None
    if not same_secret(str(params.get("hub.verify_token", "")), verify_token):
        return None
    return params.get("hub.challenge")


def signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return same_secret(header[len("sha256="):].strip().lower(), expected)


def parse(payload: object) -> Parsed:
    if not isinstance(payload, dict):
        raise PayloadError("expected a JSON object")
    channel = OBJECTS.get(payload.get("object"))  # type: ignore[arg-type]
    if channel is None:
        raise PayloadError("'object' must be 'page' or 'instagram'")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("'entry' must be a list")
    messages: List[Inbound] = []
    ignored = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("messaging", []), list):
            ignored += 1
            continue
        account = valid_id(entry.get("id"))
        if account is None:
            ignored += len(entry.get("messaging", [])) or 1
            continue
        for item in entry.get("messaging", []):
            message = _message(channel, account, item)
            if message is None:
                ignored += 1
            else:
                messages.append(message)
    return Parsed(tuple(messages), ignored)


def _message(channel: str, account: str, item: object) -> Inbound | None:
    """One messaging item, or None for echoes, receipts and anything malformed."""
    if not isinstance(item, dict):
        return None
    sender = item.get("sender")
    # Ids go into Redis keys, log pseudonyms and send requests: only digits get that far.
    sender_id = valid_id(sender.get("id")) if isinstance(sender, dict) else None
    if sender_id is None or sender_id == account:
        return None
    timestamp = item.get("timestamp")
    ts = timestamp_ms(timestamp) if isinstance(timestamp, (int, float)) else 0.0
    message = item.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return None
        mid = message.get("mid")
        text = message.get("text", "")
        if not isinstance(mid, str) or not _MID.fullmatch(mid) or not isinstance(text, str):
            return None
        attachments = message.get("attachments") or []
        kinds = tuple(str(a.get("type", "file")) for a in attachments
                      if isinstance(a, dict)) if isinstance(attachments, list) else ()
        return Inbound(channel, account, sender_id, mid, text, ts, kinds)
    postback = item.get("postback")
    if isinstance(postback, dict) and isinstance(postback.get("title"), str):
        mid = postback.get("mid") or f"postback:{sender_id}:{timestamp}"
        if not isinstance(mid, str) or not _MID.fullmatch(mid):
            return None
        return Inbound(channel, account, sender_id, mid, postback["title"], ts)
    return None  # read, delivery, reaction, referral...


def chunks(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split on whitespace so that no chunk is longer than ``limit``."""
    if len(text) <= limit:
        return [text]
    return textwrap.wrap(text, width=limit, replace_whitespace=False) or [text[:limit]]


def outgoing(graph_url: str, page_token: str, recipient: str, text: str,
             human_agent: bool = False) -> Outgoing:
    """The Send API request(s) for one reply; the recipient id is checked, never pasted."""
    if valid_id(recipient) is None:
        raise ValueError("not a Meta user id")
    bodies = []
    for part in chunks(text):
        body: dict = {"recipient": {"id": recipient}, "message": {"text": part},
                      "messaging_type": "RESPONSE"}
        if human_agent:
            body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        bodies.append(body)
    return Outgoing(f"{graph_url}{SEND_PATH}", tuple(bodies),
                    params={"access_token": page_token})


def reply_window(seconds_since_citizen: float) -> Tuple[bool, bool]:
    """(may reply, only as a human agent) this long after the citizen's last message."""
    if seconds_since_citizen > HUMAN_AGENT_WINDOW_S:
        return False, True
    return True, seconds_since_citizen > STANDARD_WINDOW_S
