"""Names shared by the model, the decision function and the department file.

The intent names here must match ``domain.yml``; a test checks that they do.
"""

from __future__ import annotations

# FAQ topics, in the order the department file lists them. Intent name: ``faq_<topic>``.
FAQ_TOPICS = (
    "records_request",
    "pay_citation",
    "fingerprinting",
    "lost_property",
    "towed_vehicle",
    "file_report",
    "non_emergency_contact",
    "hours_location",
    "careers",
    "ride_along",
    "house_watch",
    "officer_feedback",
    "anonymous_tip",
    "account_monitoring",
    "community_events",
    "animal_control",
)
FAQ_PREFIX = "faq_"

EMERGENCY_INTENT = "emergency"
CRISIS_INTENT = "crisis"
REPORT_INTENT = "report"
HUMAN_INTENT = "human"
OUT_OF_SCOPE_INTENT = "out_of_scope"
FALLBACK_INTENT = "nlu_fallback"  # set by Rasa's FallbackClassifier
SMALLTALK_INTENTS = ("greet", "thanks", "goodbye", "bot_challenge", "compliment")

URGENT_INTENTS = (EMERGENCY_INTENT, CRISIS_INTENT)

ALL_INTENTS = (
    EMERGENCY_INTENT,
    CRISIS_INTENT,
    REPORT_INTENT,
    HUMAN_INTENT,
    OUT_OF_SCOPE_INTENT,
    *SMALLTALK_INTENTS,
    *(FAQ_PREFIX + t for t in FAQ_TOPICS),
)


def topic_of(intent: str) -> str | None:
    """The FAQ topic an intent names, or None."""
    if intent.startswith(FAQ_PREFIX) and intent[len(FAQ_PREFIX):] in FAQ_TOPICS:
        return intent[len(FAQ_PREFIX):]
    return None
