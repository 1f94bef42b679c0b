"""Platform adapters: each turns its platform's webhook payload into ``Inbound`` messages.

Adapters are pure (no I/O): signature checks, payload parsing and send-request bodies, so
they can be tested on the platforms' documented payloads alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from bot.messages import Inbound


class PayloadError(ValueError):
    """The body is not a payload this platform sends; the gateway answers 400."""


@dataclass(frozen=True)
class Parsed:
    """The messages in one webhook delivery, and how many items were ignored (echoes,
    read receipts, the account's own messages, malformed items)."""

    messages: Tuple[Inbound, ...]
    ignored: int = 0
