"""The urgency model: a machine-learned score for "this message needs the 911 notice now".

The safety net's rules are precise but narrow: danger described by the situation ("my dad
won't wake up", "bought a rope today, just wanted somebody to know") has no crime word for a
rule to match. Rasa's intent model sees those, but only after a full Rasa turn (seconds under
load, never while Rasa is down). This model sits beside the rules at intake: a logistic
regression over character and word n-grams, trained on the same ``data/nlu/`` examples
(emergency, crisis, everything else), about a millisecond per message, no TensorFlow.

Besides the n-grams it reads what the rules saw (:func:`rule_features`): a danger word the
rules took back as past, negated or "not urgent", and active rule matches. A bag of n-grams
cannot tell "someone broke in last night" from "someone is breaking in"; the rules' tense and
negation handling can, and as features it cut the grouped out-of-fold false alarms at 0.95
recall from 10.0% to 7.5% (2026-11-30).

Its classes are urgent-or-not on purpose. A model over kinds of message (FAQ, report, thanks,
... as classes, P(urgent) their urgent share) had fewer out-of-fold false alarms (6.6%
against 8.5%), but one calm sentence beside the danger ("How do I get a copy of a police
report? he has a gun") handed the probability to its calm class, and it missed more urgent
messages written elsewhere; it was withdrawn on 2026-12-01 (README). For the same reason the
model never overrules a rule.

One object, used by the gateway's intake, the Rasa pipeline component, the CLI and the
Rasa-down path (through :class:`bot.safety_net.SafetyNet`), so all four agree.

Its settings and its threshold are chosen by k-fold cross-validation over the training data
only (:func:`train`): recall first (out-of-fold urgent recall of at least ``TARGET_RECALL``),
then the fewest false alarms, i.e. the highest threshold that keeps that recall. The folds
are *grouped*: examples come in blocks of ``GROUP_SIZE`` consecutive lines of one file and
intent (each block written about one kind of situation), and a block is never split between
training and scoring. Plain stratified folds put near-paraphrases on both sides and promised
10% false alarms where text written elsewhere got 18-44%; grouped folds score each example
with a model that never saw its kind, which is what a message from a stranger is. The
figures that chose the settings are stored with the model and printed by
``python -m bot train`` and ``bench/triage_quality.py``.

The model file is a joblib pickle that ``python -m bot train`` writes on this machine and
only this project reads; it never crosses a trust boundary (nothing loads a model from a
request, a queue or another host).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import yaml

from bot.linear_scorer import LinearModel, with_dense
from bot.settings import PROJECT_ROOT
from bot.text import normalize, spell_out

logger = logging.getLogger(__name__)

CALM = "calm"
EMERGENCY = "emergency"
CRISIS = "crisis"
LABELS = (CALM, EMERGENCY, CRISIS)

# Bump when features or training change: part of the model file's fingerprint.
VERSION = "2"
FOLDS = 5
GROUP_SIZE = 40
SEED = 20261130
# Regularisation strengths tried by cross-validation (inverse: larger fits the data closer).
C_GRID = (4.0, 16.0, 64.0)
# Recall first: the threshold keeps at least this share of urgent training examples flagged
# when each is scored by a model that never saw its kind (grouped out of fold). 0.95 is the
# intake tier's own floor; the rules flag beside it and the intent model after Rasa's turn.
TARGET_RECALL = 0.95
# Examples this long or longer are cut, as the gateway cuts messages.
MAX_CHARS = 4000
_ENTITY = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")


def prepare(text: str) -> str:
    """The text the features see: the safety net's clean-up (case, look-alikes, contractions)."""
    return spell_out(normalize(text[:MAX_CHARS]))


# What the rules saw, as features: matches they took back (by reason) and active matches.
RULE_FEATURES = ("past", "negated", "not_urgent", "harmless", "not_now",
                 "emergency", "crisis", "cue")
# Weight of the rule features beside the tf-idf n-grams (cross-validated: 0.5 and 1.0 gave the
# same false alarms, none gave 33% more).
RULE_SCALE = 0.5


def rule_features(hits: Sequence) -> List[float]:
    """Counts (capped at 2) of the safety net's hits by reason or label, in RULE_FEATURES order.

    ``hits`` are ``bot.safety_net.Hit``s (anything with ``label`` and ``suppressed``)."""
    counts = dict.fromkeys(RULE_FEATURES, 0)
    for hit in hits:
        name = hit.suppressed or hit.label.split(".")[0]
        if name in counts:
            counts[name] += 1
    return [min(counts[name], 2) * RULE_SCALE for name in RULE_FEATURES]


def label_of(intent: str) -> str:
    return intent if intent in (EMERGENCY, CRISIS) else CALM


def load_examples(nlu_dir: Path) -> Tuple[List[str], List[str]]:
    """Every training example in ``data/nlu/*.yml`` with its urgency label, in file order."""
    texts, labels, _ = load_grouped(nlu_dir)
    return texts, labels


