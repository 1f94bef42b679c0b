"""Beacon's two Rasa NLU components.

* :class:`NgramIntentClassifier`, the intent model (``bot.intent_model``): intent and
  ranking, plus the decision thresholds cross-validation chose with it (``triage_thresholds``).
* :class:`SafetyNetFlagger` adds ``safety_net`` (see ``SafetyResult.as_dict``) to the parse
  data: the gateway's result from intake when the message brings one, else its own check.
  It trains nothing: the rules are code and the urgency model is trained by
  ``python -m bot train`` before Rasa's training.

Both results reach the tracker's ``latest_message`` and so the action server, which
decides without recomputing either.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, METADATA, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import urgency
from bot.nlp import is_language
from bot.safety_net import SafetyNet, get_safety_net
from bot.safety_result import CRISIS, EMERGENCY, SAFETY_NET_KEY, SafetyResult
from bot.triage import THRESHOLDS_KEY

logger = logging.getLogger(__name__)
_MODEL_FILE = "intent_model.joblib"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class NgramIntentClassifier(IntentClassifier, GraphComponent):
    """Rasa's intent classifier: ``bot.intent_model`` (why not DIET: see there)."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {}

    def __init__(self, model_storage: ModelStorage, resource: Resource,
                 model=None, thresholds: Dict[str, float] | None = None) -> None:
        self._storage = model_storage
        self._resource = resource
        self._model = model
        self._thresholds = thresholds or {}

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> NgramIntentClassifier:
        return cls(model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        import joblib

        from bot import intent_model

        # C and the thresholds from the cross-validation `python -m bot train` ran over
        # data/nlu (grouped by file and block, which Rasa's messages no longer know).
        record = intent_model.cross_validate()
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        self._model = intent_model.IntentModel.fit(
            [m.get(TEXT) for m in examples], [m.get(INTENT) for m in examples], record["c"])
        self._thresholds = {"min_confidence": record["min_confidence"],
                            "urgent_min_confidence": record["urgent_min_confidence"]}
        with self._storage.write_to(self._resource) as directory:
            joblib.dump({"model": self._model, "thresholds": self._thresholds},
                        directory / _MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> NgramIntentClassifier:
        import joblib

        # Written by `train` above into Rasa's own model archive, on this machine.
        with model_storage.read_from(resource) as directory:
            saved = joblib.load(directory / _MODEL_FILE)
        return cls(model_storage, resource, saved["model"], saved["thresholds"])

    def process(self, messages: List[Message]) -> List[Message]:
        if self._model is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        for message, ranking in zip(messages, self._model.rankings(texts), strict=True):
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            message.set(THRESHOLDS_KEY, dict(self._thresholds), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


# Bounds on a result read from the metadata: hits and cues, and each one's characters.
_MAX_HITS = 100
_MAX_CHARS = 500


def intake_result(metadata: Any, model: str | None) -> Dict | None:
    """The gateway's own check of this message's text at intake, sent in the message's
    metadata (``bot.gateway.worker``), or None if there is none, it does not read as one, or
    another urgency model than ``model`` (Rasa's own; None: the rules alone) made it.

    Reading it instead of checking again saves the rules and the model (2-3 ms a message,
    as much as the rest of the NLU), and Rasa decides on exactly what intake decided the
    notice on. Rasa's REST channel listens on 127.0.0.1 only, for the gateway: whoever could
    post there could already write as any citizen. A message with no result (the CLI, the
    benches, an older gateway) is checked here as before."""
    raw = metadata.get(SAFETY_NET_KEY) if isinstance(metadata, dict) else None
    if not isinstance(raw, dict):
        return None
    hits, cues = raw.get("hits", []), raw.get("cues", [])
    # Lists, and no longer than a check makes them (it keeps one hit per label and place in
    # 400 characters): 200,000 hits took a turn 5 s and stayed in the tracker (live attack).
    # The keys a check always writes: {} is not "calm, in English" (a review).
    if not (isinstance(hits, list) and isinstance(cues, list)
            and len(hits) <= _MAX_HITS and len(cues) <= _MAX_HITS
            and {"flag", "language", "urgency"} <= raw.keys()
            and all(isinstance(hit, dict) for hit in hits)
            and _probability(raw["urgency"])):
        logger.warning("ignored a safety-net result that does not read as one")
        return None
    try:
        result = SafetyResult.from_dict(raw)
    except (TypeError, ValueError, OverflowError):  # not Hit fields, not a number, 1e400
        logger.warning("ignored a malformed safety-net result in the metadata")
        return None
    if (result.flag not in (None, EMERGENCY, CRISIS) or result.tier not in (None, "rules", "model")
            or not is_language(result.language)
            or not all(isinstance(cue, str) and len(cue) <= _MAX_CHARS for cue in result.cues)
            or not all(isinstance(value, str) and len(value) <= _MAX_CHARS
                       for hit in result.hits for value in (hit.label, hit.text))
            or not all(hit.suppressed is None or (isinstance(hit.suppressed, str)
                                                  and len(hit.suppressed) <= _MAX_CHARS)
                       for hit in result.hits)
            # A name as bot.urgency gives it: a 1 MB one stayed in Rasa's memory and log,
            # and a line break in one forged a log line (a live attack).
            or not (result.model is None
                    or (isinstance(result.model, str) and urgency.NAME.fullmatch(result.model)))
            or not result.consistent()):
        logger.warning("ignored a safety-net result that does not read as one")
        return None
    if result.model != model:
        # A gateway started without a model (or with another one) while Rasa has its own:
        # the rules alone must not stand in for the model here (a review). Said once per
        # pair: it lasts until one of them is restarted.
        if (result.model, model) not in _MISMATCHES_SEEN and len(_MISMATCHES_SEEN) < 16:
            _MISMATCHES_SEEN.add((result.model, model))
            logger.warning("intake checked with urgency model %s, Rasa has %s: Rasa checks "
                           "again", result.model, model)
        return None
    return result.as_dict()


# (intake's model, Rasa's) pairs already warned about: a deployment has one or two; forged
# names beyond the first few are not remembered (nor logged).
_MISMATCHES_SEEN: set = set()


def _probability(value: Any) -> bool:
    """A number from 0 to 1 (not a bool, a string, NaN or 1e400)."""
    # Compared as it comes: float(10**400) raises, and 0 <= 10**400 <= 1 does not (nor
    # does NaN or infinity, so no finiteness check is needed).
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 <= value <= 1)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class SafetyNetFlagger(GraphComponent):
    """Flags emergency and crisis language; the decision function weighs it first."""

    def __init__(self, net: SafetyNet) -> None:
        self._net = net

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyNetFlagger:
        return cls(get_safety_net())

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text is None:
                continue
            result = (intake_result(message.get(METADATA), self._net.model_name)
                      or self._net.check(text).as_dict())
            message.set(SAFETY_NET_KEY, result, add_to_output=True)
        return messages

    def process_training_data(self, training_data):  # noqa: ANN001 - Rasa's signature
        # Nothing to learn; Rasa still calls this during training.
        return training_data
