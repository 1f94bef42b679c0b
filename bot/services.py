"""Everything the gateway's handlers and background tasks share, built once per process."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Tuple

import aiohttp
from redis.asyncio import Redis

from bot import keys
from bot.agencies import Agency, Deployment
from bot.audit import AuditLog
from bot.cpu_lane import CpuLane
from bot.delivery import Delivery
from bot.department import Department
from bot.disclosure import Disclosure
from bot.inbox import Inbox
from bot.notice_window import NoticeWindow
from bot.presence import Presence
from bot.queue import HumanQueue
from bot.rasa_client import RasaClient
from bot.safety_net import MAX_CHECK_CHARS, SafetyNet
from bot.safety_result import SafetyResult
from bot.settings import Settings
from bot.tarpit import Tarpit
from bot.text import bounded
from bot.thread_control import ThreadOwners


class OfflineNotices:
    """Message ids whose 911 notice went out while Redis was down, so that the platform's
    retry, once Redis is back, queues the conversation without a second notice. In memory:
    a retry that lands on another replica sends the notice again, which is the safe side."""

    def __init__(self, limit: int = 10_000) -> None:
        # id -> True once the notice reached the platform, False while it is being sent.
        self._ids: OrderedDict[str, bool] = OrderedDict()
        self._limit = limit

    def add(self, channel: str, message_id: str) -> bool:
        """Claim the id for sending; False if a send is under way or done."""
        key = f"{channel}:{message_id}"
        if key in self._ids:
            return False
        self._ids[key] = False
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True

    def sent(self, channel: str, message_id: str, delivered: bool) -> None:
        """Record the send's outcome: a failed one is forgotten, so the retry sends again."""
        key = f"{channel}:{message_id}"
        if delivered:
            self._ids[key] = True
        else:
            self._ids.pop(key, None)

    def pop(self, channel: str, message_id: str) -> bool:
        """Whether the notice for this message reached the platform while Redis was down."""
        return self._ids.pop(f"{channel}:{message_id}", False) is True


@dataclass
class Services:
    settings: Settings
    # The agencies this deployment serves (one, in the usual case) and their departments.
    deployment: Deployment
    redis: Redis
    http: aiohttp.ClientSession
    net: SafetyNet
    queue: HumanQueue
    inbox: Inbox
    delivery: Delivery
    rasa: RasaClient
    window: NoticeWindow
    tarpit: Tarpit
    disclosure: Disclosure
    presence: Presence
    audit_log: AuditLog
    # Meta threads another app (the page's own inbox) owns: Beacon answers nothing there.
    threads: ThreadOwners
    offline_notices: OfflineNotices = field(default_factory=OfflineNotices)
    # The safety net's checks, off the event loop on one thread (bot.cpu_lane).
    _lane: CpuLane = field(default_factory=CpuLane)

    def start_cpu(self) -> None:
        self._lane.start()

    def close_cpu(self) -> None:
        self._lane.close()

    async def check_off_loop(self, text: str, *, lane: int, flow: str = "") -> SafetyResult:
        """The safety net on one text, on the CPU lane (``lane``: LANE_PLATFORM,
        LANE_WEB_CHAT or LANE_OVER_LIMIT; ``flow``: the agency, which takes turns with the
        other agencies within a lane)."""
        # The cost is the text the rules read, after NFKC (one character can become 18:
        # a batch of 2,000 such characters was 36,000 characters of work; live attack).
        return await self._lane.run(lane, self.net.check_many, text, flow=flow,
                                    cost=len(bounded(text, MAX_CHECK_CHARS)))

    @classmethod
    def build(cls, settings: Settings, deployment: Deployment, redis: Redis,
              http: aiohttp.ClientSession, net: SafetyNet) -> Services:
        return cls(
            settings=settings,
            deployment=deployment,
            redis=redis,
            http=http,
            net=net,
            queue=HumanQueue(redis, retention_seconds=settings.retention_seconds,
                             deployment=deployment),
            presence=Presence(redis, settings.duty_ttl),
            audit_log=AuditLog(redis, settings.retention_seconds, deployment),
            inbox=Inbox(redis, dedupe_ttl=settings.dedupe_ttl, rate_limit=settings.rate_limit,
                        rate_window=settings.rate_window,
                        notice_window=settings.notice_window,
                        lock_ttl_ms=settings.lock_ttl_s * 1000,
                        language_ttl=settings.retention_seconds, deployment=deployment),
            delivery=Delivery(redis, http, settings, deployment),
            rasa=RasaClient(http, settings.rasa_url, settings.rasa_timeout),
            window=NoticeWindow(redis, settings.notice_window),
            tarpit=Tarpit(settings.refusal_delay_s, settings.refusal_max_held),
            threads=ThreadOwners(redis, (settings.meta_app_id, settings.instagram_app_id)),
            disclosure=Disclosure(redis, settings.disclosure_silence_days * 86400),
        )

    def agency(self, conversation_id: str) -> Agency:
        """The agency a conversation belongs to (Deployment.answering)."""
        return self.deployment.answering(conversation_id)

    def department(self, conversation_id: str) -> Department:
        """The facts, hours and answers a conversation is answered with."""
        return self.agency(conversation_id).department

    def event(self, kind: str, conversation_id: str = "",
              scope: keys.AgencyKeys | None = None, **data: object) -> Tuple[str, str]:
        """(channel, payload) of a console event: the conversation's agency's (or
        ``scope``'s) channel, and what changed."""
        event: Dict[str, object] = {"type": kind, "conversation": conversation_id,
                                    "ts": time.time(), **data}
        scope = scope or self.deployment.keys_for(conversation_id)
        return scope.events, json.dumps(event, ensure_ascii=False)

    async def publish(self, kind: str, conversation_id: str = "",
                      scope: keys.AgencyKeys | None = None, **data: object) -> None:
        """Tell the consoles of the conversation's agency (or ``scope``'s) that something
        changed (fire and forget)."""
        await self.redis.publish(*self.event(kind, conversation_id, scope, **data))

    async def audit(self, conversation_id: str, actor: str, action: str, detail: str = "",
                    *, mark: Tuple[str, int] | None = None,
                    publish: Tuple[str, str] | None = None, **facts: object) -> None:
        """Append to the conversation's audit log (every message in and out); ``facts``
        are what the reports count, ``mark`` and ``publish`` what the same step also
        does (``bot.audit``)."""
        await self.audit_log.append(conversation_id, actor, action, detail, mark=mark,
                                    publish=publish, **facts)
