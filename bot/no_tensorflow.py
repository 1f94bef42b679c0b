"""Keep TensorFlow, JAX and PyTorch out of a process that does not run the intent model.

They are installed for Rasa's DIETClassifier, and spaCy's thinc imports whichever it finds
at import time: the gateway paid ~350 MiB and ~2 s of start-up for TensorFlow through
spaCy's tokenizer, which never calls it. A ``None`` entry in ``sys.modules`` makes
``import tensorflow`` raise ImportError, which thinc takes as "not installed". Call
:func:`block` before anything imports spaCy; only the gateway does (``python -m bot
serve``): Rasa, training and the CLI's triage need TensorFlow.
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
