"""Rasa's REST channel as seen from the gateway: one message in, the bot's texts out."""

from __future__ import annotations

import asyncio
from typing import Dict, List

import aiohttp


class RasaUnavailable(Exception):
    """Rasa refused, timed out, failed, or answered nothing (its REST channel returns [] when
    an action failed): the gateway must answer the citizen itself."""


class RasaClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self._http = http
        self._url = f"{base_url}/webhooks/rest/webhook"
        self._health = f"{base_url}/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, sender: str, text: str, metadata: Dict) -> List[str]:
        try:
            async with self._http.post(
                self._url, json={"sender": sender, "message": text, "metadata": metadata},
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise RasaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        texts = [m["text"] for m in body or [] if isinstance(m, dict) and m.get("text")]
        if not texts:
            raise RasaUnavailable("Rasa answered with no message")
        return texts

    async def healthy(self) -> bool:
        try:
            async with self._http.get(self._health, timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
