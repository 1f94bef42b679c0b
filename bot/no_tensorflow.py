"""Keep TensorFlow, JAX and PyTorch out of a process that does not run the intent model.

They are installed for Rasa's DIETClassifier, and spaCy's thinc imports whichever it finds
at import time: the gateway paid ~350 MiB and ~2 s of start-up for TensorFlow through
spaCy's tokenizer, which never calls it. A ``None`` entry in ``sys.modules`` makes
``import tensorflow`` raise ImportError, which thinc takes as "not installed". Call
:func:`block` before anything imports spaCy: the gateway (``python -m bot serve``) does,
and so does Rasa's launcher before it puts its stand-in under TensorFlow's names
(bot/tensorflow_stand_in.py); training and the CLI's triage import Rasa, which needs it.
"""

from __future__ import annotations

import sys

HEAVY = ("tensorflow", "jax", "torch")


def block() -> None:
    for name in HEAVY:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def blocked() -> bool:
    return all(sys.modules.get(name, ...) is None for name in HEAVY)
