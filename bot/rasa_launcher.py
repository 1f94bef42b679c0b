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
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml


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


def _argument(args: List[str], names: Tuple[str, ...]) -> str | None:
    """The value of an option as Rasa's argument parser reads it: the last one given."""
    value = None
    for index, arg in enumerate(args):
        name, equals, inline = arg.partition("=")
        if equals and name in names:
            value = inline
        elif arg in names and index + 1 < len(args):
            value = args[index + 1]
    return value


def model_argument(args: List[str]) -> Path | None:
    """The archive named by ``--model``/``-m`` in Rasa's arguments, if any."""
    # Rasa's own rewrite (rasa.cli.utils.parse_last_positional_argument_as_model_path): an
    # existing path last on the line is the model, and wins over an earlier --model.
    if (len(args) >= 2 and args[0] in ("run", "shell", "interactive")
            and args != ["run", "actions"] and not args[-2].startswith("-")
            and os.path.exists(args[-1])):
        args = [*args[:-1], "--model", args[-1]]
    value = _argument(args, ("--model", "-m"))
    return Path(value) if value else None


# Rasa options the launcher does not read, or forms of them it does not parse (argparse
# takes "-mPATH" and any unambiguous prefix such as "--mod"): with any of them on the line
# the model Rasa loads may not be the one checked, so TensorFlow stays.
_UNREAD = ("--remote-storage", "--mo", "-m", "--end")


def _unread_option(args: List[str]) -> bool:
    read = ("--model", "-m", "--endpoints")
    return any(arg.startswith(_UNREAD) and arg.partition("=")[0] not in read for arg in args)


def _endpoints(args: List[str]) -> Path | None:
    """The endpoints file Rasa will read: the one named if it exists, else endpoints.yml if
    that exists (rasa.cli.utils.get_validated_path), else none."""
    for candidate in (_argument(args, ("--endpoints",)), "endpoints.yml"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def without_tensorflow(args: List[str]) -> bool:
    """Whether Rasa can run without TensorFlow: the model given is known not to use it, and
    nothing on the line or in the endpoints file (a model server) can give it another."""
    from bot import tensorflow_stand_in

    model = model_argument(args)
    if (model is None or _unread_option(args)
            or tensorflow_stand_in.model_needs_tensorflow(model)):
        return False
    endpoints = _endpoints(args)
    if endpoints is None:
        return True
    try:
        content = yaml.safe_load(endpoints.read_text()) or {}
    except Exception:  # noqa: BLE001 - Rasa will report it; here it means "not sure"
        return False
    return isinstance(content, dict) and "models" not in content


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if without_tensorflow(args):
        from bot import tensorflow_stand_in

        tensorflow_stand_in.install()
        ignored = [name for name in tensorflow_stand_in.TENSORFLOW_SETTINGS
                   if os.environ.pop(name, None) is not None]
        print(f"beacon: {model_argument(args).name} uses no TensorFlow component; Rasa runs "
              "without TensorFlow" + (f" ({', '.join(ignored)} ignored)" if ignored else ""),
              file=sys.stderr)
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *args]
    rasa_main()


if __name__ == "__main__":
    main()
