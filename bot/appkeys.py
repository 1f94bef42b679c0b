"""Every ``web.AppKey`` of the gateway and console, typed, in one place."""

from __future__ import annotations

import asyncio
from typing import Set

from aiohttp import web

from bot.services import Services
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
# Tasks started by handlers (the emergency fast path); awaited at shutdown.
BACKGROUND = web.AppKey("background", Set[asyncio.Task])
# Set when the process is asked to stop: workers finish the message in hand and return.
STOP = web.AppKey("stop", asyncio.Event)
