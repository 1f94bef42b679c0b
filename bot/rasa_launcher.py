"""Start Rasa with one hot spot removed: ``python -m bot.rasa_launcher run --model ...``
takes exactly ``rasa``'s arguments.

Rasa 3.6 validates every action-server response with ``jsonschema.validate``, which checks
the schema itself against its meta-schema and builds a new validator on every call: 44 ms
of CPU per message measured here (0.9 ms with a validator built once), 43% of Rasa's turn.
Upstream: https://github.com/RasaHQ/rasa/issues/11717 ("Action server response validation
is slow"). Rather than fork Rasa, the launcher checks a response with a validator built
once; only a response that fails is handed to Rasa's own method, which raises exactly the
error (message, path, docs link) it always did. tests/test_rasa_launcher.py holds both
paths to Rasa's behaviour.

It also starts Rasa without TensorFlow when the model given by ``--model`` does not use it
(bot/tensorflow_stand_in.py says how and why).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Dict, List


@functools.lru_cache(maxsize=1)
def _validator():
    from jsonschema import validators
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)  # once, not per message
    return cls(schema)


def install() -> None:
    """Replace ``RemoteAction._validate_action_result`` with the cached check."""
    from rasa.core.actions.action import RemoteAction

    stock = RemoteAction._validate_action_result
    if getattr(stock, "cached_schema", False):
        return

    def _validate_action_result(self, result: Dict[str, Any]) -> bool:
        if _validator().is_valid(result):
            return True
        return stock(self, result)  # Rasa's own error for an invalid response

    _validate_action_result.cached_schema = True
    RemoteAction._validate_action_result = _validate_action_result


def model_argument(args: List[str]) -> Path | None:
    """The archive named by ``--model``/``-m`` in Rasa's arguments, if any."""
    for index, arg in enumerate(args):
        if arg.startswith("--model="):
            return Path(arg.partition("=")[2])
        if arg in ("--model", "-m") and index + 1 < len(args):
            return Path(args[index + 1])
    return None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    from bot import tensorflow_stand_in

    model = model_argument(args)
    if model is not None and not tensorflow_stand_in.model_needs_tensorflow(model):
        tensorflow_stand_in.install()
        print(f"beacon: {model.name} uses no TensorFlow component; Rasa runs without "
              "TensorFlow", file=sys.stderr)
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *args]
    rasa_main()


if __name__ == "__main__":
    main()
