"""The decision function and the replies it leads to."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.replies import EMERGENCY_NOTICE, render_replies, routing_reply
from bot.safety_net import SafetyResult
from bot.triage import Decision, Outcome, decide

CALM = SafetyResult(flag=None, language="en")
CUE = SafetyResult(flag=None, language="en", cues=("cue.urgent",))
LA = ZoneInfo("America/Los_Angeles")
TUESDAY_NIGHT = dt.datetime(2026, 11, 24, 22, 0, tzinfo=LA)
TUESDAY_MORNING = dt.datetime(2026, 11, 24, 10, 0, tzinfo=LA)


def ranking(**scores):
    return [{"name": k, "confidence": v} for k, v in scores.items()]


@pytest.mark.parametrize(
    ("intent", "confidence", "safety", "rank", "outcome", "topic"),
    [
        ("faq_careers", 0.95, CALM, {}, Outcome.FAQ, "careers"),
        ("report", 0.9, CALM, {}, Outcome.REPORT, None),
        ("greet", 0.9, CALM, {}, Outcome.SMALLTALK, None),
        ("human", 0.8, CALM, {}, Outcome.HUMAN, None),
        ("out_of_scope", 0.9, CALM, {}, Outcome.HUMAN, None),
        ("emergency", 0.35, CALM, {}, Outcome.EMERGENCY, None),
        ("crisis", 0.5, CALM, {}, Outcome.CRISIS, None),
        # The safety net overrides a confident, calm classifier.
        ("greet", 0.99, SafetyResult(flag="emergency", language="en"), {}, Outcome.EMERGENCY, None),
        ("emergency", 0.99, SafetyResult(flag="crisis", language="en"), {}, Outcome.CRISIS, None),
        # The urgency model's flag counts like a rule's.
        ("faq_hours_location", 0.9, SafetyResult(flag="crisis", language="en", tier="model"),
         {}, Outcome.CRISIS, None),
        # An urgent runner-up or a weak cue no longer sends the notice: on unfamiliar text the
        # classifier is always unsure, and the urgency model owns "unsure but urgent".
        ("nlu_fallback", 0.45, CALM, {"nlu_fallback": 0.45, "report": 0.4, "emergency": 0.25},
         Outcome.HUMAN, None),
        ("report", 0.55, CALM, {"report": 0.55, "crisis": 0.2}, Outcome.REPORT, None),
        ("human", 0.5, CUE, {"human": 0.5, "report": 0.3}, Outcome.HUMAN, None),
        # Another language: a person reads it (the intent model knows English and Spanish).
        ("faq_careers", 0.9, SafetyResult(flag=None, language="zh"), {}, Outcome.HUMAN, None),
        ("emergency", 0.9, SafetyResult(flag=None, language="ko"), {}, Outcome.HUMAN, None),
        ("greet", 0.9, SafetyResult(flag="emergency", language="vi"), {}, Outcome.EMERGENCY,
         None),
        # A cue alone ("help") does not cry wolf.
        ("faq_records_request", 0.9, CUE, {}, Outcome.FAQ, "records_request"),
        # Unsure, nothing urgent: a person looks at it.
        ("nlu_fallback", 0.45, CALM, {"nlu_fallback": 0.45, "faq_careers": 0.3, "report": 0.2},
         Outcome.HUMAN, None),
        (None, 0.0, CALM, {}, Outcome.HUMAN, None),
    ],
)
def test_decide(intent, confidence, safety, rank, outcome, topic):
    decision = decide(intent, confidence, safety, ranking(**rank))
    assert (decision.outcome, decision.topic) == (outcome, topic), decision.reason


def test_outcome_properties():
    assert [o for o in Outcome if o.routed] == [
        Outcome.EMERGENCY, Outcome.CRISIS, Outcome.REPORT, Outcome.HUMAN]
    assert Outcome.EMERGENCY.priority == Outcome.CRISIS.priority == 0
    assert Outcome.REPORT.priority == Outcome.HUMAN.priority == 1


def test_emergency_notice_comes_first_and_says_so(department):
    decision = Decision(Outcome.EMERGENCY, None, "test")
    replies = render_replies(decision, department, monitoring=False, now=TUESDAY_NIGHT)
    first = replies[0]
    assert "call 911" in first and "text 911" in first
    assert "cannot dispatch" in first and "not monitored around the clock" in first
    assert not any("988" in r for r in replies)


def test_crisis_adds_988(department):
    decision = Decision(Outcome.CRISIS, None, "test")
    replies = render_replies(decision, department, monitoring=True, now=TUESDAY_MORNING)
    assert replies[0] == EMERGENCY_NOTICE["en"]
    assert any("988" in r and "call or text" in r for r in replies)


def test_spanish_emergency_is_bilingual(department):
    decision = Decision(Outcome.CRISIS, None, "test")
    replies = render_replies(decision, department, monitoring=False, now=TUESDAY_NIGHT,
                             language="es")
    assert replies[0] == EMERGENCY_NOTICE["es"] and replies[1] == EMERGENCY_NOTICE["en"]
    assert any("988" in r and "Línea" in r for r in replies)


def test_faq_answer_is_filled_from_the_department(department):
    replies = render_replies(Decision(Outcome.FAQ, "fingerprinting", "t"), department,
                             monitoring=False, now=TUESDAY_NIGHT)
    assert replies == [department.faq_answer("fingerprinting")]
    assert department.fees["fingerprinting"] in replies[0]


def test_report_tells_how_and_routes(department):
    replies = render_replies(Decision(Outcome.REPORT, None, "t"), department,
                             monitoring=True, now=TUESDAY_MORNING)
    assert department.urls["online_report"] in replies[0]
    assert replies[-1] == "A member of our staff will reply here shortly."


def test_after_hours_says_when_staff_are_back(department):
    text = routing_reply(department, monitoring=False, now=TUESDAY_NIGHT)
    assert "not monitored 24/7" in text and "call 911" in text
    assert "tomorrow at 8:00 AM" in text


def test_nobody_on_duty_in_hours(department):
    text = routing_reply(department, monitoring=False, now=TUESDAY_MORNING)
    assert "nobody is on duty right now" in text and "call 911" in text


def test_smalltalk_bot_challenge_says_automated(department):
    replies = render_replies(Decision(Outcome.SMALLTALK, None, "t", "bot_challenge"),
                             department, monitoring=False, now=TUESDAY_NIGHT)
    assert "automated assistant" in replies[0] and "not a person" in replies[0]


# -- the notice window: follow-ups of an urgent conversation --------------------------------

@pytest.mark.parametrize(("intent", "context", "outcome"), [
    ("faq_hours_location", "emergency", Outcome.EMERGENCY),  # "he's got something in his hand"
    ("human", "emergency", Outcome.EMERGENCY),
    ("report", "crisis", Outcome.CRISIS),
    ("crisis", "emergency", Outcome.CRISIS),  # the graver outcome stands
    ("emergency", "crisis", Outcome.CRISIS),
])
def test_followups_stay_urgent(intent, context, outcome, department):
    decision = decide(intent, 0.9, CALM, urgent_context=context)
    assert decision.outcome is outcome and decision.followup
    replies = render_replies(decision, department, monitoring=True, now=TUESDAY_MORNING)
    # One short line: no repeated notice, no FAQ answer, no "a person will follow up".
    assert len(replies) == 1 and "911" in replies[0]
    assert replies[0] != EMERGENCY_NOTICE["en"]
    assert department.faq_answer("hours_location") not in replies


def test_smalltalk_after_an_emergency_is_answered_as_smalltalk():
    decision = decide("thanks", 0.95, CALM, urgent_context="emergency")
    assert decision.outcome is Outcome.SMALLTALK and not decision.followup


def test_no_window_no_followup():
    decision = decide("faq_hours_location", 0.95, CALM, urgent_context=None)
    assert decision.outcome is Outcome.FAQ and not decision.followup


def test_spanish_followup_line(department):
    decision = decide("faq_hours_location", 0.9, SafetyResult(flag=None, language="es"),
                      urgent_context="emergency")
    (line,) = render_replies(decision, department, monitoring=False, now=TUESDAY_NIGHT,
                             language="es")
    assert "911" in line and "peligro" in line


# -- other languages -------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["zh", "vi", "tl", "ar", "ko", "ru", "ht", "fr"])
def test_other_language_gets_its_one_line(language, department):
    decision = decide("faq_careers", 0.9, SafetyResult(flag=None, language=language))
    replies = render_replies(decision, department, monitoring=False, now=TUESDAY_NIGHT,
                             language=language)
    assert replies == [department.other_languages[language]] and "911" in replies[0]


def test_other_language_urgent_gets_its_line_and_the_notice(department):
    decision = decide(None, 0.0, SafetyResult(flag="crisis", language="ru"))
    replies = render_replies(decision, department, monitoring=False, now=TUESDAY_NIGHT,
                             language="ru")
    assert replies[0] == department.other_languages["ru"]
    assert replies[1] == EMERGENCY_NOTICE["en"] and any("988" in r for r in replies)
