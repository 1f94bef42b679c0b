"""Platform adapters: each turns its platform's webhook payload into ``Inbound`` messages.

Adapters are pure (no I/O): signature checks, payload parsing and send-request bodies, so
they can be tested on the platforms' documented payloads alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Tuple

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


class PayloadError(ValueError):
    """The body is not a payload this platform sends; the gateway answers 400."""


@dataclass(frozen=True)
class Parsed:
    """The messages in one webhook delivery, and how many items were ignored (echoes,
    read receipts, the account's own messages, malformed items)."""

    messages: Tuple[Inbound, ...]
    ignored: int = 0
