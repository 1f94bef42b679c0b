"""spaCy pipelines built from ``spacy.blank``: no model download, lemmas from spacy-lookups-data."""

from __future__ import annotations

import re
from functools import cache

import spacy
from spacy.lang.en.stop_words import STOP_WORDS as EN_STOP
from spacy.lang.es.stop_words import STOP_WORDS as ES_STOP
from spacy.language import Language
from spacy.lookups import Lookups
from spacy.util import load_language_data, registry

# Words that only one of the two languages uses, so that the overlap ("a", "me") does not vote.
_ES_ONLY = frozenset(ES_STOP - EN_STOP) | {
    "ayuda", "policía", "policia", "casa", "hay", "está", "esta", "por", "favor", "quiero",
    "necesito", "mi", "hijo", "hija", "señor", "oficial", "gracias", "hola", "buenas", "cómo",
    "dónde", "donde", "multa", "carro", "coche",
}
_EN_ONLY = frozenset(EN_STOP - ES_STOP) | {"help", "please", "police", "my", "is", "the"}


def blank_pipeline(lang: str, lemma_words: frozenset[str] | None = None) -> Language:
    """A tokenizer with lookup lemmas and sentence splitting, for ``lang`` ("en" or "es").

    ``lemma_words``: when given, the lemma table keeps only the entries that can decide
    whether a token's lemma is one of these words (the rules' ``~word`` alternatives and
    their lemmas): an entry ``form -> lemma`` stays when the form or the lemma is one of
    them. For every token the pruned table then gives a lemma in that set exactly when the
    full table does (a dropped entry's form and lemma are both outside it, and a form not in
    the table is its own lemma). Spanish's full table is 491,547 entries: 153 MiB and ~2 s
    in each process that loads the rules (the gateway and Rasa)."""
    nlp = spacy.blank(lang)
    lemmatizer = nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("sentencizer")
    if lemma_words is None:
        nlp.initialize()
        return nlp
    full = load_language_data(registry.lookups.get(lang)["lemma_lookup"])
    # A pattern's lemma set also holds the lemma of each alternative's first token.
    firsts = {doc[0].text for doc in nlp.tokenizer.pipe(sorted(lemma_words)) if len(doc)}
    wanted = set(lemma_words) | {full.get(first, first) for first in firsts}
    lookups = Lookups()
    lookups.add_table("lemma_lookup", {form: lemma for form, lemma in full.items()
                                       if form in wanted or lemma in wanted})
    lemmatizer.initialize(lookups=lookups)
    return nlp


@cache
def shared_pipeline(lang: str, lemma_words: frozenset[str] | None = None) -> Language:
    """One pipeline per language (and lemma words) per process; built on first use, never
    at import."""
    return blank_pipeline(lang, lemma_words)


# Languages whose speakers US cities serve most after English and Spanish (the department
# file holds one line for each), and others the identifier may name instead of them.
OTHER_LANGUAGES = ("zh", "vi", "tl", "ar", "ko", "ru", "ht", "fr")
_IDENTIFIED = ("en", "es", *OTHER_LANGUAGES, "pt", "de", "it", "pl", "uk", "ja", "hi", "fa",
               "ur", "pa", "bn", "he", "th", "el", "am", "so", "hy", "km", "lo", "my")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]")
# A Latin-script message counts as another language only when the identifier is this sure
# and it has this many words: short English and Spanish slang ("ok", "lol", "k bueno") is
# noise to a character model, and answering it in English is the safer mistake.
_OTHER_LATIN_MIN_PROB = 0.95
_OTHER_LATIN_MIN_WORDS = 4


@cache
def _identifier():
    """py3langid's model (shipped in the wheel), restricted to the languages above."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(_IDENTIFIED))
    return identifier


def is_language(code: object) -> bool:
    """Whether ``code`` is a language :func:`detect_language` can name."""
    return isinstance(code, str) and code in _IDENTIFIED


def detect_language(text: str) -> str:
    """The message's language: 'en', 'es', or another ISO 639-1 code.

    Messages in another script (Chinese, Arabic, Korean, Cyrillic...) are named by the
    identifier; Latin-script ones only when it is sure (see above), else English or Spanish
    by the words only one of the two uses (English is the department's default)."""
    letters = [c for c in text if c.isalpha()]
    if letters:
        latin = sum(bool(_LATIN.match(c)) for c in letters)
        if latin < len(letters) / 2:
            language, _ = _identifier().classify(text)
            if language not in ("en", "es"):
                return language
        elif len(text.split()) >= _OTHER_LATIN_MIN_WORDS:
            language, probability = _identifier().classify(text)
            if language not in ("en", "es") and probability >= _OTHER_LATIN_MIN_PROB:
                return language
    return _english_or_spanish(text)


def _english_or_spanish(text: str) -> str:
    """'es' when the message reads as Spanish, else 'en'."""
    es, en = _votes(text)
    return "es" if es > en else "en"


# A name inside a sentence: capitalised words, joined by Spanish particles ("Avenida de las
# Pulgas", "Casa del Sol", "San José"). English messages are full of Spanish place names in
# US cities; they say nothing about the writer's language (found by the live attack: "he
# has a gun, Avenida de las Pulgas" turned an English conversation Spanish).
_UPPER, _LOWER = "A-ZÁÉÍÓÚÑÜ", "a-záéíóúñü'"
_NAME = re.compile(
    rf"(?<!^)(?<![.!?¿¡\n]\s)\b[{_UPPER}][{_LOWER}]+"
    rf"(?:\s+(?:(?:de|del|la|las|los|el|y)\s+)*[{_UPPER}][{_LOWER}]+)*")


def _votes(text: str) -> tuple[int, int]:
    """(Spanish, English) evidence: words only one of the two uses, Spanish letters; names
    inside a sentence do not count."""
    text = _NAME.sub(" ", text.strip())
    words = re.findall(r"[^\W\d_]+", text.lower())
    es = sum(w in _ES_ONLY for w in words) + 2 * sum(c in "ñ¿¡áéíóú" for c in text.lower())
    en = sum(w in _EN_ONLY for w in words)
    return es, en


def language_is_clear(text: str, language: str) -> bool:
    """Whether ``text`` itself shows its language (``language``, as detected): another
    language identified, or more words only English or only Spanish uses on one side. "ok",
    "👍", "7:30?" or an address do not; their reply follows the conversation's language."""
    if language not in ("en", "es"):
        return True
    es, en = _votes(text)
    return es != en
