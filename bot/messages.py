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


@dataclass(frozen=True)
class Inbound:
    """A citizen's message, whatever platform it came from.

    ``account`` is the department's own id on the platform (page id, Instagram account id,
    X user id, "web"); ``sender`` the citizen's platform-scoped id. Together with the
    channel they name the conversation.
    """

    channel: str
    account: str
    sender: str
    message_id: str
    text: str
    timestamp: float
    attachments: Tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Every adapter builds one: the one place where platform text becomes storable.
        object.__setattr__(self, "text", storable(self.text))

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
