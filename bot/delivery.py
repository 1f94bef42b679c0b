"""Sending replies: each platform's send API, or the outbox when it has no credentials.

With no credentials (the default locally) every reply is recorded in the outbox, visible
in the console, so the whole flow runs on one machine. Web chat replies always go to the
session's list, which the chat page reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
import time
from dataclasses import dataclass
from typing import Dict

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import keys, metrics
from bot.channels import meta, x
from bot.messages import INSTAGRAM, MESSENGER, WEBCHAT, X
from bot.settings import Settings

logger = logging.getLogger(__name__)

OUTBOX_LIMIT = 10_000
# Seconds between attempts; a failed send is tried len(BACKOFF) + 1 times.
BACKOFF = (0.5, 1.5)
META_SEND_PATH = "/v18.0/me/messages"
META_MAX_TEXT = 2000


@dataclass(frozen=True)
class Sent:
    ok: bool
    via: str  # "meta", "x", "webchat" or "outbox"
    error: str = ""


def _chunks(text: str, limit: int) -> list[str]:
    """Split on whitespace so that no chunk is longer than ``limit`` (Meta's cap)."""
    if len(text) <= limit:
        return [text]
    return textwrap.wrap(text, width=limit, replace_whitespace=False) or [text[:limit]]


class Delivery:
    """Delivers one reply to one citizen, with retries; never raises for a platform error."""

    def __init__(self, redis: Redis, http: aiohttp.ClientSession, settings: Settings) -> None:
        self.redis = redis
        self.http = http
        self.settings = settings

    def _configured(self, channel: str) -> str | None:
        if channel in (MESSENGER, INSTAGRAM) and self.settings.meta_page_access_token:
            return "meta"
        if channel == X and self.settings.x_access_token:
            return "x"
        return None

    async def send(self, conversation_id: str, channel: str, recipient: str, text: str, *,
                   human_agent: bool = False) -> Sent:
        if channel == WEBCHAT:
            entry = {"role": "bot", "text": text, "ts": time.time()}
            await self.redis.rpush(keys.webchat(recipient), json.dumps(entry))
            await self.redis.expire(keys.webchat(recipient), self.settings.retention_seconds)
            return Sent(True, "webchat")
        via = self._configured(channel)
        if via is None:
            await self.record_outbox(conversation_id, channel, recipient, text, human_agent)
            return Sent(True, "outbox")
        # Platform ids were checked at intake; checked again here because a staff reply or a
        # stored conversation also reaches this point, and an id must never shape a request.
        valid = meta.valid_id if via == "meta" else x.valid_id
        if valid(recipient) is None:
            logger.error("delivery to %s refused: invalid recipient id", channel,
                         extra={"channel": channel})
            return Sent(False, via, "invalid recipient id")
        if via == "meta":
            url = f"{self.settings.meta_graph_url}{META_SEND_PATH}"
            params = {"access_token": self.settings.meta_page_access_token}
            bodies = []
            for part in _chunks(text, META_MAX_TEXT):
                body: Dict = {"recipient": {"id": recipient}, "message": {"text": part},
                              "messaging_type": "RESPONSE"}
                if human_agent:
                    body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
                bodies.append(body)
            headers: Dict[str, str] = {}
        else:
            url = x.send_url(self.settings.x_api_url, recipient)
            params = {}
            bodies = [{"text": text}]
            headers = {"Authorization": f"Bearer {self.settings.x_access_token}"}
        for body in bodies:
            error = await self._post(url, params, headers, body)
            if error:
                metrics.DELIVERY_FAILURES.labels(channel).inc()
                logger.error("delivery to %s failed: %s", channel, error,
                             extra={"channel": channel})
                try:
                    await self.redis.hset(keys.conversation(conversation_id), "delivery_error",
                                          f"{time.strftime('%H:%M:%S')} {error}")
                except (RedisError, OSError):
                    pass  # Redis is down too: the log line above is the record
                return Sent(False, via, error)
        return Sent(True, via)

    async def _post(self, url: str, params: Dict, headers: Dict, body: Dict) -> str:
        """POST with retries on network errors, 429 and 5xx; '' on success, else the error."""
        error = ""
        for attempt in range(len(BACKOFF) + 1):
            try:
                async with self.http.post(url, params=params, headers=headers, json=body,
                                          timeout=aiohttp.ClientTimeout(
                                              total=self.settings.send_timeout_s)) as response:
                    if response.status < 300:
                        return ""
                    error = f"HTTP {response.status}: {(await response.text())[:200]}"
                    if response.status < 500 and response.status != 429:
                        return error
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < len(BACKOFF):
                await asyncio.sleep(BACKOFF[attempt])
        return error

    async def record_outbox(self, conversation_id: str, channel: str, recipient: str, text: str,
                      human_agent: bool) -> None:
        entry = {"ts": time.time(), "conversation": conversation_id, "channel": channel,
                 "recipient": recipient, "text": text, "human_agent": human_agent}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.OUTBOX, json.dumps(entry, ensure_ascii=False))
            pipe.ltrim(keys.OUTBOX, -OUTBOX_LIMIT, -1)
            pipe.expire(keys.OUTBOX, self.settings.retention_seconds)
            await pipe.execute()

    async def outbox(self, limit: int = 200) -> list[Dict]:
        return [json.loads(x) for x in await self.redis.lrange(keys.OUTBOX, -limit, -1)]
