"""The safety net's phrase patterns, English and Spanish.

Each pattern is a string in a small notation over spaCy ``Matcher`` tokens (see
``bot.safety_net.compile_pattern``):

* words separated by spaces are consecutive tokens, matched on their lower-case text;
* ``a|b|c`` is any of these words; a trailing ``?`` makes the token optional;
* ``~word`` matches the lemma (so ``~stab`` is stab, stabs, stabbing, stabbed);
* ``_`` is any one token.

Text is lower-cased and elongations are shortened ("hellllp" -> "hellp") before matching,
contractions are spelled out ("can't" and "cant" -> "can not", "won't" -> "will not",
"i'm" -> "i am"), so patterns write the long form. Patterns are written in the present or
progressive on purpose: "someone is breaking in" must fire, "someone broke in last night"
must not.

Labels: ``crisis.*`` and ``emergency.*`` raise that flag; ``cue.*`` are weak signs of
urgency that only count when the classifier is unsure; ``ctx.*`` are context words used by
the co-occurrence rules in ``bot.safety_net``.
"""

from __future__ import annotations

from typing import Dict, List

_BE = "is|are|am"
_SOMEONE = (
    "someone|somebody|somone|sombody|some1|a|the|this|that|he|she|they|guy|man|men|woman|"
    "people|dude|person|someones|somebodys|ex|boyfriend|husband|wife|girlfriend|neighbor|"
    "neighbour|roommate|stepdad|guys|group"
)
_WEAPON = (
    "gun|guns|pistol|rifle|shotgun|firearm|handgun|knife|knives|machete|blade|bat|"
    "weapon|weapons|ar15|glock|strap|sword|axe"
)
_ARMED_VERB = (
    "has|have|got|gotta|holding|waving|pointing|pointed|pulled|pulling|brandishing|"
    "carrying|swinging|with|wit|w|showing|flashing|aiming|loading"
)
_CHILD = (
    "child|kid|son|daughter|toddler|baby|boy|girl|grandson|granddaughter|nephew|niece|"
    "4yo|5yo|6yo|3yo|2yo"
)
_ME_US = "me|us|my|mom|mum|dad|kids|family|him|her|them|someone|somebody"
_FAMILY = (
    "wife|girlfriend|gf|husband|boyfriend|bf|kid|kids|child|children|baby|mom|mother|mum|dad|"
    "father|son|daughter|sister|brother|partner|grandma|grandmother|grandpa|neighbor|neighbour"
)

