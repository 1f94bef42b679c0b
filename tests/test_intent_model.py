"""The intent model and the thresholds cross-validation chose for it, as Rasa serves them."""

from __future__ import annotations

import json

import requests

from bot import intent_model
from bot.safety_result import SafetyResult
from bot.triage import THRESHOLDS_KEY, Outcome, Thresholds, decide

CALM = SafetyResult(flag=None, language="en")


def test_settings_come_from_grouped_cross_validation():
    record = json.loads(intent_model.record_path().read_text())
    assert record["fingerprint"] == intent_model.fingerprint()
    assert record["c"] in intent_model.C_GRID
    assert record["min_confidence"] in intent_model.MIN_CONFIDENCE_GRID
    assert record["urgent_min_confidence"] in intent_model.URGENT_MIN_CONFIDENCE_GRID
    # The chosen setting is the grid's best out-of-fold outcome (what it was chosen for).
    assert record["chosen"]["outcome"] == max(g["outcome"] for g in record["grid"])
    assert record["examples"] > 10_000 and record["folds"] == 5


def test_rasa_serves_the_model_with_its_thresholds(rasa_stack):
    record = json.loads(intent_model.record_path().read_text())
    parsed = requests.post(f"{rasa_stack['url']}/model/parse",
                           params={"token": rasa_stack["token"]},
                           json={"text": "how do i get my fingerprints done"}, timeout=30).json()
    assert parsed["intent"]["name"] == "faq_fingerprinting"
    assert parsed[THRESHOLDS_KEY] == {"min_confidence": record["min_confidence"],
                                      "urgent_min_confidence": record["urgent_min_confidence"]}
    ranking = parsed["intent_ranking"]
    assert len(ranking) == intent_model.RANKING_LENGTH
    assert ranking == sorted(ranking, key=lambda r: -r["confidence"])


def test_decide_uses_the_thresholds_it_is_given():
    ranking = [{"name": "faq_careers", "confidence": 0.3}, {"name": "report", "confidence": 0.2}]
    assert decide("faq_careers", 0.3, CALM, ranking).outcome is Outcome.HUMAN
    lenient = Thresholds(min_confidence=0.25, urgent_min_confidence=0.3)
    assert decide("faq_careers", 0.3, CALM, ranking, thresholds=lenient).topic == "careers"
    urgent = [{"name": "emergency", "confidence": 0.35}]
    strict = Thresholds(min_confidence=0.45, urgent_min_confidence=0.5)
    assert decide("emergency", 0.35, CALM, urgent, thresholds=strict).outcome is Outcome.HUMAN


def test_thresholds_from_bad_parse_data_fall_back_to_the_defaults():
    for bad in (None, "x", {}, {"min_confidence": "a", "urgent_min_confidence": 1},
                {"min_confidence": 0.2}):
        assert Thresholds.from_parse(bad) == Thresholds()
    assert Thresholds.from_parse({"min_confidence": 0.2, "urgent_min_confidence": 0.4}) == \
        Thresholds(0.2, 0.4)
