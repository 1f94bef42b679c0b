"""bot.rasa_lock_store: Rasa's ticket lock, one atomic script per step, on a real Redis.

Rasa's own RedisLockStore is the reference: the same steps on both stores leave the same
locks; the scripts keep their promise under threads that Rasa's read-modify-write breaks;
a message costs two round trips; and Rasa loads the store from endpoints.yml."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
import redis as sync_redis
import yaml
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.core.utils import number_of_sanic_workers
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_lock_store import GRACE_SECONDS, AtomicRedisLockStore
from bot.settings import PROJECT_ROOT


@pytest.fixture
def stores(redis_server):
    """(Rasa's store, ours, a client): the same Redis, each under its own key prefix."""
    client = sync_redis.Redis(port=redis_server["port"])
    client.flushdb()
    theirs = RedisLockStore(port=redis_server["port"], db=0, key_prefix="rasa")
    ours = AtomicRedisLockStore(port=redis_server["port"], db=0, key_prefix="ours")
    yield theirs, ours, client
    client.close()


def state(store, conversation):
    """A lock as its store keeps it: the JSON value, tickets parsed, or None."""
    raw = store.red.get(store.key_prefix + conversation)
    if raw is None:
        return None
    lock = json.loads(raw)
    return {"conversation_id": lock["conversation_id"],
            "tickets": [json.loads(t) for t in lock["tickets"]]}


def same_but_expiry(a, b):
    """Equal locks; expiries within a second (each store read its own clock)."""
    if a is None or b is None:
        return a is b
    return (a["conversation_id"] == b["conversation_id"]
            and [t["number"] for t in a["tickets"]] == [t["number"] for t in b["tickets"]]
            and all(abs(x["expires"] - y["expires"]) < 1
                    for x, y in zip(a["tickets"], b["tickets"], strict=True)))


def test_every_step_leaves_the_lock_rasas_store_leaves(stores):
    theirs, ours, _ = stores
    conv = 'odd "id" \\ with ünïcode/'  # JSON escaping on the Lua side
    steps = [
        ("issue", 60), ("issue", 60), ("issue", 0.2), ("issue", 60),
        ("cleanup", 0), ("sleep", 0.3),       # ticket 2 expires while 1 and 3 wait
        ("update", None), ("issue", 60),      # numbers go on from the last live ticket
        ("cleanup", 3), ("cleanup", 7),       # a ticket nobody holds: nothing changes
        ("cleanup", 1), ("cleanup", 4),       # the last ones: the lock goes
        ("issue", 60), ("cleanup", 0),        # a fresh lock starts at 0 again
        ("update", None),                     # no lock: nothing to refresh
    ]
    for step, arg in steps:
        if step == "sleep":
            time.sleep(arg)
            continue
        if step == "issue":
            assert theirs.issue_ticket(conv, arg) == ours.issue_ticket(conv, arg)
        elif step == "cleanup":
            theirs.cleanup(conv, arg)
            ours.cleanup(conv, arg)
        else:
            theirs.update_lock(conv)
            ours.update_lock(conv)
        assert same_but_expiry(state(theirs, conv), state(ours, conv)), (step, arg)
        # Rasa reads our locks with its own code, and the other way round.
        assert (ours.get_lock(conv) is None) == (theirs.get_lock(conv) is None)
        if ours.get_lock(conv):
            assert ours.get_lock(conv).now_serving == theirs.get_lock(conv).now_serving
    assert state(ours, conv) is None


def test_a_lock_left_by_a_dead_rasa_leaves_redis(stores):
    """Rasa's store keeps a lock until the conversation's next message; ours lets Redis
    drop it a grace period after its last ticket expires."""
    _, ours, client = stores
    ours.issue_ticket("c1", 5)
    ttl = client.ttl(ours.key_prefix + "c1")
    assert 5 + GRACE_SECONDS - 2 <= ttl <= 5 + GRACE_SECONDS + 1
    ours.issue_ticket("c1", 100)
    assert client.ttl(ours.key_prefix + "c1") > 100 + GRACE_SECONDS - 2


def test_tickets_stay_distinct_when_threads_issue_at_once(stores):
    """Rasa's GET-edit-SET can hand two requests the same ticket (two Sanic workers);
    one script per issue cannot."""
    _, ours, client = stores
    numbers = []
    start = threading.Barrier(8)

    def issue_many():
        store = AtomicRedisLockStore(port=client.connection_pool.connection_kwargs["port"],
                                     db=0, key_prefix="ours")
        start.wait()
        numbers.extend(store.issue_ticket("shared") for _ in range(50))

    threads = [threading.Thread(target=issue_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers) == list(range(400))
    assert len(state(ours, "shared")["tickets"]) == 400


async def test_lock_serialises_one_conversation_and_cleans_up(stores):
    _, ours, client = stores
    order = []

    async def turn(name, hold):
        async with ours.lock("c2", wait_time_in_seconds=0.05):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    first = asyncio.create_task(turn("a", 0.3))
    await asyncio.sleep(0.05)
    await asyncio.gather(first, turn("b", 0))
    assert order == ["a in", "a out", "b in", "b out"]
    assert client.exists(ours.key_prefix + "c2") == 0


async def test_a_lost_ticket_is_rasas_lock_error(stores):
    """The ticket ahead expires and the waiting one with it: Rasa's LockError, as Rasa."""
    _, ours, _ = stores
    ours.issue_ticket("c3", 0.1)
    with pytest.raises(LockError):
        async with ours.lock("c3", lock_lifetime=0.1, wait_time_in_seconds=0.3):
            pass


async def test_one_message_costs_two_round_trips(stores):
    theirs, ours, client = stores

    def calls():
        stats = client.info("commandstats")
        return {name: v["calls"] for name, v in stats.items()}

    async def commands_sent(store):
        client.config_resetstat()
        async with store.lock("c4"):
            pass
        sent = calls()
        sent.pop("cmdstat_config|resetstat", None)
        return sent

    rasa = await commands_sent(theirs)
    assert sum(rasa.values()) == 7  # GET SET, GET, GET SET, GET DEL
    await commands_sent(ours)  # loads the scripts (EVALSHA misses, then EVAL)
    ours_sent = await commands_sent(ours)
    assert ours_sent.get("cmdstat_evalsha") == 2
    # Inside the scripts: Redis's clock (the issue's deadline), the lock's read and write.
    assert {name for name in ours_sent} <= {"cmdstat_evalsha", "cmdstat_time", "cmdstat_get",
                                             "cmdstat_set", "cmdstat_del"}


def test_rasa_loads_it_from_endpoints_yml_and_allows_sanic_workers(redis_server, monkeypatch):
    config = yaml.safe_load(Path(PROJECT_ROOT / "endpoints.yml").read_text())["lock_store"]
    assert config["type"] == "bot.rasa_lock_store.AtomicRedisLockStore"
    endpoint = EndpointConfig(url="127.0.0.1", port=redis_server["port"], db=0,
                              key_prefix=config["key_prefix"], type=config["type"])
    store = LockStore.create(endpoint)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix == "beaconrasa:lock:"
    monkeypatch.setenv("SANIC_WORKERS", "2")
    assert number_of_sanic_workers(endpoint) == 2


def test_the_real_rasa_server_takes_its_lock_through_the_scripts(rasa_stack, redis_server):
    """Rasa as Beacon runs it (launcher, endpoints.yml): a message's turn runs the issue
    and release scripts in Redis, and leaves no lock behind."""
    import hashlib

    import requests

    client = sync_redis.Redis(port=redis_server["port"])
    client.script_flush()
    from bot import rasa_lock_store

    shas = [hashlib.sha1(script.encode()).hexdigest()
            for script in (rasa_lock_store._ISSUE, rasa_lock_store._RELEASE)]
    assert client.script_exists(*shas) == [False, False]
    reply = requests.post(f"{rasa_stack['url']}/webhooks/rest/webhook",
                          json={"sender": "lock-check", "message": "what are your hours"},
                          timeout=60)
    assert reply.ok and reply.json()
    assert client.script_exists(*shas) == [True, True]
    assert client.exists("beaconrasa:lock:lock-check") == 0
    client.close()


def test_an_issue_redis_runs_after_its_caller_gave_up_leaves_no_ticket(redis_server):
    """Redis stalls past the caller's timeout with the issue script queued: when it runs,
    it issues nothing (a ticket nobody holds kept the conversation waiting 48 s; found by
    the live attack). The next message is served at once."""
    import os
    import signal

    client = sync_redis.Redis(port=redis_server["port"])
    client.flushdb()
    store = AtomicRedisLockStore(port=redis_server["port"], db=0, key_prefix="ours",
                                 socket_timeout=1)
    store.issue_ticket("warm")  # scripts loaded, clock offset measured
    store.cleanup("warm", 0)
    pid = redis_server["proc"].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(LockError):
            store.issue_ticket("stalled")
    finally:
        time.sleep(0.5)  # past the deadline on Redis's clock too
        os.kill(pid, signal.SIGCONT)
    client.ping()
    assert client.exists(store.key_prefix + "stalled") == 0
    assert store.issue("stalled")[0] == 0  # served at once
    client.close()


@pytest.mark.parametrize("value", [
    "not json", "{}", "[1, 2]", '"a string"', '{"tickets": null}', '{"tickets": "x"}',
    '{"tickets": ["not json"]}', '{"tickets": ["{\\"number\\": 1.5, \\"expires\\": 9e9}"]}',
    '{"tickets": ["{\\"number\\": \\"3\\", \\"expires\\": 9e9}"]}',
    '{"tickets": ["{\\"number\\": 3, \\"expires\\": \\"soon\\"}"]}',
    '{"tickets": ["{\\"number\\": 3, \\"expires\\": 1e300}"]}',
    '{"tickets": ["{\\"number\\": -4, \\"expires\\": 9e9}"]}',
    '{"tickets": [{"number": 3, "expires": 9e9}]}',
    "HASH", "LIST"])
async def test_whatever_is_at_the_lock_key_the_next_message_is_served(stores, value):
    """A corrupt lock (not JSON, the wrong type, tickets Rasa cannot serve: a number of 1.5
    made Lua issue 2.5 while Rasa read 2) is replaced, not obeyed: Rasa's own store answers
    nothing on that conversation until someone deletes the key (found by the live attack)."""
    _, ours, client = stores
    key = ours.key_prefix + "c9"
    value = value.replace("9e9", repr(time.time() + 15))  # live, but for what is wrong
    if value == "HASH":
        client.hset(key, "a", "b")
    elif value == "LIST":
        client.rpush(key, "a")
    else:
        client.set(key, value)
    async with ours.lock("c9", wait_time_in_seconds=0.05) as lock:
        assert lock.conversation_id == "c9" and len(lock.tickets) == 1
    assert client.exists(key) == 0
