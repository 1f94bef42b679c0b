"""Everything the gateway's handlers and background tasks share, built once per process."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict

import aiohttp
from redis.asyncio import Redis

from bot import keys
from bot.agencies import Agency, Deployment
from bot.audit import AuditLog
from bot.delivery import Delivery
from bot.department import Department
from bot.disclosure import Disclosure
from bot.inbox import Inbox
from bot.notice_window import NoticeWindow
from bot.presence import Presence
from bot.queue import HumanQueue
from bot.rasa_client import RasaClient
from bot.safety_net import SafetyNet
from bot.settings import Settings
from bot.tarpit import Tarpit
from bot.thread_control import ThreadOwners

LANE_PLATFORM, LANE_WEB_CHAT, LANE_OVER_LIMIT = 0, 1, 2


class CpuLane:
    """One CPU thread fed in priority order (lower lane first), and within a lane in turns
    between flows (agencies), first come first served within a flow.

    The turns are start-time fair queueing: a job's tag is one more than the later of its
    flow's last tag and the tag of the job running now, so a flow that floods the lane gets
    tags far ahead while a quiet flow's next job is tagged just after the current one (an
    agency's viral post, 1,200 checks queued, held another agency's emergency 10-13 s at
    intake before; found by the live attack)."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        self._queue: asyncio.PriorityQueue = asyncio.PriorityQueue()
        self._count = itertools.count()
        self._runner: asyncio.Task | None = None
        self._now = 0  # the tag of the job started last
        self._last: Dict[str, int] = {}  # each flow's last tag

    def start(self) -> None:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._serve())

    async def run(self, priority: int, fn, *args, flow: str = ""):
        self.start()
        done = asyncio.get_running_loop().create_future()
        tag = max(self._last.get(flow, 0), self._now) + 1
        self._last[flow] = tag
        if len(self._last) > 10_000:  # flows are agencies: a handful; never let it grow
            self._last = {flow: tag}
        await self._queue.put((priority, tag, next(self._count), fn, args, done))
        return await done

    def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            _, tag, _, fn, args, done = await self._queue.get()
            if done.cancelled():
                continue
            self._now = max(self._now, tag)
            try:
                result = await loop.run_in_executor(self._executor, fn, *args)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(result)


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
    # CPU-bound work off the event loop, one thread at a time (spaCy's pipelines are not
    # meant to be shared between threads): the safety net.
    cpu: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="cpu"))
    _lane: CpuLane | None = None

    def start_cpu(self) -> None:
        if self._lane is None:
            self._lane = CpuLane(self.cpu)
        self._lane.start()

    def close_cpu(self) -> None:
        if self._lane is not None:
            self._lane.close()
        self.cpu.shutdown(wait=False, cancel_futures=True)

    async def off_loop(self, fn, *args, lane: int = 0, flow: str = ""):
        """Run ``fn(*args)`` on the CPU thread; the event loop keeps serving meanwhile.

        Lower lanes go first (LANE_PLATFORM, LANE_WEB_CHAT, LANE_OVER_LIMIT): work from the
        unauthenticated web chat waits behind work from the signed platforms (a web-chat
        flood of the worst texts, 1,258 posts beside 50 Messenger citizens, must not hold up
        a Messenger emergency's check), and an address over its limit waits behind every
        other web-chat citizen (400 held refusals from one address delayed another address's
        emergency by 2 s; found by the live attack). ``flow`` (the agency) takes turns
        with the other flows within a lane (CpuLane)."""
        self.start_cpu()
        return await self._lane.run(lane, fn, *args, flow=flow)

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

    async def publish(self, kind: str, conversation_id: str = "",
                      scope: keys.AgencyKeys | None = None, **data: object) -> None:
        """Tell the consoles of the conversation's agency (or ``scope``'s) that something
        changed (fire and forget)."""
        event: Dict[str, object] = {"type": kind, "conversation": conversation_id,
                                    "ts": time.time(), **data}
        scope = scope or self.deployment.keys_for(conversation_id)
        await self.redis.publish(scope.events, json.dumps(event, ensure_ascii=False))

    async def audit(self, conversation_id: str, actor: str, action: str, detail: str = "",
                    **facts: object) -> None:
        """Append to the conversation's audit log (every message in and out); ``facts``
        are what the reports count (``bot.audit``)."""
        await self.audit_log.append(conversation_id, actor, action, detail, **facts)
