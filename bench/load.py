"""Load test: simulated citizens messaging Beacon's gateway, and stock Rasa as the baseline.

    .venv/bin/python bench/load.py [--concurrency 10 50 200] [--gateways 1] [--rasa 1]
        [--messages-per-citizen 4] [--duplicate-rate 0.0] [--json out.json] [--seed 1]
        [--cold-start] [--profile-dir DIR [--py-spy /tmp/pyspy/bin/py-spy]]
        [--env KEY=VALUE ...] [--keep-logs]

py-spy is not a project dependency: `pip install --target /tmp/pyspy py-spy` puts it where
--py-spy looks by default. Rasa and the action server run niced as in scripts/run.sh
(BEACON_RASA_NICE, default 10).

Each citizen is one Messenger sender: it POSTs a signed webhook, waits for the first reply of
that message to reach the fake Graph API served by this process, then sends its next message
(as a person reading the answer would). Texts come from the newest blind test set
(tests/data/blind3.jsonl: written apart from the project, with urgent messages the rules
miss and messages in other languages), drawn so that about 10% are emergencies or crises.
Latency is from the webhook POST to the first reply at the fake Graph API; for an emergency
that reply must be the 911 notice.

The baseline ("Rasa alone") is a second Rasa process started stock (`python -m rasa run`,
without bot/rasa_launcher.py), with the same model and action server, sent the same
messages at the same concurrency over its REST channel, after Beacon's run. Memory totals
leave it out.

Every reply is attributed to the message that caused it by its text: before the levels run,
Rasa answers each distinct text once (the reference), and the gateway's fast path is
reproduced with its own functions, so each message has an expected multiset of replies.
Replies beyond it are duplicates; expected ones that never come are missing; a message with
no reply at all is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import resource
import secrets
import shlex
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Sequence

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import RASA_NICE, Stack  # noqa: E402
from bot import keys  # noqa: E402
from bot.channels.meta import SEND_PATH as META_SEND_PATH  # noqa: E402
from bot.department import load_department  # noqa: E402
from bot.gateway.intake import notice_texts  # noqa: E402
from bot.messages import MESSENGER, Inbound  # noqa: E402
from bot.replies import EMERGENCY_NOTICE  # noqa: E402
from bot.safety_net import get_safety_net  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.training import current_model  # noqa: E402

# The documented Messenger payload shape and its signature, as the gateway tests build them.
from tests.gateway_support import (  # noqa: E402
    PAGE_ID,
    messenger_item,
    messenger_payload,
    meta_signature,
    without_disclosure,
)

URGENT = frozenset({"emergency", "crisis"})
TEXTS = "tests/data/blind3.jsonl"
URGENT_SHARE = 0.10
REPLY_TIMEOUT = 60.0
# A citizen reads the whole answer before writing again: after the first reply, until every
# expected reply came or none came for this long; the stock baseline's citizens wait the
# same way (its REST answer arrives whole, so only an answer that differs from the
# reference makes them wait). Without it a reply's tail could arrive after the
# next message was sent, and crediting could not tell them apart (2026-11-30: 3 of 3
# timeouts at 200 citizens were replies credited to the earlier message).
TAIL_QUIET = 1.0
# After the last citizen is done: wait for trailing replies while they keep coming...
SETTLE_IDLE = 5.0
SETTLE_MAX = 60.0
# ...then this long more, so that a late duplicate is still counted.
DUPLICATE_QUIET = 2.0
WARM_UP_CITIZENS = 4
REFERENCE_CONCURRENCY = 4


# -- messages and what should come back ----------------------------------------------------------

@dataclass(frozen=True)
class Row:
    text: str
    outcome: str  # the held-out label


@dataclass(frozen=True)
class Planned:
    row: Row
    duplicate: bool  # POST this webhook twice (same mid), as a platform retry would


def load_rows() -> tuple[List[Row], List[Row]]:
    rows = [Row(d["text"], d["outcome"]) for d in map(json.loads,
            (ROOT / TEXTS).read_text().splitlines()) if d.get("text")]
    return [r for r in rows if r.outcome in URGENT], [r for r in rows if r.outcome not in URGENT]


def plan(rng: random.Random, citizens: int, per_citizen: int, urgent: Sequence[Row],
         other: Sequence[Row], duplicate_rate: float) -> List[List[Planned]]:
    """What each citizen sends. Drawn from one seeded generator, so a level is the same set of
    messages on every run and for both systems."""
    return [[Planned(rng.choice(urgent if rng.random() < URGENT_SHARE else other),
                     rng.random() < duplicate_rate)
             for _ in range(per_citizen)] for _ in range(citizens)]


def is_notice(text: str | None) -> bool:
    return bool(text) and any(text.startswith(n) for n in EMERGENCY_NOTICE.values())


class Expectations:
    """Expected replies per text: Rasa's reference answer, and Beacon's (fast-path notices
    first, then Rasa's answer without them, as the worker sends it).

    The safety net runs on every text before the levels start: run as each citizen wrote,
    its 3-15 ms per text on the generator's one event loop delayed other citizens' POSTs
    and the fake Graph API's handler (to 1.3-1.5 s at p95 with 200 citizens; a helper's
    trace, 2026-11-30), which the latencies then counted as Beacon's."""

    def __init__(self, reference: Dict[str, List[str]]) -> None:
        settings = Settings.from_env()
        self.reference = reference
        texts = sorted(reference)
        cut = [t[: settings.max_text_chars] for t in texts]
        self.safety = dict(zip(texts, get_safety_net().check_many(cut), strict=True))
        # notice_texts reads only .department(conversation) from the gateway's services.
        department = load_department(settings.department_file)
        self.services = SimpleNamespace(department=lambda _conversation: department,
                                        settings=settings)

    def rasa(self, text: str) -> List[str]:
        return list(self.reference.get(text, []))

    def flag(self, text: str) -> str | None:
        return self.safety[text].flag

    def beacon(self, text: str) -> List[str]:
        safety = self.safety[text]
        if safety.flag is None:
            return self.rasa(text)
        notices = notice_texts(self.services, "", safety.flag, safety.language)
        return notices + [r for r in self.rasa(text) if r not in set(notices)]


