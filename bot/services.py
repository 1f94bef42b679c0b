"""Everything the gateway's handlers and background tasks share, built once per process."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Dict

import aiohttp
from redis.asyncio import Redis

from bot import keys
from bot.delivery import Delivery
from bot.department import Department
from bot.inbox import Inbox
from bot.queue import HumanQueue
from bot.rasa_client import RasaClient
from bot.safety_net import SafetyNet
from bot.settings import Settings


@dataclass
class Services:
    settings: Settings
    department: Department
    redis: Redis
    http: aiohttp.ClientSession
    net: SafetyNet
    queue: HumanQueue
    inbox: Inbox
    delivery: Delivery
    rasa: RasaClient

    @classmethod
    def build(cls, settings: Settings, department: Department, redis: Redis,
              http: aiohttp.ClientSession, net: SafetyNet) -> Services:
        return cls(
            settings=settings,
            department=department,
            redis=redis,
            http=http,
            net=net,
            queue=HumanQueue(redis, retention_seconds=settings.retention_seconds,
                             duty_ttl=settings.duty_ttl),
            inbox=Inbox(redis, dedupe_ttl=settings.dedupe_ttl, rate_limit=settings.rate_limit,
                        rate_window=settings.rate_window),
            delivery=Delivery(redis, http, settings),
            rasa=RasaClient(http, settings.rasa_url, settings.rasa_timeout),
        )

    async def publish(self, kind: str, conversation_id: str = "", **data: object) -> None:
        """Tell every open console that something changed (fire and forget)."""
        event: Dict[str, object] = {"type": kind, "conversation": conversation_id,
                                    "ts": time.time(), **data}
        await self.redis.publish(keys.EVENTS, json.dumps(event, ensure_ascii=False))

    async def audit(self, conversation_id: str, actor: str, action: str, detail: str = "") -> None:
        """Append to the conversation's audit log (every message in and out)."""
        entry = {"ts": time.time(), "actor": actor, "action": action, "detail": detail}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.audit(conversation_id), json.dumps(entry, ensure_ascii=False))
            pipe.expire(keys.audit(conversation_id), self.settings.retention_seconds)
            await pipe.execute()
