"""The safety net: emergency and crisis language, by rules and by the urgency model.

It runs inside Rasa's NLU pipeline (``bot.nlu_component``) and, without Rasa, in the
gateway's intake, the CLI and the Rasa-down path: one :meth:`SafetyNet.check`, so all of
them flag the same messages. Two tiers:

* rules (spaCy Matcher, English and Spanish): precise, readable, tested one by one; they
  catch what a classifier misses (typos, run-ons, urgency buried after a "thanks");
* the urgency model (``bot.urgency``): danger described by the situation rather than by a
  crime word, at a threshold chosen by cross-validation; it decides only when no rule fired.

A match is taken back when it is

* negated in its clause ("I'm not going to hurt myself", "nobody is breaking in"),
* in the past ("someone was shooting fireworks last night", "a fire two weeks ago"), unless
  the match itself is in the present or the message says it is happening now,
* an everyday use ("shooting hoops", "die laughing"),
* a generic call for help in a message that says it is not urgent.

A concrete danger is never silenced by "not an emergency" alone: "not an emergency but he
has a gun" still fires.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from bot import safety_patterns as sp
from bot.nlp import detect_language, shared_pipeline
from bot.safety_result import CRISIS, EMERGENCY, Hit, SafetyResult, active_cues, rules_flag
from bot.text import bounded, normalize, rule_window, spell_out
from bot.urgency import UrgencyModel

logger = logging.getLogger(__name__)

# Longest text checked; platforms cap DMs near this (the gateway's BEACON_MAX_TEXT_CHARS).
MAX_CHECK_CHARS = 4000
# Strings a language's vocabulary may hold before the rules are built again (about 1,400
# after a build; each string read since costs about a kilobyte).
VOCAB_LIMIT = 50_000
# The rules read this much of each end of a longer message (bot.text.rule_window).
RULE_WINDOW_CHARS = 200
_PRESENT_AUX = frozenset("is are am 's 're está esta están estan estoy estamos".split())
_PAST_AUX = frozenset("was were had did fue fueron estaba estaban había habia".split())
_NEGATION_WINDOW = 3
# Messages this short that ask for help are treated as urgent ("HELP", "ayuda!!").
_SHORT_MESSAGE_WORDS = 3
_SHORT_HELP = frozenset("help hellp halp helpp sos ayuda auxilio socorro 911".split())


def _words(text: str) -> Iterator[Tuple[str, bool]]:
    """A pattern's words in ``bot.safety_patterns``' notation, each with its optional mark."""
    for word in text.split():
        optional = len(word) > 1 and word.endswith("?")
        yield (word[:-1] if optional else word), optional


def lemma_words(patterns: Iterable[str]) -> frozenset[str]:
    """Every alternative the patterns match by lemma (``~a|b``)."""
    return frozenset(alternative for text in patterns for word, _ in _words(text)
                     if word.startswith("~") for alternative in word[1:].split("|"))


def compile_pattern(nlp: Language, text: str) -> List[Dict]:
    """Turn the notation of ``bot.safety_patterns`` into a spaCy Matcher token pattern."""
    tokens: List[Dict] = []
    for word, optional in _words(text):
        if word == "_":
            spec: Dict = {}
        elif word.startswith("~"):
            alternatives = word[1:].split("|")
            lemmas = {t.lemma_ for alt in alternatives for t in nlp(alt)[:1]}
            spec = {"LEMMA": {"IN": sorted(set(alternatives) | lemmas)}}
        else:
            spec = {"LOWER": {"IN": word.split("|")}}
        if optional:
            spec["OP"] = "?"
        tokens.append(spec)
    return tokens


@dataclass
class _Language:
    """The compiled rules for one language."""

    nlp: Language
    matcher: Matcher
    negators: frozenset
    labels: Dict[int, str] = field(default_factory=dict)


def _build(lang: str, groups: Dict[str, Sequence[str]], negators: frozenset) -> _Language:
    nlp = shared_pipeline(lang, lemma_words(p for patterns in groups.values() for p in patterns))
    matcher = Matcher(nlp.vocab)
    compiled = _Language(nlp=nlp, matcher=matcher, negators=negators)
    for label, patterns in groups.items():
        matcher.add(label, [compile_pattern(nlp, p) for p in patterns])
        compiled.labels[nlp.vocab.strings[label]] = label
    return compiled


class SafetyNet:
    """Compiled English and Spanish rules and, when given, the urgency model.

    :meth:`check` is pure and thread-safe to call. ``SafetyNet()`` is the rules alone."""

    def __init__(self, urgency: UrgencyModel | None = None) -> None:
        self.urgency = urgency
        self._languages = self._compile()

    @staticmethod
    def _compile() -> Tuple[_Language, ...]:
        return (
            _build(
                "en",
                {**sp.EN_PATTERNS, "meta.not_urgent": sp.EN_NOT_URGENT,
                 "meta.past": sp.EN_PAST, "meta.found": sp.EN_FOUND,
                 "meta.still": sp.EN_STILL},
                sp.EN_NEGATORS,
            ),
            _build(
                "es",
                {**sp.ES_PATTERNS, "meta.not_urgent": sp.ES_NOT_URGENT,
                 "meta.past": sp.ES_PAST, "meta.still": sp.ES_STILL},
                sp.ES_NEGATORS,
            ),
        )

    @property
    def model_name(self) -> str | None:
        """The urgency model's name (``UrgencyModel.name``), None for the rules alone."""
        return self.urgency.name if self.urgency is not None else None

    def check(self, text: str) -> SafetyResult:
        """Look for emergency and crisis language in one message (bounded work: see
        ``bot.text.bounded``)."""
        return self.check_many([text])[0]

    def check_many(self, texts: Sequence[str]) -> List[SafetyResult]:
        """:meth:`check` for several messages at once, the same result for each: the rules
        run message by message, the urgency model once for all (its cost is mostly per
        call, so a burst queued at intake costs about half as much per message)."""
        self._renew_if_grown()
        ruled = [self._rules(text) for text in texts]
        flags = (self.urgency.flags([text for text, _, _ in ruled],
                                    [hits for _, _, hits in ruled])
                 if self.urgency is not None else [None] * len(ruled))
        return [_result(language, hits, model, self.model_name)
                for (_, language, hits), model in zip(ruled, flags, strict=True)]

    def _renew_if_grown(self) -> None:
        """spaCy keeps every string it has read in the pipeline's vocabulary for good (3.4
        has no memory zones): random words grew the gateway by 1 GiB in 20,000 messages
        (found by the live attack). Past VOCAB_LIMIT the pipelines and matchers are built
        again (about half a second, on the CPU lane's thread) and the old ones freed."""
        if any(len(compiled.nlp.vocab.strings) > VOCAB_LIMIT for compiled in self._languages):
            logger.warning("the rules' vocabulary passed %d strings: rebuilding them",
                           VOCAB_LIMIT)
            shared_pipeline.cache_clear()  # or the next build reuses the grown pipelines
            self._languages = self._compile()

    def _rules(self, text: str) -> Tuple[str, str, List[Hit]]:
        """(the text as checked, its language, the rules' hits)."""
        text = bounded(text or "", MAX_CHECK_CHARS)
        clean = spell_out(rule_window(normalize(text), RULE_WINDOW_CHARS))
        hits: List[Hit] = []
        for compiled in self._languages:
            hits.extend(self._hits(compiled, compiled.nlp(clean)))
        hits.extend(_short_help(clean, hits))
        # On the text as written: capitals mark names ("Avenida de las Pulgas"), which say
        # nothing about the writer's language (bot.nlp._NAME).
        language = detect_language(text)
        hits.extend(_other_language_hits(clean, language))
        return text, language, _dedupe(hits)

    def _hits(self, compiled: _Language, doc: Doc) -> Iterable[Hit]:
        found = [(compiled.labels[m], doc[s:e]) for m, s, e in compiled.matcher(doc)]
        meta = {label: [span for lab, span in found if lab == label]
                for label in ("meta.not_urgent", "meta.past", "meta.found", "meta.still")}
        not_urgent = bool(meta["meta.not_urgent"])
        # Only strong present markers ("still", "right now", "is here") outweigh a past time
        # expression: "the cat is ok now" must not revive "attacked my cat last night".
        still_there = bool(meta["meta.still"])
        happening_now = still_there
        past_sentences = {span.sent.start for span in meta["meta.past"]}
        # A state one is found in ("found him not breathing") is now; anything else found
        # happened before (EN_FOUND).
        past_or_found = past_sentences | {span.sent.start for span in meta["meta.found"]}
        spans: Dict[Tuple[str, int, int], Hit] = {}
        for label, span in found:
            if label.startswith("meta."):
                continue
            past = past_sentences if label == "emergency.medical" else past_or_found
            reason = self._suppression(
                compiled, label, span, not_urgent, (happening_now, still_there), past
            )
            key = (label, span.start, span.end)
            spans[key] = Hit(label=label, text=span.text, suppressed=reason)
        yield from _keep_longest(spans)
        yield from _crash_with_injury(spans)

    @staticmethod
    def _suppression(
        compiled: _Language,
        label: str,
        span: Span,
        not_urgent: bool,
        now: Tuple[bool, bool],
        past_sentences: set,
    ) -> str | None:
        happening_now, still_there = now
        doc = span.doc
        first, last = span[0].lower_, span[-1].lower_
        after = doc[span.end].lower_ if span.end < len(doc) else ""
        before = doc[span.start - 1].lower_ if span.start > 0 else ""
        if after in sp.HARMLESS_NEXT.get(last, ()) or before in sp.HARMLESS_PREV.get(first, ()):
            return "harmless"
        if _negated(compiled, span):
            return "negated"
        if _in_past(span, happening_now, past_sentences):
            return "past"
        if not_urgent and (label.startswith("cue.") or label == "emergency.help"):
            return "not_urgent"
        if label.endswith("+now") and not still_there:
            return "not_now"
        return None