EN_PATTERNS: Dict[str, List[str]] = {
    # -- crisis: the sender or someone they describe ----------------------------------------
    "crisis.suicide": [
        "~kill myself|myslef|meself|himself|herself|themselves|themself",
        "~kill my self|selfe",
        "kms|kys",
        "~unalive myself|himself|herself|themselves|me",
        "~end my|his|her|their life|lives",
        "~end it all",
        "~take my|his|her|their own? life",
        "suicide|suicidal|sucide|suicidel|sucidal",
        "want|wanna|wants|going|gonna|ready to? die",
        "wish|wishing i was|were dead",
        "better off dead",
        "better off without me|him|her",
        "not|dnt want to live|exist",
        "want to be alive|here anymore",
        "no reason to live|keep|continue",
        "~jump off a|the bridge|building|roof|overpass",
        "~shoot myself|himself|herself",
        "~hang myself|himself|herself",
        "slit|cut|cutting my|his|her wrists",
        "~harm myself|himself|herself|themselves",
        "hurting|cutting|burning myself|himself|herself|themselves",
        "want|wanna|wants|going|gonna|might|gon to? hurt|cut|harm|burn myself|himself|herself",
        "self harm|harming",
        "self - harm|harming",
        "selfharm",
        "~overdose on",
        "~take|swallow all my|the|his|her pills|meds|medication|medicine",
        "~take|swallow all of my|the|his|her pills|meds|medication|medicine",
        "goodbye|suicide note|letter",
        "say|saying goodbye to everyone",
        "not want to wake up",
        # "go to sleep and never wake up", "how many does it take to not wake up": a wish,
        # where "he will not wake up" (an emergency) is a state.
        "sleep|asleep and not|never wake up",
        "take to not|never wake up",
        "not want to be alive|here",
        "can not go on anymore|like",
        "can not do this|it anymore",
        "nobody|noone would miss me",
        "no one would miss me",
        "everyone would be better off without me",
        "end my|the pain|suffering forever",
        "thinking|thought|think about|of overdosing|od|oding|ending|killing|hurting|cutting",
        # "I don't think I want to live": the negation is part of the thought, not of the danger.
        "not think|feel|know|believe if? i want to live",
        "not think|feel|know|believe if? i want to be alive|here",
        "no point in|to living|life|trying|continuing|existing",
        "no point in|to going|carrying on",
        "no point in being alive|here",
        "nothing to live for",
        "would be happier|better if i was|were gone|dead",
        "would be happier|better without me",
        "nobody|noone|nobdy would even? notice|care|miss if i disappeared|died|vanished|jumped",
        "nobody|noone|nobdy would even? notice|care|miss if i was|were gone|dead",
        "no one would even? notice|care|miss if i disappeared|died|vanished|jumped",
        "would anyone|anybody even? care|notice if i disappeared|died|jumped|vanished",
        "the pain to stop|end forever|permanently",
        "how many _? _? _? pills|tylenol|meds would it take",
        "how many _? _? _? pills|tylenol|meds to die|overdose|od",
        "~take|swallow a bunch|handful|bottle of pills|meds on purpose",
        "pills|meds in front of me",
        "thinking|thought about taking all of? my|the? them|pills|meds",
        "~stand|sit|standing|sitting|climbing on|at the|a ledge|railing",
        "why i should not jump|die|live",
        "~threaten|threatening|threatning to jump|overdose",
        "~jump off my|his|her|the|a balcony|ledge|cliff|roof|building|bridge|overpass",
    ],
    # -- emergency ----------------------------------------------------------------------------
    "emergency.intrusion": [
        "break|breaking|breakin|brakin|braking|breakn|braekin|breakng|brake|braking in|into|inside",
        "trying|tryin|tryna|try|attempting to? get|come|force in|inside",
        f"{_SOMEONE} {_BE}? in|inside my|our house|home|apartment|apt|room|garage|basement|yard|backyard",
        "intruder|intruders|burglar|burglars|prowler",
        "someone|somebody|somone|sombody|stranger|man|guy in my|the house|home|apartment",
        "hear|hearing someone|somebody|footsteps|people downstairs|inside|upstairs",
        "banging|pounding|kicking on|in my|the door|window",
        "trying|tryin|jiggling|rattling|turning|checking|opening my|the front|back|side|garage|bedroom? door|doors|doorknob|handle|window|windows|lock|locks",
        "robbing|robbin|holdup|carjacking|hijacking",
        "being|getting|get|gets robbed|mugged|jumped|attacked|assaulted|raped|carjacked|kidnapped|kidnaped|abducted|dragged|grabbed|pulled|forced|shoved|thrown",
        f"{_SOMEONE} {_BE}? walking|sneaking|creeping|hiding|lurking|moving|crawling|climbing around? in|inside|into|through|on my|our|the house|home|apartment|apt|garage|basement|yard|backyard|porch|roof|window|windows|car|room",
        "robbery|burglary|break in progress",
        "kidnapping|kidnaping|abducting|abducted|kidnapped",
        "hostage|hostages",
        "climbing|crawling|breaking|coming in|into|through my|our|the _? _? _? window|windows",
        "hear|hearing things|glass|stuff breaking|smashing|shattering",
    ],
    # "+now": fires only when the message also says it is happening now ("still there").
    "emergency.intrusion+now": [
        "broke|broken|got|get|came in|into|inside",
        "just broke|broken in|into",
        "stole|stealing|took|taking|robbed",
        "stealing|robbing|breaking|vandalizing|smashing|tagging|spraying",
        "hit|crashed|shot|stabbed|attacked|assaulted|jumped",
    ],
    "emergency.weapon": [
        f"{_ARMED_VERB} a|an|his|her|their|the|2|two|some? {_WEAPON}",
        f"{_WEAPON} to|at my|his|her|our|their|me|us|him|someone head|throat|face|neck|chest",
        f"{_WEAPON} pointed|drawn|out",
        "shots fired|shot|going|firing",
        "~shoot at",
        "shooting|shootin|shootn",
        "gunshots|gunshot|gunfire",
        "gun shots|shot",
        "active shooter",
        "~stab|stabbin",
        "armed man|guy|person|men|robber|suspect",
        "someone|he|she|they|guy|man|person got|been|was|is|just shot",
        "i|i've|ive|we|have|been|got shot",
        "bomb threat",
        "a|pipe bomb",
        "pipebomb",
        "explosive device",
    ],
    "emergency.violence": [
        "~threaten|threatning|threating to kill|hurt|shoot|stab|beat",
        f"~strangle|choke|stab|beat|punch|attack|strangling|choking|beating {_ME_US}",
        f"trying|tryin|tryna|going|gonna|gunna|want|wants|threatening|about|said|says to? kill|hurt|shoot|stab|murder {_ME_US}",
        f"will|'ll|ll|gon kill|hurt|shoot|stab {_ME_US}",
        "hitting|punching|kicking|slapping|pushing|hits|hit me|us|her|him",
        f"~hit|beat|punch|choke|strangle|slap|kick|attack|hitting|beating his|her|their|my|our {_FAMILY}",
        "fight|brawl|fighting in|at|outside|on|going|happening",
        "~hit by a|an car|truck|vehicle|bus",
        "~run over",
        "~rape|raping",
        "domestic violence|dispute",
        "~follow|following|stalking|chasing me|us",
        "being|getting followed|chased|stalked",
        "will not leave",
        "going|coming|came|ran after me|us",
        f"going|coming after his|her|my|their {_FAMILY}",
        "~trap|locked in",
        "road rage",
    ],
    "emergency.medical": [
        # "someone overdosed in the bathroom": the verb is past, the person is in danger now
        # (a time expression, "last year", still takes it back).
        f"{_SOMEONE} overdosed|oded",
        "not|stopped breathing|breathin",
        "can not breathe|breath",
        "unconscious|unresponsive|collapsed|overdosing|odin|seizure|seizing",
        "passed out",
        "just overdosed|od|odd",
        "is|are overdosing",
        "heart attack",
        "stroke",
        "~have a heart attack|stroke|seizure",
        "bleeding|bleedin out|badly|alot|everywhere|heavily|bad|from",
        "bleeding|bleedin a lot",
        "lots|pool of blood",
        "so much blood",
        "a lot of blood",
        "no|not pulse",
        "~drown|drowning|drownin",
        "~choke|choking on",
        "not|wont waking|wake up",
        "need|needs an ambulance|paramedics|medic|medics",
        "call|send an? ambulance|paramedics",
        "chest pain|pains|pressure",
        "trouble|difficulty|struggling breathing|breathin",
        "trouble|difficulty|struggling to breathe",
        "hard time breathing|breathin",
        "fainted|fainting",
        "face is drooping|droopy",
        "turning|turned blue|purple",
        # Poison swallowed, a heart that stopped, naloxone that is not working (the live
        # attack, 2026-12-01: none of these fired). Narrow on purpose (the review): the
        # verb in the past ("drinking bleach will not cure covid" is news), no bare "poison"
        # ("ate poison ivy", "the rats ate poison"), and the heart someone else's, told
        # plainly ("my heart stopped when I saw the bill", "her heart stopped when she saw
        # the price" are idioms).
        "drank|swallowed|ate|ingested some|the? bleach|antifreeze|chlorine",
        "drank|swallowed|ate|ingested some|the? rat|weed poison|killer",
        "drank|swallowed|ate|ingested some|the? drain cleaner",
        "'s|husbands|wifes|moms|dads|sons|daughters|babys|brothers|sisters heart stopped",
        "his|her|their|'s|husbands|wifes|moms|dads|sons|daughters|babys heart has stopped",
        "his|her|their|'s heart is not beating",
        "narcan|naloxone is|was|did|does? not working|work|worked|helping",
        "narcan|naloxone did nothing",
    ],
    "emergency.fire": [
        "house|car|building|apartment|apt|kitchen|brush|grass|forest|wild|structure|garage|trash|dumpster fire",
        "on fire",
        "a|the fire in|at|on|near|behind|across|next|upstairs|downstairs",
        "theres|is a fire",
        "smoke coming|pouring|everywhere|filling|billowing|from",
        "flames|explosion|exploded",
        "~smell|smelling gas",
        "gas leak",
        "is|s|are burning|burnin down",
        "~burn down",
        "gas smell|odor",
        "smells|smell like gas|smoke",
    ],
    "emergency.missing_child": [
        f"can not find my|our {_CHILD}",
        "can not find my|our _ year|yr|yo|month old",
        "can not find my|our _ - year|month - old",
        f"year|month - old {_BE}|went|has? missing|gone",
        f"year|month old {_BE}|went|has? missing|gone",
        f"{_CHILD} {_BE}|went|has|been|just? missing|gone",
        f"{_CHILD} {_BE} lost",
        f"lost my|our {_CHILD}",
        "missing child|kid|toddler|girl|boy",
        "amber alert",
        f"{_CHILD} wandering|walking|alone|playing|running alone|around? on|in|along|near|by the? highway|freeway|interstate|road|street|traffic",
        f"trying|tryna|tryin to get|lure|pull|put my|our|the|some|a {_CHILD}|kids|children into|in his|her|their|a car|van|truck",
    ],
    "emergency.road": [
        "drunk|dui|impaired|wasted|hammered driver|driving|drivin",
        "driving|drivin drunk|impaired|wasted",
        "wrong way driver|driving",
        "driving|going the wrong way",
        "swerving|swervin all|over|across|into|everywhere|lanes",
        "is|keeps|keep|driving|drivin|and swerving|swervin",
        "drunk|wasted|hammered _? _? got|getting|get in|into his|her|their|a|the car|truck",
    ],
    "emergency.help": [
        "this|it|that|thats|its|is is? an emergency|emergancy|emergencia",
        "emergency !|!!|!!!",
        "send help|backup",
        "please|plz|pls|plss hurry",
        "hurry|hury please|plz|pls|up",
        "i|we am|are in danger",
        "~fear for my|our life|lives",
        "~scar for my|our life|lives",
        "sos",
    ],
    "ctx.crash": [
        "~crash|accident|wreck|collision|collided|pileup|rollover|flipped|crashed",
        "~hit and run",
    ],
    "ctx.hurt": [
        "~hurt|injure|injury|bleeding|blood|trapped|unconscious|stuck|pinned",
        "not moving",
        "ambulance",
    ],
    "cue.urgent": [
        "help|helpp|hellp|halp|hlp|helpme",
        "send|need|needs police|cops|officer|officers|someone|somebody|an|ambulance",
        "call 911|police|cops",
        "come quick|fast|now",
        "~gun|knife|weapon|blood|fire|smoke|fight|hurt|danger|emergency|scared|terrified|threat|kill",
        "right now|rn|asap|immediately|hurry",
        "911",
        "~scream|yell|cry|cry for help",
    ],
}

