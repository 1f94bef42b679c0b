"""The one action every message reaches: triage, reply, and route to a person."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from redis.exceptions import RedisError

from actions.base import BeaconAction
from bot.logs import conversation_ref
from bot.queue import Entry, suspect_fields
from bot.rasa_client import TRIAGE_PAYLOAD
from bot.respond import Triaged, triage_parse

logger = logging.getLogger(__name__)


def transcript_entries(events: List[Dict[str, Any]], replies: List[str], now: float) -> List[Entry]:
    """The conversation so far from tracker events, plus the replies about to be sent."""
    entries = [
        Entry(role="citizen" if e["event"] == "user" else "bot", text=e.get("text") or "",
              ts=float(e.get("timestamp") or 0.0))
        for e in events
        if e.get("event") in ("user", "bot") and e.get("text")
    ]
    # Replies get distinct, increasing stamps after everything before them.
    start = max([now] + [e.ts for e in entries])
    entries += [
        Entry(role="bot", text=text, ts=start + (i + 1) / 1000) for i, text in enumerate(replies)
    ]
    return entries


def latest_metadata(tracker: Tracker) -> Dict[str, Any]:
    """The gateway's metadata for the latest message.

    Rasa 3.6 keeps a message's metadata on its ``user`` event, not in the parse data that
    ``latest_message`` holds (the NLU graph outputs only text, intent and entities)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return tracker.latest_message.get("metadata") or {}


def _received(metadata: Dict[str, Any], tracker: Tracker) -> float:
    """When the gateway received the latest message (else when Rasa logged it)."""
    value = metadata.get("received")
    if isinstance(value, (int, float)):
        return float(value)
    return float(next((e.get("timestamp") for e in reversed(tracker.events)
                       if e.get("event") == "user"), None) or time.time())


def queue_fields(tracker: Tracker, triaged: Triaged) -> Dict[str, Any]:
    # The gateway names the platform in the message metadata; Rasa only knows "rest".
    metadata = latest_metadata(tracker)
    return {
        "channel": metadata.get("channel") or tracker.get_latest_input_channel() or "unknown",
        "sender": tracker.sender_id,
        "outcome": triaged.decision.outcome.value,
        "topic": triaged.decision.topic,
        "intent": triaged.intent,
        "confidence": round(triaged.confidence, 4),
        "safety_net": triaged.safety.flag,
        "reason": triaged.decision.reason,
        "language": triaged.safety.language,
        "preview": triaged.text[:200],
        # Meta's 24-hour reply window counts from the citizen's last message.
        "last_citizen_at": next((e.get("timestamp") for e in reversed(tracker.events)
                                 if e.get("event") == "user"), None),
    }


class ActionTriage(BeaconAction):
    """Decide the outcome of the latest message, answer it, and queue it when a person is needed."""

    def name(self) -> str:
        return "action_triage"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        now = time.time()
        # The gateway says when its intake sent the notice for this very message (and so
        # opened the window): then this message is not a follow-up of itself.
        metadata = latest_metadata(tracker)
        received = _received(metadata, tracker)
        context = None if metadata.get("notice") else await self.window.outcome(
            tracker.sender_id, received)
        triaged = triage_parse(
            tracker.latest_message,
            self.department(tracker.sender_id),
            monitoring=await self.monitoring(tracker.sender_id),
            now=dt.datetime.fromtimestamp(now, dt.timezone.utc),
            urgent_context=context,
            language=metadata.get("language"),
        )
        outcome = triaged.decision.outcome
        if outcome.urgent and not triaged.decision.followup and not metadata.get("notice"):
            await self.window.open(tracker.sender_id, outcome.value, received)
        if outcome.routed:
            try:
                await self.queue.enqueue(
                    tracker.sender_id,
                    # An urgent message from an address flooding the web chat waits among
                    # the others (the gateway says so); it still got the notice.
                    priority=outcome.priority,
                    fields={**queue_fields(tracker, triaged),
                            **suspect_fields(metadata.get("suspect"))},
                    entries=transcript_entries(tracker.events, triaged.replies, now),
                    now=now,
                )
            except (RedisError, OSError) as exc:
                # The citizen still gets the replies; the gateway re-queues what Redis lost.
                logger.error("could not queue conversation %s: %s",
                             conversation_ref(tracker.sender_id), exc)
        for text in triaged.replies:
            dispatcher.utter_message(text=text)
        # For the gateway's metrics and logs (it reads REST replies, not slots); channels
        # that show custom payloads to people are not used with Beacon.
        dispatcher.utter_message(json_message={TRIAGE_PAYLOAD: {
            "outcome": outcome.value, "topic": triaged.decision.topic}})
        return [SlotSet("outcome", outcome.value), SlotSet("topic", triaged.decision.topic)]
