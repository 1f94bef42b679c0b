"""Does one flooding sender slow everyone else down? Calm citizens' reply times, measured
without a flood, with a flood and the per-sender rate limit on (the default), and with the
flood and the limit off.

Calm citizens each ask FAQ questions one after another (each answered by one message) and
wait for the answer; meanwhile one sender POSTs a burst of messages as fast as the gateway
takes them. The whole stack runs (bench/stack.py); only the Graph API is this script's own
recorder. Between runs only the gateway restarts, with the limit changed.

With ``--agencies`` the stack serves two agencies (BEACON_AGENCIES_FILE; bot.agencies):
the calm citizens write to agency B's page while agency A's page takes a viral-post flood
(``--flood`` messages from as many senders, so no per-sender limit applies). Runs: no
flood; the flood on agency A (workers take turns between agencies); the same flood on
agency B, the calm citizens' own (what A's flood would cost B with one shared line).

Usage: .venv/bin/python bench/flood.py [--citizens 20] [--questions 4] [--flood 300]
                                       [--agencies]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402
from bot.channels.meta import SEND_PATH as META_SEND_PATH  # noqa: E402
from bot.training import current_model  # noqa: E402
from tests.gateway_support import (  # noqa: E402
    PAGE_ID,
    messenger_item,
    messenger_payload,
    meta_signature,
)

TIMEOUT = 120.0
FLOOD_TEXT = "hello?? anyone there, answer me"


class Graph:
    """Records each reply's arrival per recipient and wakes whoever waits for it."""

    def __init__(self) -> None:
        self.arrivals: Dict[str, List[float]] = defaultdict(list)
        self.changed: Dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.app = web.Application()
        self.app.router.add_post(META_SEND_PATH, self._send)

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        recipient = str(body["recipient"]["id"])
        if "sender_action" in body:
            # "seen" and "typing" (bot.delivery) share the endpoint; they are no answer.
            return web.json_response({"recipient_id": recipient})
        self.arrivals[recipient].append(time.perf_counter())
        self.changed[recipient].set()
        return web.json_response({"recipient_id": recipient, "message_id": "m"})

    async def wait_for(self, recipient: str, count: int, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        while len(self.arrivals[recipient]) < count:
            event = self.changed[recipient]
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), deadline - time.perf_counter())
            except (asyncio.TimeoutError, ValueError):
                return None
        return self.arrivals[recipient][count - 1]


async def post(session: aiohttp.ClientSession, url: str, secret: str, sender: str, text: str,
               mid: str, page: str = PAGE_ID) -> int:
    item = messenger_item(sender, text, mid=mid)
    item["recipient"]["id"] = page
    body = json.dumps(messenger_payload(item, page=page)).encode()
    headers = {"X-Hub-Signature-256": meta_signature(body, secret),
               "Content-Type": "application/json"}
    async with session.post(f"{url}/webhooks/meta", data=body, headers=headers) as response:
        await response.read()
        return response.status


async def calm_citizen(session, url, secret, graph: Graph, sender: str,
                       questions: List[str], page: str = PAGE_ID) -> List[float]:
    latencies = []
    for k, text in enumerate(questions):
        sent = time.perf_counter()
        if await post(session, url, secret, sender, text, f"{sender}-{k}", page) != 200:
            raise RuntimeError("webhook refused a calm citizen's message")
        arrived = await graph.wait_for(sender, k + 1, TIMEOUT)
        if arrived is None:
            raise RuntimeError(f"{sender}: no answer to {text!r} within {TIMEOUT}s")
        latencies.append(arrived - sent)
    return latencies


async def flooder(session, url, secret, sender: str, count: int, page: str = PAGE_ID,
                  many: bool = False) -> int:
    """POST ``count`` messages, 20 in flight at a time, from one sender or (``many``) from
    ``count`` senders named after ``sender`` (a viral post); returns how many were accepted."""
    accepted = 0
    for start in range(0, count, 20):
        statuses = await asyncio.gather(*(
            post(session, url, secret, f"{sender}{i:05d}" if many else sender,
                 f"{FLOOD_TEXT} ({i})", f"{sender}-{i}", page)
            for i in range(start, min(count, start + 20))))
        accepted += statuses.count(200)
    return accepted


