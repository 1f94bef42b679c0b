"""What each process loads: no process runs TensorFlow (the intent model is an n-gram
logistic regression), so TensorFlow must not be in any of them (issue 9: it cost the
gateway ~350 MiB and seconds of start-up through spaCy's thinc, and Rasa ~400 MiB through
its own imports). Checked on the real processes, by their memory maps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bot.settings import PROJECT_ROOT
from tests.conftest import free_port, wait_for
from tests.gateway_support import DEAD_RASA


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def start_gateway(redis_server, log_path: Path, rasa_url: str = DEAD_RASA):
    """A real ``bot serve`` process; returns it and its URL once it answers."""
    port = free_port()
    env = {**os.environ, "BEACON_REDIS_URL": redis_server["url"], "BEACON_RASA_URL": rasa_url,
           "BEACON_HTTP_HOST": "127.0.0.1", "BEACON_HTTP_PORT": str(port),
           "BEACON_COOKIE_SECURE": "0"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=PROJECT_ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    # 503 while Rasa is down (it is, here): the gateway itself is up. The client waits longer
    # than /healthz's own Rasa probe (2 s against a Rasa that never answers): with both at
    # 2 s the answer came at 2,002 ms on a slow machine and the gateway never looked ready.
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/healthz",
                                      timeout=10).status_code in (200, 503), 120, "gateway",
                 proc)
    except BaseException:
        # Never leave it running: its workers would find a later test's Redis on a reused
        # port and take that test's messages (found in a CI run, 2026-12-01).
        proc.kill()
        proc.wait(20)
        raise
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture()
def gateway_process(redis_server, tmp_path):
    proc, url = start_gateway(redis_server, tmp_path / "gateway.log")
    try:
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_gateway_runs_the_safety_net_without_tensorflow(gateway_process):
    proc, url = gateway_process
    # A web-chat emergency goes through the whole intake tier (rules, urgency model).
    sent = requests.post(f"{url}/chat/api/messages", timeout=30, json={
        "session": "process-test-session-0001",
        "text": "my neighbor is lying on the floor and not breathing"})
    assert sent.status_code == 202
    for _ in range(100):
        replies = requests.get(f"{url}/chat/api/messages", timeout=5,
                               params={"session": "process-test-session-0001"}).json()
        if replies.get("messages"):
            break
        time.sleep(0.1)
    assert any("911" in m["text"] for m in replies["messages"])
    maps = _maps(proc.pid)
    assert "/spacy/" in maps  # the rules are loaded...
    assert "tensorflow" not in maps  # ...and TensorFlow is not


def test_the_action_server_loads_neither_tensorflow_nor_spacy(rasa_stack):
    maps = _maps(rasa_stack["actions_pid"])
    assert "tensorflow" not in maps and "/spacy/" not in maps
    assert "/aiohttp/" in maps or "/multidict/" in maps or "/yarl/" in maps  # not vacuous


def test_rasa_runs_the_model_without_tensorflow(rasa_stack):
    """The launcher starts Rasa with bot/tensorflow_stand_in.py for a model without
    TensorFlow components: the stack answered (the fixture waits for the loaded model) and
    Rasa's memory holds scikit-learn's intent model and spaCy's rules, not TensorFlow."""
    answer = requests.post(f"{rasa_stack['url']}/model/parse", timeout=30,
                           params={"token": rasa_stack["token"]},
                           json={"text": "someone is climbing in my window right now"}).json()
    assert answer["intent"]["name"] == "emergency" and answer["safety_net"]["flag"]
    maps = _maps(rasa_stack["rasa_pid"])
    assert "/sklearn/" in maps and "/spacy/" in maps
    assert "tensorflow" not in maps


def test_the_gateway_stops_on_sigterm_after_work(gateway_process):
    """SIGTERM after the gateway has handled a message: it finishes and exits. Before, the
    CPU lane's task, started by the first message, and the monitor's ticks held aiohttp's
    graceful-shutdown wait for its full 60 s (a restart or a deploy waited a minute, and a
    supervisor's kill timeout could cut off replies in flight)."""
    proc, url = gateway_process
    assert requests.post(f"{url}/chat/api/messages", timeout=30, json={
        "session": "process-test-session-0002", "text": "what are your hours"}
    ).status_code == 202
    time.sleep(1)
    proc.terminate()
    assert proc.wait(15) == 0


def test_an_open_console_does_not_hold_sigterm(gateway_process, redis_server):
    """A console's event stream is open when SIGTERM comes: the stream ends and the gateway
    exits (it waited out aiohttp's 60 s shutdown timeout before; found by the live attack)."""
    import asyncio
    import re

    from redis.asyncio import Redis

    from bot.console.auth import StaffStore

    proc, url = gateway_process

    async def add_staff():
        redis = Redis.from_url(redis_server["url"], decode_responses=True)
        await StaffStore(redis, 3600).add("sse-officer", "a long enough passphrase")
        await redis.close(close_connection_pool=True)

    asyncio.run(add_staff())
    http = requests.Session()
    form = http.get(f"{url}/console/login", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    assert http.post(f"{url}/console/login", timeout=30, allow_redirects=False, data={
        "csrf": csrf, "name": "sse-officer", "password": "a long enough passphrase"}
    ).status_code == 302
    stream = http.get(f"{url}/console/api/events", stream=True, timeout=30)
    assert b"hello" in next(stream.iter_lines())
    proc.terminate()
    assert proc.wait(15) == 0
    stream.close()


def test_a_gateway_killed_mid_message_hands_it_on_within_the_lock_ttl(redis_server, tmp_path):
    """Second live attack: a gateway killed with SIGKILL while Rasa had a message in hand left
    its conversation locked for 60 s. The lock is kept alive every third of its TTL while a
    message is in hand, so the TTL itself can be short (15 s): another gateway takes the
    message over once it expires, and the citizen gets one answer."""
    import socket

    from redis import Redis

    from bot import keys
    from bot.settings import Settings

    assert Settings.from_env({}).lock_ttl_s == 15
    # A "Rasa" that accepts connections and never answers: the message stays in hand.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    redis = Redis.from_url(redis_server["url"], decode_responses=True)
    session = "process-test-session-kill"
    first = second = None
    try:
        first, url = start_gateway(redis_server, tmp_path / "first.log",
                                   f"http://127.0.0.1:{silent.getsockname()[1]}")
        assert requests.post(f"{url}/chat/api/messages", timeout=30, json={
            "session": session, "text": "can someone call me back about my case"}
        ).status_code == 202
        pattern = keys.conversation_lock("*")
        wait_for(lambda: bool(redis.keys(pattern)), 30, "the first gateway's lock", first)
        (lock,) = redis.keys(pattern)
        assert 0 < redis.pttl(lock) <= 15_000
        first.kill()  # SIGKILL: nothing unlocks the conversation
        first.wait(10)
        second, url = start_gateway(redis_server, tmp_path / "second.log")

        def answered():
            replies = requests.get(f"{url}/chat/api/messages", timeout=5,
                                   params={"session": session}).json()
            return replies.get("messages")

        wait_for(answered, 45, "the second gateway's answer", second)
        time.sleep(1)
        assert len(answered()) == 1 and not redis.exists(lock)
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        silent.close()
        redis.close()
