"""Processes the fault tests kill with SIGKILL and start again: redis-server, Rasa, actions.

Each `Service` remembers its command line, so `start()` after `kill()` brings the same
server back on the same port (and, for Redis, the same data directory). Every process runs
in a session of its own; `kill()` sends SIGKILL to that process group (the process we started
and nothing else), as an out-of-memory kill or a crashed host would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import redis as sync_redis
import requests

from bot.settings import PROJECT_ROOT
from tests.conftest import PYTHON, free_port


class Service:
    """One server process that can be started, SIGKILLed and started again."""

    def __init__(self, name: str, argv: List[str], ready: Callable[[], bool], *,
                 log: Path, env: Dict[str, str] | None = None, cwd: Path | None = None,
                 ready_timeout: float = 60.0) -> None:
        self.name = name
        self.argv = argv
        self.ready = ready
        self.log = log
        self.env = env
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        with open(self.log, "a") as log:
            log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')}\n")
            log.flush()
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"{self.name} exited with {code}\n{self.tail()}")
            try:
                if self.ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready after {timeout or self.ready_timeout}s\n"
                           f"{self.tail()}")

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def ensure_running(self) -> None:
        """Start it again if a test left it dead (a failed test must not break the next)."""
        if not self.running:
            self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed or closed cleanly."""
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group we created for it, only
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, chars: int = 4000) -> str:
        try:
            return f"--- {self.log}\n{self.log.read_text(errors='replace')[-chars:]}"
        except OSError:
            return ""


class RedisService(Service):
    """A redis-server of one test's own: free port, own directory, AOF fsynced on every write."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="beacon-faults-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
                "--save", ""]
        super().__init__("redis-server", argv, self._ping, log=Path(self.dir) / "redis.log",
                         ready_timeout=20)

    def _ping(self) -> bool:
        with sync_redis.Redis(port=self.port, socket_timeout=1) as client:
            return bool(client.ping())

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RasaStack:
    """An action server and a Rasa server of their own (free ports), as conftest's rasa_stack
    starts them: REST channel, tracker and lock stores in the given Redis."""

    def __init__(self, redis_server: Dict[str, object], model_path: Path) -> None:
        self.action_port, self.rasa_port = free_port(), free_port()
        self.token = "faults-" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{self.rasa_port}"
        self.logs = Path(tempfile.mkdtemp(prefix="beacon-faults-rasa-"))
        env = {
            **os.environ,
            "BEACON_REDIS_URL": str(redis_server["url"]),
            "BEACON_REDIS_HOST": "127.0.0.1",
            "BEACON_REDIS_PORT": str(redis_server["port"]),
            "BEACON_REDIS_DB": "0",
            "BEACON_ACTION_URL": f"http://127.0.0.1:{self.action_port}/webhook",
            "SANIC_HOST": "127.0.0.1",
            "SANIC_KEEP_ALIVE_TIMEOUT": "75",  # as scripts/run.sh: see there
            "RASA_TELEMETRY_ENABLED": "false",
        }
        self.actions = Service(
            "action server",
            [PYTHON, "-m", "rasa_sdk", "--actions", "actions", "--port", str(self.action_port)],
            lambda: requests.get(f"http://127.0.0.1:{self.action_port}/health", timeout=1).ok,
            log=self.logs / "actions.log", env=env, cwd=PROJECT_ROOT, ready_timeout=120)
        self.rasa = Service(
            "rasa server",
            [PYTHON, "-m", "bot.rasa_launcher", "run", "--model", str(model_path),
             "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
             "--interface", "127.0.0.1", "--port", str(self.rasa_port),
             "--enable-api", f"--auth-token={self.token}"],
            self._model_loaded, log=self.logs / "rasa.log", env=env, cwd=PROJECT_ROOT,
            ready_timeout=300)

    def _model_loaded(self) -> bool:
        status = requests.get(f"{self.url}/status", params={"token": self.token}, timeout=2)
        return bool(status.json().get("model_file"))

    def spawn(self) -> None:
        self.actions.spawn()
        self.rasa.spawn()

    def wait_ready(self) -> None:
        try:
            self.actions.wait_ready()
            self.rasa.wait_ready()
        except Exception:
            print(self.actions.tail(), self.rasa.tail(), sep="\n", file=sys.stderr)
            raise

    def ensure_running(self) -> None:
        self.actions.ensure_running()
        self.rasa.ensure_running()

    def stop(self) -> None:
        for service in (self.rasa, self.actions):
            service.stop()
        shutil.rmtree(self.logs, ignore_errors=True)


def rasa_tracker(base_url: str, token: str, conversation: str) -> Dict:
    """A conversation's tracker through Rasa's HTTP API (from the shared Redis tracker store)."""
    from urllib.parse import quote

    response = requests.get(f"{base_url}/conversations/{quote(conversation, safe=':')}/tracker",
                            params={"token": token}, timeout=30)
    response.raise_for_status()
    return response.json()
