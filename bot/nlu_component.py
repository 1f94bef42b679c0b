"""Rasa NLU component: runs the safety net on every message inside Rasa's pipeline.

It adds ``safety_net`` (see ``SafetyResult.as_dict``) to the parse data, which reaches the
tracker's ``latest_message`` and so the actions. It trains nothing and loads no model: the
rules are code, compiled once when the component is created.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.safety_net import SafetyNet, get_safety_net
from bot.safety_result import SAFETY_NET_KEY


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
            message.set(SAFETY_NET_KEY, self._net.check(text).as_dict(), add_to_output=True)
        return messages

    def process_training_data(self, training_data):  # noqa: ANN001 - Rasa's signature
        # Nothing to learn; Rasa still calls this during training.
        return training_data
