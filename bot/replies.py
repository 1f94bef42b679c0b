"""What the citizen reads, for each outcome: pure functions of the decision and the facts.

The wording lives in the department file (``replies``, ``faq``), in each of its languages,
so a department can adjust it; only the 911 notice and the 988 line are built in here, and
the file may add to them (``replies.notice_extra``) but never replace them: whatever a
department edits, an urgent message is told to call 911.
"""

from __future__ import annotations

import datetime as dt
from typing import List

from bot.department import DEFAULT_LANGUAGE, Department
from bot.hours import describe_opening, is_scheduled, next_opening
from bot.topics import SMALLTALK_INTENTS
from bot.triage import Decision, Outcome

EMERGENCY_NOTICE = {
    "en": (
        "If this is an emergency, call 911 now (or text 911 where available). This account "
        "cannot dispatch help and is not monitored around the clock, so a message here may "
        "not be seen in time."
    ),
    "es": (
        "Si es una emergencia, llame al 911 ahora (o envíe un texto al 911 donde esté "
        "disponible). Esta cuenta no puede enviar ayuda y no se vigila las 24 horas, así que "
        "un mensaje aquí podría no verse a tiempo."
    ),
}
CRISIS_LINE = {
    "en": (
        "If you are thinking about suicide or hurting yourself, or are worried about someone, "
        "call or text {phones.crisis_lifeline} (988 Suicide & Crisis Lifeline). It is free, "
        "confidential and open 24/7."
    ),
    "es": (
        "Si está pensando en el suicidio o en hacerse daño, o le preocupa alguien, llame o "
        "envíe un texto al {phones.crisis_lifeline} (Línea 988 de Prevención del Suicidio y "
        "Crisis, opción 2 para español). Es gratis, confidencial y atiende 24/7."
    ),
}


def routing_reply(department: Department, monitoring: bool, now: dt.datetime,
                  language: str = DEFAULT_LANGUAGE) -> str:
    """What a citizen is told when the conversation goes to the human queue."""
    if monitoring:
        return department.reply("staff_soon", language)
    if is_scheduled(department, now):
        return department.reply("nobody_now", language)
    opening = next_opening(department, now)
    if opening is None:
        return department.reply("nobody_now", language)
    return department.reply("back_at", language, when=describe_opening(
        opening, now, department.language(language)))


def follow_up_text(department: Department, language: str) -> str:
    """The short line for a message inside an urgent conversation's notice window."""
    return department.reply("urgent_follow_up", language)


def throttled_text(department: Department, language: str) -> str:
    """For a sender over the rate limit: their messages now go straight to staff."""
    return department.reply("throttled", language)


def disclosure_text(department: Department, language: str) -> str:
    """The one line that says this is the department's automated assistant."""
    return department.reply("disclosure", language)


def render_replies(
    decision: Decision,
    department: Department,
    *,
    monitoring: bool,
    now: dt.datetime,
    language: str = DEFAULT_LANGUAGE,
) -> List[str]:
    """The messages the citizen gets, in order; urgent notices always come first.

    In a language Beacon does not answer in, the department's one line in that language
    comes first (it says to call 911 and that a person will read the message); in one it
    answers in (the department file's ``languages``), every reply is in that language, and
    the 911 notice and 988 line are given in it and in English."""
    replies: List[str] = []
    if decision.followup:
        return [follow_up_text(department, language)]
    other = department.other_languages.get(language)
    if other:
        replies.append(department.render(other))
        if not decision.outcome.urgent:
            return replies
    if decision.outcome.urgent:
        notices = [EMERGENCY_NOTICE]
        if decision.outcome is Outcome.CRISIS:
            notices.append(CRISIS_LINE)
        for notice in notices:
            # Built in; the citizen's language first, English always (a misread language
            # must never cost the notice).
            if language != DEFAULT_LANGUAGE and language in notice:
                replies.append(department.render(notice[language]))
            replies.append(department.render(notice[DEFAULT_LANGUAGE]))
        if department.replies.notice_extra:
            replies.append(department.text(department.replies.notice_extra, language))
        replies.append(department.reply("urgent_flagged", language))
        return replies
    if decision.outcome is Outcome.FAQ and decision.topic:
        return [department.faq_answer(decision.topic, language)]
    if decision.outcome is Outcome.SMALLTALK:
        intent = decision.intent if decision.intent in SMALLTALK_INTENTS else "greet"
        return [department.reply(intent, language)]
    if decision.outcome is Outcome.REPORT:
        replies.append(department.reply("report_how", language))
    replies.append(routing_reply(department, monitoring, now, language))
    return replies
