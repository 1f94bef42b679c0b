"""Text clean-up shared by the safety net's rules and the urgency model (no spaCy here)."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and bidi control characters: invisible, and they split words for the matcher.
_INVISIBLE = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x200E, 0x200F, *range(0x202A, 0x202F),
     *range(0x2066, 0x206A)]
)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'"})
_ELONGATED = re.compile(r"([^\W\d_])\1{2,}")

# Spelled-out contractions, so that patterns and negation see one form ("can not").
_CONTRACTIONS = [
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bcan'?t\b|\bcannot\b"), "can not"),
    (re.compile(r"\bain'?t\b"), "is not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|have|has|had|could|would|should)n'?t\b"),
     r"\1 not"),
    (re.compile(r"\bi'?m\b"), "i am"),
    (re.compile(r"\b(you|we|they)'re\b"), r"\1 are"),
    (re.compile(r"\b(he|she|it|someone|somebody|there|that)'s\b"), r"\1 is"),
]


def normalize(text: str) -> str:
    """Lower-case, fold look-alike characters, drop invisible ones, shorten elongations.

    "HELLLLP!!" becomes "hellp!!": runs of three or more letters are cut to two, which
    keeps real double letters ("kill", "speed") intact.
    """
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_QUOTES)
    return _ELONGATED.sub(r"\1\1", text.lower())


def spell_out(text: str) -> str:
    """Expand contractions after :func:`normalize` ("can't" and "cant" -> "can not")."""
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text
