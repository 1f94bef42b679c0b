"""Every ``web.AppKey`` of the gateway and console, typed, in one place."""

from __future__ import annotations

import asyncio
from typing import Set

from aiohttp import web

from bot.agencies import Deployment
from bot.services import Services
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
# The agencies and their department files, read once when the app is made (a bad file
# stops start-up there, naming the field).
DEPLOYMENT = web.AppKey("deployment", Deployment)
SERVICES = web.AppKey("services", Services)
# Tasks started by handlers (the emergency fast path); awaited at shutdown.
BACKGROUND = web.AppKey("background", Set[asyncio.Task])
# Set when the process is asked to stop: workers finish the message in hand and return.
STOP = web.AppKey("stop", asyncio.Event)
