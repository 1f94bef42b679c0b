"""The urgency model: trained from data/nlu/ by `python -m bot train`, with its threshold
chosen by k-fold cross-validation; one SafetyNet.check for intake, Rasa, CLI and Rasa-down."""

from __future__ import annotations

import numpy as np
import pytest

from bot import urgency
from bot.nlp import detect_language
from bot.safety_net import SafetyNet, get_safety_net


@pytest.fixture(scope="module")
def model() -> urgency.UrgencyModel:
    loaded = urgency.current()
    assert loaded is not None, "run `python -m bot train` first (make test does)"
    return loaded


def model_only_urgent(limit: int = 3) -> list[str]:
    """Urgent training examples the rules miss and the model flags: what only the tier sees."""
    rules, tier = SafetyNet(), get_safety_net()
    texts, labels = urgency.load_examples(urgency.PROJECT_ROOT / "data/nlu")
    found = []
    for text, label in zip(texts, labels, strict=True):
        if label == urgency.EMERGENCY and rules.check(text).flag is None:
            result = tier.check(text)
            if result.flag and result.tier == "model":
                found.append(text)
                if len(found) == limit:
                    break
    return found


def test_threshold_and_settings_come_from_cross_validation(model):
    report = model.report
    assert report["folds"] >= 5 and report["target_recall"] == urgency.TARGET_RECALL
    chosen = report["chosen"]
    assert chosen["threshold"] == pytest.approx(model.threshold)
    assert chosen["recall"] >= urgency.TARGET_RECALL
    # Among the C values tried, the chosen one has the fewest out-of-fold false alarms.
    assert chosen["false_alarms"] == min(g["false_alarms"] for g in report["grid"])
    assert report["c"] in urgency.C_GRID


def test_choose_threshold_keeps_the_target_recall():
    labels = ["calm"] * 4 + ["emergency"] * 4
    oof = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.4, 0.6, 0.0], [0.95, 0.05, 0.0],
                    [0.1, 0.9, 0.0], [0.3, 0.7, 0.0], [0.5, 0.3, 0.2], [0.85, 0.15, 0.0]])
    point = urgency.choose_threshold(oof, labels, target_recall=0.75)
    assert point.threshold == pytest.approx(0.5) and point.recall == 0.75
    assert point.false_alarms == 0.25  # the 0.6 calm row
    everything = urgency.choose_threshold(oof, labels, target_recall=1.0)
    assert everything.recall == 1.0 and everything.threshold == pytest.approx(0.15)


def test_model_file_is_named_for_its_training_data(tmp_path):
    (tmp_path / "data/nlu").mkdir(parents=True)
    (tmp_path / "data/nlu/a.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n'
                                             '  examples: |\n    - hi\n')
    first = urgency.fingerprint(tmp_path)
    (tmp_path / "data/nlu/a.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n'
                                             '  examples: |\n    - hello\n')
    assert urgency.fingerprint(tmp_path) != first


def test_examples_read_every_file_and_label(tmp_path):
    (tmp_path / "x.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: crisis\n  examples: |\n    - i want to [die](x)\n'
        '- intent: faq_careers\n  examples: |\n    - jobs?\n- synonym: a\n  examples: |\n'
        '    - b\n')
    texts, labels = urgency.load_examples(tmp_path)
    assert texts == ["i want to die", "jobs?"] and labels == ["crisis", "calm"]


def test_the_tier_flags_what_the_rules_miss(model):
    found = model_only_urgent()
    assert found, "the model should flag some urgent training examples the rules miss"
    for text in found:
        result = get_safety_net().check(text)
        assert result.tier == "model" and result.urgency >= model.threshold


def test_unfamiliar_text_has_no_evidence_of_danger(model):
    # No known n-gram: the score falls to the calm side, not to a coin toss. (Chinese is
    # trained since other_languages.yml; Georgian and Hebrew letters are not.)
    for text in ("", "ქალაქი", "ℵℶℷ"):
        flag, score = model.flag(text)
        assert flag is None and score < model.threshold


