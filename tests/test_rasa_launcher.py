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