async def rasa_texts(session: aiohttp.ClientSession, rasa_url: str, sender: str,
                     text: str) -> tuple[int, List[str]]:
    """One message through Rasa's REST channel: HTTP status and the text replies."""
    async with session.post(f"{rasa_url}/webhooks/rest/webhook",
                            json={"sender": sender, "message": text},
                            timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT)) as response:
        body = await response.json(content_type=None) if response.status == 200 else []
    return response.status, [m["text"] for m in body or []
                             if isinstance(m, dict) and isinstance(m.get("text"), str)]


async def fetch_reference(session: aiohttp.ClientSession, rasa_url: str,
                          texts: Sequence[str], nonce: str) -> Dict[str, List[str]]:
    """Rasa's answer to each distinct text, each in a fresh conversation."""
    reference: Dict[str, List[str]] = {}
    gate = asyncio.Semaphore(REFERENCE_CONCURRENCY)

    async def one(i: int, text: str) -> None:
        async with gate:
            _, reference[text] = await rasa_texts(session, rasa_url, f"ref{nonce}{i:05d}", text)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(sorted(set(texts)))))
    return reference


# -- per-message records and reply attribution ---------------------------------------------------

@dataclass
class Sent:
    """One citizen message and everything that came back for it."""

    text: str
    label: str
    expected: List[str]
    flagged: bool = False  # by the safety net: Beacon's fast path sends the notice at once
    index: int = 0  # position in the citizen's conversation
    t_sent: float = 0.0
    statuses: List[int] = field(default_factory=list)
    duplicate_posted: bool = False
    timed_out: bool = False
    first_at: float | None = None
    first_text: str | None = None
    last_at: float | None = None
    replies: List[str] = field(default_factory=list)
    reply_times: List[float] = field(default_factory=list)
    # Timed out while a reply that arrived after this message was sent went to an earlier
    # message of the conversation (the crediting rule's ambiguity, not a lost message).
    credited_earlier: int = 0
    remaining: Counter = field(default_factory=Counter)
    duplicates: int = 0
    unexpected: int = 0
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.remaining = Counter(self.expected)

    @property
    def urgent(self) -> bool:
        return self.label in URGENT

    @property
    def accepted(self) -> bool:
        return 200 in self.statuses

    def record(self, text: str, at: float) -> None:
        self.replies.append(text)
        self.reply_times.append(at)
        self.last_at = at
        if self.first_at is None:
            self.first_at, self.first_text = at, text
            self.answered.set()


@dataclass
class Conversation:
    """One citizen's messages, in the order sent; replies are matched to them by text."""

    messages: List[Sent] = field(default_factory=list)

    def on_reply(self, text: str, at: float) -> None:
        # The oldest message still expecting this text: a conversation is answered in order,
        # and only the fast path's notices can overtake an earlier message's replies.
        target = next((m for m in self.messages if m.remaining[text] > 0), None)
        latest = self.messages[-1] if self.messages else None
        if (latest is not None and latest.first_at is None and at >= latest.t_sent
                and all(m.first_at is not None for m in self.messages[:-1])):
            # The citizen read the earlier answers whole before writing (TAIL_QUIET): what
            # comes now answers the latest message, whatever language it is in (the
            # oldest-first rule gave an earlier message a reply that Beacon had written in
            # the conversation's language, not the text's, and the citizen waited 60 s).
            if latest.remaining[text] > 0:
                latest.remaining[text] -= 1
            else:
                latest.unexpected += 1
            latest.record(text, at)
            return
        if target is not None:
            target.remaining[text] -= 1
        else:
            target = next((m for m in reversed(self.messages) if text in m.expected), None)
            if target is not None:
                target.duplicates += 1
            else:  # not in any expected set: the reference was wrong, or the bot was
                target = next((m for m in self.messages if m.first_at is None),
                              self.messages[-1])
                target.unexpected += 1
        target.record(text, at)


class FakeGraph:
    """The Graph API's Send endpoint: records every reply, per recipient, with its arrival."""

    def __init__(self, page_token: str) -> None:
        self.page_token = page_token
        self.conversations: Dict[str, Conversation] = {}
        self.strays = 0  # replies to nobody we are simulating
        self.bad_requests = 0  # wrong token or messaging type
        self.sends = 0
        self.sender_actions = 0  # "seen" and "typing", not replies
        self.last_send = 0.0
        self.app = web.Application()
        self.app.router.add_post(META_SEND_PATH, self._send)
        self.runner: web.AppRunner | None = None

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _send(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        body = await request.json()
        if "sender_action" in body:
            # "seen" and "typing" (bot.delivery, since issue 10) share the endpoint: counted
            # apart, never as a reply.
            self.sender_actions += 1
            return web.json_response({"recipient_id": str(body["recipient"]["id"])})
        self.sends += 1
        self.last_send = arrived
        if (request.query.get("access_token") != self.page_token
                or body.get("messaging_type") != "RESPONSE"):
            self.bad_requests += 1
        recipient = str(body["recipient"]["id"])
        conversation = self.conversations.get(recipient)
        if conversation is None or not conversation.messages:
            self.strays += 1
        else:
            # The reference is Rasa's answer to the text alone: the "automated assistant"
            # line Beacon adds to a conversation's first reply (issue 10) is not part of it.
            # Matched with it, a reply was credited to an earlier message and the citizen
            # waited for one that had come (60 s timeouts in the first run after issue 10).
            conversation.on_reply(without_disclosure(body["message"]["text"]), arrived)
        return web.json_response({"recipient_id": recipient, "message_id": f"m_{self.sends}"})


# -- the simulated citizens -------------------------------------------------------------------

@dataclass
class Context:
    session: aiohttp.ClientSession
    graph: FakeGraph
    expect: Expectations
    stack: Stack
    secret: str
    gateways: itertools.cycle = field(init=False)

    def __post_init__(self) -> None:
        # One gateway per POST, round robin, as a load balancer in front of them would; a
        # retried webhook therefore usually lands on another process than the original.
        self.gateways = itertools.cycle(self.stack.gateway_urls)


async def post_webhook(ctx: Context, body: bytes) -> int:
    headers = {"X-Hub-Signature-256": meta_signature(body, ctx.secret),
               "Content-Type": "application/json"}
    try:
        async with ctx.session.post(f"{next(ctx.gateways)}/webhooks/meta", data=body,
                                    headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT)) as r:
            await r.read()
            return r.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return 0


