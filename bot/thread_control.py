"""Who answers a Meta conversation's thread when it is not Beacon (Conversation Routing).

A Facebook Page or an Instagram account may have several messaging apps: Beacon, and the
page's own inbox (Meta Business Suite), where staff can take a thread over. Meta then routes
each thread to one owner; the others get its messages on the standby channel
(``entry[].standby[]``) and hear of every change of owner through ``messaging_handovers``
(pass_thread_control, take_thread_control, request_thread_control). Beacon must not answer a
thread another app owns (only the owner may reply; Beacon's reply would also talk over the
person answering there). It still runs the safety net on the message and flags an urgent one
to staff (bot.gateway.intake, bot.gateway.worker.routed_elsewhere).

Meta's pages: Conversation Routing,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/conversation-routing
messaging_handovers,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/messaging_handovers
standby,
https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/standby
"""

from __future__ import annotations

from typing import Iterable, Tuple

from redis.asyncio import Redis

from bot import keys
from bot.channels import ThreadControl
from bot.messages import INSTAGRAM, MESSAGE, MESSENGER, Inbound

# How long Beacon believes another app holds a thread without hearing of it again: a day,
# Meta's standard reply window. A thread handed back later is Beacon's at once (the handover
# says so); one the other app simply stopped answering becomes Beacon's after this, and a
# message for a thread that app still owns arrives on standby again, which renews it.
OWNER_TTL_S = 24 * 3600
# The owner of a thread known only from a standby delivery (Meta names no app there).
OTHER = "other"


def owner_after(event: ThreadControl, ours: Iterable[str]) -> Tuple[bool, str | None]:
    """(whether ``event`` changes who owns the thread, the new owner when it is another app).

    None for the owner means Beacon may answer: the thread is Beacon's, or idle (no owner;
    Meta routes its next message by the account's routing configuration). With Beacon's app
    ids known, the new owner is compared with them (under Conversation Routing every
    subscribed app hears of every handover); without them, Meta's rule for whom it notifies
    decides: pass_thread_control goes to the app the thread was passed to, take_thread_control
    to the app it was taken from. A request_thread_control changes nothing: Beacon keeps the
    thread and the request is recorded for staff."""
    ours = {a for a in ours if a}
    if event.action == "request_thread_control":
        return False, None
    new = event.new_owner
    if ours:
        return True, None if new is None or new in ours else new
    if event.action == "pass_thread_control":
        return True, None
    return True, new or OTHER


def delivery(message: Inbound) -> str:
    """How Meta delivered a message, for the owner record that
    intake keeps in the same step as the message (``bot.inbox._INTAKE``): "here" on the
    primary channel (the thread is Beacon's: the record goes), "standby" when another app
    owns the thread (the one a handover named, if one did, else an unnamed one; the belief
    is renewed), "" for anything else (no Meta message, or not a message).

    The delivery channel is what decides whether Beacon answers (Meta routes a thread's
    messages to its owner alone), never this record: a late or replayed handover cannot
    silence Beacon on a thread Meta delivers to it (found by the live attack), and intake
    reads nothing from Redis for it."""
    if message.channel not in (MESSENGER, INSTAGRAM) or message.kind != MESSAGE:
        return ""
    return "standby" if message.standby else "here"


class ThreadOwners:
    """One string key per conversation (``keys.thread_owner``), present only while another
    app owns its thread; expires after OWNER_TTL_S."""

    def __init__(self, redis: Redis, our_app_ids: Iterable[str],
                 ttl: int = OWNER_TTL_S) -> None:
        self.redis = redis
        self.ours = tuple(a for a in our_app_ids if a)
        self.ttl = ttl

    async def elsewhere(self, conversation_id: str) -> bool:
        """Whether another app owned the conversation's thread when Meta last said (the
        console shows it; nothing is refused on it: intake goes by the delivery channel,
        and a staff reply is tried and left to Meta)."""
        return bool(await self.redis.exists(keys.thread_owner(conversation_id)))

    async def apply(self, event: ThreadControl) -> str:
        """Record what ``event`` says about the thread; returns a line for the audit log."""
        changed, owner = owner_after(event, self.ours)
        key = keys.thread_owner(event.conversation_id)
        if not changed:
            line = (f"{event.action}: app {event.requested_owner or 'unknown'} asks for the "
                    "thread; Beacon keeps it")
        elif owner is None:
            await self.redis.delete(key)
            line = f"{event.action}: Beacon answers this thread again"
        else:
            await self.redis.set(key, owner, ex=self.ttl)
            line = (f"{event.action}: app {owner} owns the thread; Beacon sends nothing here "
                    "and flags urgent messages to staff")
        if event.previous_owner:
            line += f" (previous owner: app {event.previous_owner})"
        if event.metadata:
            line += f"; metadata: {event.metadata}"
        return line
