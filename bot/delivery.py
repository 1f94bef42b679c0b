"""Sending replies: each platform's send API, or the outbox when it has no credentials.

With no credentials (the default locally) every reply is recorded in the outbox, visible
in the console, so the whole flow runs on one machine. Web chat replies always go to the
session's list, which the chat page reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Coroutine, Dict, Set, Tuple

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import keys, metrics
from bot.agencies import Credentials, Deployment, keys_of
from bot.channels import instagram, meta, x
from bot.messages import INSTAGRAM, MESSENGER, WEBCHAT, X, account_of
from bot.platform_limits import PlatformLimits, retry_after
from bot.settings import Settings

logger = logging.getLogger(__name__)

OUTBOX_LIMIT = 10_000
# Sender actions ("seen", "typing") in flight at once; more are skipped. They share the HTTP
# client's connections with the replies and the 911 notice: 300 of them stuck on a slow
# Graph API held an urgent message's notice for 1.7 s (found by the live attack).
SENDER_ACTIONS_AT_ONCE = 8
# Seconds between attempts; a failed send is tried len(BACKOFF) + 1 times.
BACKOFF = (0.5, 1.5)


@dataclass(frozen=True)
class Sent:
    ok: bool
    via: str  # "meta", "instagram", "x", "webchat" or "outbox"
    error: str = ""


class Delivery:
    """Delivers one reply to one citizen, with retries; never raises for a platform error."""

    def __init__(self, redis: Redis, http: aiohttp.ClientSession, settings: Settings,
                 deployment: Deployment | None = None) -> None:
        self.redis = redis
        self.http = http
        self.settings = settings
        # Whose tokens a reply is sent with: the agency that owns the conversation's account
        # (without a deployment, the environment's, as in a single-agency deployment).
        self.deployment = deployment
        self._environment = Credentials.from_settings(settings)
        # Best-effort requests under way (sender actions), held so they are not collected.
        self._background: Set[asyncio.Task] = set()
        self._actions = asyncio.Semaphore(SENDER_ACTIONS_AT_ONCE)
        self.limits = PlatformLimits(redis)

    def credentials(self, conversation_id: str) -> Credentials:
        if self.deployment is None:
            return self._environment
        agency = self.deployment.for_conversation(conversation_id)
        return agency.credentials if agency is not None else Credentials()

    def _configured(self, channel: str, conversation_id: str = "") -> str | None:
        c = self.credentials(conversation_id)
        # An Instagram account connected with Instagram Login is answered with its own token
        # on its own host; any other Instagram account is linked to the Page (its token).
        if (channel == INSTAGRAM and c.instagram_access_token
                and instagram.account_of(conversation_id) == c.instagram_account_id):
            return "instagram"
        if channel in (MESSENGER, INSTAGRAM) and c.meta_page_access_token:
            return "meta"
        if channel == X and c.x_access_token:
            return "x"
        return None

    async def send(self, conversation_id: str, channel: str, recipient: str, text: str, *,
                   human_agent: bool = False, counted: bool = True) -> Sent:
        """Send one reply. ``counted``: checked against the platform's limits first
        (bot.platform_limits); the offline notice, sent with Redis down, is not."""
        if channel == WEBCHAT:
            entry = {"role": "bot", "text": text, "ts": time.time()}
            await self.redis.rpush(keys.webchat(recipient), json.dumps(entry))
            await self.redis.expire(keys.webchat(recipient), self.settings.retention_seconds)
            return Sent(True, "webchat")
        via = self._configured(channel, conversation_id)
        if via is None:
            await self.record_outbox(conversation_id, channel, recipient, text, human_agent)
            return Sent(True, "outbox")
        # Platform ids were checked at intake; each channel's module checks them again
        # when it builds the request (a staff reply or a stored conversation reaches this
        # point too, and an id must never shape a request).
        c = self.credentials(conversation_id)
        try:
            if via == "instagram":
                out = instagram.outgoing(self.settings.instagram_graph_url,
                                         c.instagram_access_token, c.instagram_account_id,
                                         recipient, text, human_agent)
            elif via == "meta":
                out = meta.outgoing(self.settings.meta_graph_url,
                                    c.meta_page_access_token, recipient, text,
                                    human_agent, max_bytes=meta.INSTAGRAM_MAX_BYTES
                                    if channel == INSTAGRAM else None)
            else:
                out = x.outgoing(self.settings.x_api_url, c.x_access_token,
                                 recipient, text, api=self.settings.x_dm_api,
                                 oauth1=self._x_oauth1(c))
        except ValueError:
            logger.error("delivery to %s refused: invalid recipient id", channel,
                         extra={"channel": channel})
            return Sent(False, via, "invalid recipient id")
        account = account_of(conversation_id)[1] or "-"
        for body in out.bodies:
            wait = await self._budget(via, account) if counted else 0.0
            if wait:
                error = f"{via} rate limit: sending resumes in {_duration(wait)}"
            else:
                error = await self._post(out.url, out.params, out.headers, body, out.sign,
                                         limited=(via, account))
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

    async def _budget(self, via: str, account: str) -> float:
        """Seconds to wait for the platform's limit (bot.platform_limits); 0 when Redis is
        down: the offline 911 notice goes out on the platform's API then, uncounted, rather
        than not at all (found by the live attack)."""
        try:
            return await self.limits.take(via, account)
        except (RedisError, OSError) as exc:
            logger.warning("platform limits not checked (Redis: %s)", exc)
            return 0.0

    async def sender_action(self, conversation_id: str, channel: str, recipient: str,
                            action: str) -> bool:
        """One sender action (mark_seen, typing_on) to a Messenger or Instagram citizen:
        one attempt, a short timeout, no outbox; True when the platform took it. Never
        raises: a failure is logged and is nobody's reason to wait."""
        via = self._configured(channel, conversation_id)
        if via not in ("meta", "instagram"):
            return False  # no credentials (replies go to the outbox), or not a Meta channel
        if self._actions.locked():
            return False  # enough of them in flight: this one is not worth a connection
        async with self._actions:
            return await self._sender_action(conversation_id, channel, recipient, action, via)

    async def _sender_action(self, conversation_id: str, channel: str, recipient: str,
                             action: str, via: str) -> bool:
        s, c = self.settings, self.credentials(conversation_id)
        try:
            out = (instagram.sender_action(s.instagram_graph_url, c.instagram_access_token,
                                           c.instagram_account_id, recipient, action)
                   if via == "instagram" else
                   meta.sender_action(s.meta_graph_url, c.meta_page_access_token, recipient,
                                      action))
            async with self.http.post(out.url, params=out.params, headers=out.headers,
                                      json=out.bodies[0], timeout=aiohttp.ClientTimeout(
                                          total=min(5, s.send_timeout_s))) as response:
                if response.status < 300:
                    return True
                error = f"HTTP {response.status}: {(await response.text())[:200]}"
        except ValueError:
            error = "invalid recipient id"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        logger.warning("sender action %s to %s failed: %s", action, channel, error,
                       extra={"channel": channel})
        return False

    def in_background(self, coro: Coroutine) -> asyncio.Task:
        """Run a best-effort request beside the caller, which does not wait for it."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def cancel_background(self) -> None:
        """At shutdown: the best-effort requests still under way are dropped."""
        for task in list(self._background):
            task.cancel()

    def _x_oauth1(self, c: Credentials) -> x.OAuth1Keys | None:
        """The OAuth 1.0a keys when the account's token secret is set (the app's consumer
        keys are the deployment's; settings checked them)."""
        s = self.settings
        if not c.x_access_token_secret:
            return None
        return x.OAuth1Keys(s.x_consumer_key, s.x_consumer_secret, c.x_access_token,
                            c.x_access_token_secret)

    async def _post(self, url: str, params: Dict, headers: Dict, body: Dict,
                    sign: Callable[[], Dict[str, str]] | None = None,
                    limited: Tuple[str, str] | None = None) -> str:
        """POST with retries on network errors, 429 and 5xx; '' on success, else the error.
        ``sign`` adds headers made afresh for each attempt (a new OAuth 1.0a nonce). A 429
        that says when sending may resume blocks ``limited`` (channel, account) until then
        (bot.platform_limits) and is not retried sooner."""
        error = ""
        for attempt in range(len(BACKOFF) + 1):
            sent_headers = {**headers, **sign()} if sign is not None else headers
            try:
                async with self.http.post(url, params=params, headers=sent_headers, json=body,
                                          timeout=aiohttp.ClientTimeout(
                                              total=self.settings.send_timeout_s)) as response:
                    if response.status < 300:
                        return ""
                    error = f"HTTP {response.status}: {(await response.text())[:200]}"
                    if response.status < 500 and response.status != 429:
                        return error
                    resume = retry_after(response.headers) if response.status == 429 else None
                    if resume is not None and limited is not None:
                        with contextlib.suppress(RedisError, OSError):
                            await self.limits.block(*limited, resume)
                        if resume > BACKOFF[min(attempt, len(BACKOFF) - 1)] * 2:
                            return f"{error} (sending resumes in {_duration(resume)})"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < len(BACKOFF):
                await asyncio.sleep(BACKOFF[attempt])
        return error

    async def record_outbox(self, conversation_id: str, channel: str, recipient: str, text: str,
                      human_agent: bool) -> None:
        entry = {"ts": time.time(), "conversation": conversation_id, "channel": channel,
                 "recipient": recipient, "text": text, "human_agent": human_agent}
        outbox = keys_of(self.deployment, conversation_id).outbox
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(outbox, json.dumps(entry, ensure_ascii=False))
            pipe.ltrim(outbox, -OUTBOX_LIMIT, -1)
            pipe.expire(outbox, self.settings.retention_seconds)
            await pipe.execute()

    async def outbox(self, limit: int = 200, scope: keys.AgencyKeys = keys.SINGLE) -> list[Dict]:
        """An agency's most recent outbox entries, oldest first."""
        return [json.loads(x) for x in await self.redis.lrange(scope.outbox, -limit, -1)]


def _duration(seconds: float) -> str:
    # Rounded up: "resumes in 10 min" must not come back early.
    return f"{math.ceil(seconds)} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