def _negated(compiled: _Language, span: Span) -> bool:
    doc = span.doc
    lo = max(span.sent.start, span.start - _NEGATION_WINDOW)
    for i in range(span.start - 1, lo - 1, -1):
        word = doc[i].lower_
        if word in sp.CLAUSE_BREAKS:
            return False
        if word in compiled.negators:
            following = doc[i + 1].lower_ if i + 1 < len(doc) else ""
            return following not in sp.NEGATION_BREAKERS
    return False


def _in_past(span: Span, happening_now: bool, past_sentences: set) -> bool:
    doc = span.doc
    lead = [t.lower_ for t in doc[max(span.sent.start, span.start - 2): span.start]]
    inside = [t.lower_ for t in span]
    if any(w in _PAST_AUX for w in lead):
        return not happening_now
    if any(w in _PRESENT_AUX for w in lead + inside):
        return False
    return span.sent.start in past_sentences and not happening_now


def _keep_longest(spans: Dict[Tuple[str, int, int], Hit]) -> Iterable[Hit]:
    """One hit per label and start: "bleeding a lot" rather than also "bleeding"."""
    best: Dict[Tuple[str, int], Tuple[int, Hit]] = {}
    for (label, start, end), hit in spans.items():
        if (label, start) not in best or end > best[(label, start)][0]:
            best[(label, start)] = (end, hit)
    return [hit for _, hit in best.values() if not hit.label.startswith("ctx.")]


