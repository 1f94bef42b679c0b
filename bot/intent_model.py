"""Rasa's intent model: a logistic regression over character and word n-grams.

It decides the non-urgent outcome and the FAQ topic (the safety net decides urgency first;
``bot.triage``). It replaced Rasa's DIETClassifier on 2026-11-30, chosen in the same grouped
cross-validation folds the urgency model uses (two of five folds for DIET, which costs a
seven-minute training per fold here): intent accuracy 0.88-0.89 against DIET's 0.82,
outcome 0.90-0.91 against 0.85, FAQ topic 0.87-0.89 against 0.78-0.85, and calm examples
given an urgent intent 1.8-2.4% against 4.5-7.5%. It also trains in seconds and needs no
TensorFlow to run (Rasa itself still imports it).

Rasa's own LogisticRegressionClassifier was not used: it reads the count featurizers'
output and fixes C at 1; the character n-grams here are the urgency model's (one
definition, :func:`bot.urgency.ngram_features`) and C is chosen by cross-validation.

Its settings are chosen by k-fold cross-validation over the training data only
(:func:`cross_validate`, run by ``python -m bot train`` before Rasa's training): C from
``C_GRID``, then the decision function's two thresholds (the confidence an answer needs,
and the confidence an urgent intent needs), all for the best out-of-fold outcome accuracy
of :func:`bot.triage.decide` itself. The record of that choice (the settings and the
figures that chose them) is a JSON file next to the models; Rasa's component
(``bot.nlu_component.NgramIntentClassifier``) reads C from it when it trains and passes the
thresholds on in the parse data, so the model and its thresholds always travel together.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from bot.linear_scorer import LinearModel
from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

VERSION = "1"
# Grids wide enough that the choice is inside them (a first run over C 4-64, confidence
# 0.20-0.70 and urgent 0.30-0.70 chose C 64, 0.20 and 0.30: all on an edge).
C_GRID = (16.0, 64.0, 256.0)
# The confidence a non-urgent answer needs, and the one an urgent intent needs.
MIN_CONFIDENCE_GRID = tuple(round(0.05 * i, 2) for i in range(1, 15))  # 0.05-0.70
URGENT_MIN_CONFIDENCE_GRID = (0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
SEED = 20261130
# Intents shown in Rasa's ranking (the decision function reads the top ones).
RANKING_LENGTH = 10


@dataclass
class IntentModel(LinearModel):
    """The fitted n-gram features and classifier (``bot.linear_scorer`` scores them)."""

    @classmethod
    def fit(cls, texts: Sequence[str], intents: Sequence[str], c: float) -> IntentModel:
        from sklearn.linear_model import LogisticRegression

        from bot.urgency import ngram_features

        features = ngram_features()
        grams = features.fit_transform(list(texts))
        classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=3000,
                                        solver="lbfgs", random_state=SEED)
        classifier.fit(grams, list(intents))
        return cls(features, classifier)

    @property
    def intents(self) -> List[str]:
        return [str(c) for c in self.classifier.classes_]

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, columns in :attr:`intents` order."""
        return self.raw_proba(texts)

    def rankings(self, texts: Sequence[str], length: int = RANKING_LENGTH) -> List[List[Dict]]:
        """Rasa's ``intent_ranking`` for each text: name and confidence, best first."""
        names = self.intents
        out = []
        for row in self.proba(texts):
            order = np.argsort(-row)[:length]
            out.append([{"name": names[i], "confidence": float(row[i])} for i in order])
        return out


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """The training examples, the grids, this module's version and scikit-learn's."""
    import sklearn

    from bot.urgency import files_digest

    digest = hashlib.sha256(f"intents {VERSION} sklearn {sklearn.__version__} {C_GRID} "
                            f"{MIN_CONFIDENCE_GRID} {URGENT_MIN_CONFIDENCE_GRID}".encode())
    return files_digest(digest, root)


def record_path(root: Path = PROJECT_ROOT) -> Path:
    return root / "models" / f"intent-cv-{fingerprint(root)}.json"


