"""The one Redis factory retries a command whose pooled connection was killed (issue 8,
item 2): what a Redis restart or failover does to every open connection, reproduced with
CLIENT KILL against a real redis-server."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

from bot import redis_client
from bot.settings import Settings


@pytest.fixture
async def killer(redis_server):
    client = Redis.from_url(redis_server["url"], decode_responses=True)
    yield client
    await client.close(close_connection_pool=True)


def settings(redis_server) -> Settings:
    return dataclasses.replace(Settings.from_env({}), redis_url=redis_server["url"])


async def kill_others(killer: Redis) -> int:
    own = await killer.client_id()
    killed = 0
    for client in await killer.client_list():
        if int(client["id"]) != own:
            killed += await killer.execute_command("CLIENT", "KILL", "ID", client["id"])
    return killed


async def test_a_killed_connection_is_retried(redis_server, killer):
    redis = redis_client.connect(settings(redis_server))
    try:
        await redis.set("beacon:test:retry", "1")
        assert await kill_others(killer) >= 1
        # The pooled connection is dead; the command is retried on a new one.
        assert await redis.get("beacon:test:retry") == "1"
        assert await kill_others(killer) >= 1
        assert await redis.incr("beacon:test:retry") == 2
    finally:
        await redis.delete("beacon:test:retry")
        await redis.close(close_connection_pool=True)


async def test_the_retry_is_the_asyncio_one(redis_server):
    from redis.asyncio.retry import Retry

    redis = redis_client.connect(settings(redis_server))
    try:
        assert isinstance(redis.get_retry(), Retry)
    finally:
        await redis.close(close_connection_pool=True)


async def test_the_pool_is_bounded_and_a_flood_waits_for_it(redis_server, killer):
    """Second live attack: 400 concurrent posts left ~412 connections open. With a bounded
    pool a flood of concurrent commands shares ``redis_max_connections`` connections and
    every command still runs."""
    import asyncio

    bounded = dataclasses.replace(settings(redis_server), redis_max_connections=8,
                                  redis_timeout=30.0)
    redis = redis_client.connect(bounded, client_name="beacon-pool-test")
    seen = []

    async def watch(stop: asyncio.Event) -> None:
        while not stop.is_set():
            clients = await killer.client_list()
            seen.append(sum(c.get("name") == "beacon-pool-test" for c in clients))
            await asyncio.sleep(0.005)

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(stop))
    try:
        # Each BLPOP holds its connection for 10 ms: 300 at once would need 300 connections.
        results = await asyncio.gather(*(redis.blpop("beacon:test:pool-empty", timeout=0.01)
                                         for _ in range(300)))
    finally:
        stop.set()
        await watcher
        await redis.close(close_connection_pool=True)
    assert results == [None] * 300
    assert max(seen) == 8