def load_grouped(nlu_dir: Path) -> Tuple[List[str], List[str], List[str]]:
    """Texts, urgency labels and each example's group (file, intent, block of GROUP_SIZE
    lines)."""
    texts, intents, groups = load_intents(nlu_dir)
    return texts, [label_of(intent) for intent in intents], groups


def load_intents(nlu_dir: Path) -> Tuple[List[str], List[str], List[str]]:
    """Texts, intents and each example's group, in file order."""
    texts: List[str] = []
    intents: List[str] = []
    groups: List[str] = []
    for path in sorted(nlu_dir.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        position = 0
        for block in data.get("nlu") or []:
            intent = block.get("intent") if isinstance(block, dict) else None
            if not intent:
                continue  # synonyms, lookups, regexes
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if not line.startswith("- "):
                    continue
                text = _ENTITY.sub(lambda m: m.group(1) or m.group(2), line[2:]).strip()
                if text:
                    texts.append(text)
                    intents.append(intent)
                    groups.append(f"{path.name}:{intent}:{position // GROUP_SIZE}")
                    position += 1
    return texts, intents, groups


def ngram_features():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        # Character n-grams inside word boundaries carry typos, elongations and Spanish.
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                  sublinear_tf=True, preprocessor=prepare, lowercase=False)),
        # Word uni- and bigrams carry phrasing ("not breathing", "no quiero vivir").
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1,
                                  token_pattern=r"(?u)\b\w+\b", sublinear_tf=True,
                                  preprocessor=prepare, lowercase=False)),
    ])


@dataclass
class Fitted(LinearModel):
    """The fitted n-gram features and classifier (rule features are passed in as the dense
    features after the n-grams; ``bot.linear_scorer`` scores them)."""

    @classmethod
    def fit(cls, texts: Sequence[str], rules: np.ndarray, labels: np.ndarray, c: float) -> Fitted:
        from sklearn.linear_model import LogisticRegression

        features = ngram_features()
        grams = features.fit_transform(list(texts))
        classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=5000,
                                        solver="lbfgs", random_state=SEED)
        classifier.fit(with_dense(grams, rules), labels)
        return cls(features, classifier)

    def proba(self, texts: Sequence[str], rules: np.ndarray) -> np.ndarray:
        """Columns in LABELS order, whatever order the classifier stored its classes in."""
        order = [list(self.classifier.classes_).index(label) for label in LABELS]
        return self.raw_proba(texts, rules)[:, order]


def rules_matrix(texts: Sequence[str]) -> np.ndarray:
    """The rule features of many texts (training and cross-validation; needs spaCy)."""
    from bot.safety_net import SafetyNet

    net = SafetyNet()
    return np.array([rule_features(net.check(text).hits) for text in texts], dtype=float)


