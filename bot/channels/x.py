"""X (Twitter) direct messages: the X Activity API and the Account Activity API in, DMs out.

In: both webhook products X delivers through its V2 Webhooks API, on the one route
(``/webhooks/x``), with the same CRC check and the same ``x-twitter-webhooks-signature``
(https://docs.x.com/x-api/webhooks/quickstart, "The CRC check" and "Signature verification"):

- the **X Activity API** (XAA, https://docs.x.com/x-api/activity/introduction): one event per
  delivery, ``{"data": {"event_uuid", "filter": {"user_id"}, "event_type", "tag", "payload"}}``
  (https://docs.x.com/x-api/activity/event-payloads). Beacon reads ``dm.received`` and
  ``chat.received``; ``dm.sent`` (its own replies), read receipts, typing and everything else
  are ignored;
- the **Account Activity API** (AAA), for accounts still on it until X retires it:
  ``{"for_user_id", "direct_message_events": [...]}``.

The two bodies are told apart by their top-level keys (``for_user_id`` against
``data.event_type``); a body with both is refused.

Where X's pages leave room, only what they show is read: the ``dm.received`` payload is the
Account Activity ``direct_message_events`` list (not the v2 ``dm_events`` object of the DM
lookup endpoints, which no XAA example carries); ``event_uuid`` is not used as an id (the API
reference gives it as 1-19 digits, the examples show negative numbers).

Out: one DM per reply, through ``POST /2/dm_conversations/with/:participant_id/messages``
(https://docs.x.com/x-api/direct-messages/manage/integrate) or, for an app that has no v2
access, the v1.1 ``POST direct_messages/events/new`` (``X_DM_API``; see bot/settings.py).
Signed with an OAuth 2.0 user-context bearer token, or with OAuth 1.0a user keys (which v1.1
requires and v2 accepts, and which do not expire).

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
import secrets
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping
from urllib.parse import quote, urlsplit

from bot.channels import Outgoing, Parsed, PayloadError, chunks, timestamp_ms
from bot.messages import Inbound, X

# X's user ids and event ids are decimal snowflakes (64-bit: at most 20 digits).
_ID = re.compile(r"[0-9]{1,20}")
# X sends a random base64 string; URL-safe base64 is accepted too. No braces, quotes,
# spaces or colons, so a CRC answer can never be the signature of a JSON object.
_CRC_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")
# An XChat event's id is a UUID in the documented chat.received payload (not a snowflake).
_CHAT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12}")

# -- X Activity API event types (https://docs.x.com/x-api/activity/introduction) --------------
# A legacy (unencrypted) DM to the filtered account; its payload carries the same
# `direct_message_events` list as the Account Activity API (event-payloads page, `dm.received`).
DM_RECEIVED = "dm.received"
# An encrypted XChat message to the filtered account. Its text is only in `encoded_event`,
# which takes the account's XChat private keys and X's chat library to decrypt; Beacon holds
# neither. Such a message goes to a person like an attachment (the citizen is told when
# someone will answer; staff read it in the X app), rather than vanish unseen. That answer
# goes out as a legacy DM, the only kind Beacon sends; X does not document how it shows to
# someone who wrote through XChat.
CHAT_RECEIVED = "chat.received"
# What the transcript and the console show for such a message, in place of text.
ENCRYPTED_CHAT = "encrypted X Chat message: read it in the X app"

# -- sending -------------------------------------------------------------------------------------
API_V2 = "v2"
API_V1 = "v1.1"
# Characters in one DM (https://docs.x.com/x-api/direct-messages/manage/introduction).
MAX_TEXT = 10_000
# https://developer.x.com/en/docs/direct-messages/sending-and-receiving/api-reference/new-event
V1_SEND_PATH = "/1.1/direct_messages/events/new.json"


def valid_id(value: object) -> str | None:
    """The id as a string when it is an X id (digits), else None."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if _ID.fullmatch(text) else None


