"""Scoring triage against labelled messages: the accuracy gate's numbers and report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Collection, Dict, List, Mapping, Sequence

from bot.triage import ANSWERED_LANGUAGES

URGENT = ("emergency", "crisis")
OUTCOMES = ("emergency", "crisis", "report", "faq", "human", "smalltalk")


@dataclass
class Report:
    total: int
    urgent_recall: float
    false_alarm_rate: float
    faq_topic_accuracy: float
    outcome_accuracy: float
    confusion: Dict[str, Counter] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)
    # The intake tier alone (rules + urgency model): what the gateway's fast path acts on.
    intake_recall: float = 0.0
    # Crisis messages that got the crisis outcome, i.e. the 988 line.
    crisis_988: float = 0.0
    counts: Dict[str, int] = field(default_factory=dict)
    # FAQ messages whose topic was scored (in a language Beacon answers).
    faq_scored: int = 0

    def format(self, misses: bool = True) -> str:
        """The figures and confusion; ``misses`` adds every wrong message (never for a blind
        set: whoever reads its misses turns it into a regression set)."""
        lines = [
            f"messages: {self.total} ({', '.join(f'{k} {v}' for k, v in self.counts.items())})",
            f"emergency+crisis recall: {self.urgent_recall:.3f}",
            f"intake tier alone (rules + urgency model) recall: {self.intake_recall:.3f}",
            f"crisis given the 988 line: {self.crisis_988:.3f}",
            f"false alarms (non-urgent given the 911 notice): {self.false_alarm_rate:.3f}",
            f"FAQ topic accuracy: {self.faq_topic_accuracy:.3f}",
            f"overall outcome accuracy: {self.outcome_accuracy:.3f}",
            "",
            "confusion (rows: expected, columns: predicted)",
            "            " + " ".join(f"{o[:9]:>9}" for o in OUTCOMES),
        ]
        for gold in OUTCOMES:
            row = self.confusion.get(gold, Counter())
            lines.append(f"{gold:>11} " + " ".join(f"{row.get(o, 0):>9}" for o in OUTCOMES))
        if self.errors and misses:
            lines += ["", f"errors ({len(self.errors)}):", *self.errors]
        return "\n".join(lines)


def _ratio(hits: int, total: int) -> float:
    return hits / total if total else 1.0


def designed_outcome(gold: Mapping, answered: Collection[str]) -> str:
    """The outcome Beacon is built to give a labelled row: its label, except that a message
    in a language Beacon does not answer (a ``lang`` outside ``answered``) goes to staff
    with the one-line notice in its language unless it is urgent (issue 7, item 5). Its
    FAQ topic is then not scored: nobody answers it from the FAQ."""
    language = gold.get("lang")
    if language and language not in answered and gold["outcome"] not in URGENT:
        return "human"
    return gold["outcome"]


def evaluate(gold: Sequence[Mapping], predicted: Sequence[Mapping],
             answered: Collection[str] = ANSWERED_LANGUAGES) -> Report:
    """Compare labelled rows ({text, outcome, topic, lang}) with triage records, in order;
    ``answered`` are the languages triage answers in (see :func:`designed_outcome`)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} labelled rows but {len(predicted)} predictions")
    confusion: Dict[str, Counter] = {o: Counter() for o in OUTCOMES}
    errors: List[str] = []
    urgent = urgent_hit = calm = false_alarm = faq = faq_hit = correct = 0
    intake_hit = crisis = crisis_hit = 0
    for labelled, p in zip(gold, predicted, strict=True):
        g = {**labelled, "outcome": designed_outcome(labelled, answered)}
        got = p.get("outcome")
        confusion[g["outcome"]][got] += 1
        ok = got == g["outcome"] and (g["outcome"] != "faq" or p.get("topic") == g.get("topic"))
        if g["outcome"] in URGENT:
            urgent += 1
            urgent_hit += got in URGENT
            intake_hit += p.get("safety_net") is not None
        else:
            calm += 1
            false_alarm += got in URGENT
        if g["outcome"] == "crisis":
            crisis += 1
            crisis_hit += got == "crisis"
        if g["outcome"] == "faq":
            faq += 1
            faq_hit += got == "faq" and p.get("topic") == g.get("topic")
        correct += got == g["outcome"]
        if not ok:
            expected = g["outcome"] + (f"/{g['topic']}" if g.get("topic") else "")
            actual = f"{got}" + (f"/{p.get('topic')}" if p.get("topic") else "")
            errors.append(
                f"  expected {expected:<28} got {actual:<28} "
                f"[{p.get('intent')} {p.get('confidence')}] {g['text'][:90]!r}"
            )
    return Report(
        total=len(gold),
        urgent_recall=_ratio(urgent_hit, urgent),
        false_alarm_rate=false_alarm / calm if calm else 0.0,
        faq_topic_accuracy=_ratio(faq_hit, faq),
        outcome_accuracy=_ratio(correct, len(gold)),
        confusion=confusion,
        errors=errors,
        intake_recall=_ratio(intake_hit, urgent),
        crisis_988=_ratio(crisis_hit, crisis),
        counts=dict(Counter(designed_outcome(g, answered) for g in gold)),
        faq_scored=faq,
    )
