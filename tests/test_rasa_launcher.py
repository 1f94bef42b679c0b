"""The launcher's cached schema check behaves as Rasa's own on valid and invalid action
server responses (same result, same error), and is what `make run` starts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot import rasa_launcher

ROOT = Path(__file__).resolve().parent.parent

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "x", "value": 1}],
     "responses": [{"text": "call 911", "buttons": [], "custom": {"a": 1}}]},
    {"events": [{"event": "action", "name": "action_listen", "timestamp": 1.5}]},
    {},
]
INVALID = [
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"events": [{"event": 7}]},
    {"responses": "text"},
]


def _outcome(validate, result):
    try:
        return ("ok", validate(RemoteAction("action_triage", None), copy.deepcopy(result)))
    except ValidationError as exc:
        return ("error", exc.message, list(exc.path), list(exc.schema_path), exc.validator)


@pytest.fixture()
def both():
    stock = RemoteAction._validate_action_result
    rasa_launcher.install()
    yield stock, RemoteAction._validate_action_result
    RemoteAction._validate_action_result = stock


@pytest.mark.parametrize("result", VALID + INVALID)
def test_cached_check_gives_rasas_own_result_and_error(both, result):
    stock, cached = both
    assert cached is not stock
    assert _outcome(cached, result) == _outcome(stock, result)


def test_invalid_responses_are_refused_and_valid_ones_pass(both):
    _, cached = both
    assert all(_outcome(cached, r) == ("ok", True) for r in VALID)
    errors = [_outcome(cached, r) for r in INVALID]
    assert all(e[0] == "error" and "Failed to validate Action server response" in e[1]
               for e in errors)


def test_install_twice_keeps_one_wrapper(both):
    _, cached = both
    rasa_launcher.install()
    assert RemoteAction._validate_action_result is cached


def test_every_way_of_starting_rasa_uses_the_launcher():
    for path in ("scripts/run.sh", "tests/conftest.py", "tests/stack_support.py"):
        text = (ROOT / path).read_text()
        assert "bot.rasa_launcher" in text and "-m rasa run" not in text, path


# Running Rasa without TensorFlow (bot/tensorflow_stand_in.py).


def _archive(path: Path, uses) -> Path:
    import io
    import json
    import tarfile

    metadata = json.dumps({"predict_schema": {"nodes": {
        f"node{i}": {"uses": name} for i, name in enumerate(uses)}}}).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("/metadata.json")  # Rasa writes its names with a leading /
        info.size = len(metadata)
        archive.addfile(info, io.BytesIO(metadata))
    return path


def test_the_trained_model_needs_no_tensorflow(model_path):
    from bot.tensorflow_stand_in import components, model_needs_tensorflow

    uses = components(model_path)
    assert "bot.nlu_component.NgramIntentClassifier" in uses
    assert model_needs_tensorflow(model_path) is False


@pytest.mark.parametrize("component", [
    "rasa.nlu.classifiers.diet_classifier.DIETClassifier",
    "rasa.core.policies.ted_policy.TEDPolicy",
    "rasa.nlu.featurizers.dense_featurizer.lm_featurizer.LanguageModelFeaturizer",
    "my_company.components.AnythingUnknown",
    "rasa.core.policies.rule_policy.RulePolicyButNotQuite",
])
def test_any_other_component_starts_rasa_with_tensorflow(tmp_path, component):
    from bot.tensorflow_stand_in import model_needs_tensorflow

    free = ["rasa.core.policies.rule_policy.RulePolicy", "bot.nlu_component.SafetyNetFlagger"]
    assert model_needs_tensorflow(_archive(tmp_path / "free.tar.gz", free)) is False
    assert model_needs_tensorflow(_archive(tmp_path / "m.tar.gz", [*free, component])) is True


def test_an_unreadable_model_starts_rasa_with_tensorflow(tmp_path):
    from bot.tensorflow_stand_in import model_needs_tensorflow

    (tmp_path / "garbage.tar.gz").write_bytes(b"not a tar archive")
    (tmp_path / "dir").mkdir()
    for path in (tmp_path / "garbage.tar.gz", tmp_path / "missing.tar.gz", tmp_path / "dir"):
        assert model_needs_tensorflow(path) is True
    import tarfile

    with tarfile.open(tmp_path / "empty.tar.gz", "w:gz"):
        pass
    assert model_needs_tensorflow(tmp_path / "empty.tar.gz") is True


@pytest.mark.parametrize("args, expected", [
    (["run", "--model", "models/a.tar.gz", "--port", "1"], "models/a.tar.gz"),
    (["run", "--model=models/b.tar.gz"], "models/b.tar.gz"),
    (["run", "-m", "c.tar.gz"], "c.tar.gz"),
    (["run", "--port", "5005"], None),
    (["run", "--model"], None),
])
def test_the_model_argument_is_read_as_rasa_reads_it(args, expected):
    got = rasa_launcher.model_argument(args)
    assert (str(got) if got else None) == expected


STAND_IN_PROBE = """
import abc, sys
from bot import tensorflow_stand_in
tensorflow_stand_in.install()
import tensorflow as tf
from tensorflow.keras import layers

@tf.function
def plain(x):
    return x + 1

@tf.function(jit_compile=True)
def compiled(x):
    return x * 2

class Layer(layers.Layer, abc.ABC):  # Rasa mixes Keras bases and ABCs
    pass

assert plain(1) == 2 and compiled(2) == 4 and tf.Tensor is tf.Tensor
try:
    tf.constant(1)
except tensorflow_stand_in.TensorFlowNotLoaded as exc:
    print("refused:", exc)
import rasa.core.agent  # the import chain that pulled in TensorFlow
import spacy, thinc.compat
print("thinc sees tensorflow:", thinc.compat.has_tensorflow)
print("real tensorflow modules:", [m for m in sys.modules if m.startswith("tensorflow.python")])
"""


def test_the_stand_in_takes_rasas_imports_and_refuses_any_use():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", STAND_IN_PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "refused: tensorflow.constant was called" in out.stdout
    assert "thinc sees tensorflow: False" in out.stdout
    assert "real tensorflow modules: []" in out.stdout