# Spanish: matched on the Spanish pipeline (its own lemmas), same notation.
ES_PATTERNS: Dict[str, List[str]] = {
    "crisis.suicide": [
        "quiero|quisiera|kiero morir|morirme|matarme|suicidarme|desaparecer",
        "me quiero|kiero morir|matar|suicidar",
        "me voy a matar|suicidar|morir",
        "~suicidio|suicidarme|suicida|suicidar",
        "quitarme|quitarse la vida",
        "no quiero vivir|seguir",
        "~acabar con mi|su vida",
        "hacerme|hacerse daño",
        "~cortarme|cortarse",
        "ya no quiero estar|vivir|seguir",
        "se quiere matar|suicidar|morir",
        "se va a matar|suicidar",
        "tomar todas las pastillas",
        "tomarme|tomarse todas las pastillas",
        "nadie me extrañaría|extrañaria",
        "mejor sin mí",
        "no tiene sentido vivir|seguir",
        "ya no quiero estar aquí|aqui",
        "tomé|tome|tomó|tomo muchas|todas las? pastillas",
    ],
    "emergency.intrusion": [
        "metiendo|meterse|meter a|en mi casa",
        "está|esta|están|estan|se entrando|metiendo|robando|asaltando",
        "alguien en|dentro mi|de casa",
        "alguien entró|entro a|en",
        "alguien quiere|quiso|trata|intenta entrar|meterse",
        "intruso|intrusos|ladrón|ladron|ladrones en",
        "me|nos están|estan|está|esta robando|asaltando|siguiendo|atacando",
        "~secuestrar|secuestro|secuestraron|secuestrando|secuestrado",
        "rompiendo la|las puerta|ventana|ventanas",
        "tratando|intentando|quieren|quiere de? entrar|meterse",
        "hay un|una|unos? hombre|tipo|señor|mujer|extraño|desconocido en|dentro de? mi|la casa|cuarto|departamento|recámara",
        "hay alguien en|dentro de? mi|la casa|cuarto|departamento|recámara",
    ],
    "emergency.weapon": [
        "tiene|trae|con|sacó|saco|apuntando|apunta|amenazando|traen|tienen un|una|unas|unos? pistola|pistolas|arma|armas|cuchillo|navaja|rifle|machete|escopeta",
        "~disparar|disparos|disparando|balacera|tiroteo|balazos|disparo|baleado|balearon",
        "apuñalado|apuñalada|apuñalaron|acuchillado|acuchillaron",
    ],
    "emergency.violence": [
        "me|nos|la|lo quiere|va a|quieren|van a matar|pegar|golpear|lastimar|hacer daño",
        "me|nos|la|lo está|esta|están|estan pegando|golpeando|ahorcando|amenazando|matando|lastimando",
        "me pega|golpea",
        "~amenazar|amenazando con",
        "pelea|peleando|golpes afuera|en",
        "violencia doméstica|domestica",
        "atropellaron|atropellado|atropellada",
    ],
    "emergency.medical": [
        "no respira|reacciona|despierta|responde",
        "no se mueve",
        "no puede respirar",
        "inconsciente|desmayado|desmayada|convulsionando|sobredosis",
        "~sangrar|sangrando|sangre mucho|mucha",
        "ataque al corazón|corazon|cardiaco",
        "ambulancia",
        "se está|esta ahogando",
        # The English rules of 2026-12-01 (poison swallowed, a heart that stopped, naloxone
        # not working), as Spanish speakers write them (the review found none fired).
        "se? tomó|tomo|trago|tragó|bebió|bebio|comió|comio el|un? cloro|anticongelante|raticida",
        "se? tomó|tomo|trago|tragó|bebió|bebio|comió|comio veneno para ratas|ratones",
        "su corazón|corazon dejó|dejo de latir",
        "no le late el corazón|corazon",
        "la? narcan|naloxona no funciona|funcionó|funciono|sirve|sirvió|sirvio|hace|hizo",
    ],
    "emergency.fire": [
        "incendio|fuego|llamas|explosión|explosion",
        "se está|esta|están|estan quemando",
        "huele|olor a gas",
        "fuga de gas",
    ],
    "emergency.missing_child": [
        "no encuentro|encontramos|encuentra a mi|nuestro|nuestra hijo|hija|niño|niña|bebé|bebe|nieto|nieta",
        "niño|niña|hijo|hija|bebé|bebe desaparecido|desaparecida|perdido|perdida",
        "se perdió|perdio mi hijo|hija|niño|niña",
    ],
    "emergency.road": [
        "borracho|borracha|ebrio manejando|conduciendo|al volante",
        "manejando|conduciendo borracho|ebrio",
    ],
    "emergency.help": [
        "es una emergencia|urgencia",
        "auxilio|socorro",
        "manden|envíen|envien|mande policía|policia|ayuda|patrulla|ambulancia",
        "vengan|ayúdenme|ayudenme|ayuda rápido|rapido|ya|pronto|porfavor",
        "ayúdenme|ayudenme por favor",
        "estoy|estamos en peligro",
        "llamen al 911",
    ],
    "ctx.crash": ["choque|accidente|chocaron|volcadura|choqué|choque"],
    "ctx.hurt": ["herido|herida|heridos|atrapado|atrapada|sangrando|inconsciente"],
    "cue.urgent": [
        "ayuda|ayúdame|ayudame|urgente|emergencia|rápido|rapido|ahorita|miedo|peligro",
        "pistola|arma|cuchillo|navaja|sangre",
    ],
}

