"""A throw-away Beacon stack for benchmarks and fault injection: every process on free ports.

    with Stack(model, gateways=2, rasa=2, graph_url="http://127.0.0.1:9999") as stack:
        stack.gateway_urls        # POST {url}/webhooks/meta
        stack.pids()              # {"redis": 123, "actions": 124, "rasa0": 125, ...}
        stack.rss()               # {"redis": bytes, ...}, each with its child processes
        stack.kill("rasa0")       # kill -9 (the process and its children)
        stack.restart("redis")    # same port, same data directory: AOF replayed

One redis-server (AOF on, its own temporary directory), one action server, N Rasa servers
sharing that Redis (tracker and lock stores from endpoints.yml), M gateways (`python -m bot
serve`; gateway i talks to Rasa i % N). Logs go to <workdir>/logs/<name>.log.

Only the standard library is used here, so that a fault-injection script can import this
module without the load generator.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() \
    else sys.executable
# Inherited settings that would make a run depend on the caller's shell or .env file.
_STRIPPED_PREFIXES = ("BEACON_", "META_", "X_", "RASA_", "SANIC_")
_PR_SET_PDEATHSIG = 1
# As scripts/run.sh starts them: Rasa and the action server yield the CPU to the gateway.
RASA_NICE = ["nice", "-n", os.environ.get("BEACON_RASA_NICE", "10")]
READY_TIMEOUT = {"redis": 20.0, "actions": 180.0, "rasa": 900.0, "baseline": 900.0,
                 "gateway": 300.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: a SIGKILLed harness must not leave servers behind.

    PR_SET_PDEATHSIG fires when the thread that forked exits, so Popen is only ever called
    from the harness's own (main) thread.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _http_ok(url: str, timeout: float = 2.0) -> dict | None:
    """The JSON body of a 200 answer (``{}`` if not JSON), or None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            try:
                return json.loads(response.read() or b"{}")
            except ValueError:
                return {}
    except OSError:
        return None


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# -- memory ------------------------------------------------------------------------------------

def _children() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields resume after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (all threads)."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(tree.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def tree_memory(pid: int, field_name: str = "VmRSS") -> int:
    """Bytes of ``field_name`` (VmRSS, VmHWM) summed over a process and all its descendants."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        total += _status_kib(current, field_name) * 1024
        todo.extend(tree.get(current, []))
    return total


# -- processes ----------------------------------------------------------------------------------

@dataclass
class Service:
    """One server process: how to start it, how to tell it is ready, where it logs."""

    name: str
    kind: str  # "redis", "actions", "rasa", "gateway"
    port: int
    argv: List[str]
    env: Dict[str, str]
    log: Path
    ready: Callable[[], bool]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_at: float | None = None
    restarts: int = field(default=0)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def launch(self) -> None:
        with open(self.log, "ab") as log:
            log.write(f"\n--- launch {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n"
                      .encode())
            log.flush()
            # Own session: the terminal's Ctrl-C reaches only the harness, which stops the
            # services in order (Redis last), and killpg reaches a server's children too.
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        self.ready_at = None

    def is_ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        if self.ready_at is None and self.ready():
            self.ready_at = time.monotonic()
        return self.ready_at is not None

    def wait_ready(self, timeout: float | None = None) -> float:
        """Seconds from launch to ready; raises with the log's tail when it dies or hangs."""
        timeout = timeout or READY_TIMEOUT[self.kind]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}\n"
                                   f"{self.tail()}")
            if self.is_ready():
                return self.ready_at - self.started_at
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s\n{self.tail()}")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        """kill -9 of the whole process group; waits until the process is gone."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.log} (last {chars} chars)\n{self.log.read_text()[-chars:]}"
        except OSError:
            return f"--- {self.log} unreadable"


