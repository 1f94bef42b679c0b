"""Benchmark `python -m bot triage`: model load, messages per second, p50/p99 per message.

Two views of the same path:
* in-process: Triager.load() once, then triage() per message, each timed;
* the CLI as a citizen-free batch job: a subprocess over a file, wall time to the first
  JSON line (start-up + load) and to the last.

Usage: .venv/bin/python bench/triage.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.department import load_department  # noqa: E402
from bot.engine import Triager  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.training import current_model  # noqa: E402


def messages(n: int) -> list[str]:
    rows = [json.loads(x)["text"] for x in (ROOT / "tests/data/heldout.jsonl").open()]
    return [rows[i % len(rows)] for i in range(n)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def in_process(texts: list[str]) -> dict:
    start = time.perf_counter()
    triager = Triager.load(current_model(), load_department(Settings.from_env().department_file))
    load_s = time.perf_counter() - start
    now = dt.datetime.now(dt.timezone.utc)
    await triager.triage("warm up", monitoring=False, now=now)
    times = []
    t0 = time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        await triager.triage(text, monitoring=False, now=now)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    return {"load_s": load_s, "msgs_per_s": len(texts) / total,
            "p50_ms": pct(times, 50) * 1000, "p99_ms": pct(times, 99) * 1000,
            "mean_ms": statistics.mean(times) * 1000}


def cli(texts: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(t.replace("\n", " ") for t in texts) + "\n")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "triage", "--file", f.name, "--monitoring", "off"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "BEACON_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    first = None
    count = 0
    for _ in proc.stdout:
        count += 1
        if first is None:
            first = time.perf_counter() - start
    proc.wait()
    total = time.perf_counter() - start
    os.unlink(f.name)
    return {"first_line_s": first, "total_s": total, "lines": count,
            "msgs_per_s_after_load": (count - 1) / (total - first) if count > 1 else 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    texts = messages(args.messages)
    inproc = asyncio.run(in_process(texts))
    batch = cli(texts)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"messages: {len(texts)} (the held-out set, repeated)")
    print("| measure | value |")
    print("|---|---|")
    print(f"| model load (in-process) | {inproc['load_s']:.1f} s |")
    print(f"| triage throughput (in-process, one at a time) | {inproc['msgs_per_s']:.0f} msg/s |")
    print(f"| per message p50 / p99 | {inproc['p50_ms']:.1f} ms / {inproc['p99_ms']:.1f} ms |")
    print(f"| CLI: start to first JSON line | {batch['first_line_s']:.1f} s |")
    print(f"| CLI: {batch['lines']} lines, total | {batch['total_s']:.1f} s |")
    print(f"| CLI throughput after load | {batch['msgs_per_s_after_load']:.0f} msg/s |")


if __name__ == "__main__":
    main()
