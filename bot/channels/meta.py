"""Messenger and Instagram, through Meta's webhooks and Send API.

Meta batches: one POST may hold several ``entry`` objects, each with several ``messaging``
items (and, under Conversation Routing, ``standby`` items). Every one is handled (Rasa's own
connector reads only the first). Signatures are ``X-Hub-Signature-256`` (HMAC-SHA256 of the
raw body with the app secret); SHA-1 is refused.

The event shapes are Meta's documented ones:

- messages, echoes, deletions, unsupported media, shares, reels, story replies and mentions,
  reactions and ``messaging_seen``: "Webhooks for Instagram Messaging",
  https://developers.facebook.com/docs/instagram-messaging/webhooks (the same shapes reach an
  account connected with the Instagram API with Instagram Login: bot.channels.instagram);
  post shares as ``share`` plus ``ig_post`` during Meta's transition:
  https://developers.facebook.com/docs/instagram-platform/webhooks/new
- the standby channel (another app owns the thread):
  https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/standby
- thread control: ``messaging_handovers``,
  https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/messaging_handovers
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import List, Mapping, Tuple

from bot.channels import (
    Outgoing,
    Parsed,
    PayloadError,
    ThreadControl,
    byte_chunks,
    chunks,
    timestamp_ms,
)
from bot.messages import DELETED, INSTAGRAM, MESSENGER, Inbound
from bot.text import same_secret, storable

OBJECTS = {"page": MESSENGER, "instagram": INSTAGRAM}
SEND_PATH = "/v18.0/me/messages"
MAX_TEXT = 2000  # the Send API's limit per message
# Instagram takes at most 1000 bytes of UTF-8 per text message ("Send a Message",
# https://developers.facebook.com/docs/messenger-platform/instagram/features/send-message).
INSTAGRAM_MAX_BYTES = 1000
# Meta's reply windows: a page may answer freely for 24 hours after the citizen's last
# message, then for 7 days only as a human agent (with the HUMAN_AGENT tag), then not at all.
STANDARD_WINDOW_S = 24 * 3600
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
# Page ids, page-scoped ids (PSID) and Instagram-scoped ids (IGSID) are decimal numbers.
_ID = re.compile(r"[0-9]{1,32}")
# Message ids: "m_..." on Messenger, base64 on Instagram.
_MID = re.compile(r"[A-Za-z0-9_\-.:=+/]{1,512}")
# Sender actions, POST /me/messages {"recipient": {"id"}, "sender_action"}: Messenger
# https://developers.facebook.com/documentation/business-messaging/messenger-platform/send-messages/sender-actions
# and Instagram https://developers.facebook.com/docs/messenger-platform/instagram/features/sender-actions
SENDER_ACTIONS = ("mark_seen", "typing_on", "typing_off")
# The thread-control events of ``messaging_handovers`` that name a conversation. ``app_roles``
# (a page admin changed this app's role) names none and is ignored.
HANDOVER_ACTIONS = ("pass_thread_control", "take_thread_control", "request_thread_control")

# What staff read for Instagram's attachment types that are not plain media.
_SHARED = {"share": "shared a post", "ig_post": "shared a post", "ig_reel": "shared a reel",
           "reel": "shared a reel"}
STORY_MENTION = "mentioned this account in their story"
STORY_REPLY = "replied to this account's story"
EPHEMERAL = "disappearing media (Instagram does not pass it on)"
UNSUPPORTED = ("a message Instagram could not pass on (unsupported media): "
               "read it in the Instagram app")
_MAX_ATTACHMENTS = 20
_MAX_TITLE = 500
# Media links are Meta CDN addresses with a signature; anything else is not kept.
_URL = re.compile(r"https://[^\s\"<>]{1,2000}")


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
    events: List[ThreadControl] = []
    ignored = 0
    for entry in entries:
        if not isinstance(entry, dict):
            ignored += 1
            continue
        # A message for a thread this app owns (or an idle one) comes in ``messaging``; one
        # for a thread another app owns comes in ``standby`` (Conversation Routing).
        lists = [(entry.get(name, []), name == "standby") for name in ("messaging", "standby")]
        if not all(isinstance(items, list) for items, _ in lists):
            ignored += 1
            continue
        account = valid_id(entry.get("id"))
        if account is None:
            ignored += sum(len(items) for items, _ in lists) or 1
            continue
        for items, standby in lists:
            for item in items:
                parsed = _item(channel, account, item, standby)
                if isinstance(parsed, Inbound):
                    messages.append(parsed)
                elif isinstance(parsed, ThreadControl):
                    events.append(parsed)
                else:
                    ignored += 1
    return Parsed(tuple(messages), ignored, tuple(events))


def _item(channel: str, account: str, item: object,
          standby: bool) -> Inbound | ThreadControl | None:
    """One messaging item, or None for echoes, receipts and anything malformed."""
    if not isinstance(item, dict):
        return None
    if any(action in item for action in HANDOVER_ACTIONS):
        return _thread_control(channel, account, item)
    sender = item.get("sender")
    # Ids go into Redis keys, log pseudonyms and send requests: only digits get that far.
    sender_id = valid_id(sender.get("id")) if isinstance(sender, dict) else None
    if sender_id is None or sender_id == account:
        return None  # the account's own messages (Instagram echoes come this way too)
    timestamp = item.get("timestamp")
    ts = timestamp_ms(timestamp) if isinstance(timestamp, (int, float)) else 0.0
    message = item.get("message")
    if isinstance(message, dict):
        return _message(channel, account, sender_id, ts, message, standby)
    postback = item.get("postback")
    if isinstance(postback, dict) and isinstance(postback.get("title"), str):
        mid = postback.get("mid") or f"postback:{sender_id}:{timestamp}"
        if not isinstance(mid, str) or not _MID.fullmatch(mid):
            return None
        return Inbound(channel, account, sender_id, mid, postback["title"], ts, standby=standby)
    # Ignored, and why: a receipt ("read", Instagram's messaging_seen; "delivery") says the
    # citizen saw a reply, and a reaction ("reaction": an emoji on an earlier message) carries
    # no words: neither is a turn for Rasa, nor anything the safety net could read, and
    # Meta's inbox shows both to staff. Referrals (ig.me links) carry no message either.
    return None


def _message(channel: str, account: str, sender: str, ts: float, message: dict,
             standby: bool) -> Inbound | None:
    if message.get("is_echo"):
        return None  # sent by the account (or by another app on its behalf)
    mid = message.get("mid")
    if not isinstance(mid, str) or not _MID.fullmatch(mid):
        return None
    if message.get("is_deleted"):
        # The citizen unsent an earlier message: an item of its own (its id differs from
        # the message's, or dedupe would drop it), handled in order after that message.
        return Inbound(channel, account, sender, f"{mid}:deleted", "", ts, kind=DELETED,
                       refers_to=mid, standby=standby)
    text = message.get("text", "")
    if not isinstance(text, str):
        return None
    attachments, shared = _attachments(message.get("attachments"))
    reply_to = message.get("reply_to")
    story = reply_to.get("story") if isinstance(reply_to, dict) else None
    if isinstance(story, dict):
        attachments = (_describe(STORY_REPLY, None, story.get("url")),) + attachments
    if message.get("is_unsupported"):
        attachments += (UNSUPPORTED,)
    return Inbound(channel, account, sender, mid, text, ts, attachments,
                   shared_text=shared, standby=standby)


def _attachments(raw: object) -> Tuple[Tuple[str, ...], str]:
    """The attachments as staff read them (plain media by its type, as before), and the
    captions of shared posts and reels (words the citizen sent but did not write)."""
    if not isinstance(raw, list):
        return (), ""
    kinds: List[str] = []
    captions: List[str] = []
    shared_urls = set()
    for attachment in raw[:_MAX_ATTACHMENTS]:
        if not isinstance(attachment, dict):
            continue
        kind = str(attachment.get("type", "file"))[:40]
        payload = attachment.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        url = _url(payload.get("url"))
        if kind in _SHARED:
            # Since November 2025 one shared post comes as both "share" and "ig_post".
            if url and url in shared_urls:
                continue
            shared_urls.add(url)
            title = payload.get("title")
            title = storable(title)[:_MAX_TITLE] if isinstance(title, str) else ""
            kinds.append(_describe(_SHARED[kind], title, url))
            if title and title not in captions:
                captions.append(title)
        elif kind == "story_mention":
            kinds.append(_describe(STORY_MENTION, None, url))
        elif kind == "ephemeral":
            kinds.append(EPHEMERAL)
        else:
            kinds.append(kind)
    return tuple(kinds), "\n".join(captions)


def _url(value: object) -> str:
    return value if isinstance(value, str) and _URL.fullmatch(value) else ""


def _describe(what: str, title: str | None, url: object) -> str:
    link = _url(url)
    return " ".join(part for part in (what + (":" if title or link else ""),
                                      f'"{title}"' if title else "", link) if part)


def _thread_control(channel: str, account: str, item: dict) -> ThreadControl | None:
    """A ``messaging_handovers`` event. The citizen is the sender (the recipient being the
    account), except where Meta's example for request_thread_control has them swapped."""
    ids = [valid_id(side.get("id")) if isinstance(side, dict) else None
           for side in (item.get("sender"), item.get("recipient"))]
    citizen = next((i for i in ids if i is not None and i != account), None)
    action = next(a for a in HANDOVER_ACTIONS if a in item)
    control = item[action]
    if citizen is None or not isinstance(control, dict):
        return None
    metadata = control.get("metadata")
    return ThreadControl(
        channel, account, citizen, action,
        new_owner=valid_id(control.get("new_owner_app_id")),
        previous_owner=valid_id(control.get("previous_owner_app_id")),
        requested_owner=valid_id(control.get("requested_owner_app_id")),
        metadata=storable(metadata)[:200] if isinstance(metadata, str) else "")