# Negation words looked for just before a match, in its clause.
EN_NEGATORS = frozenset(
    "not n't nt no never nobody none noone without neither nor isnt wasnt dont didnt doesnt "
    "aint wont".split()
)
ES_NEGATORS = frozenset("no nunca nadie ni sin tampoco jamás jamas".split())
# A negator followed by one of these does not negate ("can't stop hitting me").
NEGATION_BREAKERS = frozenset("stop quit dejar deja para".split())
# Words that end a negation's reach.
CLAUSE_BREAKS = frozenset(". , ; : ! ? but pero though although however and y".split())

# Phrases that say the whole message is not urgent; they silence weak cues and the
# generic help patterns, never a concrete danger ("not an emergency but he has a gun").
EN_NOT_URGENT = [
    "not an? emergency|emergancy|urgent|emergent",
    "non emergency|emergent|urgent",
    "non - emergency|urgent",
    "nonemergency|nonurgent",
    "no emergency|rush|hurry",
    "nobody|noone is hurt|injured",
    "no one is hurt|injured",
    "nobody|noone is in danger",
    "not in danger",
    "everyone|everybody is ok|okay|fine|safe",
]
ES_NOT_URGENT = [
    "no es una|un emergencia|urgente|urgencia",
    "no es urgente",
    "nadie está|esta herido|lastimado|en peligro",
    "no hay peligro|heridos",
]

