"""Triage quality on text the authors did not write, per set, and k-fold figures.

Sets:
* ``blind13``: tests/data/blind13.jsonl (2026-12-01, last), written the same way after the
  other sets; committed before any model ran on it; measured once, with the system as it
  stands.
* ``blind12``: tests/data/blind12.jsonl (2026-12-01), written the same way; committed before
  any model ran on it; measured once, with the system blind13 measured (the model by kind
  read by sentence was withdrawn on the regression sets first).
* ``blind11``: tests/data/blind11.jsonl (2026-12-01), written the same way; measured once
  with the urgency model by kind (withdrawn), then with the system as it stands (and again
  after each rule change). The false alarms of blind8-11 were read for a rule change
  (2026-12-01, later; withdrawn after the live attack).
* ``blind10``: tests/data/blind10.jsonl (2026-12-01), written the same way; measured once
  with the urgency model by kind whose veto still overruled the rules' crisis flags.
* ``blind9``: tests/data/blind9.jsonl (2026-11-30), written the same way; measured once
  before the urgency model by kind was tried, and again for each change since.
* ``blind8``: tests/data/blind8.jsonl (2026-11-30), written the same way; measured once
  before the live attack's rule change and its training data.
* ``blind7``: tests/data/blind7.jsonl (2026-11-30), written the same way; measured once,
  then its misses were read for the training data that followed: a regression set since.
* ``blind6``: tests/data/blind6.jsonl (2026-11-30), written the same way; measured once
  before blind7 was written, with the same model.
* ``blind5``: tests/data/blind5.jsonl (2026-11-30), written the same way; measured once
  before the last training data (other_languages_more.yml, longform_calm_more.yml) and
  again after it.
* ``blind4``: tests/data/blind4.jsonl (2026-11-30, later), written the same way after the
  other sets; measured twice (before and after the short replies' training data).
* ``blind3``, ``blind2``: tests/data/blind3.jsonl and blind2.jsonl, written by helpers who
  saw only data/LABELING.md and the outcome table (never data/nlu/, the rules or older sets);
  per language as well. blind2 was measured once before the last training data was added;
* ``blind1``: tests/data/blind.jsonl, written the same way; measured once before the urgency
  model's last changes, whose false alarms motivated them (no misses were read);
* ``regression``: tests/data/heldout.jsonl, which informed earlier fixes (not a blind figure);
* every ``../shared/outside/*.jsonl`` present: public text by real people (crisis or
  not_urgent only), measured, never trained or tuned on.

Per set: urgent recall (the final outcome), the intake tier alone (rules + urgency model:
what the gateway's fast path acts on before Rasa answers, and all there is while Rasa is
down), crisis given the 988 line, false alarms (a 911 notice on a non-urgent message), FAQ
topic and outcome accuracy (a message in a language the department does not answer is
scored against what Beacon is built to do with it: staff and the one-line notice unless it is
urgent, no FAQ topic; bot.evaluation.designed_outcome); the urgency model's own k-fold
figures over the training data (from its model file), and the cost of the intake tier per
message (mean, p99, worst).

Usage: .venv/bin/python bench/triage_quality.py [--sets blind13,blind12,regression,outside]
       [--json results/quality.json] [--misses SET]   (--misses prints a set's misses;
       reading them makes that set a regression set: say so beside its next figure)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.department import load_department  # noqa: E402
from bot.engine import Triager  # noqa: E402
from bot.evaluation import designed_outcome, evaluate  # noqa: E402
from bot.safety_net import get_safety_net  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.training import current_model  # noqa: E402
from bot.triage import ANSWERED_LANGUAGES  # noqa: E402

OUTSIDE = ROOT.parent / "shared" / "outside"
# The worst inputs found so far for the rules' tokenizer and matcher (issue 8, item 4).
PATHOLOGICAL = ["\ufdfa" * 4000, "😀" * 4000, "😂 " * 2000, "!?" * 2000, "! " * 2000,
                "a\u0301\u0302\u0303" * 1000, "1 " * 2000, "is my the a " * 400,
                "ab cd " * 700, ("someone is here help my house now please " * 100)[:4000],
                "[" * 4000, "a" * 4000, "مرحبا " * 700, "有人闯进我家" * 700]
URGENT = ("emergency", "crisis")
# (--sets option, the name in the table, file): newest first; the name says what the set
# may still claim (the module docstring).
LABELLED = (
    ("blind13", "blind13", "blind13.jsonl"),
    ("blind12", "blind12 (measured before)", "blind12.jsonl"),
    ("blind11", "blind11 (measured before; false alarms read)", "blind11.jsonl"),
    ("blind10", "blind10 (measured before; false alarms read)", "blind10.jsonl"),
    ("blind9", "blind9 (measured before; false alarms read)", "blind9.jsonl"),
    ("blind8", "blind8 (measured before; false alarms read)", "blind8.jsonl"),
    ("blind7", "blind7 (misses read: a regression set)", "blind7.jsonl"),
    ("blind6", "blind6 (measured before)", "blind6.jsonl"),
    ("blind5", "blind5 (measured before)", "blind5.jsonl"),
    ("blind4", "blind4 (measured before)", "blind4.jsonl"),
    ("blind3", "blind3 (measured before)", "blind3.jsonl"),
    ("blind2", "blind2 (measured before later data and models)", "blind2.jsonl"),
    ("blind1", "blind1 (measured before later data and models)", "blind.jsonl"),
    ("regression", "regression (held-out, informed earlier fixes)", "heldout.jsonl"),
)
OPTION_OF = {label: option for option, label, _ in LABELLED}


def read(path: Path) -> List[Dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def pct(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def predict(triager: Triager, rows: List[Dict]) -> List[Dict]:
    now = dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.timezone.utc)
    return [(await triager.triage(r["text"], monitoring=False, now=now)).as_record()
            for r in rows]


def outside_figures(rows: List[Dict], predicted: List[Dict]) -> Dict:
    """Outside sets are labelled crisis/emergency/not_urgent only."""
    urgent = [p for r, p in zip(rows, predicted, strict=True) if r["outcome"] in URGENT]
    crisis = [p for r, p in zip(rows, predicted, strict=True) if r["outcome"] == "crisis"]
    calm = [p for r, p in zip(rows, predicted, strict=True) if r["outcome"] not in URGENT]
    out: Dict = {"messages": len(rows)}
    if urgent:
        out["urgent_recall"] = sum(p["outcome"] in URGENT for p in urgent) / len(urgent)
        out["intake_recall"] = sum(p["safety_net"] is not None for p in urgent) / len(urgent)
    if crisis:
        out["crisis_988"] = sum(p["outcome"] == "crisis" for p in crisis) / len(crisis)
    if calm:
        out["false_alarms"] = sum(p["outcome"] in URGENT for p in calm) / len(calm)
        out["intake_false_alarms"] = sum(p["safety_net"] is not None for p in calm) / len(calm)
    return out


def labelled_figures(rows: List[Dict], predicted: List[Dict]) -> Dict:
    report = evaluate(rows, predicted)
    calm = [p for r, p in zip(rows, predicted, strict=True) if r["outcome"] not in URGENT]
    figures = {
        "messages": report.total, "urgent_recall": report.urgent_recall,
        "intake_recall": report.intake_recall, "crisis_988": report.crisis_988,
        "false_alarms": report.false_alarm_rate,
        "intake_false_alarms": (sum(p["safety_net"] is not None for p in calm) / len(calm)
                                if calm else 0.0),
        "faq_topic": report.faq_topic_accuracy, "outcome": report.outcome_accuracy,
    }
    if not report.faq_scored:  # no FAQ message in a language Beacon answers
        del figures["faq_topic"]
    return figures


def tier_cost(texts: List[str]) -> Dict:
    """The intake tier (SafetyNet.check: rules + model) per message, as the gateway runs it."""
    net = get_safety_net()
    times = []
    for text in texts:
        start = time.perf_counter()
        net.check(text)
        times.append((time.perf_counter() - start) * 1000)
    return {"mean_ms": sum(times) / len(times), "p99_ms": pct(times, 99), "max_ms": max(times)}


def row(name: str, f: Dict) -> str:
    def cell(key: str) -> str:
        return f"{f[key]:.3f}" if key in f else "—"
    return (f"| {name} | {f['messages']} | {cell('urgent_recall')} | {cell('intake_recall')} | "
            f"{cell('crisis_988')} | {cell('false_alarms')} | {cell('intake_false_alarms')} | "
            f"{cell('faq_topic')} | {cell('outcome')} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sets",
        default=",".join([option for option, _, _ in LABELLED] + ["outside"]))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--misses", default="",
                        help="print this set's misses (a --sets name, or an outside set's "
                             "full name, e.g. 'outside: snips')")
    args = parser.parse_args()
    wanted = set(args.sets.split(","))

    start = time.perf_counter()
    triager = Triager.load(current_model(), load_department(Settings.from_env().department_file))
    print(f"model loaded in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    sets: Dict[str, List[Dict]] = {}
    for option, label, file in LABELLED:
        if option in wanted:
            sets[label] = read(ROOT / "tests/data" / file)
    if "outside" in wanted and OUTSIDE.is_dir():
        for path in sorted(OUTSIDE.glob("*.jsonl")):
            sets[f"outside: {path.stem}"] = read(path)

    results: Dict[str, Dict] = {}
    all_texts: List[str] = []
    for name, rows in sets.items():
        predicted = await predict(triager, rows)
        all_texts += [r["text"] for r in rows]
        if name.startswith("outside"):
            results[name] = outside_figures(rows, predicted)
        else:
            results[name] = labelled_figures(rows, predicted)
            if name.startswith("blind"):
                by_language = defaultdict(list)
                for r, p in zip(rows, predicted, strict=True):
                    group = r.get("lang", "en") if r.get("lang") in ANSWERED_LANGUAGES else "other"
                    by_language[group].append((r, p))
                for group, pairs in sorted(by_language.items()):
                    results[f"{name.split()[0]}, {group}"] = labelled_figures(
                        [r for r, _ in pairs], [p for _, p in pairs])
        # The exact set only: a prefix would print blind11's misses for "blind1".
        if args.misses and args.misses in (OPTION_OF.get(name), name):
            for r, p in zip(rows, predicted, strict=True):
                if name.startswith("outside"):
                    wrong = (p["outcome"] in URGENT) != (r["outcome"] in URGENT)
                else:
                    wrong = p["outcome"] != designed_outcome(r, ANSWERED_LANGUAGES)
                if wrong:
                    print(f"MISS {r['outcome']:>10} -> {p['outcome']:<10} "
                          f"[{p['intent']} {p['confidence']} {p['tier']}] {r['text'][:110]!r}")

    from bot import intent_model, urgency

    model = urgency.current()
    print(f"\n{dt.date.today()}, {platform.machine()}, {platform.python_version()}, "
          f"`{' '.join(sys.argv)}`\n")
    print("| set | messages | urgent recall | intake tier recall | crisis given 988 | "
          "false alarms | intake-tier false alarms | FAQ topic | outcome |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, figures in results.items():
        print(row(name, figures))
    if model is not None:
        chosen = model.report["chosen"]
        print(f"\nurgency model, {model.report['folds']}-fold cross-validation over "
              f"{sum(model.report['examples'].values())} training examples "
              f"({model.report['examples']}): C={model.report['c']}, threshold "
              f"{chosen['threshold']:.3f}, out-of-fold urgent recall {chosen['recall']:.3f}, "
              f"false alarms {chosen['false_alarms']:.3f}, crisis as crisis "
              f"{chosen['crisis_as_crisis']:.3f}")
    record = intent_model.cross_validate()  # the record `python -m bot train` wrote
    chosen = record["chosen"]
    print(f"intent model, {record['folds']}-fold grouped cross-validation over "
          f"{record['examples']} examples: C={record['c']}, min confidence "
          f"{record['min_confidence']}, urgent min confidence "
          f"{record['urgent_min_confidence']}: out-of-fold outcome {chosen['outcome']:.3f}, "
          f"FAQ topic {chosen['faq_topic']:.3f}, calm given an urgent intent "
          f"{chosen['urgent_false_alarms']:.3f}")
    cost = tier_cost(all_texts)
    print(f"intake tier per message over {len(all_texts)} messages: mean "
          f"{cost['mean_ms']:.2f} ms, p99 {cost['p99_ms']:.2f} ms, worst {cost['max_ms']:.2f} ms")
    hostile = tier_cost(PATHOLOGICAL * 3)
    print(f"intake tier on {len(PATHOLOGICAL)} pathological 4,000-character inputs: worst "
          f"{hostile['max_ms']:.2f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"sets": results, "tier_cost": cost,
                                         "urgency": model.report if model else None,
                                         "intents": record},
                                        indent=1))


if __name__ == "__main__":
    asyncio.run(main())
