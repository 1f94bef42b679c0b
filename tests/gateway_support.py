"""Helpers for gateway tests: signed platform payloads and a recording fake Graph/X API."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
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


def signed(payload: Dict) -> tuple[bytes, Dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-Hub-Signature-256": meta_signature(body),
                  "Content-Type": "application/json"}


class FakePlatform:
    """Records what Beacon sends to the Graph API and X API (their documented endpoints)."""

    def __init__(self) -> None:
        self.sent: List[Dict] = []
        self.fail_next = 0
        self.app = web.Application()
        self.app.router.add_post("/v18.0/me/messages", self._meta)
        self.app.router.add_post("/2/dm_conversations/with/{participant}/messages", self._x)
        self.app.router.add_post("/alerts", self._alert)

    async def _meta(self, request: web.Request) -> web.Response:
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": {"message": "temporarily unavailable"}},
                                     status=503)
        body = await request.json()
        self.sent.append({"platform": "meta", "token": request.query.get("access_token"),
                          "body": body, "ts": time.time()})
        return web.json_response({"recipient_id": body["recipient"]["id"],
                                  "message_id": f"m_{len(self.sent)}"})

    async def _x(self, request: web.Request) -> web.Response:
        self.sent.append({"platform": "x", "participant": request.match_info["participant"],
                          "auth": request.headers.get("Authorization"),
                          "body": await request.json(), "ts": time.time()})
        return web.json_response({"data": {"dm_event_id": str(len(self.sent))}}, status=201)

    async def _alert(self, request: web.Request) -> web.Response:
        self.sent.append({"platform": "alert", "body": await request.json(), "ts": time.time()})
        return web.json_response({"ok": True})

    def texts_to(self, recipient: str) -> List[str]:
        return [s["body"]["message"]["text"] for s in self.sent
                if s["platform"] == "meta" and s["body"]["recipient"]["id"] == psid(recipient)]

    async def wait_for(self, predicate, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out; sent so far: {self.sent}")


DEAD_RASA = "http://127.0.0.1:1"  # nothing listens there: Rasa is down


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