@pytest.mark.parametrize("text", [
    "Nope.", "Sorry!!", "not yet!", "Nobody.", "im fine!", "Not really.", "done!!",
    "Nothing."])
def test_a_short_reply_alone_is_not_a_crisis(text):
    """Found by the live attack (2026-11-30): a bare "nope", "sorry", "not yet", "nobody" or
    "im fine" got the 911 notice and the 988 line (the same words open many crisis messages).
    Fixed with training data (data/nlu/short_replies.yml); these punctuation variants of its
    lines are a regression check, not a measure of generalisation. Still open: a bare "no"
    and "I dont know" (README)."""
    assert get_safety_net().check(text).flag is None


@pytest.mark.parametrize(("text", "language"), [
    ("我的车被拖走了，我应该去哪里取车？", "zh"),
    ("Xe của tôi bị kéo đi rồi, tôi phải đến đâu để lấy lại?", "vi"),
    ("Saan ko po makukuha ang kopya ng police report ko para sa insurance?", "tl"),
    ("أين يمكنني الحصول على نسخة من تقرير الشرطة الخاص بي؟", "ar"),
    ("경찰 보고서 사본은 어디서 받을 수 있나요?", "ko"),
    ("Где я могу получить копию полицейского отчета?", "ru"),
    ("Kote mwen ka jwenn yon kopi rapò lapolis la, tanpri?", "ht"),
    ("Où puis-je obtenir une copie de mon rapport de police, s'il vous plaît ?", "fr"),
    ("where can i get a copy of my police report", "en"),
    ("donde puedo sacar una copia del reporte de policia", "es"),
    ("ok", "en"), ("lol", "en"), ("gracias", "es"), ("k bueno", "es"),
])
def test_language_detection(text, language):
    assert detect_language(text) == language


