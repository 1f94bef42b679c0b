"""The trained Rasa model, loaded once, as a message -> Triaged function (CLI and bench)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict

from bot.department import Department
from bot.respond import Triaged, triage_parse
from bot.safety_net import get_safety_net
from bot.settings import PROJECT_ROOT


class Triager:
    """Rasa's NLU (with the safety-net component) plus the decision function."""

    def __init__(self, agent: Any, department: Department) -> None:
        self._agent = agent
        self.department = department
        self._net = get_safety_net()

    @classmethod
    def load(cls, model: Path, department: Department) -> Triager:
        import structlog
        from rasa.core.agent import Agent

        # Rasa logs every parsed message (with its text) through structlog, which by default
        # prints everything to stdout: keep warnings and worse, on stderr.
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        )

        # config.yml names the spaCy pipeline relative to the project.
        cwd = os.getcwd()
        os.chdir(PROJECT_ROOT)
        try:
            agent = Agent.load(str(model))
        finally:
            os.chdir(cwd)
        return cls(agent, department)

    async def parse(self, text: str) -> Dict[str, Any]:
        return await self._agent.parse_message(text)

    async def triage(self, text: str, *, monitoring: bool, now: dt.datetime) -> Triaged:
        parse_data = await self.parse(text)
        return triage_parse(
            parse_data, self.department, monitoring=monitoring, now=now, net=self._net
        )
