"""Instagram through the Instagram API with Instagram Login (an account with no Facebook Page).

Its webhooks have the shape of Instagram messaging through a Page (object "instagram",
``entry[].messaging[]``, the same message fields), so ``bot.channels.meta`` parses both; this
module holds what differs for an Instagram Login app:

- the host and token: graph.instagram.com with an Instagram User access token, the account
  named by its Instagram professional account id ("Set up Instagram Webhooks", the table of
  setups: https://developers.facebook.com/documentation/instagram-platform/webhooks/setup);
- sending: POST ``/<IG_ID>/messages`` with ``{"recipient": {"id": IGSID}, "message":
  {"text"}}`` ("Send Messages", https://developers.facebook.com/documentation/instagram-platform/instagram-api-with-instagram-login/messaging-api),
  at most 1000 bytes of text a message; the token travels as a bearer header, never in the
  URL (which proxies log);
- sender actions on the same endpoint ("Sender Actions",
  https://developers.facebook.com/documentation/instagram-platform/instagram-api-with-instagram-login/messaging-api/sender-actions);
- the webhook's own route (/webhooks/instagram) and secret: the Instagram app's secret signs
  its ``X-Hub-Signature-256`` ("Setup Webhooks Subscriptions",
  https://developers.facebook.com/docs/instagram-platform/webhooks).

Reply windows are Meta's (24 hours, then 7 days with the HUMAN_AGENT tag): ``meta.reply_window``.
"""

from __future__ import annotations

from urllib.parse import quote

from bot.channels import Outgoing, Parsed, PayloadError, meta
from bot.messages import INSTAGRAM
from bot.messages import account_of as conversation_account

API_VERSION = "v21.0"


def parse(payload: object) -> Parsed:
    """An Instagram Login app's delivery: Instagram only (a Page's come to /webhooks/meta)."""
    if not isinstance(payload, dict) or payload.get("object") != "instagram":
        raise PayloadError("'object' must be 'instagram'")
    return meta.parse(payload)


def signature_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256`` with the Instagram app's secret (the same scheme as Meta's)."""
    return meta.signature_valid(app_secret, body, header)


def account_of(conversation_id: str) -> str | None:
    """The department's account in an Instagram conversation id ("instagram:<account>:<sender>"),
    which says which setup answers it; None for any other channel."""
    channel, account = conversation_account(conversation_id)
    return meta.valid_id(account) if channel == INSTAGRAM else None


def send_url(graph_url: str, account: str) -> str:
    """The messages endpoint of one Instagram professional account; the id is checked and
    quoted, never pasted."""
    if meta.valid_id(account) is None:
        raise ValueError("not an Instagram account id")
    return f"{graph_url}/{API_VERSION}/{quote(account, safe='')}/messages"


def _auth(access_token: str) -> dict:
    return {"Authorization": f"Bearer {access_token}"}


def outgoing(graph_url: str, access_token: str, account: str, recipient: str, text: str,
             human_agent: bool = False) -> Outgoing:
    """The request(s) for one reply: a long reply is split into messages of at most 1000
    bytes. Raises ValueError for an id that is not one."""
    if meta.valid_id(recipient) is None:
        raise ValueError("not an Instagram-scoped user id")
    return Outgoing(send_url(graph_url, account),
                    meta.message_bodies(recipient, text, human_agent,
                                        max_bytes=meta.INSTAGRAM_MAX_BYTES),
                    headers=_auth(access_token))


def sender_action(graph_url: str, access_token: str, account: str, recipient: str,
                  action: str) -> Outgoing:
    """The request for one sender action (mark_seen, typing_on, typing_off)."""
    return Outgoing(send_url(graph_url, account),
                    (meta.sender_action_body(recipient, action),), headers=_auth(access_token))
