"""The rule-based safety net, without Rasa: what must fire, and what must not."""

from __future__ import annotations

import pytest

from bot.nlp import detect_language
from bot.safety_net import CRISIS, EMERGENCY, RULE_WINDOW_CHARS, SafetyNet, SafetyResult
from bot.text import normalize, rule_window, spell_out

MUST_FIRE_EMERGENCY = [
    "someone is breaking into my car right now",
    "thanks for the post! also someone just broke into my neighbor's car and they're still there",
    "theres a guy with a gun outside the gas station on 5th",
    "SOMEONE IS IN MY HOUSE",
    "i can hear someone downstairs and i live alone",
    "my ex is outside banging on the door and he said hes gonna kill me",
    "he can't stop hitting me",
    "my neighbor is hitting his wife i can hear it",
    "my mom isnt breathing",
    "my dad is having a heart attack",
    "there is a fire in my kitchen",
    "house fire on maple ave",
    "my daughter is missing, she was at the park 10 min ago",
    "bad crash on hwy 9 someone is trapped and bleeding",
    "drunk driver swerving all over hwy 101",
    "I'm being followed by a car right now",
    "shots fired near the school",
    "HELLLLP",
    "please hurry",
    "somone tryna brake in my back door",
    "i know this isn't 911 but a man is pointing a gun at people in the parking lot",
    "hay un hombre con una pistola afuera de mi casa",
    "me están robando",
    "mi esposo me está pegando",
    "no respira mi bebé",
    "hay un incendio en el edificio",
    "no encuentro a mi hijo en el parque",
    "ayuda",
]

MUST_FIRE_CRISIS = [
    "i want to kill myself",
    "kms",
    "everyone would be better off without me",
    "my brother says he's going to end his life tonight",
    "i dont want to live anymore",
    "i have the pills and im going to take all my pills",
    "thinking about hurting myself",
    "me quiero morir",
    "ya no quiero vivir",
    "mi amiga se quiere suicidar",
]

MUST_NOT_FIRE = [
    "someone broke into my car last night",
    "my car got broken into yesterday, how do i get a report",
    "this is not an emergency but my mailbox got smashed",
    "not an emergency but there's a dead deer on elm",
    "how do i get a gun permit",
    "i'm dying laughing at your post lol",
    "we were shooting hoops at the park",
    "there was a shooting on 5th street last night, any updates?",
    "can you help me with a records request please",
    "my son was arrested for drunk driving, what happens now",
    "trying to get in touch with detective smith",
    "i'm not going to hurt myself, just want to talk to someone about my case",
    "i don't want to die, i just want my bike back",
    "hit me up when you can",
    "suicide prevention walk info?",
    "necesito ayuda con una multa",
    "se metieron a mi casa ayer",
    "my car got towed this morning where is it",
    "someone stole my bike from the garage while i was at work",
    "what are your lobby hours",
    "thank you officers for everything you do",
    "my dad had a heart attack last year, can i get a copy of the ambulance report",
    "there was a fire two weeks ago and i need the report for insurance",
]


@pytest.fixture(scope="module")
def net():
    """The rules alone: these tests are about the rules (the urgency model has its own)."""
    return SafetyNet()


# Phrases the fast path missed under load (the model caught them seconds later): canonical
# signs of a medical emergency, a child in danger, an intruder, and suicidal thinking.
MUST_FIRE_EMERGENCY += [
    "my dad has crushing chest pain and is sweating",
    "my wife is having trouble breathing",
    "a woman just fainted in the checkout line",
    "strong gas smell in the hallway",
    "toddler walking alone along the highway",
    "a van keeps trying to lure the kids into his van",
    "someone is climbing through my son's window",
    "i can hear glass shattering next door",
    "hay un desconocido dentro de mi casa",
    "están tratando de entrar por la puerta de atrás",
]
MUST_FIRE_CRISIS += [
    "honestly i don't think i want to be alive",
    "there's no point in going on",
    "my family would be better if i was gone",
    "nobody would even notice if i disappeared tonight",
    "how many of these pills would it take",
    "my brother is standing on the ledge of the parking garage",
    "she took a handful of pills on purpose",
    "ya no tiene sentido vivir",
    # A wish to sleep for good, where "will not wake up" alone is a medical emergency.
    "some nights i want to fall asleep and never wake up",
    "how much advil would i need to take to not wake up",
]
MUST_FIRE_EMERGENCY += [
    "my grandpa lay down for a nap and will not wake up",
    # A state someone is found in is now; "found" is the past only for what was done.
    "came back from the store and found my husband unresponsive on the floor",
    "we found him unconscious in the yard",
    "a woman overdosed in the waiting room of the bus station",
]
MUST_NOT_FIRE += [
    "found my tailgate stolen and the tool box pried open this morning",
    "just found out my uncle overdosed back in march, how do i get a copy of the report",
    "someone overdosed on our street last year and the ambulance took forever",
]
MUST_NOT_FIRE += [
    "overslept and did not wake up till noon, missed my court date, what now",
    "had chest pains last month, the doctor says it was stress",
    "how many pills can i bring through airport security",
    "the kids walked to the park alone yesterday, is that legal",
]