async def beacon_citizen(ctx: Context, sender: str, messages: List[Planned]) -> List[Sent]:
    conversation = ctx.graph.conversations.setdefault(sender, Conversation())
    for k, planned in enumerate(messages):
        sent = Sent(planned.row.text, planned.row.outcome, ctx.expect.beacon(planned.row.text),
                    ctx.expect.flag(planned.row.text) is not None, k)
        conversation.messages.append(sent)  # before the POST: the reply may beat its 200
        body = json.dumps(messenger_payload(
            messenger_item(sender, planned.row.text, mid=f"m_{sender}_{k}"))).encode()
        sent.duplicate_posted = planned.duplicate
        sent.t_sent = time.perf_counter()
        # A retry sent while the original is still in flight is the hardest case for dedupe.
        posts = [post_webhook(ctx, body) for _ in range(2 if planned.duplicate else 1)]
        sent.statuses = list(await asyncio.gather(*posts))
        if not sent.accepted:
            sent.remaining.clear()  # nothing was taken in, so nothing should come back
            continue
        try:
            await asyncio.wait_for(sent.answered.wait(),
                                   REPLY_TIMEOUT - (time.perf_counter() - sent.t_sent))
        except asyncio.TimeoutError:
            sent.timed_out = True
            sent.credited_earlier = sum(1 for m in conversation.messages[:-1]
                                        for at in m.reply_times if at >= sent.t_sent)
            continue
        await read_whole_answer(sent)
    return conversation.messages


async def read_whole_answer(sent: Sent) -> None:
    """Wait until every expected reply came or none came for TAIL_QUIET seconds."""
    while sum(sent.remaining.values()) > 0:
        if time.perf_counter() - (sent.last_at or sent.t_sent) >= TAIL_QUIET:
            return
        await asyncio.sleep(0.05)


async def rasa_citizen(ctx: Context, rasa_url: str, sender: str,
                       messages: List[Planned]) -> List[Sent]:
    out = []
    for k, planned in enumerate(messages):
        sent = Sent(planned.row.text, planned.row.outcome, ctx.expect.rasa(planned.row.text),
                    ctx.expect.flag(planned.row.text) is not None, k)
        out.append(sent)
        sent.t_sent = time.perf_counter()
        try:
            status, texts = await rasa_texts(ctx.session, rasa_url, sender, planned.row.text)
        except asyncio.TimeoutError:
            sent.timed_out = True
            sent.statuses = [0]
            continue
        except aiohttp.ClientError:
            sent.statuses = [0]
            continue
        sent.statuses = [status]
        arrived = time.perf_counter()
        conversation = Conversation([sent])
        for text in texts:  # the same bookkeeping as for Beacon's replies
            conversation.on_reply(text, arrived)
        await read_whole_answer(sent)  # the same reading time as Beacon's citizens
    return out


async def settle(graph: FakeGraph, messages: Sequence[Sent]) -> None:
    """Wait for trailing replies (all expected ones, or a pause in sending), then a little
    longer so that late duplicates are counted too."""
    deadline = time.perf_counter() + SETTLE_MAX
    while time.perf_counter() < deadline:
        outstanding = sum(sum(m.remaining.values()) for m in messages if m.accepted)
        if outstanding == 0 or time.perf_counter() - graph.last_send > SETTLE_IDLE:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(DUPLICATE_QUIET)


def sender_id(nonce: str, phase: int, level: int, citizen: int) -> str:
    """A fresh numeric id (Messenger PSIDs are digits) per run, phase, level and citizen, so
    no tracker carries history from another level or run."""
    return f"{nonce}{phase}{level:02d}{citizen:05d}"


async def run_beacon(ctx: Context, senders: List[str], plans: List[List[Planned]]
                     ) -> tuple[List[Sent], float]:
    start = time.perf_counter()
    per_citizen = await asyncio.gather(*(beacon_citizen(ctx, s, p)
                                         for s, p in zip(senders, plans, strict=True)))
    elapsed = time.perf_counter() - start
    messages = [m for ms in per_citizen for m in ms]
    await settle(ctx.graph, messages)
    return messages, elapsed


async def run_rasa(ctx: Context, senders: List[str], plans: List[List[Planned]]
                   ) -> tuple[List[Sent], float]:
    urls = [ctx.stack.baseline_url] if ctx.stack.baseline_url else ctx.stack.rasa_urls
    start = time.perf_counter()
    pairs = enumerate(zip(senders, plans, strict=True))
    per_citizen = await asyncio.gather(*(rasa_citizen(ctx, urls[i % len(urls)], s, p)
                                         for i, (s, p) in pairs))
    return [m for ms in per_citizen for m in ms], time.perf_counter() - start


# -- numbers --------------------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats
    return ordered[int(rank) - 1]


def latency_stats(messages: Sequence[Sent], prefix: str) -> Dict[str, float | None]:
    ms = [(m.first_at - m.t_sent) * 1000 for m in messages if m.first_at is not None]
    return {f"{prefix}p{p}_ms": percentile(ms, p) for p in (50, 95, 99)}


