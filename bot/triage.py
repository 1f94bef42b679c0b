"""The one decision function: (intent, confidence, safety-net result) -> outcome.

The Rasa action, the CLI, the gateway (when Rasa is down) and the tests all call
:func:`decide`, so a message gets the same outcome wherever it is triaged.

Order of precedence, safety first:

1. The safety net's crisis flag, then its emergency flag (its rules, or the urgency model at
   the threshold cross-validation chose): the same flag the gateway's intake acted on.
2. A message in a language Beacon does not answer in goes to a person (the intent model
   knows English and Spanish only; its guess on Chinese or Arabic text is noise).
3. The intent classifier's urgent intents (``crisis``, ``emergency``) as its top intent.
4. Otherwise the top intent, with unsure or unknown ones going to a person.

Inside a conversation's notice window (the 911 notice went out minutes ago) every message
but smalltalk is a follow-up of the urgent conversation: it stays urgent, at the top of the
queue, and gets a short acknowledgement instead of the notice again or of an answer that
would contradict it ("he's got something in his hand now" is not a question for the FAQ).

An earlier rule sent the notice whenever the classifier was unsure and an urgent intent had
0.15 of the ranking, or a weak cue ("help", "gun") appeared: on text unlike the training
data (timers, translations, tweets) the classifier is always unsure, so that rule fired on
everything unfamiliar. The urgency model replaces it with a calibrated score.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping, Sequence

from bot.safety_result import CRISIS, EMERGENCY, SafetyResult
from bot.topics import (
    CRISIS_INTENT,
    REPORT_INTENT,
    SMALLTALK_INTENTS,
    URGENT_INTENTS,
    topic_of,
)

# The languages the intent model was trained on and Beacon answers in.
ANSWERED_LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Thresholds:
    """The confidence a non-urgent top intent needs (else a person answers), and the one an
    urgent top intent needs to count. Chosen by cross-validation with the intent model
    (``bot.intent_model.cross_validate``) and carried in Rasa's parse data with it; these
    defaults serve callers without a model (tests, the Rasa-down path)."""

    min_confidence: float = 0.45
    urgent_min_confidence: float = 0.30

    @classmethod
    def from_parse(cls, data: Mapping | None) -> Thresholds:
        if not isinstance(data, Mapping):
            return cls()
        try:
            return cls(float(data["min_confidence"]), float(data["urgent_min_confidence"]))
        except (KeyError, TypeError, ValueError):
            return cls()


# The key under which Rasa's parse data carries them (bot.nlu_component).
THRESHOLDS_KEY = "triage_thresholds"


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
    # The intent the decision rests on (the classifier's top one).
    intent: str | None = None
    # A follow-up inside the notice window: urgent, but the notice is not repeated.
    followup: bool = False


def decide(
    intent: str | None,
    confidence: float,
    safety: SafetyResult,
    ranking: Sequence[Mapping] = (),
    urgent_context: str | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Decision:
    """Turn the classifier's view and the safety net's flags into one outcome.

    ``ranking`` is Rasa's ``intent_ranking`` (dicts with ``name`` and ``confidence``); when
    Rasa's FallbackClassifier replaced the intent with ``nlu_fallback``, the ranking still
    holds what the classifier thought. ``urgent_context`` is the outcome whose notice window
    is open in this conversation (None when there is none, or when this message opened it).
    """
    decision = _decide(intent, confidence, safety, ranking, thresholds)
    if urgent_context in (CRISIS, EMERGENCY) and decision.outcome is not Outcome.SMALLTALK:
        # The graver of the two outcomes stands: a crisis stays a crisis.
        outcome = Outcome.CRISIS if CRISIS in (urgent_context, decision.outcome.value) \
            else Outcome.EMERGENCY
        return Decision(outcome, None, f"follow-up in an urgent conversation "
                        f"({decision.reason})", decision.intent, followup=True)
    return decision


def _decide(intent: str | None, confidence: float, safety: SafetyResult,
            ranking: Sequence[Mapping], thresholds: Thresholds) -> Decision:
    tier = safety.tier or "rules"
    if safety.flag == CRISIS:
        return Decision(Outcome.CRISIS, None, f"safety net ({tier}): crisis", intent)
    if safety.flag == EMERGENCY:
        return Decision(Outcome.EMERGENCY, None, f"safety net ({tier}): emergency", intent)
    if safety.language not in ANSWERED_LANGUAGES:
        return Decision(Outcome.HUMAN, None, f"language: {safety.language}", intent)

    scores = {r.get("name"): float(r.get("confidence") or 0.0) for r in ranking}
    if intent and intent not in scores:
        scores[intent] = confidence
    classified = [(name, score) for name, score in scores.items() if name != "nlu_fallback"]
    top, top_score = max(classified, key=lambda r: r[1], default=(intent, confidence))

    if top in URGENT_INTENTS and top_score >= thresholds.urgent_min_confidence:
        return Decision(outcome_of(top), None, f"classifier: {top} {top_score:.2f}", top)
    if top is None or top_score < thresholds.min_confidence:
        return Decision(Outcome.HUMAN, None, f"unsure ({top} {top_score:.2f})", top)
    return Decision(outcome_of(top), topic_of(top), f"classifier: {top} {top_score:.2f}",
                    top)


def outcome_of(intent: str) -> Outcome:
    """The outcome an intent stands for (what a confident classifier's top intent gets)."""
    if intent in URGENT_INTENTS:
        return Outcome.CRISIS if intent == CRISIS_INTENT else Outcome.EMERGENCY
    if topic_of(intent):
        return Outcome.FAQ
    if intent == REPORT_INTENT:
        return Outcome.REPORT
    if intent in SMALLTALK_INTENTS:
        return Outcome.SMALLTALK
    return Outcome.HUMAN

