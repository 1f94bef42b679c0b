"""Shared fixtures: a real redis-server, the real department file, the real Rasa stack."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from bot.department import Department, load_department
from bot.settings import PROJECT_ROOT

DATA = Path(__file__).parent / "data"
# Rasa must not try to send telemetry or crash reports from the tests.
os.environ["RASA_TELEMETRY_ENABLED"] = "false"
# endpoints.yml takes the tracker retention from here (scripts/env.sh sets it for `make run`).
os.environ.setdefault("BEACON_RETENTION_SECONDS", str(365 * 86400))
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout}s")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Dict[str, object]]:
    """A redis-server of the tests' own, on a free port, AOF on, in a temporary directory."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; run `make test`, which installs it")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="beacon-redis-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
         "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = sync_redis.Redis(port=port)
    wait_for(client.ping, 10, "redis-server", proc)
    yield {"host": "127.0.0.1", "port": port, "url": f"redis://127.0.0.1:{port}/0",
           "proc": proc, "dir": workdir}
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def redis(redis_server) -> Iterator[Redis]:
    """A client on the tests' Redis, emptied before each test (the server is ours alone)."""
    client = Redis.from_url(redis_server["url"], decode_responses=True)
    await client.flushdb()
    yield client
    await client.close(close_connection_pool=True)


@pytest.fixture(scope="session")
def department() -> Department:
    return load_department(PROJECT_ROOT / "data/department.yml")


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The trained model for the current data (trains it when missing, as `make test` does)."""
    from bot.training import train

    return train()


@pytest.fixture(scope="session")
def rasa_stack(redis_server, model_path) -> Iterator[Dict[str, str]]:
    """The real action server and Rasa server (REST channel, Redis stores) on free ports."""
    import requests

    action_port, rasa_port = free_port(), free_port()
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "BEACON_REDIS_URL": redis_server["url"],
        "BEACON_REDIS_HOST": "127.0.0.1",
        "BEACON_REDIS_PORT": str(redis_server["port"]),
        "BEACON_REDIS_DB": "0",
        "BEACON_ACTION_URL": f"http://127.0.0.1:{action_port}/webhook",
        "SANIC_HOST": "127.0.0.1",
        "SANIC_KEEP_ALIVE_TIMEOUT": "75",  # as scripts/run.sh: see there
        "RASA_TELEMETRY_ENABLED": "false",
    }
    logs = Path(tempfile.mkdtemp(prefix="beacon-rasa-logs-"))
    with open(logs / "actions.log", "w") as log:
        actions = subprocess.Popen(
            [PYTHON, "-m", "rasa_sdk", "--actions", "actions", "--port", str(action_port)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    with open(logs / "rasa.log", "w") as log:
        rasa = subprocess.Popen(
            [PYTHON, "-m", "bot.rasa_launcher", "run", "--model", str(model_path),
             "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
             "--interface", "127.0.0.1", "--port", str(rasa_port),
             "--enable-api", f"--auth-token={token}"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{rasa_port}"
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{action_port}/health", timeout=1).ok,
                 120, "action server", actions)
        wait_for(lambda: requests.get(f"{base}/status", params={"token": token},
                                      timeout=2).json().get("model_file"),
                 300, "rasa server", rasa)
        yield {"url": base, "token": token, "logs": str(logs), "rasa_pid": rasa.pid,
               "actions_pid": actions.pid}
    except Exception:
        for name in ("actions.log", "rasa.log"):
            print(f"--- {name}\n{(logs / name).read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        for proc in (rasa, actions):
            proc.terminate()
        for proc in (rasa, actions):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
async def platform(aiohttp_server):
    """A local stand-in for the Graph API and X API that records what Beacon sends."""
    from tests.gateway_support import FakePlatform

    fake = FakePlatform()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def offline(aiohttp_client, redis, redis_server, platform):
    """The gateway with Rasa down (nothing listens at its URL)."""
    from bot.app import create_app
    from tests.gateway_support import DEAD_RASA, settings_for

    return await aiohttp_client(create_app(settings_for(redis_server, DEAD_RASA, platform.url)))


@pytest.fixture
async def online(aiohttp_client, redis, redis_server, platform, rasa_stack):
    """The gateway in front of the real Rasa server and action server."""
    from bot.app import create_app
    from tests.gateway_support import settings_for

    return await aiohttp_client(create_app(settings_for(redis_server, rasa_stack["url"],
                                                        platform.url)))