def message_bodies(recipient: str, text: str, human_agent: bool = False,
                   max_bytes: int | None = None) -> Tuple[dict, ...]:
    """The Send API bodies for one reply (Messenger's and Instagram's are the same)."""
    bodies = []
    for part in byte_chunks(text, max_bytes) if max_bytes else chunks(text, MAX_TEXT):
        body: dict = {"recipient": {"id": recipient}, "message": {"text": part},
                      "messaging_type": "RESPONSE"}
        if human_agent:
            body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        bodies.append(body)
    return tuple(bodies)


def outgoing(graph_url: str, page_token: str, recipient: str, text: str,
             human_agent: bool = False, max_bytes: int | None = None) -> Outgoing:
    """The Send API request(s) for one reply; the recipient id is checked, never pasted."""
    if valid_id(recipient) is None:
        raise ValueError("not a Meta user id")
    return Outgoing(f"{graph_url}{SEND_PATH}",
                    message_bodies(recipient, text, human_agent, max_bytes),
                    params={"access_token": page_token})


def sender_action_body(recipient: str, action: str) -> dict:
    """The body of one sender action (mark_seen, typing_on, typing_off); ids checked."""
    if action not in SENDER_ACTIONS:
        raise ValueError(f"not a sender action: {action!r}")
    if valid_id(recipient) is None:
        raise ValueError("not a Meta user id")
    return {"recipient": {"id": recipient}, "sender_action": action}


def sender_action(graph_url: str, page_token: str, recipient: str, action: str) -> Outgoing:
    """The Send API request for one sender action with the page's token."""
    return Outgoing(f"{graph_url}{SEND_PATH}", (sender_action_body(recipient, action),),
                    params={"access_token": page_token})


def reply_window(seconds_since_citizen: float) -> Tuple[bool, bool]:
    """(may reply, only as a human agent) this long after the citizen's last message."""
    if seconds_since_citizen > HUMAN_AGENT_WINDOW_S:
        return False, True
    return True, seconds_since_citizen > STANDARD_WINDOW_S