def summarize(messages: Sequence[Sent], elapsed: float) -> Dict:
    answered = [m for m in messages if m.first_at is not None]
    urgent = [m for m in messages if m.urgent]
    flagged = [m for m in messages if m.flagged]
    notice_misses = [m for m in urgent if m.first_at is not None and not is_notice(m.first_text)]
    return {
        "messages": len(messages),
        "answered": len(answered),
        "seconds": elapsed,
        "msgs_per_s": len(answered) / elapsed if elapsed else 0.0,
        **latency_stats(messages, ""),
        "emergency_messages": len(urgent),
        **latency_stats(urgent, "emergency_"),
        "flagged_messages": len(flagged),
        **latency_stats(flagged, "flagged_"),
        # A level opens with every citizen's first message at once (the viral post's
        # burst); the checks of later messages meet a lane with less in line.
        "flagged_first_messages": sum(1 for m in flagged if m.index == 0),
        **latency_stats([m for m in flagged if m.index == 0], "flagged_first_"),
        **latency_stats([m for m in flagged if m.index > 0], "flagged_later_"),
        "non_200": sum(s != 200 for m in messages for s in m.statuses),
        "timeouts": sum(m.timed_out for m in messages),
        "timeouts_with_a_later_reply_credited_earlier": sum(
            1 for m in messages if m.timed_out and m.credited_earlier),
        "lost": sum(1 for m in messages if m.accepted and not m.replies),
        "missing_replies": sum(sum(m.remaining.values()) for m in messages if m.accepted),
        "duplicate_replies": sum(m.duplicates for m in messages),
        "unexpected_replies": sum(m.unexpected for m in messages),
        "webhooks_posted_twice": sum(m.duplicate_posted for m in messages),
        "emergency_first_not_notice": len(notice_misses),
        # A miss the reference shares is the classifier's, not a load effect.
        "emergency_first_not_notice_in_reference": sum(
            1 for m in notice_misses if not (m.expected and is_notice(m.expected[0]))),
        # No examples: the texts are a blind test set's, whose misses nobody reads.
        "urgent_notice_from_intake": (sum(1 for m in urgent if m.flagged) / len(urgent)
                                      if urgent else None),
        # A citizen's first message against its later ones: shows whether a conversation
        # that already has a worker is served ahead of those still waiting for one.
        "by_position": {k: latency_stats([m for m in messages if m.index == k], "")
                        for k in sorted({m.index for m in messages})},
    }


async def redis_checks(redis: Redis, senders: Sequence[str]) -> Dict[str, int]:
    """After a level: each citizen's conversation is at most once in the human queue, and no
    inbox is left with unprocessed messages."""
    ours = {s: Inbound(MESSENGER, PAGE_ID, s, "", "", 0.0).conversation_id for s in senders}
    entries: Counter = Counter()
    for member in await redis.zrange(keys.SINGLE.queue, 0, -1):
        # Counted by sender, so an entry under another form of the id would show up too.
        sender = member.rsplit(":", 1)[-1]
        if sender in ours:
            entries[sender] += 1
    async with redis.pipeline(transaction=False) as pipe:
        for conversation in ours.values():
            pipe.llen(keys.inbox(conversation))
        lengths = await pipe.execute()
    return {"conversations_queued": len(entries),
            "conversations_with_several_queue_entries": sum(n > 1 for n in entries.values()),
            "max_queue_entries_per_conversation": max(entries.values(), default=0),
            "inboxes_not_drained": sum(n > 0 for n in lengths)}


def cpu_now(stack: Stack) -> Dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {**stack.cpu(), "load generator": usage.ru_utime + usage.ru_stime}


def cpu_per_message(before: Dict[str, float], after: Dict[str, float],
                    messages: int) -> Dict[str, float]:
    """CPU milliseconds each process spent per message of a phase: on a shared machine this
    says more about cost than wall-clock latency does."""
    return {name: round(1000 * (after[name] - before.get(name, 0.0)) / max(messages, 1), 1)
            for name in after}


async def redis_calls(redis: Redis) -> Counter:
    """Commands Redis has executed so far, by name (INFO commandstats)."""
    stats = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def calls_per_message(before: Counter, after: Counter, messages: int,
                      top: int = 8) -> Dict[str, float]:
    """Redis commands per message in a phase, busiest first (INFO commandstats counts those
    run inside a Lua script too; :func:`round_trips` tells the two apart)."""
    delta = after - before
    out = {"total": round(sum(delta.values()) / max(messages, 1), 1)}
    out.update({name: round(n / max(messages, 1), 1) for name, n in delta.most_common(top)})
    return out


def memory_mib(stack: Stack) -> Dict[str, float]:
    """RSS per process, and Beacon's total (the stock-Rasa baseline left out)."""
    rss = {name: round(b / 2**20, 1) for name, b in stack.rss().items()}
    baseline = set(stack.names("baseline"))
    rss["beacon total"] = round(sum(v for n, v in rss.items() if n not in baseline), 1)
    return rss


# -- profiling --------------------------------------------------------------------------------

