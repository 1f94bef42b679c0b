"""Redis with AOF: a restart loses no queued conversation."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import redis as sync_redis
from redis.asyncio import Redis

from bot.queue import Entry, HumanQueue
from tests.conftest import free_port, wait_for


def start(port: int, workdir: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(sync_redis.Redis(port=port).ping, 10, "redis-server", proc)
    return proc


async def test_queue_survives_a_hard_restart():
    port, workdir = free_port(), tempfile.mkdtemp(prefix="beacon-aof-")
    proc = start(port, workdir)
    try:
        client = Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True)
        queue = HumanQueue(client, retention_seconds=3600)
        await queue.enqueue("c-urgent", priority=0, fields={"outcome": "crisis"},
                            entries=[Entry("citizen", "i want to die", 1.0)], now=10)
        await queue.enqueue("c-human", priority=1, fields={"outcome": "human"}, entries=[],
                            now=5)
        await client.close(close_connection_pool=True)
        proc.kill()  # SIGKILL: no chance to save anything on the way out
        proc.wait(10)
        proc = start(port, workdir)
        client = Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True)
        queue = HumanQueue(client, retention_seconds=3600)
        assert await queue.waiting() == ["c-urgent", "c-human"]
        assert (await queue.transcript("c-urgent"))[0].text == "i want to die"
        await client.close(close_connection_pool=True)
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
