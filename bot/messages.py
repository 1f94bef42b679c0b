"""The one internal message type every platform adapter produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, Tuple

from bot.text import storable

# Channel names, as stored in the queue and shown in the console.
MESSENGER = "messenger"
INSTAGRAM = "instagram"
X = "x"
WEBCHAT = "webchat"
CHANNELS = (MESSENGER, INSTAGRAM, X, WEBCHAT)
# What an inbound item is: a citizen's message, or their deleting one they sent before
# (Instagram's ``is_deleted``; ``refers_to`` names the deleted message).
MESSAGE = "message"
DELETED = "deleted"


@dataclass(frozen=True)
class Inbound:
    """A citizen's message, whatever platform it came from.

    ``account`` is the department's own id on the platform (page id, Instagram account id,
    X user id, "web"); ``sender`` the citizen's platform-scoped id. Together with the
    channel they name the conversation.

    ``text`` is the citizen's own words (what Rasa reads); ``attachments`` what else they
    sent, as kinds ("image") or, for Instagram's shares, reels and stories, descriptions
    staff can read; ``shared_text`` the words in what they shared but did not write (a
    shared post's caption), which the safety net reads with ``text`` and Rasa does not.
    ``standby`` is set for a Meta delivery on the standby channel: another app (the page's
    own inbox) owns the thread, so Beacon must not answer it.
    """

    channel: str
    account: str
    sender: str
    message_id: str
    text: str
    timestamp: float
    attachments: Tuple[str, ...] = field(default=())
    kind: str = MESSAGE
    refers_to: str = ""
    shared_text: str = ""
    standby: bool = False

    def __post_init__(self) -> None:
        # Every adapter builds one: the one place where platform text becomes storable.
        object.__setattr__(self, "text", storable(self.text))
        object.__setattr__(self, "shared_text", storable(self.shared_text))
        object.__setattr__(self, "attachments", tuple(storable(a) for a in self.attachments))

    @property
    def safety_text(self) -> str:
        """What the safety net reads: the citizen's words and the words they shared."""
        return "\n".join(t for t in (self.text, self.shared_text) if t)

    @property
    def readable(self) -> str:
        """What staff read in the transcript and the audit log: the words, then the rest."""
        parts = [self.text] if self.text else []
        if self.attachments:
            parts.append(f"[{', '.join(self.attachments)}]")
        return "\n".join(parts) or "[empty]"

    @property
    def conversation_id(self) -> str:
        return f"{self.channel}:{self.account}:{self.sender}"

    def as_dict(self) -> Dict:
        data = asdict(self)
        data["attachments"] = list(self.attachments)
        return data

    @classmethod
    def from_dict(cls, data: Dict) -> Inbound:
        return cls(**{**data, "attachments": tuple(data.get("attachments") or ())})


def account_of(conversation_id: str) -> tuple[str, str]:
    """(channel, the department's account) of a conversation id as ``Inbound`` makes them,
    "<channel>:<account>:<sender>"; ("", "") for anything else."""
    parts = conversation_id.split(":")
    return (parts[0], parts[1]) if len(parts) == 3 else ("", "")
