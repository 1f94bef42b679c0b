"""Text clean-up shared by the safety net's rules and the urgency model (no spaCy here)."""

from __future__ import annotations

import hmac
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


def same_secret(given: object, expected: str) -> bool:
    """Constant-time comparison of a client's token with ours, for any input: the stdlib's
    ``compare_digest`` raises TypeError on a non-ASCII ``str`` (a 500 for a crafted token)."""
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def storable(text: str) -> str:
    """The text with lone surrogates ("\\ud800", valid JSON but not UTF-8) and NULs replaced,
    so it can be stored, logged and sent like any other."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


# No word is this long; a longer run without spaces (emoji, U+FDFA, base64) is split, since
# spaCy's tokenizer searches suffixes in quadratic time on one long "word" (4,000 emoji took
# 2.6 s before this cap, one event-loop stall for every citizen).
_LONG_RUN = re.compile(r"(\S{40})(?=\S)")


def bounded(text: str, limit: int) -> str:
    """The text cut to ``limit`` characters before and after NFKC (which can make one
    character eighteen), with long runs without spaces split: linear work per message."""
    text = unicodedata.normalize("NFKC", text[:limit])[:limit]
    return _LONG_RUN.sub(r"\1 ", text)


# Symbols the rules never read (emoji, pictographs, other symbols; the laughing faces stay,
# the rules read them as "not serious"), and runs of punctuation.
_SYMBOLS = re.compile(r"[^\w\s.,;:!?'\"()\-/&#@$%+\U0001F602\U0001F923]+")
_PUNCT_RUN = re.compile(r"([^\w\s])[^\w\s]+")
# A short token repeated ("! ! ! !", "1 1 1", "ha ha ha ha"), one to a line as well ("hey",
# 70 lines of it, filled both windows around "he has a gun" until a live attack, 2026-12-02):
# two are as telling as two hundred.
_REPEATED = re.compile(r"(\S{1,3}\s)\1{2,}")
_SPACES = re.compile(r"[^\S\n]+")
# Line breaks with blank lines or spaces around them: one break says as much, and 200 of
# them would fill the window at one end, hiding the danger between (a review's attack).
_BREAKS = re.compile(r"\s*\n\s*")


def rule_window(text: str, each_end: int) -> str:
    """What the rules read of a message: symbols dropped, punctuation runs shortened, and
    of a long message its first and last ``each_end`` characters (the point of a long
    message is often buried last; the urgency model still reads all of it). Each token
    costs the matcher tens of microseconds, so this bounds the rules to a few milliseconds."""
    text = _BREAKS.sub("\n", _SPACES.sub(" ", _PUNCT_RUN.sub(r"\1", _SYMBOLS.sub(" ", text))))
    text = _REPEATED.sub(r"\1\1", text)
    if len(text) > 2 * each_end:
        text = f"{text[:each_end]} . {text[-each_end:]}"
    return text


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
