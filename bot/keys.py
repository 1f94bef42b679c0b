"""Every Redis key Beacon uses, built here and nowhere else.

All keys start with ``beacon:``. Rasa's own tracker and lock stores use the prefix
``beaconrasa`` (endpoints.yml), so ``KEYS beacon:*`` never touches them and vice versa.
"""

from __future__ import annotations

PREFIX = "beacon"

# A waiting conversation's score in its agency's queue = priority * PRIORITY_SPAN +
# waiting-since ms, so urgent conversations come first and, within a priority, the oldest.
PRIORITY_SPAN = 10**13


class AgencyKeys:
    """The keys of what belongs to one agency: its queue, staff, presence, console events,
    report index and work list. Everything else is named by a conversation id, which holds
    the agency's own platform account, so it is already apart.

    The one agency of a single-agency deployment (``SINGLE``, id "") keeps the names Beacon
    always had, so such a deployment needs nothing new; another agency's keys start with
    ``beacon:agency:<id>:`` (bot.agencies checks the id: lowercase letters, digits, dashes).
    """

    def __init__(self, agency: str = "") -> None:
        self.agency = agency
        self.prefix = f"{PREFIX}:agency:{agency}" if agency else PREFIX
        p = self.prefix
        # Sorted set of waiting conversation ids (score: see PRIORITY_SPAN).
        self.queue = f"{p}:queue"
        # Sorted set of conversations held by staff; score = claimed-at ms.
        self.claimed = f"{p}:claimed"
        # Set of staff names that may be on duty; each one's presence is its own key.
        self.duty_index = f"{p}:duty"
        # Pub/sub channel on which queue changes are announced to consoles (nothing kept).
        self.events = f"{p}:events"
        # List of conversation ids with messages to process (a work queue; no TTL). One per
        # agency, so workers take turns between agencies (bot.inbox.next_conversation).
        self.work = f"{p}:work"
        # Set of conversation ids whose inbox is not empty, for the sweeper to find lost work.
        self.pending = f"{p}:pending"
        # List of messages that failed MAX_ATTEMPTS times (JSON, newest first), in the console.
        self.dead_letters = f"{p}:dead_letters"
        # List of replies that would have been sent (no platform credentials), newest last,
        # capped: one per agency, so one agency's flood cannot push out another's.
        self.outbox = f"{p}:outbox"
        # Set of staff account names (accounts do not expire).
        self.staff_index = f"{p}:staff"
        # Held (with a TTL) while one supervisor changes staff accounts: a check ("the last
        # supervisor stays", "that account exists") and its write happen as one step.
        self.staff_change_lock = f"{p}:staff_change_lock"

    def on_duty(self, staff: str) -> str:
        """String with a TTL: present while the staff member's heartbeat keeps refreshing it."""
        return f"{self.prefix}:duty:{staff}"

    def audit_day(self, day: str) -> str:
        """Set (with the retention TTL) of the conversation ids whose audit log got an entry
        on ``day`` (UTC, ``YYYY-MM-DD``), written with the entry itself: the supervisors'
        reports find a period's conversations here instead of scanning every key."""
        return f"{self.prefix}:audit_day:{day}"

    def staff(self, name: str) -> str:
        """Hash: a staff account (password hash, role). Accounts do not expire."""
        return f"{self.prefix}:staff:{name}"

    def staff_sessions(self, name: str) -> str:
        """Set (with the session TTL) of a staff member's session tokens, so removing the
        member or revoking their sessions ends every one at once."""
        return f"{self.prefix}:staff_sessions:{name}"

    def staff_devices(self, name: str) -> str:
        """Hash: the browsers a staff member has signed in from (a hash of the device cookie
        -> when that trust ends). Such a browser is not locked out by a distributed guesser."""
        return f"{self.prefix}:staff_devices:{name}"

    def login_failures(self, kind: str, who: str) -> str:
        """Counter with a TTL of the throttle window: failed console logins for one account
        (``kind`` "account") or one client address ("address"), shared by every replica."""
        return f"{self.prefix}:login_failures:{kind}:{who}"


# The agency of a single-agency deployment: the key names Beacon always had.
SINGLE = AgencyKeys("")


def conversation(conversation_id: str) -> str:
    """Hash: channel, sender, outcome, priority, status, waiting-since and other metadata."""
    return f"{PREFIX}:conv:{conversation_id}"


def transcript(conversation_id: str) -> str:
    """List of JSON entries ``{"role", "text", "ts"}``, oldest first."""
    return f"{PREFIX}:transcript:{conversation_id}"


def transcript_ids(conversation_id: str) -> str:
    """Set of the ids of gateway-written transcript entries, so each is stored once."""
    return f"{PREFIX}:transcript_ids:{conversation_id}"


def audit(conversation_id: str) -> str:
    """List of JSON audit entries: every message in and out, every staff action."""
    return f"{PREFIX}:audit:{conversation_id}"


