"""Issue 10, items 1 and 2, through the real gateway, real Redis and (for the answers Rasa
gives) the real trained model: the reply follows the citizen's language and stays in it for
the conversation; Beacon says it is automated in its first reply, after staff hand the
conversation back and after a long silence, and an urgent reply keeps the notice first."""

from __future__ import annotations

from bot import keys
from bot.replies import EMERGENCY_NOTICE
from tests.gateway_support import conv_id, messenger_item, messenger_payload, post_meta


def _spanish_routing(department) -> tuple:
    """The openings of the Spanish replies that route to a person (depending on the clock and
    on who is on duty)."""
    return tuple(getattr(department.replies, name)["es"][:30]
                 for name in ("staff_soon", "nobody_now", "back_at"))


async def test_first_reply_says_it_is_automated_and_only_once(offline, platform, department):
    await post_meta(offline, messenger_payload(messenger_item("d1", "can someone call me")))
    await platform.wait_for(lambda: platform.texts_to("d1"))
    line = department.reply("disclosure", "en")
    first = platform.texts_to("d1", raw=True)[0]
    assert first.startswith(line + "\n\n")
    await post_meta(offline, messenger_payload(messenger_item("d1", "about my case please")))
    await platform.wait_for(lambda: len(platform.texts_to("d1")) >= 2)
    assert all(line not in text for text in platform.texts_to("d1", raw=True)[1:])


async def test_an_urgent_first_reply_keeps_the_notice_first(offline, platform, department):
    await post_meta(offline, messenger_payload(
        messenger_item("d2", "a man is pointing a gun at my neighbor right now")))
    await platform.wait_for(lambda: platform.texts_to("d2"))
    await platform.wait_for(lambda: len(platform.texts_to("d2")) >= 2)
    raw = platform.texts_to("d2", raw=True)
    # The notice goes out untouched and first; the line rides in the last text of the
    # notice, decided after the notice went out.
    assert raw[0] == EMERGENCY_NOTICE["en"]
    line = department.reply("disclosure", "en")
    assert sum(line in text for text in raw) == 1
    assert any(text.endswith("\n\n" + line) for text in raw[1:])


async def test_disclosed_again_after_staff_hand_back_and_after_a_long_silence(
        offline, platform, redis, department):
    from bot.appkeys import SERVICES

    services = offline.app[SERVICES]
    conversation = conv_id("d3")
    line = department.reply("disclosure", "en")
    await post_meta(offline, messenger_payload(messenger_item("d3", "can someone call me")))
    await platform.wait_for(lambda: platform.texts_to("d3"))
    # The silence window is the mark's lifetime, renewed by every reply.
    assert 29 * 86400 < await redis.ttl(keys.disclosed(conversation)) <= 30 * 86400
    # Staff take the conversation and hand it back: the next reply says it again.
    await services.queue.claim(conversation, "alice")
    await services.queue.resolve(conversation, "alice")
    await post_meta(offline, messenger_payload(messenger_item("d3", "one more question")))
    await platform.wait_for(lambda: len(platform.texts_to("d3")) >= 2)
    assert platform.texts_to("d3", raw=True)[-1].startswith(line)
    # A long silence: the mark has run out.
    await redis.delete(keys.disclosed(conversation))
    count = len(platform.texts_to("d3"))
    await post_meta(offline, messenger_payload(messenger_item("d3", "hello again")))
    await platform.wait_for(lambda: len(platform.texts_to("d3")) > count)
    assert platform.texts_to("d3", raw=True)[count].startswith(line)


async def test_a_spanish_conversation_stays_spanish(offline, platform, redis, department):
    """Rasa is down here: the gateway's own answer follows the language too."""
    await post_meta(offline, messenger_payload(
        messenger_item("es1", "hola, necesito hablar con un oficial sobre mi caso")))
    await platform.wait_for(lambda: platform.texts_to("es1", raw=True))
    first = platform.texts_to("es1", raw=True)[0]
    assert first.startswith(department.reply("disclosure", "es"))
    assert platform.texts_to("es1")[0].startswith(_spanish_routing(department))
    # "ok" shows no language: the conversation's is kept.
    await post_meta(offline, messenger_payload(messenger_item("es1", "ok")))
    await platform.wait_for(lambda: len(platform.texts_to("es1")) >= 2)
    assert platform.texts_to("es1")[1].startswith(_spanish_routing(department))
    assert await redis.get(keys.conversation_language(conv_id("es1"))) == "es"
    meta = await redis.hgetall(keys.conversation(conv_id("es1")))
    assert meta["language"] == "es"
    # A message that shows English switches the conversation to English.
    await post_meta(offline, messenger_payload(
        messenger_item("es1", "actually can you please answer in english")))
    await platform.wait_for(lambda: len(platform.texts_to("es1")) >= 3)
    assert not platform.texts_to("es1")[2].startswith(_spanish_routing(department))


async def test_a_spanish_question_is_answered_in_spanish_by_rasa(online, platform,
                                                                 department):
    await post_meta(online, messenger_payload(
        messenger_item("es2", "como puedo pagar una multa de estacionamiento?")))
    await platform.wait_for(lambda: platform.texts_to("es2"), timeout=60)
    assert platform.texts_to("es2") == [department.faq_answer("pay_citation", "es")]
    await post_meta(online, messenger_payload(messenger_item("es2", "ok 👍")))
    await platform.wait_for(lambda: len(platform.texts_to("es2")) >= 2, timeout=60)
    spanish = {department.reply(name, "es") for name in ("thanks", "greet", "compliment",
                                                         "goodbye")}
    reply = platform.texts_to("es2")[1]
    assert reply in spanish or reply.startswith(_spanish_routing(department)), reply


async def test_a_spanish_emergency_gets_both_notices_first(offline, platform):
    await post_meta(offline, messenger_payload(
        messenger_item("es3", "ayuda hay un hombre con una pistola en mi casa ahora")))
    await platform.wait_for(lambda: len(platform.texts_to("es3")) >= 2)
    texts = platform.texts_to("es3")
    assert texts[:2] == [EMERGENCY_NOTICE["es"], EMERGENCY_NOTICE["en"]]
