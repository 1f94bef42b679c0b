"""What the citizen reads, for each outcome: pure functions of the decision and the facts.

Wording lives here; facts (numbers, addresses, links, FAQ answers) come from the department
file, so a new phone number is one edit there.
"""

from __future__ import annotations

import datetime as dt
from typing import List

from bot.department import Department
from bot.hours import describe_opening, is_scheduled, next_opening
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
URGENT_FLAGGED = (
    "We have also flagged your message for our staff, but please do not wait for a reply "
    "here."
)
REPORT_HOW = (
    "Thank you for letting us know. You can file a report online at {urls.online_report} or "
    "by calling our non-emergency line, {phones.non_emergency}."
)
STAFF_SOON = "A member of our staff will reply here shortly."
NOBODY_NOW = (
    "This account is not monitored 24/7 and nobody is on duty right now; staff will follow up "
    "as soon as someone is back. For emergencies call 911; for anything that cannot wait, "
    "call {phones.non_emergency}."
)
BACK_AT = (
    "This account is not monitored 24/7. Staff will be back {when} and will follow up then. "
    "For emergencies call 911; for anything that cannot wait, call {phones.non_emergency}."
)
THROTTLED = (
    "We have received your messages. You have sent a lot in a short time, so they now go "
    "straight to our staff, who will read every one. If this is an emergency, call 911."
)
# A follow-up inside the notice window (bot.keys.notice_window): the conversation is urgent,
# so no FAQ answer or "someone will follow up" that would contradict the notice.
URGENT_FOLLOW_UP = {
    "en": ("We have added this to your urgent message for our staff. If anyone is in danger "
           "now, call 911."),
    "es": ("Agregamos esto a su mensaje urgente para nuestro personal. Si alguien está en "
           "peligro ahora, llame al 911."),
}
SPANISH_FOLLOW_UP = "Un miembro de nuestro personal le responderá aquí (en español si lo prefiere)."
SMALLTALK = {
    "greet": (
        "Hi! This is the automated assistant for {department.name}. I can answer common "
        "questions (records, tickets, fingerprinting, lost property, hours...) or pass your "
        "message to our staff. For emergencies, call 911."
    ),
    "thanks": "You're welcome! If there's anything else, just send a message.",
    "goodbye": "Take care, and stay safe!",
    "bot_challenge": (
        "I'm an automated assistant for {department.short_name}, not a person. I can answer "
        "common questions and pass your message to our staff. For emergencies, call 911."
    ),
    "compliment": "Thank you! We'll pass that on to the team.",
}


def routing_reply(department: Department, monitoring: bool, now: dt.datetime) -> str:
    """What a citizen is told when the conversation goes to the human queue."""
    if monitoring:
        return STAFF_SOON
    if is_scheduled(department, now):
        return department.render(NOBODY_NOW)
    opening = next_opening(department, now)
    if opening is None:
        return department.render(NOBODY_NOW)
    return department.render(BACK_AT.replace("{when}", describe_opening(opening, now)))


def follow_up_text(language: str) -> str:
    """The short line for a message inside an urgent conversation's notice window."""
    return URGENT_FOLLOW_UP["es" if language == "es" else "en"]


def render_replies(
    decision: Decision,
    department: Department,
    *,
    monitoring: bool,
    now: dt.datetime,
    language: str = "en",
) -> List[str]:
    """The messages the citizen gets, in order; urgent notices always come first.

    In a language Beacon does not answer in, the department's one line in that language
    comes first (it says to call 911 and that a person will read the message)."""
    spanish = language == "es"
    replies: List[str] = []
    if decision.followup:
        return [follow_up_text(language)]
    other = department.other_languages.get(language)
    if other:
        replies.append(department.render(other))
        if not decision.outcome.urgent:
            return replies
    if decision.outcome.urgent:
        if spanish:
            replies.append(EMERGENCY_NOTICE["es"])
        replies.append(EMERGENCY_NOTICE["en"])
        if decision.outcome is Outcome.CRISIS:
            if spanish:
                replies.append(department.render(CRISIS_LINE["es"]))
            replies.append(department.render(CRISIS_LINE["en"]))
        replies.append(URGENT_FLAGGED)
        return replies
    if decision.outcome is Outcome.FAQ and decision.topic:
        return [department.faq_answer(decision.topic)]
    if decision.outcome is Outcome.SMALLTALK:
        return [department.render(SMALLTALK.get(decision.intent or "", SMALLTALK["greet"]))]
    if decision.outcome is Outcome.REPORT:
        replies.append(department.render(REPORT_HOW))
    replies.append(routing_reply(department, monitoring, now))
    if spanish:
        replies.append(SPANISH_FOLLOW_UP)
    return replies
