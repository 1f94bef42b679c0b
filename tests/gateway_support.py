"""Helpers for gateway tests: signed platform payloads and a recording fake Graph/X API."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import hashlib
import hmac
import json
import time
from typing import Dict, List

from aiohttp import web

from bot.settings import Settings

META_SECRET = "meta-app-secret-for-tests"
META_VERIFY = "verify-me"
X_SECRET = "x-consumer-secret-for-tests"
PAGE_ID = "1029384756"
X_ACCOUNT = "4455667788"
# Instagram with Instagram Login: the professional account, its app's secret; Beacon's Meta
# app id and the page inbox's (Meta's Page Inbox app, the usual other owner of a thread).
IG_ACCOUNT = "17841400000077"
IG_SECRET = "instagram-app-secret-for-tests"
META_APP_ID = "1100220033"
PAGE_INBOX_APP_ID = "263902037430900"


def meta_signature(body: bytes, secret: str = META_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def x_signature(body: bytes, secret: str = X_SECRET) -> str:
    return "sha256=" + base64.b64encode(
        hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


_counter = [0]


def psid(name: str) -> str:
    """A page-scoped id (digits, as Meta sends them) that stands for a readable test name."""
    if name.isdigit():
        return name
    return str(int(hashlib.sha256(name.encode()).hexdigest()[:14], 16))


def conv_id(name: str) -> str:
    """The conversation id Beacon gives a Messenger citizen named ``name`` in a test."""
    return f"messenger:{PAGE_ID}:{psid(name)}"


def messenger_item(sender: str, text: str, mid: str | None = None) -> Dict:
    """One `messaging` item as Meta documents it for a text message."""
    _counter[0] += 1
    return {
        "sender": {"id": psid(sender)},
        "recipient": {"id": PAGE_ID},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid or f"m_{sender}_{_counter[0]}_{time.time_ns()}", "text": text},
    }


def messenger_payload(*items: Dict, page: str = PAGE_ID) -> Dict:
    return {"object": "page",
            "entry": [{"id": page, "time": int(time.time() * 1000), "messaging": list(items)}]}


def x_payload(sender: str, text: str, event_id: str | None = None) -> Dict:
    return {
        "for_user_id": X_ACCOUNT,
        "direct_message_events": [{
            "type": "message_create",
            "id": event_id or f"{time.time_ns()}",
            "created_timestamp": str(int(time.time() * 1000)),
            "message_create": {
                "target": {"recipient_id": X_ACCOUNT},
                "sender_id": sender,
                "message_data": {"text": text, "entities": {}},
            },
        }],
    }


def signed(payload: Dict, secret: str = META_SECRET) -> tuple[bytes, Dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-Hub-Signature-256": meta_signature(body, secret),
                  "Content-Type": "application/json"}


def without_disclosure(text: str) -> str:
    """``text`` without the disclosure line bot.disclosure adds to a conversation's first
    reply (before it, or after the 911 notice)."""
    department = _example_department()
    for language in department.languages:
        line = department.reply("disclosure", language)
        text = text.replace(f"{line}\n\n", "").replace(f"\n\n{line}", "")
    return text


def urgent_follow_up(language: str = "en") -> str:
    """The short line for a message inside an urgent conversation's notice window."""
    return _example_department().reply("urgent_follow_up", language)


def throttled_line(language: str = "en") -> str:
    """The line a sender over the rate limit is told once."""
    return _example_department().reply("throttled", language)


@functools.cache
def _example_department():
    from bot.department import load_department
    from bot.settings import PROJECT_ROOT

    return load_department(PROJECT_ROOT / "data/department.yml")