# The live attack (2026-12-01): poison swallowed, a heart stopped, naloxone not working
# fired no rule. With the review's calm twins, each of which a looser pattern matched
# (bare "poison", the heart idiom in the third person, the verb in the present).
MUST_FIRE_EMERGENCY += [
    "my 2 year old drank bleach", "my son ate rat poison", "my son drank some bleach",
    "my toddler ate the rat poison", "my son ate the weed killer",
    "my toddler swallowed drain cleaner", "narcan isn't working", "narcan not working",
    "narcan wasnt working", "the narcan did nothing", "the narcan didnt work",
    "my husband's heart stopped", "my husbands heart stopped", "his heart has stopped",
    "her heart is not beating", "mi hijo se tomo el cloro", "mi niña se tragó raticida",
    "mi esposo comio veneno para ratas", "su corazon dejo de latir",
    "la narcan no funciona", "no le late el corazón", "la naloxona no hizo nada",
    "el narcan no hace nada", "la naloxona no hace efecto", "el narcan no hizo efecto",
    "el narcan no hace ni madre",
]
# The live attack on a change that read "last night's" as a time marker and not "is"
# (2026-12-01, later; withdrawn): the danger word after the possessive kept these urgent
# messages flagged, and the rest of the sentence is taken as past. The calm side ("any
# update on last night's shooting?") stays a known false alarm (README). Two of them fire
# only on that danger word, the news part ("thanks for the update on last night's
# shooting", "about last week's stabbing"): the part that makes them urgent fires no rule.
# A fix that scopes a time expression to its noun must give those parts a rule first.
MUST_FIRE_EMERGENCY += [
    "someone's shooting outside right now",
    "the guy from last week's fight is here and he's shooting",
    "the guy from last night's shooting just walked into my store",
    "yesterday's stabbing suspect just walked into the laundromat on 5th",
    "last week's shooting guys are parked outside my house in a black car",
    "last night's house fire reignited theres flames coming out the roof",
    "last night's dumpster fire is spreading to the building",
    "my ex from last week's stabbing broke the restraining order and is at my door with a knife",
    "last night's burglar is in my house", "last night's prowler is in my backyard",
    "thanks for the update on last night's shooting. the shooter is in my apartment complex",
    "quick question about last week's stabbing, the suspect just walked past my window",
    "last week's stabbing suspect is at my door please hurry",
    "last night's shooting suspect just shot my neighbor",
]
MUST_NOT_FIRE += [
    "her heart stopped when she saw the price", "is eating poison ivy dangerous",
    "the kids ate poison berries", "the rats ate poison and died in the walls",
    "we ate lye soap", "drinking bleach wont cure covid",
    "my son ate rat poison last year and was fine", "his heart stopped beating 3 years ago",
    "el cloro es veneno?", "donde compro veneno para ratas", "me tomé un café",
    "la naloxona se vende sin receta?",
    # "no hace/hizo falta" (not needed) is harmless (HARMLESS_NEXT); the rule matched it.
    "¿la naloxona no hace falta receta?", "para la naloxona no hace falta cita",
    "el narcan no hizo falta, ya despertó",
]


@pytest.mark.parametrize("text", MUST_FIRE_EMERGENCY)
def test_emergency_fires(net, text):
    result = net.check(text)
    assert result.flag == EMERGENCY, result.hits


@pytest.mark.parametrize("text", MUST_FIRE_CRISIS)
def test_crisis_fires(net, text):
    result = net.check(text)
    assert result.flag == CRISIS, result.hits


@pytest.mark.parametrize("text", MUST_NOT_FIRE)
def test_does_not_cry_wolf(net, text):
    result = net.check(text)
    assert result.flag is None, result.hits


def test_crisis_wins_over_emergency(net):
    result = net.check("he has a gun and says he is going to kill himself")
    assert result.flag == CRISIS
    labels = {h.label.split(".")[0] for h in result.hits if h.active}
    assert labels >= {"crisis", "emergency"}


def test_the_model_turns_a_rules_emergency_into_a_crisis_never_back():
    """Medical words that are also how people write about dying ("drowning", "overdose"):
    the rules say emergency, the model says crisis, the answer gives 988 as well as 911."""
    from bot.safety_net import Hit, _result

    drowning = [Hit(label="emergency.medical", text="drowning")]
    assert _result("en", drowning, ("crisis", 0.7)).flag == CRISIS
    assert _result("en", drowning, ("emergency", 0.7)).flag == EMERGENCY
    assert _result("en", drowning, (None, 0.1)).flag == EMERGENCY
    means = [Hit(label="crisis.self_harm", text="pills")]
    assert _result("en", means, ("emergency", 0.9)).flag == CRISIS
    assert _result("en", [], ("crisis", 0.9)).tier == "model"
    assert _result("en", drowning, ("crisis", 0.7)).tier == "rules"