class Stack:
    """The whole Beacon stack on free ports; a context manager that always cleans up."""

    def __init__(self, model: Path | str, *, gateways: int = 1, rasa: int = 1,
                 graph_url: str, app_secret: str | None = None,
                 page_token: str | None = None, extra_env: Dict[str, str] | None = None,
                 workdir: Path | None = None, keep: bool = False,
                 stock_rasa: bool = False, baseline: bool = False) -> None:
        self.model = Path(model)
        # Stock Rasa (`python -m rasa`) or Rasa through bot/rasa_launcher.py.
        self.rasa_module = "rasa" if stock_rasa else "bot.rasa_launcher"
        # One more Rasa, stock and unpatched, beside Beacon's (same model, same action
        # server): the load test's baseline, kind "baseline" (not among rasa_urls).
        self.baseline = baseline
        self.graph_url = graph_url.rstrip("/")
        self.app_secret = app_secret or secrets.token_hex(16)
        self.page_token = page_token or secrets.token_urlsafe(16)
        self.rasa_token = secrets.token_urlsafe(16)
        self.extra_env = extra_env or {}
        self.keep = keep
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="beacon-bench-"))
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        (self.workdir / "redis").mkdir(exist_ok=True)
        self.redis_port = free_port()
        self.services: Dict[str, Service] = {}
        self._build(gateways, rasa)
        self._closed = False
        atexit.register(self.close)

    # -- construction ---------------------------------------------------------------------

    def _base_env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
        action_port = self.services["actions"].port if "actions" in self.services else 0
        env.update({
            "BEACON_REDIS_URL": self.redis_url,
            "BEACON_REDIS_HOST": "127.0.0.1",
            "BEACON_REDIS_PORT": str(self.redis_port),
            "BEACON_REDIS_DB": "0",
            "BEACON_ACTION_URL": f"http://127.0.0.1:{action_port}/webhook",
            # endpoints.yml keeps Rasa's trackers this long (scripts/env.sh sets it for runs).
            "BEACON_RETENTION_SECONDS": str(365 * 86400),
            "RASA_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def _add(self, name: str, kind: str, port: int, argv: List[str], env: Dict[str, str],
             ready: Callable[[], bool]) -> None:
        self.services[name] = Service(name, kind, port, argv, env,
                                      self.workdir / "logs" / f"{name}.log", ready)

    def _build(self, gateways: int, rasa: int) -> None:
        port = self.redis_port
        self._add("redis", "redis", port, [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--dir", str(self.workdir / "redis"), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes",
        ], self._base_env(), lambda: _redis_ping(port))
        action_port = free_port()
        self._add("actions", "actions", action_port,
                  [*RASA_NICE, PYTHON, "-m", "rasa_sdk", "--actions", "actions",
                   "--port", str(action_port)],
                  {}, lambda: _http_ok(f"http://127.0.0.1:{action_port}/health") is not None)
        # The action URL is known only now; every later env is built with it.
        self.services["actions"].env = {**self._base_env(), "SANIC_HOST": "127.0.0.1",
                                         "SANIC_KEEP_ALIVE_TIMEOUT": "75"}  # as run.sh
        for i in range(rasa):
            self._add_rasa(i)
        if self.baseline:
            self._add_rasa("stock", kind="baseline", module="rasa")
        for i in range(gateways):
            self._add_gateway(i, rasa)

    def _add_rasa(self, i: int | str, kind: str = "rasa", module: str | None = None) -> None:
        port = free_port()
        status = f"http://127.0.0.1:{port}/status?token={self.rasa_token}"
        module = module or self.rasa_module
        self._add(f"rasa{i}", kind, port, [
            *RASA_NICE, PYTHON, "-m", module, "run", "--model", str(self.model),
            "--endpoints", self._stock_endpoints() if module == "rasa" else "endpoints.yml",
            "--credentials", "credentials.yml",
            "--interface", "127.0.0.1", "--port", str(port),
            "--enable-api", f"--auth-token={self.rasa_token}",
        ], self._base_env(), lambda: bool((_http_ok(status) or {}).get("model_file")))

    def _stock_endpoints(self) -> str:
        """endpoints.yml with Rasa's own Redis lock store (stock Rasa is the baseline: none
        of Beacon's changes to it, bot/rasa_lock_store.py included)."""
        path = self.workdir / "endpoints-stock.yml"
        ours = "type: bot.rasa_lock_store.AtomicRedisLockStore\n"
        text = (ROOT / "endpoints.yml").read_text()
        if ours not in text:
            raise RuntimeError("endpoints.yml no longer names Beacon's lock store; update "
                               "bench/stack.py")
        path.write_text(text.replace(ours, "type: redis\n"))
        return str(path)

    def _add_gateway(self, i: int, rasa: int) -> None:
        port = free_port()
        env = {**self._base_env(),
               "BEACON_HTTP_HOST": "127.0.0.1",
               "BEACON_HTTP_PORT": str(port),
               "BEACON_RASA_URL": f"http://127.0.0.1:{self.services[f'rasa{i % rasa}'].port}",
               "META_APP_SECRET": self.app_secret,
               "META_PAGE_ACCESS_TOKEN": self.page_token,
               "META_GRAPH_URL": self.graph_url,
               "BEACON_COOKIE_SECURE": "0",
               **self.extra_env}  # last: a caller's override wins
        self._add(f"gateway{i}", "gateway", port, [PYTHON, "-m", "bot", "serve"], env,
                  lambda: _http_ok(f"http://127.0.0.1:{port}/healthz") is not None)

    # -- addresses ------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _urls(self, kind: str) -> List[str]:
        return [f"http://127.0.0.1:{s.port}" for s in self.services.values() if s.kind == kind]

    @property
    def gateway_urls(self) -> List[str]:
        return self._urls("gateway")

    @property
    def rasa_urls(self) -> List[str]:
        return self._urls("rasa")

    @property
    def baseline_url(self) -> str | None:
        urls = self._urls("baseline")
        return urls[0] if urls else None

    def names(self, kind: str | None = None) -> List[str]:
        return [n for n, s in self.services.items() if kind is None or s.kind == kind]

    # -- life cycle -----------------------------------------------------------------------

    def launch(self, wait_for_redis: bool = True) -> None:
        """Start everything without waiting for readiness (Redis first, as scripts/run.sh
        does, since the other services expect it at start-up)."""
        self.services["redis"].launch()
        if wait_for_redis:
            self.services["redis"].wait_ready()
        for name in self.names():
            if name != "redis":
                self.services[name].launch()

    def wait_ready(self) -> Dict[str, float]:
        """Seconds from each service's launch to its readiness."""
        return {name: service.wait_ready() for name, service in self.services.items()}

    def start(self) -> Dict[str, float]:
        try:
            self.launch()
            return self.wait_ready()
        except BaseException:
            self.close(failed=True)
            raise

    def kill(self, name: str) -> None:
        """kill -9 one service (and its children), as a crash would."""
        self.services[name].kill()

    def restart(self, name: str, wait: bool = True) -> float | None:
        """Kill -9 if still running, start again on the same port (Redis: same data
        directory, so the AOF is replayed); returns seconds to ready when ``wait``."""
        service = self.services[name]
        service.kill()
        service.restarts += 1
        service.launch()
        return service.wait_ready() if wait else None

    def pids(self) -> Dict[str, int | None]:
        return {name: service.pid for name, service in self.services.items()}

    def rss(self, field_name: str = "VmRSS") -> Dict[str, int]:
        """Bytes per service, each summed with its child processes (0 when not running)."""
        return {name: tree_memory(pid, field_name) if pid else 0
                for name, pid in self.pids().items()}

    def cpu(self) -> Dict[str, float]:
        """CPU seconds used so far per service (with children); take differences."""
        return {name: tree_cpu_seconds(pid) if pid else 0.0 for name, pid in self.pids().items()}

    def close(self, failed: bool = False) -> None:
        """Stop what uses Redis first and Redis last; remove the work directory unless
        asked to keep it or a start failed (its logs explain why)."""
        if self._closed:
            return
        self._closed = True
        users = [self.services[n] for n in self.names() if n != "redis"]
        for service in users:  # all at once: a sequential stop would add up their grace times
            service.signal(signal.SIGTERM)
        for service in users:
            service.stop()
        self.services["redis"].stop()
        if self.keep or failed:
            print(f"[stack] logs kept in {self.workdir / 'logs'}", file=sys.stderr)
            shutil.rmtree(self.workdir / "redis", ignore_errors=True)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None and not issubclass(exc_type, KeyboardInterrupt))
