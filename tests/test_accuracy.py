"""The accuracy gate: the blind set through `python -m bot triage`.

tests/data/blind.jsonl (2026-11-30) was written by helpers who saw only data/LABELING.md and
the outcome table, never data/nlu/, the rules or the older set; it was committed before any
model or rule ran on it, and nothing is tuned on it. tests/data/heldout.jsonl informed
earlier fixes, so it is a regression set now: its floors only catch a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from bot.evaluation import evaluate
from bot.settings import PROJECT_ROOT
from bot.topics import FAQ_TOPICS

DATA = PROJECT_ROOT / "tests/data"
# (file, urgent recall, false alarms, FAQ topic, outcome): floors, not targets.
GATES = {
    "blind.jsonl": (0.98, 0.03, 0.93, 0.90),
    "heldout.jsonl": (0.98, 0.03, 0.93, 0.90),
}


def load(name: str):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def test_blind_set_is_big_and_covers_everything():
    rows = load("blind.jsonl")
    assert len(rows) >= 600
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) == {"emergency", "crisis", "report", "faq", "human", "smalltalk"}
    assert {r["topic"] for r in rows if r["outcome"] == "faq"} == set(FAQ_TOPICS)
    languages = Counter(r["lang"] for r in rows)
    assert languages["es"] >= 0.15 * len(rows) and len(languages) >= 6


@pytest.mark.parametrize("name", sorted(GATES))
def test_accuracy_gate(name, model_path, capsys):
    rows = load(name)
    run = subprocess.run(
        [sys.executable, "-m", "bot", "triage", "--file", str(DATA / name),
         "--monitoring", "off"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "BEACON_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = [json.loads(line) for line in run.stdout.splitlines()]
    report = evaluate(rows, predicted)
    with capsys.disabled():  # the full report, in every run's output
        print(f"\n{name}\n" + report.format(misses=name != "blind.jsonl"))
    recall, false_alarms, faq, outcome = GATES[name]
    assert report.urgent_recall >= recall
    assert report.false_alarm_rate <= false_alarms
    assert report.faq_topic_accuracy >= faq
    assert report.outcome_accuracy >= outcome
