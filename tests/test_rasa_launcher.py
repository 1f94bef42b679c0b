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


def _archive(path: Path, *graphs) -> Path:
    """A model archive with one metadata.json per graph (Rasa reads the last)."""
    import io
    import json
    import tarfile

    with tarfile.open(path, "w:gz") as archive:
        for uses in graphs:
            metadata = json.dumps({"predict_schema": {"nodes": {
                f"node{i}": {"uses": name} for i, name in enumerate(uses)}}}).encode()
            info = tarfile.TarInfo("metadata.json")
            info.size = len(metadata)
            archive.addfile(info, io.BytesIO(metadata))
    return path


FREE = ["rasa.core.policies.rule_policy.RulePolicy", "bot.nlu_component.SafetyNetFlagger"]


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
    # A listed package re-exports DIET: Rasa would resolve this name to it (live attack).
    "rasa.graph_components.validators.default_recipe_validator.DIETClassifier",
    "bot.nlu_component.DIETClassifier",
])
def test_any_other_component_starts_rasa_with_tensorflow(tmp_path, component):
    from bot.tensorflow_stand_in import model_needs_tensorflow

    assert model_needs_tensorflow(_archive(tmp_path / "free.tar.gz", FREE)) is False
    assert model_needs_tensorflow(_archive(tmp_path / "m.tar.gz", [*FREE, component])) is True


def _renamed(path: Path, name: str) -> Path:
    """An archive of FREE whose metadata file is stored under ``name``."""
    import io
    import json
    import tarfile

    metadata = json.dumps({"predict_schema": {"nodes": {
        f"node{i}": {"uses": use} for i, use in enumerate(FREE)}}}).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(metadata)
        archive.addfile(info, io.BytesIO(metadata))
    return path


def test_the_metadata_file_is_found_where_rasa_reads_it(tmp_path):
    from bot.tensorflow_stand_in import model_needs_tensorflow

    assert model_needs_tensorflow(_renamed(tmp_path / "a.tar.gz", "./metadata.json")) is False
    # Rasa's safe extraction refuses an absolute name: not a metadata file Rasa would read.
    assert model_needs_tensorflow(_renamed(tmp_path / "b.tar.gz", "/metadata.json")) is True
    assert model_needs_tensorflow(_renamed(tmp_path / "c.tar.gz", "x/metadata.json")) is True


def test_an_unreadable_or_ambiguous_model_starts_rasa_with_tensorflow(tmp_path, model_path):
    from bot.tensorflow_stand_in import model_needs_tensorflow

    (tmp_path / "garbage.tar.gz").write_bytes(b"not a tar archive")
    (tmp_path / "dir").mkdir()
    # Cut short: gzip raises EOFError, which escaped the check and stopped the launcher.
    (tmp_path / "truncated.tar.gz").write_bytes(model_path.read_bytes()[:200_000])
    diet = [*FREE, "rasa.nlu.classifiers.diet_classifier.DIETClassifier"]
    cases = [tmp_path / "garbage.tar.gz", tmp_path / "missing.tar.gz", tmp_path / "dir",
             tmp_path / "truncated.tar.gz", _archive(tmp_path / "empty.tar.gz"),
             _archive(tmp_path / "no-nodes.tar.gz", []),
             _archive(tmp_path / "two.tar.gz", FREE, diet)]  # Rasa reads the last
    assert [model_needs_tensorflow(path) for path in cases] == [True] * len(cases)


@pytest.mark.parametrize("args, expected", [
    (["run", "--model", "models/a.tar.gz", "--port", "1"], "models/a.tar.gz"),
    (["run", "--model=models/b.tar.gz"], "models/b.tar.gz"),
    (["run", "-m", "c.tar.gz"], "c.tar.gz"),
    (["run", "--port", "5005"], None),
    (["run", "--model"], None),
    # Rasa's parser keeps the last (live attack: the launcher read the first).
    (["run", "--model", "free.tar.gz", "--model", "diet.tar.gz"], "diet.tar.gz"),
    (["run", "--model=free.tar.gz", "-m", "diet.tar.gz"], "diet.tar.gz"),
])
def test_the_model_argument_is_read_as_rasa_reads_it(args, expected):
    got = rasa_launcher.model_argument(args)
    assert (str(got) if got else None) == expected


