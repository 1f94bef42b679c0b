"""Every Redis key Beacon uses, built here and nowhere else.

All keys start with ``beacon:``. Rasa's own tracker and lock stores use the prefix
``beaconrasa`` (endpoints.yml), so ``KEYS beacon:*`` never touches them and vice versa.
"""

from __future__ import annotations

PREFIX = "beacon"

# Sorted set of waiting conversation ids; score = priority * PRIORITY_SPAN + waiting-since ms,
# so urgent conversations come first and, within a priority, the oldest.
QUEUE = f"{PREFIX}:queue"
PRIORITY_SPAN = 10**13
# Set of staff names that may be on duty; each one's presence is its own key with a TTL.
DUTY_INDEX = f"{PREFIX}:duty"


def conversation(conversation_id: str) -> str:
    """Hash: channel, sender, outcome, priority, status, waiting-since and other metadata."""
    return f"{PREFIX}:conv:{conversation_id}"


def transcript(conversation_id: str) -> str:
    """List of JSON entries ``{"role", "text", "ts"}``, oldest first."""
    return f"{PREFIX}:transcript:{conversation_id}"


def on_duty(staff: str) -> str:
    """String with a TTL: present while the staff member's heartbeat keeps refreshing it."""
    return f"{PREFIX}:duty:{staff}"
