"""Shared behaviour for Beacon's actions: settings, department facts and the queue."""

from __future__ import annotations

import abc
import logging

from rasa_sdk import Action
from redis.exceptions import RedisError

from bot import redis_client
from bot.agencies import Deployment, load_deployment
from bot.department import Department
from bot.notice_window import NoticeWindow
from bot.presence import Presence
from bot.queue import HumanQueue
from bot.settings import Settings

logger = logging.getLogger(__name__)


class BeaconAction(Action, abc.ABC):
    """Base class: lazily built services, shared by every action instance.

    ``name()`` stays abstract, so rasa-sdk does not register this class as an action.
    The Redis client is made on first use, inside the action server's event loop.
    """

    _settings: Settings | None = None
    _deployment: Deployment | None = None
    _queue: HumanQueue | None = None
    _window: NoticeWindow | None = None
    _presence: Presence | None = None

    @abc.abstractmethod
    def name(self) -> str:
        """The action's name in domain.yml."""

    @property
    def settings(self) -> Settings:
        if BeaconAction._settings is None:
            BeaconAction._settings = Settings.from_env()
        return BeaconAction._settings

    @property
    def deployment(self) -> Deployment:
        if BeaconAction._deployment is None:
            BeaconAction._deployment = load_deployment(self.settings)
        return BeaconAction._deployment

    def department(self, conversation_id: str) -> Department:
        """The facts and answers of the agency that owns the conversation's account, as the
        gateway's (Deployment.answering)."""
        return self.deployment.answering(conversation_id).department

    @property
    def queue(self) -> HumanQueue:
        if BeaconAction._queue is None:
            s = self.settings
            BeaconAction._queue = HumanQueue(
                redis_client.connect(s, client_name="beacon-actions"),
                retention_seconds=s.retention_seconds,
                deployment=self.deployment)
        return BeaconAction._queue

    @property
    def presence(self) -> Presence:
        if BeaconAction._presence is None:
            BeaconAction._presence = Presence(self.queue.redis, self.settings.duty_ttl)
        return BeaconAction._presence

    @property
    def window(self) -> NoticeWindow:
        if BeaconAction._window is None:
            BeaconAction._window = NoticeWindow(self.queue.redis, self.settings.notice_window)
        return BeaconAction._window

    async def monitoring(self, conversation_id: str) -> bool:
        """Whether anyone of the conversation's agency is on duty; with Redis down, assume
        nobody (the safe answer)."""
        try:
            return await self.presence.is_monitoring(self.deployment.keys_for(conversation_id))
        except (RedisError, OSError) as exc:
            logger.error("presence check failed, assuming nobody on duty: %s", exc)
            return False