def test_the_tier_needs_no_tensorflow():
    """The gateway's intake loads it: no TensorFlow (nor spaCy) behind it."""
    import subprocess
    import sys

    code = ("import sys; from bot import urgency; urgency.current(); "
            "print('tensorflow' in sys.modules, 'spacy' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], cwd=urgency.PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["False", "False"], run.stderr[-2000:]


def test_a_batch_of_checks_gives_each_message_its_own_result(model):
    """SafetyNet.check_many (the intake's CPU lane runs queued checks together) equals one
    check per message, field for field, on test messages of every kind, hostile ones too."""
    import json

    from bot.settings import PROJECT_ROOT

    net = SafetyNet(model)
    texts = [json.loads(line)["text"] for line in
             (PROJECT_ROOT / "tests/data/heldout.jsonl").read_text().splitlines()][:300]
    texts += ["", "   ", "🙂" * 3000, "help " * 2000, "someone is breaking in right now"]
    batched = net.check_many(texts)
    assert batched == [net.check(text) for text in texts]
    assert sum(r.flag is not None for r in batched) >= 20
    assert any(r.tier == "model" for r in batched) and any(r.tier == "rules" for r in batched)


def test_the_array_scorer_gives_scikit_learns_figures(model):
    """bot.linear_scorer scores the model as plain arrays: on every test set's messages, one
    by one and all at once, its probabilities are scikit-learn's own to rounding, so every
    threshold decides as before."""
    import json

    from bot.settings import PROJECT_ROOT

    fitted = model.fitted
    assert fitted.scorer is not None  # it reproduced scikit-learn on the probes at load
    texts = [json.loads(line)["text"] for path in sorted((PROJECT_ROOT / "tests/data")
                                                         .glob("*.jsonl"))
             for line in path.read_text().splitlines()]
    texts += ["", "🙂" * 3000, "help " * 2000]
    net = SafetyNet()
    ruled = [net.check(text).hits for text in texts]
    prepared = [urgency.prepare(text) for text in texts]
    rules = np.array([urgency.rule_features(hits) for hits in ruled])
    assert len(texts) > 9000 and rules.any()
    reference = fitted.sklearn_proba(prepared, rules)
    assert np.abs(fitted.scorer.proba(prepared, rules) - reference).max() < 1e-12
    one_by_one = np.vstack([fitted.scorer.proba([text], rules[i:i + 1])
                            for i, text in enumerate(prepared[:500])])
    assert np.abs(one_by_one - reference[:500]).max() < 1e-12
    # Any sequence of texts, an iterator too (the live attack: it raised where scikit-learn
    # did not).
    assert np.array_equal(fitted.scorer.proba(iter(prepared[:50]), rules[:50]),
                          fitted.scorer.proba(prepared[:50], rules[:50]))


def test_the_array_scorer_is_rebuilt_after_loading_not_stored(model, tmp_path):
    """The model file holds the fitted model only; a loaded model builds its scorer again."""
    import joblib

    path = tmp_path / "urgency-test.joblib"
    joblib.dump(model, path)
    loaded = urgency.load(path)
    assert "scorer" not in loaded.fitted.__dict__
    assert loaded.fitted.scorer is not None
    assert loaded.flag("someone is breaking into my house right now") == model.flag(
        "someone is breaking into my house right now")


def test_a_model_the_array_scorer_cannot_reproduce_keeps_scikit_learns_path(model, caplog):
    """Settings the scorer does not implement (here: binary counts) leave scikit-learn's
    path in use, with a warning, and the same figures as before."""
    import copy

    fitted = copy.deepcopy(model.fitted)
    fitted.__dict__.pop("scorer", None)
    fitted.features.transformer_list[1][1].binary = True
    with caplog.at_level("WARNING", logger="bot.linear_scorer"):
        assert fitted.scorer is None
    assert "scored by scikit-learn" in caplog.text
    # The expected figures are computed here, step by step, with scikit-learn's own objects
    # (comparing with ``fitted.sklearn_proba`` would compare the fallback with itself).
    import scipy.sparse as sparse

    texts = ["my dad will not wake up", "please please please please help"]
    rules = np.zeros((len(texts), len(urgency.RULE_FEATURES)))
    grams = fitted.features.transform(texts)
    expected = fitted.classifier.predict_proba(
        sparse.hstack([grams, sparse.csr_matrix(rules)]).tocsr())
    order = [list(fitted.classifier.classes_).index(label) for label in urgency.LABELS]
    assert np.allclose(fitted.proba(texts, rules), expected[:, order], rtol=0, atol=1e-12)
    # And they are not the unmodified model's: the binary setting is in use (the repeated
    # words count once).
    assert not np.allclose(fitted.proba(texts, rules), model.fitted.proba(texts, rules))


@pytest.mark.parametrize("text", [
    "How do I get a copy of a police report? he has a gun",
    "How do I get a copy of a police report? my baby is not breathing",
    "Thank you for your service. My son is unconscious",
    "Can you tell me the non-emergency number? he has a gun",
    "Hi can I talk to an actual officer? my ex is outside with a gun",
    "my house is on fire. btw can I pay a parking ticket online?",
    "I'm so bored lol. wait what the heck, the neighbor's garage just exploded",
    "Gracias por todo lo que hacen por la comunidad, los apreciamos mucho. hay balazos afuera",
    "need help",
    "How do I get a copy of a police report? also I bought a rope and tonight is the night",
])
def test_a_calm_sentence_beside_danger_does_not_hide_it(text):
    """Found by the live attack (2026-12-01) on an urgency model trained on kinds of message
    (FAQ, thanks, human, ... as classes) with a veto on the rules' emergency flag: one calm
    sentence beside the danger gave the calm class the probability and the veto took the
    rules' flag back (180 of 883 urgent attack messages). That model was withdrawn (README);
    the point buried last must keep its notice."""
    assert get_safety_net().check(text).flag is not None