def _crash_with_injury(spans: Dict[Tuple[str, int, int], Hit]) -> Iterable[Hit]:
    """A crash and an injury in the same message make an emergency."""
    crash = [h for (label, _, _), h in spans.items() if label == "ctx.crash" and h.active]
    hurt = [h for (label, _, _), h in spans.items() if label == "ctx.hurt" and h.active]
    if crash and hurt:
        yield Hit(label="emergency.crash", text=f"{crash[0].text} … {hurt[0].text}")


def _short_help(clean: str, hits: List[Hit]) -> Iterable[Hit]:
    words = re.findall(r"[^\W_]+", clean)
    if 0 < len(words) <= _SHORT_MESSAGE_WORDS and _SHORT_HELP & set(words):
        if not any(h.suppressed == "negated" for h in hits):
            yield Hit(label="emergency.help", text=" ".join(words))


def _alternation(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


@cache
def _other_language_patterns(any_language: bool) -> Tuple[Tuple[str, re.Pattern[str]], ...]:
    """One expression per flag: the cries checked in any language, or every other
    language's phrases (safety_patterns says why these are plain expressions)."""
    by_flag: Dict[str, List[str]] = {}
    sources = [sp.ANY_LANGUAGE_CRIES] if any_language else sp.OTHER_LANGUAGE_DANGER.values()
    for phrases in sources:
        for flag, patterns in phrases.items():
            by_flag.setdefault(flag, []).extend(patterns)
    return tuple((flag, _alternation(patterns)) for flag, patterns in sorted(by_flag.items()))


@cache
def _other_language_context() -> Tuple[re.Pattern[str], re.Pattern[str]]:
    """(an emergency is taken back: a past time or the news; a crisis: prevention)."""
    return (_alternation(sp.OTHER_LANGUAGE_PAST + sp.OTHER_LANGUAGE_NEWS),
            _alternation(sp.OTHER_LANGUAGE_PREVENTION))


def _other_language_hits(clean: str, language: str) -> List[Hit]:
    """Danger in Chinese, Vietnamese, Tagalog, Arabic, Korean, Russian, Haitian Creole or
    French (the cries of ANY_LANGUAGE_CRIES in a message of any language): the first phrase
    found for each flag; an emergency is taken back when the message names a past time or
    the news, a crisis when it names prevention."""
    groups = [True] if language in ("en", "es") else [True, False]
    not_now, prevention = _other_language_context()
    taken_back = {EMERGENCY: "past" if not_now.search(clean) else None,
                  CRISIS: "not_urgent" if prevention.search(clean) else None}
    hits = []
    for any_language in groups:
        for flag, pattern in _other_language_patterns(any_language):
            found = pattern.search(clean)
            if found:
                hits.append(Hit(label=f"{flag}.other_language", text=found.group(0),
                                suppressed=taken_back.get(flag)))
    return hits


def _dedupe(hits: List[Hit]) -> List[Hit]:
    seen, out = set(), []
    for hit in hits:
        if (hit.label, hit.text, hit.suppressed) not in seen:
            seen.add((hit.label, hit.text, hit.suppressed))
            out.append(hit)
    return out


def _result(language: str, hits: List[Hit], model: Tuple[str | None, float] | None,
            model_name: str | None = None) -> SafetyResult:
    """The rules' flag, else the urgency model's (``model``: its flag and score, or None
    without a model; ``model_name``: which model).

    One exception: when the rules say emergency and the model says crisis, it is a crisis.
    The rules' medical words ("not wake up", "drowning", "overdose") are also how people
    write about wanting to die; the crisis answer keeps the 911 line and adds 988. In
    grouped out-of-fold scores over the training data (2026-11-30) this gave 988 to 30 of
    the 40 crisis examples the rules called emergencies, and to 3 of their 447 emergencies."""
    flag = rules_flag(hits)
    tier = "rules" if flag else None
    score = 0.0
    if model is not None:
        model_flag, score = model
        if flag is None and model_flag is not None:
            flag, tier = model_flag, "model"
        elif flag == EMERGENCY and model_flag == CRISIS:
            flag = CRISIS
    return SafetyResult(flag=flag, language=language, hits=tuple(hits),
                        cues=active_cues(hits), tier=tier, urgency=score, model=model_name)


@cache
def get_safety_net() -> SafetyNet:
    """The process's safety net (rules and the current urgency model), built on first use
    (about a second), never at import."""
    from bot import urgency

    net = SafetyNet(urgency.current())
    net.check("warm up: load every model now, not on a citizen's message")
    return net
