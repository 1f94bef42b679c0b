"""Test sets stay out of the training data: none of their messages is a training example
(compared after folding case, punctuation and spacing).

Short messages are exempt for the project's own sets: anyone writes "hello" or "thanks so
much!!", and a department's bot must be trained on them. From four words up a shared line
is a copy, and the training example goes. Public outside text is never in the training
data, whatever its length."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from bot.settings import PROJECT_ROOT

OUTSIDE = PROJECT_ROOT.parent / "shared" / "outside"


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _training() -> set:
    training = set()
    for path in (PROJECT_ROOT / "data/nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            training |= {_key(line.strip()[2:]) for line in item["examples"].splitlines()
                         if line.strip()}
    return training


def _texts(path) -> list:
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["heldout.jsonl"] + sorted(
    path.name for path in (PROJECT_ROOT / "tests/data").glob("blind*.jsonl")))
def test_no_test_message_is_in_the_training_data(name):
    training = _training()
    texts = _texts(PROJECT_ROOT / "tests/data" / name)
    assert [t for t in texts if _key(t) in training and len(_key(t).split()) >= 4] == []


def test_no_outside_text_is_in_the_training_data():
    if not OUTSIDE.is_dir():
        pytest.skip("../shared/outside is not here")
    training = _training()
    copied = [t for path in sorted(OUTSIDE.glob("*.jsonl")) for t in _texts(path)
              if _key(t) and _key(t) in training]
    assert copied == []


def test_no_training_example_has_two_labels():
    seen: dict = {}
    for path in (PROJECT_ROOT / "data/nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            for line in item["examples"].splitlines():
                if line.strip():
                    seen.setdefault(line.strip()[2:].strip().lower(), set()).add(item["intent"])
    assert {text: labels for text, labels in seen.items() if len(labels) > 1} == {}
