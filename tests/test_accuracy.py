"""The accuracy gate: the blind sets and the regression set through `python -m bot triage`.

tests/data/blind13.jsonl, blind12.jsonl, blind11.jsonl, blind10.jsonl (2026-12-01), blind9.jsonl,
blind8.jsonl, blind7.jsonl, blind6.jsonl, blind5.jsonl, blind4.jsonl, blind3.jsonl, blind2.jsonl
and blind.jsonl (2026-11-30) were written by helpers who saw only data/LABELING.md and the
outcome table, never data/nlu/, the rules or older sets; all but blind13 were measured
before later changes (see the README), blind7's misses were read for the training data
that followed it, and the false alarms of blind8-11 for a rule change that was withdrawn
(regression sets since).
Their misses are never printed. tests/data/heldout.jsonl informed earlier fixes: a regression set.

The floors catch a regression from the measured figures (README); they are not the issue's
targets, which are not all met (on blind13 false alarms, below the issue's gate floor
too). A
message in a language Beacon does not answer is scored against what Beacon is built to do
with it (bot.evaluation.designed_outcome).
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
from bot.triage import ANSWERED_LANGUAGES

DATA = PROJECT_ROOT / "tests/data"
# (file, urgent recall on English and Spanish, false alarms, FAQ topic, outcome): floors.
GATES = {
    # blind13 (2026-12-01, last; measured once, results/quality-19.json): 0.987 on English and
    # Spanish (English 0.985, Spanish 1.000; 4 of 254 urgent missed in all, one of them in
    # another language) / 0.061 / 0.952 / 0.928. Below the floor for false alarms (3%).
    "blind13.jsonl": (0.98, 0.07, 0.94, 0.92),
    # blind12 (2026-12-01; measured once, results/quality-18.json): 0.979 (English
    # 0.974, Spanish 1.000; 5 of 241 urgent missed) / 0.053 / 0.952 / 0.933. Below the issue's
    # floors for recall (0.98) and false alarms (3%).
    "blind12.jsonl": (0.97, 0.06, 0.94, 0.925),
    # blind11 (2026-12-01): 0.991 (English 0.989, Spanish 1.000) / 0.060 / 0.925 / 0.918
    # with this system (quality-15, and quality-16 after the review narrowed the new rules:
    # the same; the withdrawn urgency model by kind got 0.987 / 0.028 / 0.931 / 0.940; README).
    # Below the floors for false alarms (3%) and FAQ topic (0.93).
    "blind11.jsonl": (0.98, 0.065, 0.92, 0.91),
    # blind10: 0.991 (English 0.989, Spanish 1.000) / 0.050 / 0.933 / 0.935 (the model by kind:
    # 0.991 / 0.031 / 0.933 / 0.946).
    "blind10.jsonl": (0.98, 0.055, 0.93, 0.93),
    # blind9 (2026-11-30; measured once): 0.976 (English 0.969, Spanish 1.000) / 0.043 /
    # 0.967 / 0.951; 0.976 / 0.041 / 0.967 / 0.952 since the review's rule change (README).
    "blind9.jsonl": (0.97, 0.05, 0.95, 0.93),
    # blind8: 0.983 / 0.048 / 0.965 / 0.941 measured once; 0.987 / 0.050 / 0.965 / 0.941
    # after the live attack's rule change and its data (README).
    "blind8.jsonl": (0.98, 0.055, 0.95, 0.93),
    # blind7: 0.991 / 0.066 / 0.944 / 0.906 measured once; its misses were then read for the
    # training data (a regression set): 0.995 / 0.036 / 0.964 / 0.959 since.
    "blind7.jsonl": (0.98, 0.05, 0.95, 0.94),
    # blind6 (2026-11-30; measured once, with the model blind7 measured): 1.000 (English and
    # Spanish 1.000) / 0.081 / 0.964 / 0.895 (README).
    "blind6.jsonl": (0.98, 0.09, 0.94, 0.88),
    # blind5: measured twice, the second time 1.000 / 0.055 / 0.957 / 0.924.
    "blind5.jsonl": (0.98, 0.07, 0.93, 0.90),
    # blind4: 0.979 / 0.042 / 0.975 / 0.927 before the last training data, 0.963 (English
    # 0.954) / 0.020 / 0.975 / 0.946 after it (README): its recall fell by three messages.
    "blind4.jsonl": (0.955, 0.06, 0.93, 0.90),
    "blind3.jsonl": (0.98, 0.06, 0.93, 0.90),
    "blind2.jsonl": (0.98, 0.08, 0.92, 0.90),
    "blind.jsonl": (0.98, 0.08, 0.92, 0.90),
    "heldout.jsonl": (0.98, 0.05, 0.93, 0.90),
}
# Every blind set on disk (as tests/test_data_hygiene.py finds them): a new one is covered
# and never has its misses printed, even before it is listed here by hand.
BLIND = tuple(sorted(path.name for path in DATA.glob("blind*.jsonl")))


def load(name: str):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", BLIND)
def test_blind_set_is_big_and_covers_everything(name):
    rows = load(name)
    assert len(rows) >= 600
    outcomes = Counter(r["outcome"] for r in rows)
    assert set(outcomes) == {"emergency", "crisis", "report", "faq", "human", "smalltalk"}
    assert {r["topic"] for r in rows if r["outcome"] == "faq"} == set(FAQ_TOPICS)
    languages = Counter(r["lang"] for r in rows)
    assert languages["es"] >= 0.14 * len(rows) and len(languages) >= 6  # about 15%


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
    answered = [(r, p) for r, p in zip(rows, predicted, strict=True)
                if r.get("lang", "en") in ANSWERED_LANGUAGES]
    in_our_languages = evaluate([r for r, _ in answered], [p for _, p in answered])
    with capsys.disabled():  # the full report, in every run's output
        print(f"\n{name}\n" + report.format(misses=name not in BLIND))
        print(f"English and Spanish only: urgent recall {in_our_languages.urgent_recall:.3f}")
    recall, false_alarms, faq, outcome = GATES[name]
    assert in_our_languages.urgent_recall >= recall
    assert report.false_alarm_rate <= false_alarms
    assert report.faq_topic_accuracy >= faq
    assert report.outcome_accuracy >= outcome


def test_other_languages_are_scored_against_what_beacon_is_built_to_do():
    """A message in a language Beacon does not answer goes to staff with the one-line notice
    (issue 7, item 5) unless it is urgent, and its FAQ topic is not scored: nobody answers
    it from the FAQ. Urgent messages keep their label in every language."""
    gold = [
        {"text": "营业时间?", "outcome": "faq", "topic": "hours_location", "lang": "zh"},
        {"text": "Au secours, il y a le feu", "outcome": "emergency", "topic": None, "lang": "fr"},
        {"text": "bonjour", "outcome": "smalltalk", "topic": None, "lang": "fr"},
        {"text": "horario?", "outcome": "faq", "topic": "hours_location", "lang": "es"},
    ]
    staff = {"outcome": "human", "topic": None, "safety_net": None}
    notice = {"outcome": "emergency", "topic": None, "safety_net": {"flag": "emergency"}}
    answered = {"outcome": "faq", "topic": "hours_location", "safety_net": None}
    report = evaluate(gold, [staff, notice, staff, answered])
    assert report.outcome_accuracy == 1.0 and report.faq_scored == 1
    assert report.faq_topic_accuracy == 1.0 and report.urgent_recall == 1.0
    # Wrong answers stay wrong: the French emergency sent to staff is a missed urgent
    # message, the notice on the French greeting a false alarm.
    wrong = evaluate(gold, [staff, staff, notice, answered])
    assert wrong.urgent_recall == 0.0 and wrong.false_alarm_rate == 1 / 3
    assert wrong.outcome_accuracy == 0.5
