"""The one decision function: (intent, confidence, safety-net result) -> outcome.

The Rasa action, the CLI, the gateway (when Rasa is down) and the tests all call
:func:`decide`, so a message gets the same outcome wherever it is triaged.

Order of precedence, safety first:

1. The safety net's crisis flag, then its emergency flag: deterministic rules win.
2. The classifier's urgent intents (``crisis``, ``emergency``) at modest confidence.
3. When the classifier is unsure and anything looks urgent (an urgent intent near the top
   of the ranking, or a weak cue such as "help" or "gun"), the emergency notice: a false
   alarm costs a citizen one extra paragraph, a miss can cost a life.
4. Otherwise the top intent, with unsure or unknown ones going to a person.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping, Sequence

from bot.safety_net import CRISIS, EMERGENCY, SafetyResult
from bot.topics import (
    CRISIS_INTENT,
    REPORT_INTENT,
    SMALLTALK_INTENTS,
    URGENT_INTENTS,
    topic_of,
)

# An urgent top intent needs only this much confidence to count.
URGENT_MIN_CONFIDENCE = 0.30
# Any other top intent needs this much, or the message goes to a person.
MIN_CONFIDENCE = 0.45
# The classifier counts as "unsure" below this top confidence ...
UNSURE_BELOW = 0.70
# ... and then an urgent intent with at least this much in the ranking sends the notice.
URGENT_RUNNER_UP = 0.15


class Outcome(str, enum.Enum):
    EMERGENCY = "emergency"
    CRISIS = "crisis"
    REPORT = "report"
    FAQ = "faq"
    HUMAN = "human"
    SMALLTALK = "smalltalk"

    @property
    def urgent(self) -> bool:
        return self in (Outcome.EMERGENCY, Outcome.CRISIS)

    @property
    def routed(self) -> bool:
        """Outcomes that put the conversation in the human queue."""
        return self not in (Outcome.FAQ, Outcome.SMALLTALK)

    @property
    def priority(self) -> int:
        """Queue priority: 0 is served first."""
        return 0 if self.urgent else 1


@dataclass(frozen=True)
class Decision:
    """An outcome, the FAQ topic when there is one, and a short reason for the record."""

    outcome: Outcome
    topic: str | None
    reason: str
    # The intent the decision rests on (the classifier's top one, or the urgent runner-up).
    intent: str | None = None


def decide(
    intent: str | None,
    confidence: float,
    safety: SafetyResult,
    ranking: Sequence[Mapping] = (),
) -> Decision:
    """Turn the classifier's view and the safety net's flags into one outcome.

    ``ranking`` is Rasa's ``intent_ranking`` (dicts with ``name`` and ``confidence``); when
    Rasa's FallbackClassifier replaced the intent with ``nlu_fallback``, the ranking still
    holds what the classifier thought.
    """
    if safety.flag == CRISIS:
        return Decision(Outcome.CRISIS, None, "safety net: crisis language", intent)
    if safety.flag == EMERGENCY:
        return Decision(Outcome.EMERGENCY, None, "safety net: emergency language", intent)

    scores = {r.get("name"): float(r.get("confidence") or 0.0) for r in ranking}
    if intent and intent not in scores:
        scores[intent] = confidence
    classified = [(name, score) for name, score in scores.items() if name != "nlu_fallback"]
    top, top_score = max(classified, key=lambda r: r[1], default=(intent, confidence))

    if top in URGENT_INTENTS and top_score >= URGENT_MIN_CONFIDENCE:
        return Decision(_urgent(top), None, f"classifier: {top} {top_score:.2f}", top)
    if top_score < UNSURE_BELOW:
        runner = max(URGENT_INTENTS, key=lambda name: scores.get(name, 0.0))
        if scores.get(runner, 0.0) >= URGENT_RUNNER_UP:
            return Decision(
                _urgent(runner), None,
                f"unsure ({top} {top_score:.2f}) and {runner} {scores[runner]:.2f}", runner,
            )
        if safety.cues:
            return Decision(
                Outcome.EMERGENCY, None,
                f"unsure ({top} {top_score:.2f}) and urgent cues {', '.join(safety.cues)}", top,
            )
    if top is None or top_score < MIN_CONFIDENCE:
        return Decision(Outcome.HUMAN, None, f"unsure ({top} {top_score:.2f})", top)
    topic = topic_of(top)
    if topic:
        return Decision(Outcome.FAQ, topic, f"classifier: {top} {top_score:.2f}", top)
    if top == REPORT_INTENT:
        return Decision(Outcome.REPORT, None, f"classifier: report {top_score:.2f}", top)
    if top in SMALLTALK_INTENTS:
        return Decision(Outcome.SMALLTALK, None, f"classifier: {top} {top_score:.2f}", top)
    return Decision(Outcome.HUMAN, None, f"classifier: {top} {top_score:.2f}", top)


def _urgent(intent: str) -> Outcome:
    return Outcome.CRISIS if intent == CRISIS_INTENT else Outcome.EMERGENCY

