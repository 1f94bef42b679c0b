"""Platform adapters: each turns its platform's webhook payload into ``Inbound`` messages.

Adapters are pure (no I/O): signature checks, payload parsing and send-request bodies, so
they can be tested on the platforms' documented payloads alone.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

from bot.messages import Inbound

# Milliseconds since 1970 up to the year 2286: anything else is not a platform's timestamp.
_MAX_MS = 10**13


def timestamp_ms(value: object) -> float:
    """A platform's millisecond timestamp as seconds; 0.0 for anything that is not one
    (NaN, infinity, 1e400, 10**400 or a string of them would break storage further on)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if isinstance(value, bool) or not math.isfinite(number) or not 0 <= number < _MAX_MS:
        return 0.0
    return number / 1000


@dataclass(frozen=True)
class Outgoing:
    """One reply as its platform's send API takes it: one POST per body, in order (a long
    reply may be several). Built by the channel's module; ``bot.delivery`` sends it."""

    url: str
    bodies: Tuple[Dict, ...]
    params: Dict[str, str] = field(default_factory=dict)
    headers: Dict[str, str] = field(default_factory=dict)
    # Headers made afresh for every attempt, retries included (OAuth 1.0a: a new nonce and
    # timestamp per request, since X refuses a nonce it has seen).
    sign: Callable[[], Dict[str, str]] | None = field(default=None, compare=False)


class PayloadError(ValueError):
    """The body is not a payload this platform sends; the gateway answers 400."""


@dataclass(frozen=True)
class ThreadControl:
    """A change of who answers one conversation's thread (Meta's Conversation Routing /
    handover protocol: a ``messaging_handovers`` webhook event). The app ids are as Meta sent
    them (digits), None when absent or null (an idle thread)."""

    channel: str
    account: str
    sender: str
    action: str  # "pass_thread_control", "take_thread_control" or "request_thread_control"
    new_owner: str | None = None
    previous_owner: str | None = None
    requested_owner: str | None = None
    metadata: str = ""

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}:{self.account}:{self.sender}"


@dataclass(frozen=True)
class Parsed:
    """The messages in one webhook delivery, how many items were ignored (echoes,
    read receipts, the account's own messages, malformed items), and the thread-control
    changes it carried (Meta only)."""

    messages: Tuple[Inbound, ...]
    ignored: int = 0
    events: Tuple[ThreadControl, ...] = ()


def chunks(text: str, limit: int) -> list[str]:
    """Split on whitespace so that no chunk is longer than ``limit`` characters (a
    platform's text limit per message)."""
    if len(text) <= limit:
        return [text]
    return textwrap.wrap(text, width=limit, replace_whitespace=False) or [text[:limit]]


def byte_chunks(text: str, max_bytes: int) -> list[str]:
    """Split on whitespace so that no chunk is longer than ``max_bytes`` in UTF-8."""
    width = max_bytes
    parts = chunks(text, width)
    while any(len(p.encode("utf-8")) > max_bytes for p in parts) and width > 1:
        width = max(1, width * 4 // 5)
        parts = chunks(text, width)
    return parts