# Time expressions that put what follows in the past.
EN_PAST = [
    "last night|week|month|year|weekend|time|summer|winter|spring|fall|friday|saturday|sunday|monday|tuesday|wednesday|thursday",
    "yesterday|yday|yest|ystrday|yesteday",
    "_ days|weeks|months|years|hours|nights|wks|yrs ago",
    "a while|bit|few ago",
    "over the weekend",
    "earlier today|tonight",
    "earlier this week|morning|month",
    "the other day|night",
    "this morning",
    "when i|we was|were|got|came|woke",
    "came|got|went out|back|home this morning|today|and",
    "while i|we was|were at|away|asleep|sleeping|out|gone",
    "back in",
    "on monday|tuesday|wednesday|thursday|friday|saturday|sunday",
    "used to",
    "in the past",
    "a year|month|week ago",
    # Learning of it: news of something that happened ("found out my ex overdosed").
    "found|find|finding out",
]
# Discovery words: the past for what was done ("found my car window smashed"), not for a
# state someone is found in ("found my son unresponsive" is an emergency now: found by the
# live attack); see bot.safety_net._in_past.
EN_FOUND = ["found|noticed|discovered"]
ES_PAST = [
    "ayer|anoche|antier|anteayer",
    "semana|mes|año|fin pasado|pasada",
    "hace _ días|dias|semanas|meses|años|horas",
    "el otro día|dia",
    "esta mañana|manana",
]

