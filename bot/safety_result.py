"""What the safety net (bot/safety_net.py) says about one message, and how it travels in
Rasa's parse data. No spaCy here: the action server and the decision function read these
results without loading the rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Iterable, Tuple

# The key under which the result travels in Rasa's parse data.
SAFETY_NET_KEY = "safety_net"
EMERGENCY = "emergency"
CRISIS = "crisis"


@dataclass(frozen=True)
class Hit:
    """One pattern match: its label, the words, and why it was taken back (or None)."""

    label: str
    text: str
    suppressed: str | None = None

    @property
    def active(self) -> bool:
        return self.suppressed is None


@dataclass(frozen=True)
class SafetyResult:
    """What the safety net saw in one message.

    ``flag`` is "crisis", "emergency" or None; ``cues`` are weak signs of urgency that the
    decision function uses only when the classifier is unsure.
    """

    flag: str | None
    language: str
    hits: Tuple[Hit, ...] = ()
    cues: Tuple[str, ...] = ()
    # Which tier raised the flag ("rules" or "model"), and the model's P(urgent).
    tier: str | None = None
    urgency: float = 0.0
    # The urgency model that checked the message (its file's name), None for the rules
    # alone: Rasa reuses intake's result only when it names Rasa's own model.
    model: str | None = None

    def consistent(self) -> bool:
        """Whether the flag, tier and cues are what the hits make them (as the safety net
        writes a result): a result read from elsewhere must not say "calm" beside an
        active emergency hit, nor carry cues its hits do not have."""
        flag = rules_flag(self.hits)
        if flag == CRISIS and self.flag != CRISIS:
            return False
        if flag == EMERGENCY and self.flag not in (EMERGENCY, CRISIS):
            return False
        tier = "rules" if flag else ("model" if self.flag else None)
        return (self.tier == tier and self.cues == active_cues(self.hits)
                and (self.model is not None or self.tier != "model"))

    def as_dict(self) -> Dict:
        return {
            "flag": self.flag,
            "language": self.language,
            "hits": [asdict(h) for h in self.hits],
            "cues": list(self.cues),
            "tier": self.tier,
            "urgency": round(self.urgency, 4),
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Dict) -> SafetyResult:
        return cls(
            flag=data.get("flag"),
            language=data.get("language", "en"),
            hits=tuple(Hit(**h) for h in data.get("hits", [])),
            cues=tuple(data.get("cues", [])),
            tier=data.get("tier"),
            urgency=float(data.get("urgency") or 0.0),
            model=data.get("model"),
        )


def rules_flag(hits: Iterable[Hit]) -> str | None:
    """The flag the rules' active hits raise: crisis over emergency."""
    active = {h.label.split(".")[0] for h in hits if h.active}
    return CRISIS if CRISIS in active else EMERGENCY if EMERGENCY in active else None


def active_cues(hits: Iterable[Hit]) -> Tuple[str, ...]:
    """The weak signs among the active hits, sorted (``SafetyResult.cues``)."""
    return tuple(sorted({h.label for h in hits if h.active and h.label.startswith("cue.")}))
