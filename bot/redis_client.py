"""The one way Beacon opens Redis: timeouts from the settings and a retry that survives a
Redis restart.

After Redis restarts, every pooled connection is dead, and without a retry each one fails
its next command once (an emergency's fast-path queueing among them). Only a connection
error is retried: a stale connection never delivered the command. A timeout is not: the
command may have run, and a second run of the intake script would take its own message for
a platform retry and drop it (the caller answers 503 instead, and the platform retries).

The retry must be ``redis.asyncio.retry.Retry``: the synchronous ``redis.retry.Retry`` that
this module used before returns the asyncio client's coroutine un-awaited, so no command was
ever retried (a pooled connection killed by a restart or ``CLIENT KILL`` failed at once).

The pool is bounded (``redis_max_connections``): a flood of concurrent requests waits up to
``redis_timeout`` for a free connection instead of opening one each (400 concurrent posts
left about 412 connections open, found by the second live attack). A wait that runs out is
a ``ConnectionError``, retried as above, then the caller's 503.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError

from bot.settings import Settings


def connect(settings: Settings, **extra) -> Redis:
    """A client over a bounded pool; close it with ``close(close_connection_pool=True)``.
    ``client_name`` (in ``extra``) names each connection in Redis's CLIENT LIST, so an
    operator, and the load bench's count of round trips, can tell the processes apart."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, decode_responses=True,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3,
                    supported_errors=(ConnectionError,)),
        retry_on_error=[ConnectionError],
        **extra,
    )
    return Redis(connection_pool=pool)
