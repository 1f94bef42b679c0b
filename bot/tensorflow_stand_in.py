"""Run Rasa without loading TensorFlow when the model has no component that uses it.

Rasa 3.6 imports TensorFlow whatever the pipeline: ``rasa.core.agent`` reaches
``rasa.utils.tensorflow`` through its featurizers and extractors, whose modules subclass
``tf.keras`` classes at import time (``tf.function`` is called later, when a model is
built). Beacon's model (a whitespace tokenizer, its own n-gram intent model and safety
net, RulePolicy) never calls TensorFlow, which cost the Rasa process ~400 MiB and ~2 s of
start-up (issue 9's memory target). Upstream keeps TensorFlow a hard dependency; rather
than fork Rasa, the launcher puts a stand-in under the name ``tensorflow`` whose
attributes are placeholder classes:
enough for those module-level class statements and annotations (Rasa 3.6 calls nothing of
TensorFlow's at import). Any call (a tensor, a layer, a model, a decorator) raises
:class:`TensorFlowNotLoaded`, so a model that needs it fails to load instead of running
wrong: at start-up Rasa logs "Could not load model" and answers 409 "No agent loaded"
(the gateway then answers with the safety net and routes to staff); a ``PUT /model`` of
such a model answers 400 and keeps the loaded one.

The stand-in goes in only when every component of the model's graph is on
:data:`TENSORFLOW_FREE` (read from the archive's ``metadata.json``) and nothing else can
give Rasa another model at start-up (bot/rasa_launcher.py); any other component, or an
archive that cannot be read, starts Rasa with the real TensorFlow.
"""

from __future__ import annotations

import abc
import functools
import importlib.abc
import importlib.machinery
import json
import posixpath
import sys
import tarfile
import types
from pathlib import Path
from typing import Set

# Components known not to call TensorFlow (their modules import it only through Rasa's
# shared featurizer code), by their exact class path: a prefix would also let through a
# TensorFlow class that a listed package re-exports (found by the live attack).
TENSORFLOW_FREE = frozenset({
    "bot.nlu_component.NgramIntentClassifier",
    "bot.nlu_component.SafetyNetFlagger",
    "rasa.core.policies.ensemble.DefaultPolicyPredictionEnsemble",
    "rasa.core.policies.rule_policy.RulePolicy",
    "rasa.core.policies.memoization.MemoizationPolicy",
    "rasa.core.policies.memoization.AugmentedMemoizationPolicy",
    "rasa.graph_components.converters.nlu_message_converter.NLUMessageConverter",
    "rasa.graph_components.providers.domain_provider.DomainProvider",
    "rasa.graph_components.providers.forms_provider.FormsProvider",
    "rasa.graph_components.providers.responses_provider.ResponsesProvider",
    "rasa.graph_components.providers.rule_only_provider.RuleOnlyDataProvider",
    "rasa.nlu.classifiers.regex_message_handler.RegexMessageHandler",
    "rasa.nlu.tokenizers.whitespace_tokenizer.WhitespaceTokenizer",
})
# Rasa's settings that make its start-up configure TensorFlow (rasa.constants).
TENSORFLOW_SETTINGS = ("TF_GPU_MEMORY_ALLOC", "TF_INTER_OP_PARALLELISM_THREADS",
                       "TF_INTRA_OP_PARALLELISM_THREADS")
# Every name TensorFlow's ecosystem is imported under in Rasa 3.6's code.
_ROOTS = frozenset({"tensorflow", "tensorflow_addons", "tensorflow_hub", "tensorflow_text",
                    "tensorflow_probability", "keras"})


class TensorFlowNotLoaded(RuntimeError):
    """Something called TensorFlow in a process that runs Rasa without it."""


def components(model: Path) -> Set[str]:
    """The classes the model's prediction graph uses, from the archive's metadata. Rasa
    reads the last ``metadata.json`` of an archive that holds two, and so does this."""
    metadata = None
    with tarfile.open(model, "r:gz") as archive:
        for member in archive:
            # As Rasa reads it after extracting (an absolute "/metadata.json" it refuses).
            if posixpath.normpath(member.name) == "metadata.json":
                metadata = json.load(archive.extractfile(member))
    if metadata is None:
        raise ValueError(f"{model} has no metadata.json")
    return {node["uses"] for node in metadata["predict_schema"]["nodes"].values()}


def model_needs_tensorflow(model: Path) -> bool:
    """False only when every component is known not to call TensorFlow; when in doubt
    (an archive that cannot be read, whatever the error; no components), True."""
    try:
        uses = components(model)
    except Exception:  # noqa: BLE001 - any failure means "use the real TensorFlow"
        return True
    return not uses or not uses <= TENSORFLOW_FREE


class _Placeholder(abc.ABCMeta):
    """The metaclass of every placeholder, and so of every class Rasa derives from one: an
    attribute is another placeholder, and any call (building a tensor, a layer, a model,
    decorating) is a use of TensorFlow and raises. An ``ABCMeta`` so that Rasa's classes
    mixing a Keras base with an ABC can be created."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):
        raise TensorFlowNotLoaded(
            f"{cls.__qualname__} was called, but this Rasa process runs without TensorFlow "
            "(bot/tensorflow_stand_in.py): the model uses a component outside TENSORFLOW_FREE")

    def __getitem__(cls, item):
        return cls


@functools.cache
def _placeholder(qualname: str) -> type:
    # Cached: ``tf.Tensor is tf.Tensor`` holds, as Rasa's type checks at import expect.
    return _Placeholder(qualname, (), {"__qualname__": qualname, "__module__": "tensorflow"})


class _Module(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{self.__name__}.{name}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] in _ROOTS:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Module(spec.name)
        module.__path__ = []
        module.__version__ = "0+stand-in"
        return module

    def exec_module(self, module):
        pass


def installed() -> bool:
    return any(isinstance(finder, _Finder) for finder in sys.meta_path)


def install() -> None:
    """Put the stand-in under TensorFlow's names. Call before anything imports Rasa.

    spaCy is imported first with TensorFlow blocked, as in the gateway
    (:mod:`bot.no_tensorflow`): thinc probes TensorFlow at import (and would call the
    stand-in's ``config.get_visible_devices``); blocked, it records "not installed"."""
    if installed():
        return
    from bot import no_tensorflow

    no_tensorflow.block()
    import spacy  # noqa: F401
    import thinc.api  # noqa: F401

    # JAX and PyTorch stay blocked (nothing in Rasa's path needs them); TensorFlow's names
    # go to the stand-in.
    if sys.modules.get("tensorflow", ...) is None:
        del sys.modules["tensorflow"]
    sys.meta_path.insert(0, _Finder())