def _digest(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response(consumer_secret: str, crc_token: str) -> Dict[str, str]:
    """The answer to X's challenge-response check (GET with ``crc_token``), the same for
    both webhook products.

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


# -- in ------------------------------------------------------------------------------------------

def parse(payload: object) -> Parsed:
    """The citizens' messages in one webhook delivery, from either product."""
    if not isinstance(payload, dict):
        raise PayloadError("expected a JSON object")
    if "for_user_id" in payload:
        if "data" in payload:
            raise PayloadError("a body is either Account Activity ('for_user_id') or "
                               "X Activity ('data'), not both")
        return _parse_account_activity(payload)
    data = payload.get("data")
    if isinstance(data, dict) and "event_type" in data:
        return _parse_activity(data)
    raise PayloadError("expected an Account Activity body ('for_user_id') or an "
                       "X Activity event ('data.event_type')")


def _parse_account_activity(payload: Mapping) -> Parsed:
    account = valid_id(payload.get("for_user_id"))
    if account is None:
        raise PayloadError("'for_user_id' must be an X user id (digits)")
    events = payload.get("direct_message_events", [])
    if not isinstance(events, list):
        raise PayloadError("'direct_message_events' must be a list")
    return _direct_messages(account, events)


def _parse_activity(data: Mapping) -> Parsed:
    """One X Activity API event (https://docs.x.com/x-api/activity/event-payloads)."""
    event_type = data.get("event_type")
    if not isinstance(event_type, str):
        raise PayloadError("'data.event_type' must be a string")
    if event_type not in (DM_RECEIVED, CHAT_RECEIVED):
        # dm.sent and chat.sent (the account's own messages, Beacon's replies among them),
        # dm.read, dm.indicate_typing, oauth.revoke, posts, profiles...: nothing to answer.
        return Parsed((), 1)
    # The filter names the subscribed user, i.e. the department's account.
    filter_ = data.get("filter")
    account = valid_id(filter_.get("user_id")) if isinstance(filter_, dict) else None
    if account is None:
        raise PayloadError("'data.filter.user_id' must be an X user id (digits)")
    body = data.get("payload")
    if not isinstance(body, dict):
        raise PayloadError("'data.payload' must be an object")
    if event_type == DM_RECEIVED:
        events = body.get("direct_message_events")
        if not isinstance(events, list):
            raise PayloadError("'data.payload.direct_message_events' must be a list")
        # Deduplicated by the DM event's own id, as on the Account Activity path, not by
        # `event_uuid` (one per delivery): DM event ids are the same across X's APIs
        # (https://docs.x.com/x-api/direct-messages/manage/migrate), so a DM that reaches
        # Beacon through both products while an account migrates is answered once.
        return _direct_messages(account, events)
    message = _encrypted_chat(account, body)
    return Parsed((message,), 0) if message else Parsed((), 1)


def _direct_messages(account: str, events: list) -> Parsed:
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
    """One `message_create` event (the same object in both products), or None for the
    account's own messages and anything malformed."""
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


def _encrypted_chat(account: str, payload: Mapping) -> Inbound | None:
    """A `chat.received` event as a message with no text (see CHAT_RECEIVED): documented
    fields `id`, `sender_id` and `created_at_msec` only."""
    sender = valid_id(payload.get("sender_id"))
    chat_id = payload.get("id")
    if sender is None or sender == account or not isinstance(chat_id, str) \
            or not _CHAT_ID.fullmatch(chat_id):
        return None
    # Prefixed: a chat id can then never be taken for a DM event id by the dedupe.
    return Inbound(X, account, sender, f"chat-{chat_id.lower()}", "",
                   timestamp_ms(payload.get("created_at_msec", 0)), (ENCRYPTED_CHAT,))


# -- out -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OAuth1Keys:
    """An app's consumer key and secret and a user's access token and secret (OAuth 1.0a
    user context). Never printed: the repr names no secret."""

    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str

    def __repr__(self) -> str:
        return "OAuth1Keys(...)"


def _percent(value: str) -> str:
    # RFC 3986 unreserved characters stay, everything else is %XX (UTF-8), as X's
    # "Percent encoding parameters" page says.
    return quote(value, safe="-._~")


def oauth1_authorization(method: str, url: str, keys: OAuth1Keys, *,
                         params: Mapping[str, str] | None = None, nonce: str | None = None,
                         timestamp: str | None = None) -> str:
    """The ``Authorization`` header of one OAuth 1.0a request (HMAC-SHA1), following
    https://docs.x.com/fundamentals/authentication/oauth-1-0a/creating-a-signature and
    .../authorizing-a-request. ``url`` without its query string; ``params`` are the query
    and form parameters (none for a JSON body, which is not signed). A fresh nonce and
    timestamp unless given (tests give the documented ones)."""
    oauth = {
        "oauth_consumer_key": keys.consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": timestamp or str(int(time.time())),
        "oauth_token": keys.token,
        "oauth_version": "1.0",
    }
    pairs = sorted((_percent(k), _percent(v)) for k, v in {**(params or {}), **oauth}.items())
    parameter_string = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join((method.upper(), _percent(base_url(url)), _percent(parameter_string)))
    key = f"{_percent(keys.consumer_secret)}&{_percent(keys.token_secret)}"
    oauth["oauth_signature"] = base64.b64encode(
        hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()
    return "OAuth " + ", ".join(f'{_percent(k)}="{_percent(v)}"' for k, v in sorted(oauth.items()))


def base_url(url: str) -> str:
    """The URL as OAuth 1.0a signs it (RFC 5849 3.4.1.2): scheme and host in lower case,
    the default port left out, no query or fragment. X_API_URL may be written
    "https://API.x.com:443" (found by the live attack: every send then failed with 401)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{scheme}://{host}{port}{parts.path or '/'}"


def send_url(api_url: str, participant: str) -> str:
    """The v2 send endpoint for one participant; the id is checked and quoted, never pasted."""
    if valid_id(participant) is None:
        raise ValueError("not an X user id")
    return f"{api_url}/2/dm_conversations/with/{quote(participant, safe='')}/messages"


def outgoing(api_url: str, access_token: str, participant: str, text: str, *,
             api: str = API_V2, oauth1: OAuth1Keys | None = None) -> Outgoing:
    """The DM send request for one reply.

    ``api`` "v2": ``POST /2/dm_conversations/with/:participant_id/messages`` with
    ``{"text": ...}`` (201 ``{"data": {"dm_conversation_id", "dm_event_id"}}``). "v1.1":
    ``POST /1.1/direct_messages/events/new.json`` with a ``message_create`` event, which
    takes OAuth 1.0a only. Signed with ``oauth1`` when given (a fresh signature for every
    attempt: X refuses a nonce it has seen), else with ``access_token`` as an OAuth 2.0
    user-context bearer token. Raises ValueError for an id that is not an X user id."""
    if valid_id(participant) is None:
        raise ValueError("not an X user id")
    # One request per part of a reply longer than a DM may be (Beacon's own replies are far
    # shorter; a long staff reply or department text must not be refused whole).
    bodies = tuple(_body(api, oauth1, participant, part) for part in chunks(text, MAX_TEXT))
    url = f"{api_url}{V1_SEND_PATH}" if api == API_V1 else send_url(api_url, participant)
    if oauth1 is not None:
        keys = oauth1
        return Outgoing(url, bodies, sign=lambda: {
            "Authorization": oauth1_authorization("POST", url, keys)})
    return Outgoing(url, bodies, headers={"Authorization": f"Bearer {access_token}"})


def _body(api: str, oauth1: OAuth1Keys | None, participant: str, text: str) -> Dict:
    if api == API_V1:
        if oauth1 is None:
            raise ValueError("the v1.1 DM endpoint takes OAuth 1.0a user keys only")
        # The documented event object: type, message_create.target.recipient_id and
        # message_create.message_data.text.
        return {"event": {"type": "message_create", "message_create": {
            "target": {"recipient_id": participant}, "message_data": {"text": text}}}}
    return {"text": text}
