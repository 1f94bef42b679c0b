"""The accuracy gate: the held-out set through `python -m bot triage`.

tests/data/heldout.jsonl was written separately from the training data (data/LABELING.md)
and is never used for training or tuning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from bot.evaluation import evaluate
from bot.settings import PROJECT_ROOT
from bot.topics import FAQ_TOPICS

HELDOUT = PROJECT_ROOT / "tests/data/heldout.jsonl"


def load_heldout():
    return [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]


def test_heldout_set_is_big_and_covers_everything():
    rows = load_heldout()
    assert len(rows) >= 300
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) == {"emergency", "crisis", "report", "faq", "human", "smalltalk"}
    assert {r["topic"] for r in rows if r["outcome"] == "faq"} == set(FAQ_TOPICS)


def test_accuracy_gate(model_path, capsys):
    rows = load_heldout()
    run = subprocess.run(
        [sys.executable, "-m", "bot", "triage", "--file", str(HELDOUT), "--monitoring", "off"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "BEACON_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = [json.loads(line) for line in run.stdout.splitlines()]
    report = evaluate(rows, predicted)
    with capsys.disabled():  # the full report, in every run's output
        print("\n" + report.format())
    assert report.urgent_recall >= 0.98
    assert report.false_alarm_rate <= 0.05
    assert report.faq_topic_accuracy >= 0.90
    assert report.outcome_accuracy >= 0.90
