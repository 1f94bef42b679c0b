"""Splitting long replies for Meta's 2,000-character limit."""

from __future__ import annotations

from bot.channels import chunks as _chunks
from bot.channels.meta import MAX_TEXT as META_MAX_TEXT


def test_long_reply_is_split_on_words_within_the_limit():
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = _chunks(text, META_MAX_TEXT)
    assert len(chunks) > 1 and all(len(c) <= META_MAX_TEXT for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_short_reply_is_untouched_and_long_words_are_cut():
    assert _chunks("Stay safe!", META_MAX_TEXT) == ["Stay safe!"]
    assert [len(c) for c in _chunks("x" * 4500, META_MAX_TEXT)] == [2000, 2000, 500]


def test_x_splits_a_reply_at_its_10000_character_limit():
    from bot.channels import x

    out = x.outgoing("https://api.x.com", "token", "1234", "word " * 4000)
    assert len(out.bodies) == 2
    assert all(len(b["text"]) <= x.MAX_TEXT for b in out.bodies)
