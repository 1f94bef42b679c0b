"""spaCy pipelines built from ``spacy.blank``: no model download, lemmas from spacy-lookups-data."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import spacy
from spacy.lang.en.stop_words import STOP_WORDS as EN_STOP
from spacy.lang.es.stop_words import STOP_WORDS as ES_STOP
from spacy.language import Language

# Zero-width and bidi control characters: invisible, and they split words for the matcher.
_INVISIBLE = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x200E, 0x200F, *range(0x202A, 0x202F),
     *range(0x2066, 0x206A)]
)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'"})
_ELONGATED = re.compile(r"([^\W\d_])\1{2,}")
# Words that only one of the two languages uses, so that the overlap ("a", "me") does not vote.
_ES_ONLY = frozenset(ES_STOP - EN_STOP) | {
    "ayuda", "policía", "policia", "casa", "hay", "está", "esta", "por", "favor", "quiero",
    "necesito", "mi", "hijo", "hija", "señor", "oficial", "gracias", "hola", "buenas", "cómo",
    "dónde", "donde", "multa", "carro", "coche",
}
_EN_ONLY = frozenset(EN_STOP - ES_STOP) | {"help", "please", "police", "my", "is", "the"}


def normalize(text: str) -> str:
    """Lower-case, fold look-alike characters, drop invisible ones, shorten elongations.

    "HELLLLP!!" becomes "hellp!!": runs of three or more letters are cut to two, which
    keeps real double letters ("kill", "speed") intact.
    """
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_QUOTES)
    return _ELONGATED.sub(r"\1\1", text.lower())


def blank_pipeline(lang: str) -> Language:
    """A tokenizer with lookup lemmas and sentence splitting, for ``lang`` ("en" or "es")."""
    nlp = spacy.blank(lang)
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("sentencizer")
    nlp.initialize()
    return nlp


@cache
def shared_pipeline(lang: str) -> Language:
    """One pipeline per language per process; built on first use, never at import."""
    return blank_pipeline(lang)


def save_pipeline(lang: str, path: Path) -> Path:
    """Write a blank pipeline for Rasa's SpacyNLP, which loads models from disk only."""
    path.mkdir(parents=True, exist_ok=True)
    blank_pipeline(lang).to_disk(path)
    return path


def detect_language(text: str) -> str:
    """'es' when the message reads as Spanish, else 'en' (English is the department's default)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    es = sum(w in _ES_ONLY for w in words) + 2 * sum(c in "ñ¿¡áéíóú" for c in text.lower())
    en = sum(w in _EN_ONLY for w in words)
    return "es" if es > en else "en"