def test_reasons_are_recorded(net):
    negated = net.check("i am not going to kill myself")
    assert [h.suppressed for h in negated.hits if h.label.startswith("crisis")] == ["negated"]
    past = net.check("there was a shooting last night")
    assert any(h.suppressed == "past" for h in past.hits)
    harmless = net.check("shooting hoops later")
    assert any(h.suppressed == "harmless" for h in harmless.hits)


def test_not_an_emergency_does_not_silence_a_weapon(net):
    assert net.check("not an emergency but my neighbor is waving a gun around").flag == EMERGENCY


def test_present_overrides_past_marker(net):
    text = "i got home this morning and someone is in my house"
    assert net.check(text).flag == EMERGENCY


def test_weak_cues_without_flag(net):
    result = net.check("i need help with something about a gun")
    assert result.flag is None
    assert "cue.urgent" in result.cues


def test_result_round_trips_through_parse_data(net):
    result = net.check("someone is breaking in")
    again = SafetyResult.from_dict(result.as_dict())
    assert again == result


def test_hostile_input_is_handled(net):
    for text in ["", " ", "\u200b\u200b", "🚨" * 10000, "a" * 50000, "\u202eesrever", "\x00"]:
        assert isinstance(net.check(text), SafetyResult)
    # Zero-width characters inside a word do not hide it.
    assert net.check("he has a g\u200bun").flag == EMERGENCY


@pytest.mark.parametrize("padding", ["\n", "\n \n", " \r\n\t"])
def test_line_breaks_inside_a_message_do_not_hide_the_danger_from_the_rules(net, padding):
    """Blank lines between a greeting, the danger and a sign-off once filled the rules'
    window at both ends (a review's attack): a run of breaks reads as one."""
    text = ("hi" + padding * 250 + "someone is breaking into my house right now"
            + padding * 250 + "thanks")
    assert net.check(text).flag == EMERGENCY
    assert net.check("hi" + padding * 250 + "i am going to kill myself" + padding * 250
                     + "bye").flag == CRISIS
    # Still read as separate lines: a calm first line does not join the danger's clause.
    assert "\n" in rule_window("a\n\n\nb", RULE_WINDOW_CHARS)


@pytest.mark.parametrize("filler", ["hey\n", "hey\r\n", "ok\n\n", "?\n", "lol \n"])
def test_a_short_line_repeated_around_the_danger_does_not_hide_it(net, filler):
    """A live attack (2026-12-02): "hey" on 70 lines before and after "he has a gun and is
    shooting" filled both of the rules' windows (a repeated short word was shortened only
    when a space followed it), and the model scored it 0.08: no notice at all."""
    text = filler * 70 + "he has a gun and is shooting\n" + filler * 70
    assert net.check(text).flag == EMERGENCY


def test_normalize_and_spell_out():
    assert normalize("HELLLLP!!") == "hellp!!"
    assert normalize("can\u2019t") == "can't"
    assert spell_out("i can't breathe") == "i can not breathe"
    assert spell_out("he wont leave") == "he will not leave"
    assert spell_out("im scared") == "i am scared"


def test_language_detection():
    assert detect_language("hay un hombre con una pistola afuera de mi casa") == "es"
    assert detect_language("¿dónde pago una multa?") == "es"
    assert detect_language("there is a man with a gun outside my house") == "en"
    assert detect_language("ok") == "en"


# The other languages' phrases (safety_patterns.OTHER_LANGUAGE_DANGER), both sides of each:
# the cry or act, and an everyday message in the same language, some with the same word.
OTHER_LANGUAGE_CASES = [
    ("救命！有人闯进我家了", "emergency"), ("我想自杀", "crisis"),
    ("想死你了，什么时候回来", None), ("请问你们几点开门？", None),
    ("Cứu tôi với, có người đột nhập vào nhà", "emergency"),
    ("Tôi không muốn sống nữa", "crisis"),
    ("Cho tôi hỏi giờ làm việc của đồn cảnh sát", None),
    ("Saklolo! May sunog sa kapitbahay namin", "emergency"),
    ("Gusto ko nang mamatay, pagod na ako", "crisis"),
    ("Paano kumuha ng police clearance?", None),
    ("ساعدوني هناك حريق في المبنى", "emergency"), ("أريد أن أموت", "crisis"),
    ("ما هي ساعات العمل في مركز الشرطة؟", None),
    ("살려주세요 누가 집에 침입했어요", "emergency"), ("죽고 싶어요", "crisis"),
    ("경찰서 운영 시간이 어떻게 되나요?", None), ("어제 경기 자살골 봤어?", None),
    ("Спасите, в доме пожар", "emergency"), ("Я не хочу жить", "crisis"),
    ("Помогите найти потерянный паспорт", None), ("Во сколько открывается участок?", None),
    ("Anmwe! Gen yon dife nan kay la", "emergency"),
    ("Ki lè biwo a ouvri pou moun ki bezwen papye?", None),
    ("Au secours, quelqu'un est entré chez moi avec un couteau", "emergency"),
    ("J'ai envie de mourir", "crisis"), ("À quelle heure ouvre le commissariat?", None),
    ("J'ai perdu mes larmes et mon armée de jouets", None),
]