class FakePlatform:
    """Records what Beacon sends to the Graph API and X API (their documented endpoints)."""

    def __init__(self) -> None:
        self.sent: List[Dict] = []
        self.fail_next = 0
        # HTTP statuses the X API answers its next requests with (then it takes them again).
        self.x_fail: List[int] = []
        # Epoch seconds a 429 from X names in x-rate-limit-reset (none when 0).
        self.x_reset = 0
        self.x_refusals: List[Dict] = []
        self.app = web.Application()
        self.app.router.add_post("/v18.0/me/messages", self._meta)
        # Instagram with Instagram Login: graph.instagram.com/<version>/<IG_ID>/messages.
        self.app.router.add_post("/v21.0/{account}/messages", self._instagram)
        # Sender actions (mark_seen, typing_on) on either endpoint, and how many of the next
        # ones to refuse (they are kept apart from ``sent``: they are not messages).
        self.actions: List[Dict] = []
        self.fail_actions = 0
        self.action_delay = 0.0  # seconds the fake takes to answer a sender action
        self.app.router.add_post("/2/dm_conversations/with/{participant}/messages", self._x)
        self.app.router.add_post("/1.1/direct_messages/events/new.json", self._x_v1)
        self.app.router.add_post("/alerts", self._alert)

    async def _sender_action(self, request: web.Request, platform: str,
                             body: Dict) -> web.Response:
        await asyncio.sleep(self.action_delay)
        if self.fail_actions:
            self.fail_actions -= 1
            return web.json_response({"error": {"message": "temporarily unavailable"}},
                                     status=503)
        self.actions.append({"platform": platform, "body": body, "ts": time.time(),
                             "token": request.query.get("access_token"),
                             "auth": request.headers.get("Authorization")})
        return web.json_response({"recipient_id": body["recipient"]["id"]})

    async def _instagram(self, request: web.Request) -> web.Response:
        """POST /<IG_ID>/messages on the Instagram host, with the bearer token."""
        body = await request.json()
        if "sender_action" in body:
            return await self._sender_action(request, "instagram", body)
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": {"message": "temporarily unavailable"}},
                                     status=503)
        self.sent.append({"platform": "instagram", "account": request.match_info["account"],
                          "auth": request.headers.get("Authorization"),
                          "token": request.query.get("access_token"),
                          "body": body, "ts": time.time()})
        return web.json_response({"recipient_id": body["recipient"]["id"],
                                  "message_id": f"ig_{len(self.sent)}"})

    def instagram_texts_to(self, recipient: str) -> List[str]:
        """What an Instagram Login citizen got (disclosure line removed, as texts_to)."""
        return [without_disclosure(s["body"]["message"]["text"]) for s in self.sent
                if s["platform"] == "instagram"
                and s["body"]["recipient"]["id"] == psid(recipient)]

    def actions_to(self, recipient: str) -> List[str]:
        """The sender actions one citizen was shown, in order."""
        return [a["body"]["sender_action"] for a in self.actions
                if a["body"]["recipient"]["id"] == psid(recipient)]

    async def _meta(self, request: web.Request) -> web.Response:
        if request.can_read_body and "sender_action" in (body := await request.json()):
            return await self._sender_action(request, "meta", body)
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": {"message": "temporarily unavailable"}},
                                     status=503)
        body = await request.json()
        self.sent.append({"platform": "meta", "token": request.query.get("access_token"),
                          "body": body, "ts": time.time()})
        return web.json_response({"recipient_id": body["recipient"]["id"],
                                  "message_id": f"m_{len(self.sent)}"})

    async def _x_refused(self, request: web.Request) -> web.Response | None:
        if not self.x_fail:
            return None
        status = self.x_fail.pop(0)
        self.x_refusals.append({"status": status, "path": request.path,
                                "auth": request.headers.get("Authorization"),
                                "body": await request.json()})
        # X's error body (https://docs.x.com/x-api/fundamentals/response-codes-and-errors).
        kind = "rate-limit-exceeded" if status == 429 else "about:blank"
        return web.json_response({"title": "Too Many Requests" if status == 429 else "Error",
                                  "detail": "refused by the fake platform",
                                  "type": f"https://api.x.com/2/problems/{kind}"
                                  if status == 429 else kind}, status=status,
                                 headers={"x-rate-limit-reset": str(self.x_reset)}
                                 if status == 429 and self.x_reset else None)

    async def _x(self, request: web.Request) -> web.Response:
        """v2: POST /2/dm_conversations/with/:participant_id/messages, answered as documented
        (201, {"data": {"dm_conversation_id", "dm_event_id"}})."""
        refused = await self._x_refused(request)
        if refused is not None:
            return refused
        participant = request.match_info["participant"]
        self.sent.append({"platform": "x", "api": "v2", "participant": participant,
                          "auth": request.headers.get("Authorization"),
                          "body": await request.json(), "ts": time.time()})
        return web.json_response({"data": {"dm_conversation_id": f"{participant}-{X_ACCOUNT}",
                                           "dm_event_id": str(len(self.sent))}}, status=201)

    async def _x_v1(self, request: web.Request) -> web.Response:
        """v1.1: POST direct_messages/events/new.json, answered with the created event."""
        refused = await self._x_refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        create = body["event"]["message_create"]
        self.sent.append({"platform": "x", "api": "v1.1",
                          "participant": create["target"]["recipient_id"],
                          "auth": request.headers.get("Authorization"),
                          "body": body, "ts": time.time()})
        return web.json_response({"event": {
            "type": "message_create", "id": str(len(self.sent)),
            "created_timestamp": str(int(time.time() * 1000)),
            "message_create": {**create, "sender_id": X_ACCOUNT}}})

    async def _alert(self, request: web.Request) -> web.Response:
        self.sent.append({"platform": "alert", "body": await request.json(), "ts": time.time()})
        return web.json_response({"ok": True})

    def texts_to(self, recipient: str, raw: bool = False) -> List[str]:
        """What the citizen got, without the "automated assistant" disclosure line (the
        tests of the disclosure itself read it ``raw``)."""
        texts = [s["body"]["message"]["text"] for s in self.sent
                 if s["platform"] == "meta" and "message" in s["body"]
                 and s["body"]["recipient"]["id"] == psid(recipient)]
        return texts if raw else [without_disclosure(t) for t in texts]

    async def wait_for(self, predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out; sent so far: {self.sent}")


DEAD_RASA = "http://127.0.0.1:1"  # nothing listens there: Rasa is down


class FakeRasa:
    """Rasa's REST channel for gateway tests: records each request's body, then after
    ``delay`` seconds answers ``texts`` and a triage of ``outcome`` and ``topic`` (the
    real Rasa server is conftest's ``rasa_stack``)."""

    def __init__(self, delay: float = 0.0, texts: tuple = ("Our lobby is open 8 to 5.",),
                 outcome: str = "faq", topic: str | None = "hours") -> None:
        self.delay = delay
        self.texts, self.outcome, self.topic = texts, outcome, topic
        self.bodies: list = []
        self.app = web.Application()
        self.app.router.add_post("/webhooks/rest/webhook", self._answer)
        self.app.router.add_get("/", self._health)

    @property
    def calls(self) -> List[str]:
        """The texts Rasa was asked about, in order."""
        return [body["message"] for body in self.bodies]

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        await asyncio.sleep(self.delay)
        return web.json_response([
            *({"recipient_id": body["sender"], "text": text} for text in self.texts),
            {"recipient_id": body["sender"],
             "custom": {"beacon_triage": {"outcome": self.outcome, "topic": self.topic}}}])

    async def wait_for(self, count: int) -> list:
        """The bodies, once there are ``count`` of them (15 s at most)."""
        for _ in range(300):
            if len(self.bodies) >= count:
                return self.bodies
            await asyncio.sleep(0.05)
        raise AssertionError(f"Rasa was asked {len(self.bodies)} times, not {count}")


def settings_for(redis_server, rasa_url: str, platform_url: str, **override) -> Settings:
    """Gateway settings for a test: the tests' Redis, the given Rasa, the fake platforms."""
    env = {
        "BEACON_REDIS_URL": redis_server["url"],
        "BEACON_RASA_URL": rasa_url,
        "BEACON_RASA_TIMEOUT_S": "20",
        "META_APP_SECRET": META_SECRET,
        "META_VERIFY_TOKEN": META_VERIFY,
        "META_PAGE_ACCESS_TOKEN": "page-token",
        "META_GRAPH_URL": platform_url,
        "X_CONSUMER_SECRET": X_SECRET,
        "X_ACCESS_TOKEN": "x-token",
        "X_API_URL": platform_url,
        "META_APP_ID": META_APP_ID,
        "INSTAGRAM_ACCOUNT_ID": IG_ACCOUNT,
        "INSTAGRAM_ACCESS_TOKEN": "ig-token",
        "INSTAGRAM_GRAPH_URL": platform_url,
        "INSTAGRAM_APP_SECRET": IG_SECRET,
        "BEACON_HANDOFF_NOTICE_S": "1",
        "BEACON_ESCALATE_AFTER_S": "3600",
        "BEACON_ESCALATION_WEBHOOK": platform_url + "/alerts",
        "BEACON_COOKIE_SECURE": "0",
        # Refusals are held (bot/tarpit.py); briefly here, so limit tests stay quick.
        "BEACON_REFUSAL_DELAY_S": "0.1",
    }
    return dataclasses.replace(Settings.from_env(env), **override)


async def post_meta(client, payload: Dict):
    body, headers = signed(payload)
    return await client.post("/webhooks/meta", data=body, headers=headers)


# -- Instagram (Meta's documented shapes: https://developers.facebook.com/docs/instagram-messaging/webhooks)

def ig_conv_id(name: str, account: str = IG_ACCOUNT) -> str:
    """The conversation id Beacon gives an Instagram citizen named ``name`` in a test."""
    return f"instagram:{account}:{psid(name)}"


def instagram_item(sender: str, text: str | None = None, mid: str | None = None,
                   **message: object) -> Dict:
    """One ``messaging`` item of an Instagram webhook: a message with ``text`` and any other
    documented message fields (attachments, is_deleted, is_unsupported, reply_to...)."""
    _counter[0] += 1
    body: Dict = {"mid": mid or f"aWdfZAG1faXRl{sender}{_counter[0]}{time.time_ns()}"}
    if text is not None:
        body["text"] = text
    body.update(message)
    return {"sender": {"id": psid(sender)}, "recipient": {"id": IG_ACCOUNT},
            "timestamp": int(time.time() * 1000), "message": body}


def instagram_payload(*items: Dict, account: str = IG_ACCOUNT, field: str = "messaging") -> Dict:
    """An ``object: "instagram"`` delivery; ``field="standby"`` for a thread another app owns."""
    return {"object": "instagram",
            "entry": [{"id": account, "time": int(time.time() * 1000), field: list(items)}]}


async def post_instagram(client, payload: Dict):
    """A delivery of an Instagram Login app, signed with its secret, to its own route."""
    body, headers = signed(payload, IG_SECRET)
    return await client.post("/webhooks/instagram", data=body, headers=headers)
