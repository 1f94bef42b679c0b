"""From Rasa's parse data to outcome and replies: shared by the action, the CLI and the gateway."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from bot.department import Department
from bot.replies import render_replies
from bot.safety_result import SAFETY_NET_KEY, SafetyResult
from bot.triage import THRESHOLDS_KEY, Decision, Thresholds, decide

if TYPE_CHECKING:
    from bot.safety_net import SafetyNet


@dataclass(frozen=True)
class Triaged:
    """One message, triaged: what it was, what was decided, what the citizen gets."""

    text: str
    intent: str | None
    confidence: float
    safety: SafetyResult
    decision: Decision
    replies: List[str]

    def as_record(self) -> Dict[str, Any]:
        """The CLI's JSON line."""
        return {
            "text": self.text,
            "outcome": self.decision.outcome.value,
            "topic": self.decision.topic,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "safety_net": self.safety.flag,
            # Which intake tier flagged it ("rules" or "model"; None when neither did): what
            # the gateway's fast path acts on before Rasa answers.
            "tier": self.safety.tier,
            "urgency": round(self.safety.urgency, 4),
            "language": self.safety.language,
            "replies": self.replies,
        }


def triage_parse(
    parse_data: Mapping[str, Any],
    department: Department,
    *,
    monitoring: bool,
    now: dt.datetime,
    net: SafetyNet | None = None,
    urgent_context: str | None = None,
    language: str | None = None,
) -> Triaged:
    """Decide and render replies for one parsed message.

    The safety-net result is read from the parse data when Rasa's pipeline added it;
    otherwise (an older model, or no Rasa at all) the safety net runs here. ``language``
    is the conversation's reply language when the gateway knows it (Rasa's pipeline sees
    only this message, and "ok" shows no language).
    """
    text = parse_data.get("text") or ""
    intent_data = parse_data.get("intent") or {}
    intent = intent_data.get("name")
    confidence = float(intent_data.get("confidence") or 0.0)
    raw_safety = parse_data.get(SAFETY_NET_KEY)
    if isinstance(raw_safety, dict):
        safety = SafetyResult.from_dict(raw_safety)
    else:
        # Only without Rasa's result: the rules and spaCy load here, not in the action
        # server, which always has it.
        from bot.safety_net import get_safety_net

        safety = (net or get_safety_net()).check(text)
    if isinstance(language, str) and language and language != safety.language:
        safety = dataclasses.replace(safety, language=language)
    decision = decide(intent, confidence, safety, parse_data.get("intent_ranking") or [],
                      urgent_context=urgent_context,
                      thresholds=Thresholds.from_parse(parse_data.get(THRESHOLDS_KEY)))
    replies = render_replies(
        decision, department, monitoring=monitoring, now=now, language=safety.language
    )
    return Triaged(text, intent, confidence, safety, decision, replies)