def out_of_fold(texts: Sequence[str], labels: Sequence[str], groups: Sequence[str], c: float,
                rules: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Each example's probabilities from a model trained on the other folds, whole groups
    kept on one side (see the module docstring)."""
    from sklearn.model_selection import GroupKFold

    y = np.array(labels)
    oof = np.zeros((len(texts), len(LABELS)))
    splitter = GroupKFold(n_splits=folds)
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y, list(groups)):
        model = Fitted.fit([texts[i] for i in train_idx], rules[train_idx], y[train_idx], c)
        oof[test_idx] = model.proba([texts[i] for i in test_idx], rules[test_idx])
    return oof


@dataclass(frozen=True)
class Operating:
    """One threshold on P(urgent) and what it does out of fold."""

    threshold: float
    recall: float
    false_alarms: float
    crisis_as_crisis: float


def operating_point(oof: np.ndarray, labels: Sequence[str], threshold: float) -> Operating:
    y = np.array(labels)
    urgent = y != CALM
    p_urgent = oof[:, 1] + oof[:, 2]
    flagged = p_urgent >= threshold
    crisis = y == CRISIS
    as_crisis = flagged & (oof[:, 2] >= oof[:, 1])
    return Operating(
        threshold=float(threshold),
        recall=float(flagged[urgent].mean()) if urgent.any() else 1.0,
        false_alarms=float(flagged[~urgent].mean()) if (~urgent).any() else 0.0,
        crisis_as_crisis=float(as_crisis[crisis].mean()) if crisis.any() else 1.0,
    )


def choose_threshold(oof: np.ndarray, labels: Sequence[str],
                     target_recall: float = TARGET_RECALL) -> Operating:
    """The highest threshold whose out-of-fold urgent recall is at least ``target_recall``."""
    y = np.array(labels)
    p_urgent = (oof[:, 1] + oof[:, 2])[y != CALM]
    # Flagging the k highest-scored urgent examples needs a threshold at the k-th score.
    needed = int(np.ceil(target_recall * len(p_urgent)))
    threshold = float(np.sort(p_urgent)[::-1][needed - 1]) if needed else 1.0
    return operating_point(oof, labels, threshold)


@dataclass
class UrgencyModel:
    """The fitted model, its threshold, and the cross-validation figures that chose them."""

    fitted: Fitted
    threshold: float
    report: Dict = field(default_factory=dict)
    # Its file's name (``load``): which model checked a message, in each result.
    name: str = "unsaved"

    def flag(self, text: str, hits: Sequence = ()) -> Tuple[str | None, float]:
        """("emergency" | "crisis" | None, P(urgent)) for one message."""
        return self.flags([text], [hits])[0]

    def flags(self, texts: Sequence[str],
              hits: Sequence[Sequence]) -> List[Tuple[str | None, float]]:
        """:meth:`flag` for several messages in one call (the same figures: each row of the
        features and of the classifier is computed on its own)."""
        rules = np.array([rule_features(h) for h in hits], dtype=float)
        out: List[Tuple[str | None, float]] = []
        for _, emergency, crisis in self.fitted.proba([t or "" for t in texts], rules):
            urgent = float(emergency + crisis)
            if urgent < self.threshold:
                out.append((None, urgent))
            else:
                out.append(((CRISIS if crisis >= emergency else EMERGENCY), urgent))
        return out


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A hash of the training examples, the rules' patterns and code (their hits are
    features), this module's version and scikit-learn's. (A change elsewhere that changes
    what the rules see, in ``bot/text.py``, ``bot/nlp.py`` or spaCy, needs
    ``python -m bot train --force``.)"""
    import sklearn

    digest = hashlib.sha256(f"urgency {VERSION} sklearn {sklearn.__version__}".encode())
    rules = [root / "bot/safety_patterns.py", root / "bot/safety_net.py"]
    return files_digest(digest, root, [p for p in rules if p.exists()])


def files_digest(digest, root: Path, extra: Sequence[Path] = ()) -> str:
    """``digest`` over the training examples (and ``extra`` files), names and bytes: the
    fingerprint that names a model trained from them."""
    for path in sorted((root / "data/nlu").rglob("*.yml")) + list(extra):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(root: Path = PROJECT_ROOT) -> Path:
    return root / "models" / f"urgency-{fingerprint(root)}.joblib"


# A model's name (``UrgencyModel.name``: its file's stem, as ``model_path`` writes it).
NAME = re.compile(r"urgency-[0-9a-f]{16}")


def train(root: Path = PROJECT_ROOT, force: bool = False) -> Path:
    """Choose C and the threshold by k-fold cross-validation, fit on everything, save."""
    import joblib

    target = model_path(root)
    if target.exists() and not force:
        logger.info("urgency model is up to date: %s", target)
        return target
    texts, labels, groups = load_grouped(root / "data/nlu")
    rules = rules_matrix(texts)
    grid = []
    for c in C_GRID:
        oof = out_of_fold(texts, labels, groups, c, rules)
        point = choose_threshold(oof, labels)
        grid.append((point.false_alarms, -point.crisis_as_crisis, c, point, oof))
        logger.info("C=%s: threshold %.3f, out-of-fold recall %.3f, false alarms %.3f",
                    c, point.threshold, point.recall, point.false_alarms)
    # Recall is fixed by the threshold rule; among the settings, the fewest false alarms.
    _, _, best_c, best, oof = min(grid, key=lambda g: g[:3])
    counts = {label: labels.count(label) for label in LABELS}
    report = {
        "examples": counts,
        "folds": FOLDS,
        "grouped_by": f"file, intent and {GROUP_SIZE} consecutive examples",
        "target_recall": TARGET_RECALL,
        "c": best_c,
        "grid": [{"c": g[2], **g[3].__dict__} for g in grid],
        "chosen": best.__dict__,
        "curve": [operating_point(oof, labels, t).__dict__
                  for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)],
    }
    model = UrgencyModel(Fitted.fit(texts, rules, np.array(labels), best_c), best.threshold,
                         report)
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob("urgency-*.joblib"):
        old.unlink()
    joblib.dump(model, target)
    logger.info("urgency model: C=%s threshold %.3f (out-of-fold recall %.3f, false alarms "
                "%.3f) -> %s", best_c, best.threshold, best.recall, best.false_alarms, target)
    return target


def load(path: Path) -> UrgencyModel:
    import joblib

    model = joblib.load(path)
    if not isinstance(model, UrgencyModel):
        raise TypeError(f"{path} is not an urgency model")
    model.name = path.stem  # the fingerprint of what it was trained from
    return model


@cache
def current() -> UrgencyModel | None:
    """The model for the current training data, or None (with an error logged) if untrained."""
    path = model_path()
    if not path.exists():
        logger.error("no urgency model for the current data (%s): the intake tier runs on "
                     "rules alone until `python -m bot train` is run", path.name)
        return None
    return load(path)