def notes(conversation_id: str) -> str:
    """List (with the retention TTL) of JSON staff notes on a conversation ``{"ts", "staff",
    "text"}``, oldest first: shown in the console only, never sent to the citizen, never in
    the transcript (written by the staff_op script in bot.queue, which audits each)."""
    return f"{PREFIX}:notes:{conversation_id}"


# -- gateway ---------------------------------------------------------------------------------
# Sorted set: held conversations with an urgent citizen message; score = when the 911 notice
# goes out unless staff have replied.
HANDOFF_DUE = f"{PREFIX}:handoff_due"


def seen(channel: str, message_id: str) -> str:
    """Marker with a TTL: this platform message was accepted once already."""
    return f"{PREFIX}:seen:{channel}:{message_id}"


def inbox(conversation_id: str) -> str:
    """List of the conversation's messages not yet processed, oldest first (a queue)."""
    return f"{PREFIX}:inbox:{conversation_id}"


def rate(conversation_id: str) -> str:
    """Hash with a TTL of one rate window: messages counted in it, and whether the sender
    was told they are over the limit."""
    return f"{PREFIX}:rate:{conversation_id}"


def notice_sent(channel: str, message_id: str) -> str:
    """Set once the fast path's 911 notice for this message reached the platform: a fact,
    recorded after the send, which the worker waits for before dropping the notice from
    Rasa's answer (without it, the worker sends the notice itself)."""
    return f"{PREFIX}:noticed:{channel}:{message_id}"


def attempts(conversation_id: str) -> str:
    """Hash: message id -> how many times a worker started handling it (capped)."""
    return f"{PREFIX}:attempts:{conversation_id}"


def answer(channel: str, message_id: str) -> str:
    """Rasa's answer to one message (JSON), kept so a retried message does not go to Rasa
    again (its tracker would hold the message twice)."""
    return f"{PREFIX}:answer:{channel}:{message_id}"


def reply_sent(channel: str, message_id: str, index: int) -> str:
    """Set after reply ``index`` to one message reached the platform: a retried message
    sends only the replies that did not."""
    return f"{PREFIX}:replied:{channel}:{message_id}:{index}"



def escalating(conversation_id: str) -> str:
    """Lease (with a TTL) of the one gateway process escalating this conversation now."""
    return f"{PREFIX}:escalating:{conversation_id}"


def webchat_known(session_id: str) -> str:
    """Set (with the retention TTL) once a web-chat session has started a conversation."""
    return f"{PREFIX}:webchat_known:{session_id}"


def webchat_new(address: str) -> str:
    """Counter with a one-hour TTL: new web-chat conversations from one client address."""
    return f"{PREFIX}:webchat_new:{address}"


def notice_window(conversation_id: str) -> str:
    """Set (with a TTL of the notice window) when the conversation got the 911 notice; its
    value is the outcome ("emergency" or "crisis"). While it exists the notice is not sent
    again, and follow-ups are treated as part of the urgent conversation."""
    return f"{PREFIX}:notice:{conversation_id}"


def platform_block(channel: str, account: str) -> str:
    """String with a TTL: the platform answered 429 for this account; no sends until it
    expires (bot.platform_limits)."""
    return f"{PREFIX}:platform_block:{channel}:{account}"


def platform_sends(channel: str, account: str, window: str) -> str:
    """Counter with a TTL of its window: sends to the platform from one account (or "app")."""
    return f"{PREFIX}:platform_sends:{channel}:{account}:{window}"


def conversation_language(conversation_id: str) -> str:
    """String with a TTL: the language the conversation's replies are in, once a message
    showed it (set and read by the intake script, ``bot.inbox``)."""
    return f"{PREFIX}:lang:{conversation_id}"


def disclosed(conversation_id: str) -> str:
    """String with a TTL (the disclosure's silence window): Beacon has said it is an
    automated assistant in this conversation; deleted when staff resolve it."""
    return f"{PREFIX}:disclosed:{conversation_id}"


def thread_owner(conversation_id: str) -> str:
    """String with a TTL, present while another app (the page's own inbox) owns the Meta
    conversation's thread: its app id, or "other" when Meta did not name it (a message on
    the standby channel). Beacon answers nothing there; see bot.thread_control."""
    return f"{PREFIX}:thread_owner:{conversation_id}"


def conversation_lock(conversation_id: str) -> str:
    """Held (with a TTL) by the one worker processing the conversation's inbox."""
    return f"{PREFIX}:convlock:{conversation_id}"


def webchat(session_id: str) -> str:
    """List of replies for a web-chat session, read by the chat page."""
    return f"{PREFIX}:webchat:{session_id}"


# -- console ---------------------------------------------------------------------------------
def session(token: str) -> str:
    """Hash with a TTL: a logged-in console session (staff name, CSRF token)."""
    return f"{PREFIX}:session:{token}"