# Words that say it is happening now: they overrule a past time expression, and "+now"
# patterns need one ("stole my car and he is still here").
EN_STILL = [
    "still|currently|rn|atm|asap|immediately",
    "right now",
    "as we speak",
    "is|are here|outside|back|still",
    "again",
]
ES_STILL = ["todavía|todavia|sigue|siguen|ahorita", "ahora mismo"]

# Everyday uses of alarming words. HARMLESS_NEXT: a match whose last word is the key is
# taken back when the next word is in the set ("shooting hoops", "die laughing").
# HARMLESS_PREV: likewise for the word before a match that starts with the key.
HARMLESS_NEXT = {
    "shooting": frozenset(
        "fireworks firework hoops pool baskets photos pictures pics video videos film movie "
        "range star stars guard practice hoop".split()
    ),
    "shootin": frozenset("hoops pool fireworks".split()),
    "die": frozenset("laughing of lmao lmfao haha 😂 🤣".split()),
    "suicide": frozenset("prevention awareness squad hotline walk doors".split()),
    "suicidio": frozenset("prevención prevencion".split()),
    # "la naloxona no hace falta (receta)": a question about buying it, not "no hace (efecto)".
    "hace": frozenset({"falta"}),
    "hizo": frozenset({"falta"}),
    "in": frozenset("touch contact line".split()),
    "me": frozenset("up back".split()),
    "gun": frozenset(
        "permit permits license licence registration registered safe lock show range class "
        "course buyback store shop owner".split()
    ),
    "guns": frozenset("permit license licence registration safe show range".split()),
    "fight": frozenset("night song club".split()),
    "stab": frozenset("at".split()),
    "stroke": frozenset("of".split()),
    "drowning": frozenset("in".split()),
}
HARMLESS_PREV = {
    "fight": frozenset("pillow food snowball water".split()),
    "shooting": frozenset("photo video film movie".split()),
    "stroke": frozenset("back".split()),
    "explosion": frozenset("flavor flavour".split()),
    "drunk": frozenset("for about against".split()),
    "dui": frozenset("for about against a".split()),
    "flames": frozenset("hot".split()),
    "fuego": frozenset("arma".split()),
    "suicidio": frozenset("del de".split()),
}


