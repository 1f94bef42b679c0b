"""Rasa's REST channel as seen from the gateway: one message in, the bot's texts out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Dict, List

import aiohttp

# Key of the custom payload with which action_triage tells the gateway its decision.
TRIAGE_PAYLOAD = "beacon_triage"


@dataclass(frozen=True)
class RasaAnswer:
    texts: List[str]
    outcome: str  # as decided by action_triage; "unknown" if Rasa did not say
    topic: str | None = None


class RasaUnavailable(Exception):
    """Rasa refused, timed out, failed, or answered nothing (its REST channel returns [] when
    an action failed): the gateway must answer the citizen itself."""


class RasaClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self._http = http
        self._url = f"{base_url}/webhooks/rest/webhook"
        self._health = f"{base_url}/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, sender: str, text: str, metadata: Dict) -> RasaAnswer:
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
        messages = [m for m in body or [] if isinstance(m, dict)] if isinstance(body, list) else []
        texts = [m["text"] for m in messages if isinstance(m.get("text"), str) and m["text"]]
        if not texts:
            raise RasaUnavailable("Rasa answered with no message")
        triage = next((m["custom"][TRIAGE_PAYLOAD] for m in messages
                       if isinstance(m.get("custom"), dict)
                       and isinstance(m["custom"].get(TRIAGE_PAYLOAD), dict)), {})
        return RasaAnswer(texts, str(triage.get("outcome") or "unknown"), triage.get("topic"))

    async def healthy(self) -> bool:
        try:
            async with self._http.get(self._health, timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