def out_of_fold(texts: Sequence[str], intents: Sequence[str], groups: Sequence[str],
                c: float, folds: int) -> Tuple[np.ndarray, List[str]]:
    """Each example's intent probabilities from a model trained on the other folds (whole
    groups on one side, as for the urgency model)."""
    from sklearn.model_selection import GroupKFold

    names = sorted(set(intents))
    oof = np.zeros((len(texts), len(names)))
    y = np.array(intents)
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(np.zeros(len(y)), y,
                                                                list(groups)):
        model = IntentModel.fit([texts[i] for i in train_idx], y[train_idx], c)
        columns = [model.intents.index(n) if n in model.intents else None for n in names]
        raw = model.proba([texts[i] for i in test_idx])
        for j, column in enumerate(columns):
            if column is not None:
                oof[test_idx, j] = raw[:, column]
    return oof, names


@dataclass(frozen=True)
class Scored:
    min_confidence: float
    urgent_min_confidence: float
    outcome: float
    faq_topic: float
    # Calm examples the intent model alone would give the 911 notice (before the safety net).
    urgent_false_alarms: float
    urgent_recall: float


def score(oof: np.ndarray, names: Sequence[str], intents: Sequence[str],
          min_confidence: float, urgent_min_confidence: float) -> Scored:
    """The decision function's outcome on out-of-fold probabilities (no safety net)."""
    from bot.safety_result import SafetyResult
    from bot.topics import URGENT_INTENTS, topic_of
    from bot.triage import Thresholds, decide, outcome_of

    thresholds = Thresholds(min_confidence, urgent_min_confidence)
    calm = SafetyResult(flag=None, language="en")
    top3 = np.argsort(-oof, axis=1)[:, :3]
    hits = faq_total = faq_hits = false_alarms = calm_total = urgent_total = urgent_hits = 0
    for row, gold_intent, order in zip(oof, intents, top3, strict=True):
        ranking = [{"name": names[i], "confidence": float(row[i])} for i in order]
        decision = decide(ranking[0]["name"], ranking[0]["confidence"], calm, ranking,
                          thresholds=thresholds)
        gold = outcome_of(gold_intent)
        hits += decision.outcome == gold
        if topic_of(gold_intent):
            faq_total += 1
            faq_hits += decision.topic == topic_of(gold_intent)
        if gold_intent in URGENT_INTENTS:
            urgent_total += 1
            urgent_hits += decision.outcome.urgent
        else:
            calm_total += 1
            false_alarms += decision.outcome.urgent
    return Scored(min_confidence, urgent_min_confidence, hits / len(intents),
                  faq_hits / max(1, faq_total), false_alarms / max(1, calm_total),
                  urgent_hits / max(1, urgent_total))


def cross_validate(root: Path = PROJECT_ROOT, force: bool = False) -> Dict:
    """Choose C and the decision thresholds by grouped k-fold cross-validation; write and
    return the record. Best out-of-fold outcome accuracy; ties go to fewer false alarms."""
    from bot import urgency

    target = record_path(root)
    if target.exists() and not force:
        return json.loads(target.read_text())
    texts, intents, groups = urgency.load_intents(root / "data/nlu")
    candidates = []
    for c in C_GRID:
        oof, names = out_of_fold(texts, intents, groups, c, urgency.FOLDS)
        best = max((score(oof, names, intents, m, u) for m in MIN_CONFIDENCE_GRID
                    for u in URGENT_MIN_CONFIDENCE_GRID),
                   key=lambda s: (round(s.outcome, 3), -s.urgent_false_alarms))
        logger.info("intent model C=%s: min confidence %.2f, urgent %.2f: out-of-fold outcome "
                    "%.3f, FAQ topic %.3f", c, best.min_confidence,
                    best.urgent_min_confidence, best.outcome, best.faq_topic)
        candidates.append((c, best))
    c, best = max(candidates, key=lambda cb: (round(cb[1].outcome, 3),
                                              -cb[1].urgent_false_alarms))
    record = {
        "version": VERSION,
        "fingerprint": fingerprint(root),
        "examples": len(texts),
        "folds": urgency.FOLDS,
        "grouped_by": f"file, intent and {urgency.GROUP_SIZE} consecutive examples",
        "c": c,
        "min_confidence": best.min_confidence,
        "urgent_min_confidence": best.urgent_min_confidence,
        "chosen": best.__dict__,
        "grid": [{"c": cc, **b.__dict__} for cc, b in candidates],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob("intent-cv-*.json"):
        old.unlink()
    target.write_text(json.dumps(record, indent=1))
    logger.info("intent model: C=%s, thresholds %.2f / %.2f (out-of-fold outcome %.3f, FAQ "
                "topic %.3f) -> %s", c, best.min_confidence, best.urgent_min_confidence,
                best.outcome, best.faq_topic, target)
    return record