# Danger in the other languages the department answers with one line (bot.nlp.OTHER_LANGUAGES).
# The spaCy patterns above read English and Spanish only; for a message in another language
# these regular expressions (on the lower-cased text) are the safety net's rules. Each is an
# unambiguous cry or act happening now (a fire, a gun, a break-in, someone hitting or not
# breathing, taking one's own life), written from the languages themselves, never from a
# test set. Words that are also everyday idiom are left out ("想死你了" is "I miss you so
# much", "我妈要杀我了" and "мама меня убьёт" are "my mum will kill me", "đói muốn chết" is
# "starving", "à l'aide de" is "using", "طفاية حريق" is a fire extinguisher), Latin-script
# words carry word boundaries ("arme" but not "armée"), and an emergency (not a crisis) is
# taken back when the message names a past time (OTHER_LANGUAGE_PAST). Applied only to a
# message the identifier names as neither English nor Spanish, except ANY_LANGUAGE_CRIES.
OTHER_LANGUAGE_DANGER: Dict[str, Dict[str, List[str]]] = {
    "zh": {
        "crisis": ["自杀", "自殺", "不想活", "轻生", "輕生", "结束自己的生命", "結束自己的生命",
                   "割腕", "跳楼自", "跳樓自"],
        "emergency": ["救命", "着火了", "著火了", "失火了", "起火了", "有人开枪", "有人開槍",
                      "开枪了", "開槍了", "拿着枪", "拿著槍", "有人闯进", "有人闖進",
                      "破门而入", "破門而入", "撞门", "撞門", r"砸.{0,4}[门門]", "被绑架", "被綁架",
                      "被捅", "被刺伤", "被刺傷", "拿着刀", "拿著刀", "拿刀威胁", "拿刀威脅", "正在打我",
                      "在打我",
                      "没有呼吸", "沒有呼吸", "不省人事", "昏迷不醒"],
    },
    "vi": {
        "crisis": [r"tự tử", r"tự sát", r"không muốn sống", r"kết liễu đời"],
        "emergency": [r"\bcứu (tôi|với|em|con|mạng|tui)\b", r"\b(đang|bị) cháy\b",
                      r"\bcháy nhà\b", r"\bnổ súng\b", r"\bcầm súng\b", r"\bbị bắn\b",
                      r"\bcầm dao\b", r"\bđột nhập\b", r"\bphá cửa\b", r"\bbị đâm\b",
                      r"\bđang đánh (tôi|em|con)\b", r"\bbất tỉnh\b", r"\bkhông thở\b",
                      r"\bbắt cóc\b"],
    },
    "tl": {
        "crisis": [r"\bmagpakamatay\b", r"\bmagpapakamatay\b", r"ayoko na(ng)? mabuhay",
                   r"ayaw ko na(ng)? mabuhay", r"gusto ko na(ng)? mamatay",
                   r"tapusin ang buhay ko"],
        "emergency": [r"\bsaklolo\b", r"\btulungan (n|nin)?yo (ako|kami)\b",
                      r"\bmay sunog\b", r"\bnasusunog\b", r"\bmay baril\b", r"\bbinaril\b",
                      r"\bpamamaril\b", r"\bmay (kutsilyo|patalim)\b", r"\bnilooban\b", r"\bmay pumasok sa (bahay|loob)\b",
                      r"sinisira ang pinto", r"\bsinaksak\b", r"\bbinubugbog (ako|kami)\b",
                      r"\bsinasaktan (ako|kami)\b", r"\bnawalan ng malay\b",
                      r"\bhindi (na )?humihinga\b", r"\bdinukot\b", r"\bkinidnap\b"],
    },
    "ar": {
        "crisis": ["انتحار", "أنتحر", "انتحر", "لا أريد أن أعيش", "لا اريد ان اعيش",
                   "أريد أن أموت", "اريد ان اموت", "أقتل نفسي", "اقتل نفسي"],
        "emergency": ["النجدة", "ساعدوني", "أنقذوني", "انقذوني", "هناك حريق", "يوجد حريق",
                      "حريق في البيت", "حريق في المنزل", "حريق في الشقة", "حريق في المبنى",
                      "معه مسدس", "بمسدس", "إطلاق نار", "اطلاق نار", "يطلق النار", "معه سلاح",
                      "يحمل سلاح", "معه سكين", "اقتحم", "يقتحم", "يكسر الباب", "يكسرون الباب",
                      "كسر باب", "يضربني", "طعنني", "فاقد الوعي", "لا يتنفس", "اختطف", "خطفوا",
                      "اختطاف", "سيقتلني", "يريد قتلي"],
    },
    "ko": {
        "crisis": [r"자살(?!골)", "죽고 싶", "죽고싶", "살고 싶지 않", "살기 싫", "목숨을 끊"],
        "emergency": ["살려주세요", "살려 주세요", "불이야", "불이 났어", "불났어", "총을 들",
                      "총을 쏘", "총격", "총소리", "칼을 들", "강도가 들", "집에 침입",
                      "문을 부수", "때리고 있", "칼에 찔", "찔렸", "의식이 없", "숨을 안 쉬",
                      "숨을 쉬지", "납치", "죽이려"],
    },
    "ru": {
        "crisis": [r"покончить с собой", r"самоубийств", r"суицид", r"не хочу жить",
                   r"хочу умереть", r"убить себя", r"повеситься"],
        "emergency": [r"\bспасите\b", r"\bпожар\b", r"\bс пистолетом\b", r"\bстреляют\b",
                      r"\bстрельба\b", r"\bс ружь[её]м\b", r"\bграбят\b", r"\bвломил",
                      r"\bломится в дверь\b", r"\bломают дверь\b", r"\bлезет .{0,20}в окно\b",
                      r"^\W*помогите\W*$", r"\bударил ножом\b",
                      r"\bс ножом\b", r"\bзарезал", r"\bменя бь[её]т\b", r"\bбь[её]т меня\b",
                      r"\bбез сознания\b", r"\bне дышит\b", r"\bпохитил"],
    },
    "ht": {
        "crisis": [r"\btouye t[eè]t (mwen|li)\b", r"\bpa vle viv ank[oò]\b", r"\bvle mouri\b",
                   r"\bswisid"],
        "emergency": [r"\banmw[eè]\b", r"\bgen (yon )?dife\b", r"\bkay la ap boule\b",
                      r"\bgen (yon )?zam\b", r"\btire sou\b", r"\bkase p[oò]t\b",
                      r"\bkout kouto\b", r"\b(ak|gen) yon kouto\b", r"\bk?ap antre lakay (mwen|m|nou)\b",
                      r"\bap bat (mwen|m)\b", r"\bpa respire\b",
                      r"\bkidnape\b", r"\bvyole (m|mwen|li)\b", r"\btouye (m|mwen|nou)\b"],
    },
    "fr": {
        "crisis": [r"\bme suicider\b", r"\b(vais|veux|voudrais) me tuer\b",
                   r"\benvie de (mourir|me tuer)\b", r"\bveux mourir\b",
                   r"\bplus envie de vivre\b", r"\bveux plus vivre\b",
                   r"\ben finir avec (la vie|tout)\b"],
        "emergency": [r"\bau secours\b", r"\bà l'aide\s*(!|$)", r"\bau feu\b",
                      r"\bincendie\b", r"\b(le|la|en) feu (à|a|dans)\b",
                      r"\b(avec|a) une arme\b", r"\b(avec|a) un (pistolet|fusil|couteau)\b",
                      r"\bcoups? de feu\b", r"\btire sur (moi|nous|les gens|quelqu'un)\b",
                      r"\ben train de cambrioler\b",
                      r"\bquelqu'un (est entré|entre|essaie d'entrer) chez\b",
                      r"\bforcer? la porte\b", r"\bcoups? de couteau\b", r"\bme frappe\b",
                      r"\b(homme|individu|type)s? armés?\b",
                      r"\b(il|elle) est inconsciente?\b", r"\b(il|elle) ne respire (plus|pas)\b",
                      r"\bkidnapp", r"\bveut (me|nous) tuer\b"],
    },
}

