"""Splitting long replies for Meta's 2,000-character limit."""

from __future__ import annotations

from bot.channels.meta import MAX_TEXT as META_MAX_TEXT
from bot.channels.meta import chunks as _chunks


def test_long_reply_is_split_on_words_within_the_limit():
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = _chunks(text, META_MAX_TEXT)
    assert len(chunks) > 1 and all(len(c) <= META_MAX_TEXT for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_short_reply_is_untouched_and_long_words_are_cut():
    assert _chunks("Stay safe!", META_MAX_TEXT) == ["Stay safe!"]
    assert [len(c) for c in _chunks("x" * 4500, META_MAX_TEXT)] == [2000, 2000, 500]
