"""What the safety net (bot/safety_net.py) says about one message, and how it travels in
Rasa's parse data. No spaCy here: the action server and the decision function read these
results without loading the rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

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

    def as_dict(self) -> Dict:
        return {
            "flag": self.flag,
            "language": self.language,
            "hits": [asdict(h) for h in self.hits],
            "cues": list(self.cues),
            "tier": self.tier,
            "urgency": round(self.urgency, 4),
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
        )