# Cries no English or Spanish text contains, checked whatever language the identifier names:
# a short "Au secours!" or "Saklolo!" is too short for it to be sure, and is read as English.
ANY_LANGUAGE_CRIES: Dict[str, List[str]] = {
    "crisis": [r"\bme suicider\b", r"\bmagpapakamatay\b", r"\btự tử\b"],
    "emergency": [r"\bau secours\b", r"\bà l'aide\s*!", r"\bsaklolo\b", r"\banmw[eè]\b",
                  r"\bcứu (tôi|với|em|tui)\b", r"\bпомогите\s*!", r"\bспасите\b",
                  r"\b(mari|copain|père|ex) me frappe\b",
                  "살려줘", "살려 줘", "살려주세요", "살려 주세요", r"도와주세요\s*!", "救命",
                  "النجدة"],
}

# A past time in the message takes an other-language emergency back ("上周我家失火了",
# "tuần trước nhà tôi bị đột nhập", "nilooban kami noong Pasko"): the English rules do the
# same with tense; these are the plainest markers of a past time in each language.
OTHER_LANGUAGE_PAST: List[str] = [
    "上周", "上週", "昨天", "昨晚", "去年", "上个月", "上個月", "前天",
    r"[一二三四五六七八九十两兩几幾\d]+ ?(年|个月|個月|天|周|週|星期)前",
    r"\btuần trước\b", r"\bhôm qua\b", r"\bnăm ngoái\b", r"\btháng trước\b",
    r"\bnoong\b", r"\bkahapon\b", r"\bnakaraang\b",
    "الأسبوع الماضي", "أمس", "البارحة", "العام الماضي", "الشهر الماضي",
    "지난주", "어제", "어젯밤", "작년", "지난달", "지난번",
    r"\bна прошлой неделе\b", r"\bвчера\b", r"\bв прошлом году\b", r"\bв прошлом месяце\b",
    r"\bsemèn pase\b", r"\bane pase\b", r"\bmwa pase\b", r"\byè\b",
    r"\bla semaine dernière\b", r"\bhier\b", r"\bl'année dernière\b",
    r"\bil y a (\d+|un|une|deux|trois|quelques) (minutes?|heures?|jours?|semaines?|mois|ans?)\b",
    r"\ble mois dernier\b",
]

# A message about the news or about prevention talks about danger, it does not report it:
# an other-language emergency is taken back when it names the news, a crisis when it names
# prevention ("预防自杀的讲座", "자살 예방 캠페인", "prévention du suicide").
OTHER_LANGUAGE_NEWS: List[str] = [
    "新闻", "新聞", "报道", "報導", r"\btin tức\b", r"\bbáo\b", r"\bbalita\b", "أخبار", "خبر",
    "뉴스", "기사", r"\bновост", r"\bнюз", r"\bnouvèl\b", r"\bnouvelles?\b", r"\breportage\b",
    r"\bjournal\b",
]
OTHER_LANGUAGE_PREVENTION: List[str] = [
    "预防", "預防", "예방", r"\bprévention\b", r"\bphòng (chống|ngừa)\b", r"\bpag-iwas\b",
    "الوقاية", r"\bпрофилактик", r"\bprevansyon\b",
]

