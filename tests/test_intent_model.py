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


def test_the_served_intent_model_is_scored_as_scikit_learn_scores_it(model_path):
    """The intent model inside Rasa's archive, scored by bot.linear_scorer (13 ms to 0.6 ms
    a message one by one): scikit-learn's probabilities to rounding on every test set's
    messages, all at once and one by one, so every intent and threshold decides as before."""
    import io
    import tarfile

    import joblib
    import numpy as np

    from bot.settings import PROJECT_ROOT

    with tarfile.open(model_path) as archive:
        (member,) = [m for m in archive.getmembers() if m.name.endswith("intent_model.joblib")]
        saved = joblib.load(io.BytesIO(archive.extractfile(member).read()))
    model = saved["model"]
    assert isinstance(model, intent_model.IntentModel)
    assert "scorer" not in model.__dict__ and model.scorer is not None
    texts = [json.loads(line)["text"] for path in sorted((PROJECT_ROOT / "tests/data")
                                                         .glob("*.jsonl"))
             for line in path.read_text().splitlines()]
    texts += ["", "🙂" * 3000, "help " * 2000]
    reference = model.sklearn_proba(texts)
    assert reference.shape == (len(texts), len(model.intents)) and len(texts) > 9000
    assert np.abs(model.proba(texts) - reference).max() < 1e-12
    one_by_one = np.vstack([model.proba([text]) for text in texts[:300]])
    assert np.abs(one_by_one - reference[:300]).max() < 1e-12