class Profiler:
    """py-spy record against the gateway and Rasa processes while a level runs."""

    def __init__(self, py_spy: str, out_dir: Path) -> None:
        self.py_spy = py_spy
        self.out_dir = out_dir
        self.procs: List[tuple[str, asyncio.subprocess.Process]] = []

    async def start(self, pids: Dict[str, int | None], label: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            if pid is None or not name.startswith(("gateway", "rasa")):
                continue
            out = self.out_dir / f"{name}-{label}.txt"
            # --nonblocking: sampling must not pause the servers (that would be the load);
            # raw (collapsed) stacks are summarized below and load into speedscope/flamegraph.
            proc = await asyncio.create_subprocess_exec(
                self.py_spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking",
                "--format", "raw", "--output", str(out),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            self.procs.append((str(out), proc))

    async def stop(self) -> List[str]:
        for _, proc in self.procs:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        await asyncio.gather(*(proc.wait() for _, proc in self.procs))
        done, self.procs = [path for path, _ in self.procs], []
        return done


def _frame(frame: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (file.py)', short enough for a table."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/", "python3.10/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _main_thread_stacks(path: str) -> tuple[Counter, int]:
    """Collapsed stacks of the main thread (the event loop) and the other threads' sample
    count. py-spy cannot tell idle threads in --nonblocking mode, so an idle executor thread
    would otherwise look busy."""
    stacks: Counter = Counter()
    other = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if stack.startswith("_run_module_as_main"):
            stacks[stack] += int(count)
        else:
            other += int(count)
    return stacks, other


def profile_summary(path: str, top: int = 15) -> str:
    """Where the event loop's time goes: project frames anywhere on the stack (inclusive),
    and leaf frames (self)."""
    stacks, other = _main_thread_stacks(path)
    total = sum(stacks.values())
    ours: Counter = Counter()
    leaf: Counter = Counter()
    for stack, n in stacks.items():
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        for frame in set(frames):
            if frame.split(" (", 1)[1].startswith(("bot/", "actions/", "rasa/core/",
                                                   "rasa/nlu/", "rasa/server", "rasa/utils")):
                ours[frame] += n
        leaf[frames[-1]] += n
    lines = [f"{Path(path).name}: {total} main-thread samples at 100 Hz "
             f"({other} in other threads, not counted)"]
    for title, counter in (("project and Rasa frames, inclusive", ours), ("self", leaf)):
        lines.append(f"  top {title}:")
        lines += [f"    {100 * n / max(total, 1):5.1f}%  {frame}"
                  for frame, n in counter.most_common(top)]
    return "\n".join(lines)


# -- one level ---------------------------------------------------------------------------------

async def warm_up(ctx: Context, nonce: str, level: int, rows: Sequence[Row]) -> None:
    """A few unmeasured messages through both paths, so the level starts warm."""
    plans = [[Planned(row, False)] for row in rows[:WARM_UP_CITIZENS]]
    await run_beacon(ctx, [sender_id(nonce, 3, level, i) for i in range(len(plans))], plans)
    await run_rasa(ctx, [sender_id(nonce, 4, level, i) for i in range(len(plans))], plans)


async def run_level(ctx: Context, args: argparse.Namespace, level: int, concurrency: int,
                    plans: List[List[Planned]], nonce: str, warm_rows: Sequence[Row],
                    redis: Redis, profiler: Profiler | None) -> Dict:
    await warm_up(ctx, nonce, level, warm_rows)
    beacon_senders = [sender_id(nonce, 1, level, i) for i in range(concurrency)]
    rasa_senders = [sender_id(nonce, 2, level, i) for i in range(concurrency)]
    if profiler:
        await profiler.start(ctx.stack.pids(), f"c{concurrency}")
    cpu, calls = [cpu_now(ctx.stack)], [await redis_calls(redis)]
    hostile: Dict[str, Counter] = {"webchat": Counter(), "login": Counter()}
    attackers = ([asyncio.create_task(hostile_traffic(ctx, kind, i, hostile[kind]))
                  for kind in ("webchat", "login") for i in range(2)] if args.hostile else [])
    beacon, beacon_s = await run_beacon(ctx, beacon_senders, plans)
    for task in attackers:
        task.cancel()
    await asyncio.gather(*attackers, return_exceptions=True)
    cpu.append(cpu_now(ctx.stack))
    calls.append(await redis_calls(redis))
    profiles = await profiler.stop() if profiler else []
    checks = await redis_checks(redis, beacon_senders)
    cpu.append(cpu_now(ctx.stack))
    calls.append(await redis_calls(redis))
    rasa, rasa_s = await run_rasa(ctx, rasa_senders, plans)
    cpu.append(cpu_now(ctx.stack))
    calls.append(await redis_calls(redis))
    return {"concurrency": concurrency, "beacon": summarize(beacon, beacon_s),
            "rasa": summarize(rasa, rasa_s), "redis": checks, "memory_mib": memory_mib(ctx.stack),
            "cpu_ms_per_message": {"beacon": cpu_per_message(cpu[0], cpu[1], len(beacon)),
                                   "rasa": cpu_per_message(cpu[2], cpu[3], len(rasa))},
            "redis_calls_per_message": {
                "beacon": calls_per_message(calls[0], calls[1], len(beacon)),
                "rasa": calls_per_message(calls[2], calls[3], len(rasa))},
            "graph_strays": ctx.graph.strays, "graph_bad_requests": ctx.graph.bad_requests,
            "hostile": {kind: dict(c) for kind, c in hostile.items()} if args.hostile else None,
            "profiles": profiles}


# Inputs that used to stall the gateway's event loop (issue 8, item 4).
HOSTILE_TEXTS = ("\ufdfa" * 4000, "😀" * 4000, "a\u0301\u0302\u0303" * 1000, "! " * 2000)
HOSTILE_LIMIT = 5000  # requests per attacker and level, at most


async def hostile_traffic(ctx: Context, kind: str, index: int, statuses: Counter) -> None:
    """Beside the citizens: unauthenticated web-chat posts of the worst texts from fresh
    sessions, or console password guesses, as fast as the gateway answers (bounded)."""
    base = ctx.stack.gateway_urls[index % len(ctx.stack.gateway_urls)]
    for n in range(HOSTILE_LIMIT):
        try:
            if kind == "webchat":
                body = {"session": f"hostile-{index}-{n:08d}-pad",
                        "text": HOSTILE_TEXTS[n % len(HOSTILE_TEXTS)]}
                async with ctx.session.post(f"{base}/chat/api/messages", json=body) as r:
                    statuses[r.status] += 1
            else:
                async with ctx.session.post(
                        f"{base}/console/login", allow_redirects=False,
                        data={"csrf": "x" * 32, "name": "alice", "password": f"guess-{n}"},
                        cookies={"beacon_login_csrf": "x" * 32}) as r:
                    statuses[r.status] += 1
        except aiohttp.ClientError:
            statuses["error"] += 1


# -- the report -----------------------------------------------------------------------------

def machine() -> Dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return {"nproc": str(len(os.sched_getaffinity(0))), "cpu": cpu,
            "python": platform.python_version(),
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def command_line() -> str:
    exe = Path(sys.executable)
    shown = str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else sys.executable
    return shlex.join([shown, *sys.argv])


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}×"


def results_table(levels: List[Dict]) -> List[str]:
    columns = ["concurrency", "system", "messages", "msg/s", "p50 ms", "p95 ms", "p99 ms",
               "emergency p50", "p95", "p99", "safety-net flagged p99",
               "flagged p99: first messages / later",
               "urgent with the notice from intake", "non-200", "timeouts",
               "lost", "missing replies", "duplicate replies", "emergency not 911-first"]
    out = ["| " + " | ".join(columns) + " |", "|---:|---|" + "---:|" * (len(columns) - 2)]
    for level in levels:
        for system in ("beacon", "rasa"):
            s = level[system]
            cells = [level["concurrency"], "Beacon" if system == "beacon" else "Rasa alone",
                     s["messages"], f"{s['msgs_per_s']:.1f}",
                     *(_ms(s[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "emergency_p50_ms",
                                           "emergency_p95_ms", "emergency_p99_ms",
                                           "flagged_p99_ms")),
                     f"{_ms(s.get('flagged_first_p99_ms'))} / "
                     f"{_ms(s.get('flagged_later_p99_ms'))}",
                     "-" if s.get("urgent_notice_from_intake") is None or system == "rasa"
                     else f"{s['urgent_notice_from_intake']:.2f}",
                     *(s[k] for k in ("non_200", "timeouts", "lost", "missing_replies",
                                      "duplicate_replies", "emergency_first_not_notice"))]
            out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return out


def ratio_table(levels: List[Dict]) -> List[str]:
    out = ["| concurrency | Beacon/Rasa msg/s | Beacon/Rasa p99 (all) "
           "| Beacon/Rasa p99 (emergencies) |", "|---:|---:|---:|---:|"]
    for level in levels:
        b, r = level["beacon"], level["rasa"]
        out.append(f"| {level['concurrency']} | {_ratio(b['msgs_per_s'], r['msgs_per_s'])} "
                   f"| {_ratio(b['p99_ms'], r['p99_ms'])} "
                   f"| {_ratio(b['emergency_p99_ms'], r['emergency_p99_ms'])} |")
    return out


def memory_table(levels: List[Dict]) -> List[str]:
    names = list(levels[0]["memory_mib"])
    out = ["| concurrency | " + " | ".join(f"{n} MiB" for n in names) + " |",
           "|---:|" + "---:|" * len(names)]
    out += [f"| {lv['concurrency']} | " + " | ".join(f"{lv['memory_mib'][n]:.0f}"
                                                       for n in names) + " |" for lv in levels]
    return out


def cpu_table(levels: List[Dict]) -> List[str]:
    names = list(levels[0]["cpu_ms_per_message"]["beacon"])
    out = ["| concurrency | phase | " + " | ".join(names) + " |",
           "|---:|---|" + "---:|" * len(names)]
    for lv in levels:
        for phase, label in (("beacon", "Beacon"), ("rasa", "Rasa alone")):
            cpu = lv["cpu_ms_per_message"][phase]
            out.append(f"| {lv['concurrency']} | {label} | "
                       + " | ".join(f"{cpu[n]:.0f}" for n in names) + " |")
    return out


def position_table(levels: List[Dict]) -> List[str]:
    positions = sorted({k for lv in levels for k in lv["beacon"]["by_position"]}, key=int)
    out = ["| concurrency | system | "
           + " | ".join(f"message {int(k) + 1} p50 / p99 ms" for k in positions) + " |",
           "|---:|---|" + "---:|" * len(positions)]
    for lv in levels:
        for system, label in (("beacon", "Beacon"), ("rasa", "Rasa alone")):
            stats = lv[system]["by_position"]
            out.append(f"| {lv['concurrency']} | {label} | " + " | ".join(
                f"{_ms(stats[k]['p50_ms'])} / {_ms(stats[k]['p99_ms'])}" if k in stats else "-"
                for k in positions) + " |")
    return out


def checks_table(levels: List[Dict]) -> List[str]:
    out = ["| concurrency | webhooks POSTed twice | duplicate replies | unexpected replies "
           "| conversations in queue | with >1 queue entry | inboxes not drained "
           "| replies to unknown recipients |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lv in levels:
        b, r = lv["beacon"], lv["redis"]
        out.append(f"| {lv['concurrency']} | {b['webhooks_posted_twice']} "
                   f"| {b['duplicate_replies']} | {b['unexpected_replies']} "
                   f"| {r['conversations_queued']} "
                   f"| {r['conversations_with_several_queue_entries']} "
                   f"| {r['inboxes_not_drained']} | {lv['graph_strays']} |")
    return out


ROUND_TRIP_CITIZENS = 10
MONITOR_END = "beacon-bench-monitor-end"


async def _monitored(redis_url: str, run) -> Dict[str, Counter]:
    """Run ``run()`` with Redis's MONITOR open: every command Redis executed in the meantime,
    by name, apart by who sent it (a client over the network, or a Lua script on the server).
    INFO commandstats counts both alike; only the first kind is a round trip."""
    seen: Dict[str, Counter] = {"sent": Counter(), "in_scripts": Counter()}
    by_client: Counter = Counter()
    async with Redis.from_url(redis_url, decode_responses=True) as redis:
        async with redis.monitor() as monitor:
            async def collect() -> None:
                while True:
                    info = await monitor.next_command()
                    words = str(info["command"]).split()
                    name = words[0].strip('"').lower() if words else ""
                    if name == "echo" and MONITOR_END in info["command"]:
                        return
                    if info["client_type"] == "lua":
                        seen["in_scripts"][name] += 1
                    else:
                        seen["sent"][name] += 1
                        if name == "evalsha" and len(words) > 1:  # which script
                            name = f"evalsha {words[1].strip(chr(34))[:8]}"
                        by_client[(f"{info['client_address']}:{info['client_port']}",
                                   name)] += 1

            collector = asyncio.create_task(collect())
            try:
                await run()
                await redis.echo(MONITOR_END)
                await asyncio.wait_for(collector, timeout=60)
            finally:
                collector.cancel()
            # Beacon's processes name their connections; Rasa's stores do not.
            names = {c["addr"]: c.get("name") or "rasa" for c in await redis.client_list()}
    seen["sent_by"] = Counter()
    for (address, name), n in by_client.items():
        process = names.get(address, "closed since")
        seen["sent_by"][process] += n
        seen.setdefault(f"sent_by {process}", Counter())[name] += n
    return seen


async def round_trips(ctx: Context, redis_url: str, nonce: str,
                      plans: List[List[Planned]]) -> Dict:
    """Redis commands per message sent over the network (round trips; a pipeline's commands
    counted one by one) and run inside scripts, for both systems, at low concurrency: MONITOR
    slows Redis, so this phase is apart from the timed levels."""
    count = sum(len(p) for p in plans)
    out: Dict = {"messages": count}
    for phase, system, runner in ((7, "beacon", run_beacon), (8, "rasa", run_rasa)):
        senders = [sender_id(nonce, phase, 0, i) for i in range(len(plans))]

        async def run(runner=runner, senders=senders) -> None:
            await runner(ctx, senders, plans)

        seen = await _monitored(redis_url, run)
        out[system] = {kind: calls_per_message(Counter(), counter, count, top=30)
                       for kind, counter in seen.items()}
    return out


def round_trip_lines(trips: Dict) -> List[str]:
    lines = ["", f"Redis commands per message by sender (MONITOR, {trips['messages']} messages "
                 f"from {ROUND_TRIP_CITIZENS} citizens, apart from the timed levels):", ""]
    for system in ("beacon", "rasa"):
        for kind, label in (("sent", "sent by a process (round trips)"),
                            ("sent_by", "sent, by process"),
                            ("in_scripts", "run inside scripts")):
            lines.append(f"- {system}, {label}: " + ", ".join(
                f"{name} {n}" for name, n in trips[system][kind].items()))
    return lines


def report(result: Dict) -> str:
    m = result["machine"]
    cfg = result["config"]
    lines = [f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
             f"load average at start {m['load_average']}",
             f"Command: `{result['command']}`",
             f"Stack: {cfg['gateways']} gateway(s), {cfg['rasa']} Rasa server(s), "
             f"{cfg['messages_per_citizen']} messages per citizen, "
             f"~{URGENT_SHARE:.0%} emergencies/crises, duplicate rate {cfg['duplicate_rate']}, "
             f"seed {cfg['seed']}"
             + (f", extra env {' '.join('='.join(kv) for kv in cfg['env'])}" if cfg["env"] else "")
             + f"; Rasa and the action server run under `{' '.join(cfg['rasa_nice'])}`",
             ""]
    if result.get("levels"):
        lines += results_table(result["levels"]) + [""] + ratio_table(result["levels"])
        lines += ["", "Memory (RSS incl. children, end of level):", ""]
        lines += memory_table(result["levels"])
        lines += ["", "Latency by position in the conversation (first reply):", ""]
        lines += position_table(result["levels"])
        lines += ["", "CPU milliseconds per message, per process (user + system):", ""]
        lines += cpu_table(result["levels"])
        lines += ["", "Redis commands per message (INFO commandstats; busiest first):", ""]
        lines += [f"- c={lv['concurrency']} {phase}: " + ", ".join(
            f"{name} {n}" for name, n in lv["redis_calls_per_message"][phase].items())
            for lv in result["levels"] for phase in ("beacon", "rasa")]
        if result["levels"][0].get("hostile"):
            lines += ["", "Hostile traffic beside the citizens (HTTP status: count):", ""]
            lines += [f"- c={lv['concurrency']} {kind}: {counts}"
                      for lv in result["levels"] for kind, counts in lv["hostile"].items()]
        lines += ["", "Exactly-once checks (Beacon phase; Redis read after it settled):", ""]
        lines += checks_table(result["levels"])
        lines += _footnotes(result["levels"])
    if result.get("round_trips"):
        lines += round_trip_lines(result["round_trips"])
    if result.get("cold_start"):
        lines += [""] + cold_start_table(result["cold_start"])
    return "\n".join(lines)


def _footnotes(levels: List[Dict]) -> List[str]:
    notes = []
    for lv in levels:
        for system in ("beacon", "rasa"):
            s = lv[system]
            if s.get("timeouts_with_a_later_reply_credited_earlier"):
                notes.append(
                    f"- c={lv['concurrency']} {system}: "
                    f"{s['timeouts_with_a_later_reply_credited_earlier']} of {s['timeouts']} "
                    "timeouts came while a reply that arrived after the message was sent was "
                    "credited to an earlier message of the conversation")
            if s["emergency_first_not_notice"]:
                notes.append(
                    f"- c={lv['concurrency']} {system}: {s['emergency_first_not_notice']} "
                    f"emergencies answered first with something else than the 911 notice, "
                    f"{s['emergency_first_not_notice_in_reference']} of them also in Rasa's "
                    f"reference answer (a triage miss, not load)")
        if lv["graph_bad_requests"]:
            notes.append(f"- c={lv['concurrency']}: {lv['graph_bad_requests']} Graph API "
                         "requests with a wrong token or messaging type")
    return ([""] + notes) if notes else []


# -- the runs -------------------------------------------------------------------------------------

async def load_run(args: argparse.Namespace, result: Dict) -> None:
    urgent, other = load_rows()
    rng = random.Random(args.seed)
    plans = {c: plan(rng, c, args.messages_per_citizen, urgent, other, args.duplicate_rate)
             for c in args.concurrency}
    trip_plans = plan(random.Random(args.seed + 1), ROUND_TRIP_CITIZENS,
                      args.messages_per_citizen, urgent, other, 0.0) if args.round_trips else []
    warm_rows = [urgent[0]] + other[:WARM_UP_CITIZENS - 1]
    nonce = str(secrets.randbelow(9 * 10**6) + 10**6)
    graph = FakeGraph(page_token=secrets.token_urlsafe(12))
    graph_url = await graph.start()
    secret = secrets.token_hex(16)
    stack = Stack(current_model(), gateways=args.gateways, rasa=args.rasa, graph_url=graph_url,
                  app_secret=secret, page_token=graph.page_token, keep=args.keep_logs,
                  extra_env=dict(args.env), baseline=True)
    profiler = Profiler(args.py_spy, Path(args.profile_dir)) if args.profile_dir else None
    try:
        print(f"[load] starting the stack in {stack.workdir} ...", file=sys.stderr)
        result["ready_seconds"] = await asyncio.to_thread(stack.start)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session, \
                Redis.from_url(stack.redis_url, decode_responses=True) as redis:
            texts = [p.row.text for ps in [*plans.values(), trip_plans] for c in ps for p in c]
            reference = await fetch_reference(session, stack.rasa_urls[0],
                                              texts + [r.text for r in warm_rows], nonce)
            ctx = Context(session, graph, Expectations(reference), stack, secret)
            result["levels"] = []
            for level, concurrency in enumerate(args.concurrency):
                print(f"[load] level {concurrency} ...", file=sys.stderr)
                result["levels"].append(await run_level(
                    ctx, args, level, concurrency, plans[concurrency], nonce, warm_rows,
                    redis, profiler))
            if args.round_trips:
                print("[load] Redis round trips (MONITOR) ...", file=sys.stderr)
                result["round_trips"] = await round_trips(ctx, stack.redis_url, nonce,
                                                          trip_plans)
    finally:
        if profiler:
            await profiler.stop()
        # The servers' logs say why a message was lost or late: keep them when one was.
        stack.keep = stack.keep or any(_had_errors(lv) for lv in result.get("levels", []))
        await asyncio.to_thread(stack.close)
        await graph.close()


def _had_errors(level: Dict) -> bool:
    return any(level[system][k] for system in ("beacon", "rasa")
               for k in ("non_200", "timeouts", "lost", "missing_replies", "duplicate_replies",
                         "unexpected_replies"))


async def _watch_ready(stack: Stack, name: str, t0: float, out: Dict[str, float]) -> None:
    service = stack.services[name]
    while not await asyncio.to_thread(service.is_ready):
        if service.proc is not None and service.proc.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up\n{service.tail()}")
        await asyncio.sleep(0.1)
    out[name] = time.perf_counter() - t0


async def _first_answer(ctx: Context, sender: str, row: Row, t0: float) -> Dict:
    """POST until the gateway takes the message, then wait for its first reply."""
    conversation = ctx.graph.conversations.setdefault(sender, Conversation())
    sent = Sent(row.text, row.outcome, [])
    conversation.messages.append(sent)
    body = json.dumps(messenger_payload(messenger_item(sender, row.text,
                                                       mid=f"m_{sender}_0"))).encode()
    deadline = t0 + 600
    while not sent.accepted:
        if time.perf_counter() > deadline:
            raise TimeoutError("the gateway accepted no webhook within 600 s")
        sent.statuses = [await post_webhook(ctx, body)]
        if not sent.accepted:
            await asyncio.sleep(0.1)
    accepted_at = time.perf_counter() - t0
    await asyncio.wait_for(sent.answered.wait(), 600)
    return {"accepted_s": accepted_at, "first_reply_s": sent.first_at - t0,
            "reply": sent.first_text}


async def cold_start(args: argparse.Namespace, result: Dict) -> None:
    """From launching every process (model already trained) to the first answered message."""
    _, other = load_rows()
    row = next(r for r in other if r.outcome == "faq")
    nonce = str(secrets.randbelow(9 * 10**6) + 10**6)
    graph = FakeGraph(page_token=secrets.token_urlsafe(12))
    graph_url = await graph.start()
    secret = secrets.token_hex(16)
    stack = Stack(current_model(), gateways=args.gateways, rasa=args.rasa, graph_url=graph_url,
                  app_secret=secret, page_token=graph.page_token, keep=args.keep_logs,
                  extra_env=dict(args.env))
    ready: Dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as session:
            ctx = Context(session, graph, SimpleNamespace(), stack, secret)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            stack.launch()  # Redis is waited for (milliseconds); the rest only launched
            early = asyncio.create_task(_first_answer(ctx, sender_id(nonce, 6, 0, 0), row, t0))
            await asyncio.gather(*(_watch_ready(stack, n, t0, ready) for n in stack.names()))
            after = await _first_answer(ctx, sender_id(nonce, 6, 0, 1), row, t0)
            first = await early
    finally:
        await asyncio.to_thread(stack.close)
        await graph.close()
    result["cold_start"] = {"ready_s": ready, "first_message": first,
                            "message_after_ready": after,
                            # Same text both times: a different early reply was not Rasa's.
                            "first_reply_from_rasa": first["reply"] == after["reply"],
                            "text": row.text}


def cold_start_table(cold: Dict) -> List[str]:
    first, after = cold["first_message"], cold["message_after_ready"]
    out = ["Cold start (seconds from launching the processes; model already trained):", "",
           "| event | seconds |", "|---|---:|"]
    out += [f"| {name} ready | {s:.1f} |" for name, s in cold["ready_s"].items()]
    out += [f"| first webhook accepted (200) | {first['accepted_s']:.1f} |",
            f"| first reply to it | {first['first_reply_s']:.1f} |",
            f"| first reply to a message sent once every service was ready "
            f"| {after['first_reply_s']:.1f} |"]
    source = "Rasa's answer" if cold["first_reply_from_rasa"] else \
        "NOT Rasa's answer (Rasa was not up yet)"
    out += ["", f"The first message's reply was {source}: {first['reply'][:100]!r}"]
    return out


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--rasa", type=int, default=1)
    parser.add_argument("--messages-per-citizen", type=int, default=4)
    parser.add_argument("--duplicate-rate", type=float, default=0.0)
    parser.add_argument("--hostile", action="store_true",
                        help="also flood the web chat with the worst texts and the console "
                             "login with guesses, to show the notice latency does not move")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-round-trips", dest="round_trips", action="store_false",
                        help="skip the MONITOR phase that counts Redis commands by sender")
    parser.add_argument("--json", help="write every number (and more) to this file")
    parser.add_argument("--cold-start", action="store_true",
                        help="measure start-up to first answer instead of the load levels")
    parser.add_argument("--profile-dir", help="py-spy record the gateways and Rasa servers "
                                              "during each Beacon phase, into this directory")
    parser.add_argument("--py-spy", default="/tmp/pyspy/bin/py-spy")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--env", action="append", default=[], type=_env_pair,
                        metavar="KEY=VALUE", help="extra environment for every server process "
                                                  "(experiments, e.g. a Sanic or Beacon setting)")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    # Ctrl-C and kill both unwind through the finally blocks that stop the servers (and a
    # shell starting this in the background would otherwise leave SIGINT ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args()
    result: Dict = {"machine": machine(), "command": command_line(),
                    "config": {**{k: v for k, v in vars(args).items() if k != "json"},
                               "rasa_nice": RASA_NICE}}
    asyncio.run(cold_start(args, result) if args.cold_start else load_run(args, result))
    print(report(result))
    for level in result.get("levels", []):
        for path in level["profiles"]:
            print("\n" + profile_summary(path))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
