"""Slow answers for clients that are already being refused.

A 429 costs the gateway a whole request (parse, Redis, the safety net on web-chat text),
and a client that sends its next request the moment the last one is answered gets as many
429s as the process can write: measured on 2026-11-30, four such clients (two on the web
chat with fresh sessions, two guessing passwords) drew ~350 refusals a second from one
gateway and moved a Messenger citizen's 911 notice from p99 1.9 s to 8.1 s. Holding each
refusal for a moment costs a sleeping coroutine and caps such a client at one request per
connection per delay. A client that opens connection after connection is not slowed by
this (the held ones are capped, so they cannot exhaust memory): that is the reverse
proxy's per-address request rate to stop, as the README says.
"""

from __future__ import annotations

import asyncio


class Tarpit:
    def __init__(self, delay_s: float, max_held: int) -> None:
        self.delay_s = delay_s
        self.max_held = max_held
        self.held = 0

    async def hold(self, retry_after: float) -> None:
        """Wait before a refusal is sent: the configured delay, never longer than the
        refusal's own Retry-After, and not at all once ``max_held`` refusals are waiting."""
        delay = min(self.delay_s, max(0.0, retry_after))
        if delay <= 0 or self.held >= self.max_held:
            return
        self.held += 1
        try:
            await asyncio.sleep(delay)
        finally:
            self.held -= 1