def pct(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * int(p) // 100) - 1)] if ordered else float("nan")


async def one_run(stack: Stack, graph: Graph, name: str, args, flood: bool,
                  calm_page: str = PAGE_ID, flood_page: str | None = None) -> Dict:
    rows = [json.loads(line) for line in (ROOT / "tests/data/heldout.jsonl").open()]
    faq = [r["text"] for r in rows if r["outcome"] == "faq"]
    # Digits only: a sender id that is not all digits is hashed (tests.gateway_support.psid)
    # and the Graph stand-in would record the reply under another id.
    nonce = str(time.time_ns())[-10:]
    url, secret = stack.gateway_urls[0], stack.app_secret
    async with aiohttp.ClientSession() as session:
        tasks = [calm_citizen(session, url, secret, graph, f"9{nonce}{i:04d}",
                              [faq[(i * args.questions + k) % len(faq)]
                               for k in range(args.questions)], calm_page)
                 for i in range(args.citizens)]
        flood_sender = f"8{nonce}"
        started = time.perf_counter()
        flood_task = asyncio.create_task(flooder(
            session, url, secret, flood_sender, args.flood, flood_page or PAGE_ID,
            many=flood_page is not None)) if flood else None
        per_citizen = await asyncio.gather(*tasks)
        calm_done = time.perf_counter() - started
        accepted = await flood_task if flood_task else 0
    latencies = [x * 1000 for xs in per_citizen for x in xs]
    return {"run": name, "calm_messages": len(latencies), "calm_seconds": calm_done,
            "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95),
            "p99_ms": pct(latencies, 99), "flood_accepted": accepted,
            "flood_replies": sum(len(v) for k, v in graph.arrivals.items()
                                 if k.startswith(flood_sender))}


PAGE_A, PAGE_B = "1100000001", "2200000002"


def agencies_file(directory: Path) -> Dict[str, str]:
    """Two agencies on one department file (the figures are about scheduling, not texts);
    returns the environment that names it and their tokens."""
    department = ROOT / "data/department.yml"
    path = directory / "agencies.yml"
    path.write_text(json.dumps({"agencies": {
        name: {"department": str(department), "accounts": {"messenger": [page]},
               "credentials": {"meta_page_access_token": f"FLOOD_{name.upper()}_TOKEN"}}
        for name, page in (("a", PAGE_A), ("b", PAGE_B))}}))  # JSON is YAML
    return {"BEACON_AGENCIES_FILE": str(path), "FLOOD_A_TOKEN": "token-a",
            "FLOOD_B_TOKEN": "token-b"}


async def main_async(args) -> List[Dict]:
    graph = Graph()
    runner = web.AppRunner(graph.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    results = []
    scratch = tempfile.TemporaryDirectory(prefix="beacon-flood-")
    extra = agencies_file(Path(scratch.name)) if args.agencies else None
    stack = Stack(current_model(), graph_url=f"http://{host}:{port}", extra_env=extra)
    try:
        await asyncio.to_thread(stack.start)
        gateway = stack.services["gateway0"]
        if args.agencies:
            # A first pass warms Rasa and the action server (first turns are slow); unreported.
            await one_run(stack, graph, "warm-up", args, False, calm_page=PAGE_B)
            for name, flood, flood_page in (("no flood", False, None),
                                            ("flood on agency A", True, PAGE_A),
                                            ("same flood on agency B (theirs)", True, PAGE_B)):
                results.append(await one_run(stack, graph, name, args, flood,
                                             calm_page=PAGE_B, flood_page=flood_page))
                print(json.dumps(results[-1]), file=sys.stderr)
                # The flood's leftovers drain before the next run measures anything.
                await drain(stack)
            return results
        for name, limit, flood in (("no flood", None, False),
                                   ("flood, rate limit on (20 per 60 s)", None, True),
                                   ("flood, rate limit off", "1000000", True)):
            if limit is not None:
                gateway.env["BEACON_RATE_LIMIT"] = limit
                await asyncio.to_thread(stack.restart, "gateway0")
            results.append(await one_run(stack, graph, name, args, flood))
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        await asyncio.to_thread(stack.close)
        await runner.cleanup()
        scratch.cleanup()
    return results


async def drain(stack: Stack, timeout: float = 600.0) -> None:
    """Wait until no agency has work waiting or in hand (the pending sets are empty)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any([await redis.scard(key)
                        for key in await redis.keys("beacon:agency:*:pending")]):
                return
            await asyncio.sleep(0.5)
    finally:
        await redis.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--citizens", type=int, default=20)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--agencies", action="store_true",
                        help="two agencies: calm citizens on B, a many-sender flood on A")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    flood = (f"{args.flood} senders, one message each" if args.agencies
             else f"one sender, {args.flood} messages")
    print(f"\n{args.citizens} calm citizens x {args.questions} FAQ questions; flood = "
          f"{flood}; {os.cpu_count()} cores\n")
    print("| run | calm p50 | calm p95 | calm p99 | calm citizens done in "
          "| flood replies by then |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['run']} | {r['p50_ms']:.0f} ms | {r['p95_ms']:.0f} ms | "
              f"{r['p99_ms']:.0f} ms | {r['calm_seconds']:.1f} s | {r['flood_replies']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
