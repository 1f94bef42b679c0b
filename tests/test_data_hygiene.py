"""The held-out set stays held out: none of its messages is a training example."""

from __future__ import annotations

import json

import yaml

from bot.settings import PROJECT_ROOT


def test_no_heldout_message_is_in_the_training_data():
    training = set()
    for path in (PROJECT_ROOT / "data/nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            training |= {line.strip()[2:].strip().lower()
                         for line in item["examples"].splitlines() if line.strip()}
    heldout = [json.loads(line)["text"].strip().lower()
               for line in (PROJECT_ROOT / "tests/data/heldout.jsonl").read_text().splitlines()]
    assert [text for text in heldout if text in training] == []


def test_no_training_example_has_two_labels():
    seen: dict = {}
    for path in (PROJECT_ROOT / "data/nlu").glob("*.yml"):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            for line in item["examples"].splitlines():
                if line.strip():
                    seen.setdefault(line.strip()[2:].strip().lower(), set()).add(item["intent"])
    assert {text: labels for text, labels in seen.items() if len(labels) > 1} == {}
