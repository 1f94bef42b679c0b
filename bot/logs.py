"""Structured logs: one JSON object per line, each naming the conversation it is about.

Citizens' messages are sensitive, so at INFO and above a line never carries message text or
a platform sender id: the conversation appears as ``conv`` (a short one-way hash of its id,
the same one the console shows), never as the id itself. Text is logged only at DEBUG, the
development switch (``BEACON_LOG_LEVEL=debug``). ``BEACON_LOG_FORMAT=text`` gives plain
lines for a terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import hmac
import logging
import os
import re
import sys
import urllib.parse
from typing import IO, Iterator

import structlog
from aiohttp.abc import AbstractAccessLogger

_CONVERSATION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "beacon_conversation", default=None)


def conversation_ref(conversation_id: str) -> str:
    """A stable pseudonym for a conversation: safe to log, shown in the console to match.

    Keyed with ``BEACON_LOG_KEY`` (``make run`` makes one and gives it to every process;
    replicas must share it): without the key, whoever holds the logs and knows a citizen's
    public platform id (an X user id, say) could compute the pseudonym and find their lines.
    Without a key set (tests, development) it is a plain hash."""
    key = _log_key()
    if key:
        digest = hmac.new(key, conversation_id.encode(), hashlib.sha256).hexdigest()
    else:
        digest = hashlib.sha256(conversation_id.encode()).hexdigest()
    return "c-" + digest[:12]


@functools.cache
def _log_key() -> bytes:
    return os.environ.get("BEACON_LOG_KEY", "").encode()


@contextlib.contextmanager
def about(conversation_id: str) -> Iterator[None]:
    """Every log line inside this block names the conversation (also across awaits)."""
    token = _CONVERSATION.set(conversation_ref(conversation_id))
    try:
        yield
    finally:
        _CONVERSATION.reset(token)


class _ConversationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "conv"):
            record.conv = _CONVERSATION.get()
        return True


# A conversation id in a console path: "<channel>:<account>:<sender>" (a web-chat sender is
# the session id, which reads the session's replies: never logged).
_CONVERSATION_IN_PATH = re.compile(r"(?<=/conversations/)[^/]+")


def safe_path(path: str) -> str:
    """The request path with any conversation id replaced by its pseudonym."""
    return _CONVERSATION_IN_PATH.sub(
        lambda m: conversation_ref(urllib.parse.unquote(m.group(0))), path)


_SESSION_PARAM = re.compile(r"(session=)[^&\s'\"]+")


class _RedactAiohttp(logging.Filter):
    """aiohttp's own error lines quote a bad request line in full, query string and web-chat
    session id included: the session id goes, the rest stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("aiohttp"):
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
                record.exc_info = record.exc_text = None
            record.msg, record.args = _SESSION_PARAM.sub(r"\1[redacted]", message), None
        return True


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log without the query string (web-chat polls carry a session id) and
    with conversation ids in console paths replaced by their pseudonyms."""

    def log(self, request, response, time: float) -> None:  # noqa: A002 - aiohttp's name
        self.logger.info("%s %s %s", request.method, safe_path(request.path), response.status,
                         extra={"status": response.status, "ms": round(time * 1000, 1)})


def configure(level: str = "info", fmt: str = "json", stream: IO[str] | None = None) -> None:
    """Route every stdlib logger (ours, aiohttp's, redis's) through one handler on stderr."""
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # ``extra={...}`` fields and the conversation pseudonym become JSON keys.
        structlog.stdlib.ExtraAdder(),
    ]
    renderer = (structlog.processors.JSONRenderer(ensure_ascii=False) if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_ConversationFilter())
    handler.addFilter(_RedactAiohttp())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if level.lower() == "debug" else logging.INFO)