def test_a_positional_model_path_is_read_as_rasa_reads_it(tmp_path, model_path):
    last = str(_archive(tmp_path / "diet.tar.gz", ["x.DIETClassifier"]))
    args = ["run", "--enable-api", "--model", str(model_path), last]
    assert rasa_launcher.model_argument(args) == Path(last)
    assert rasa_launcher.without_tensorflow(args) is False


def test_a_model_server_in_the_endpoints_keeps_tensorflow(tmp_path, model_path, monkeypatch):
    plain = tmp_path / "plain.yml"
    plain.write_text("tracker_store:\n  type: redis\n")
    server = tmp_path / "server.yml"
    server.write_text("models:\n  url: http://models.example/model.tar.gz\n")
    model = ["run", "--model", str(model_path)]
    monkeypatch.chdir(tmp_path)  # no endpoints.yml here
    assert rasa_launcher.without_tensorflow([*model, "--endpoints", str(plain)]) is True
    assert rasa_launcher.without_tensorflow([*model, "--endpoints", str(server)]) is False
    assert rasa_launcher.without_tensorflow([*model, "--endpoints", "missing.yml"]) is True
    assert rasa_launcher.without_tensorflow(["run", "--endpoints", str(plain)]) is False
    # A named file that is missing: Rasa falls back to ./endpoints.yml, and so does this
    # (review: the check passed while Rasa read a model server from ./endpoints.yml).
    (tmp_path / "endpoints.yml").write_text(server.read_text())
    assert rasa_launcher.without_tensorflow([*model, "--endpoints", "missing.yml"]) is False
    assert rasa_launcher.without_tensorflow(model) is False


@pytest.mark.parametrize("extra", [
    ["--remote-storage", "aws"],  # Rasa loads the model by name from there
    ["-mmodels/other.tar.gz"],  # argparse forms the launcher does not parse
    ["--mod", "models/other.tar.gz"],
    ["--endp", "elsewhere.yml"],
])
def test_options_the_launcher_does_not_read_keep_tensorflow(model_path, extra):
    model = ["run", "--model", str(model_path)]
    assert rasa_launcher.without_tensorflow(model) is True
    assert rasa_launcher.without_tensorflow([*model, *extra]) is False


STAND_IN_PROBE = """
import abc, sys
from bot import tensorflow_stand_in
tensorflow_stand_in.install()
import tensorflow as tf
from tensorflow.keras import layers

class Layer(layers.Layer, abc.ABC):  # Rasa mixes Keras bases and ABCs
    pass

assert tf.Tensor is tf.Tensor and issubclass(Layer, layers.Layer)
calls = {"constant": lambda: tf.constant(1), "keyword": lambda: tf.ones(shape=(2,)),
         "layer": lambda: layers.Dense(units=3), "subclass": lambda: Layer(),
         "decorator": lambda: tf.function(len), "factory": lambda: tf.function(jit_compile=True)}
for name, call in calls.items():
    try:
        call()
        print("ran:", name)
    except tensorflow_stand_in.TensorFlowNotLoaded as exc:
        print("refused:", name, exc)
import rasa.core.agent  # the import chain that pulled in TensorFlow
import spacy, thinc.compat
print("thinc sees tensorflow:", thinc.compat.has_tensorflow)
print("real tensorflow modules:", [name for name, module in sys.modules.items()
                                   if name.split(".")[0] in ("tensorflow", "keras")
                                   and getattr(module, "__file__", None)])
"""


def test_the_stand_in_takes_rasas_imports_and_refuses_any_use():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", STAND_IN_PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ran:" not in out.stdout
    for name in ("constant", "keyword", "layer", "subclass", "decorator", "factory"):
        assert f"refused: {name} " in out.stdout
    assert "refused: constant tensorflow.constant was called" in out.stdout
    assert "thinc sees tensorflow: False" in out.stdout
    assert "real tensorflow modules: []" in out.stdout