@pytest.mark.parametrize("text, flag", OTHER_LANGUAGE_CASES)
def test_other_languages_have_rules_too(net, text, flag):
    result = net.check(text)
    assert result.language not in ("en", "es")
    assert result.flag == flag
    if flag:
        assert result.tier == "rules"
        assert any(h.label == f"{flag}.other_language" for h in result.hits)


def test_other_language_phrases_do_not_reach_english_or_spanish(net):
    """In English or Spanish text the spaCy rules decide (they know the past and negation);
    the French "suicid" must not flag a message about a death years ago."""
    result = net.check("my uncle died by suicide many years ago, we talk about it openly now")
    assert result.language == "en"
    assert not any(h.label.endswith("other_language") for h in result.hits)


def test_other_language_attack_set(net):
    """93 messages in the other languages written by the live attack on 2026-11-30 (its
    misses and false alarms were read and fixed: a regression set, not a measure). Before
    the fixes 33 of 38 urgent ones were missed and 31 of 55 everyday ones flagged; what is
    left are hyperboles ("so hungry I want to die") and a cry used as an exclamation."""
    import json

    from bot.settings import PROJECT_ROOT

    rows = [json.loads(line) for line in
            (PROJECT_ROOT / "tests/data/other_languages_attack.jsonl").read_text().splitlines()]
    flagged = [(row, net.check(row["text"]).flag is not None) for row in rows]
    missed = [r["text"] for r, f in flagged if r["urgent"] and not f]
    false_alarms = [r["text"] for r, f in flagged if not r["urgent"] and f]
    assert len(rows) == 93
    assert missed == []
    assert len(false_alarms) <= 6, false_alarms


def test_the_pruned_lemma_tables_match_exactly_as_the_full_ones(monkeypatch):
    """bot.nlp.blank_pipeline keeps only the lemma entries the rules can use (Spanish's full
    table cost every process that loads the rules 153 MiB and ~2 s): the rules must give the
    same hits on every training and test message as with the full tables, and the tables
    must really be smaller."""
    import json

    import yaml

    import bot.safety_net as safety_net
    from bot.nlp import blank_pipeline
    from bot.settings import PROJECT_ROOT

    texts = []
    for path in sorted((PROJECT_ROOT / "data/nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            texts += [line.strip()[2:] for line in item["examples"].splitlines() if line.strip()]
    for path in sorted((PROJECT_ROOT / "tests/data").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line]
    assert len(texts) > 15_000
    pruned = SafetyNet()
    monkeypatch.setattr(safety_net, "shared_pipeline",
                        lambda lang, words=None: blank_pipeline(lang))
    full = SafetyNet()
    for compiled_pruned, compiled_full in zip(pruned._languages, full._languages, strict=True):
        small = compiled_pruned.nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
        whole = compiled_full.nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
        assert 0 < len(small) < len(whole) / 10
    differ = [t for t in texts if pruned.check(t).hits != full.check(t).hits]
    assert differ == []


def test_the_rules_vocabulary_is_rebuilt_before_it_grows_without_end(monkeypatch):
    """Every word spaCy reads stays in its vocabulary; random words grew the gateway by
    1 GiB (found by the live attack). Past the limit the rules are built again, and they
    answer as before."""
    import random
    import string

    from bot import safety_net

    monkeypatch.setattr(safety_net, "VOCAB_LIMIT", 5_000)
    fresh = SafetyNet()
    rng = random.Random(7)
    sizes = []
    for _ in range(120):
        words = " ".join("".join(rng.choices(string.ascii_lowercase, k=9)) for _ in range(60))
        fresh.check(words)
        sizes.append(max(len(c.nlp.vocab.strings) for c in fresh._languages))
    assert max(sizes) <= 5_000 + 200  # one message's words past the limit, then rebuilt
    assert min(sizes[60:]) < 5_000 // 2  # it did shrink
    assert fresh.check("someone is breaking into my house right now").flag == "emergency"
    assert fresh.check("ya no quiero vivir").flag == "crisis"
