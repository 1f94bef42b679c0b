"""Shared behaviour for Beacon's actions: settings, department facts and the queue."""

from __future__ import annotations

import abc
import logging

from rasa_sdk import Action
from redis.exceptions import RedisError

from bot import redis_client
from bot.department import Department, load_department
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
    _department: Department | None = None
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
    def department(self) -> Department:
        if BeaconAction._department is None:
            BeaconAction._department = load_department(self.settings.department_file)
        return BeaconAction._department

    @property
    def queue(self) -> HumanQueue:
        if BeaconAction._queue is None:
            s = self.settings
            BeaconAction._queue = HumanQueue(
                redis_client.connect(s), retention_seconds=s.retention_seconds)
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

    async def monitoring(self) -> bool:
        """Whether anyone is on duty; with Redis down, assume nobody (the safe answer)."""
        try:
            return await self.presence.is_monitoring()
        except (RedisError, OSError) as exc:
            logger.error("presence check failed, assuming nobody on duty: %s", exc)
            return False
