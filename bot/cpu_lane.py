"""The gateway's one CPU thread for the safety net, fed in priority order and in batches.

spaCy's pipelines are not meant to be shared between threads, and a check must never run
on the event loop that answers everyone else: one thread runs them all. Three rules decide
what it runs next:

* **Lanes.** Lower lanes go first (LANE_PLATFORM, LANE_WEB_CHAT, LANE_OVER_LIMIT): work
  from the unauthenticated web chat waits behind work from the signed platforms (a web-chat
  flood of the worst texts, 1,258 posts beside 50 Messenger citizens, must not hold up a
  Messenger emergency's check), and an address over its limit waits behind every other
  web-chat citizen (400 held refusals from one address delayed another address's emergency
  by 2 s; found by the live attack).
* **Turns between flows** (agencies) within a lane: start-time fair queueing. A job's tag
  is one more than the later of its flow's last tag in that lane and the tag of the lane's
  job started last, so a flow that floods the lane gets tags far ahead while a quiet
  flow's next job is tagged just after the current one (an agency's viral post, 1,200
  checks queued, held another agency's emergency 10-13 s at intake before; found by the
  live attack). Tags are kept per lane: with one count for all lanes, a web-chat flood
  pushed the same agency's Messenger checks behind another agency's (48 ms to 1.26 s;
  found by the next live attack).
* **Batches.** The thread takes the jobs at the head of the line together, as long as they
  are in one lane, call one function and stay within ``BATCH`` jobs and ``BATCH_COST``
  (characters, for checks): the urgency model's cost is mostly per call, so a burst's
  checks cost about half as much each (3.8 ms to 1.5 ms measured on blind3's texts), and
  the cost cap keeps a batch of the longest texts no longer than one check of a long text.

The thread takes its next jobs itself rather than through the event loop: under load the
trip back through the loop cost 2.7 ms between two checks, a third of the lane's time
(traced, 2026-11-30). With 200 citizens' first messages arriving at once, the flagged
messages' notice p99 went from 1.8 s to 0.6 s (README, Load).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
from typing import Callable, Dict, List, Sequence, Tuple

logger = logging.getLogger(__name__)

LANE_PLATFORM, LANE_WEB_CHAT, LANE_OVER_LIMIT = 0, 1, 2

# A batch: at most this many jobs, and this much cost (a check's cost is its text's length)
# unless it is one job.
BATCH = 16
BATCH_COST = 2000

# fn(items) -> one result per item, in order; fn([a, b]) == fn([a]) + fn([b]).
BatchFn = Callable[[Sequence], Sequence]


class CpuLane:
    """One thread running batch functions in lane, turn and arrival order (module doc)."""

    def __init__(self) -> None:
        self._heap: List[Tuple] = []
        self._cv = threading.Condition()
        self._count = itertools.count()
        self._now: Dict[int, int] = {}  # per lane, the tag of the job started last
        self._last: Dict[Tuple[int, str], int] = {}  # per lane and flow, the last tag
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        with self._cv:
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="cpu-lane",
                                                daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the thread after its current batch (jobs still queued are not run)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    async def run(self, priority: int, fn: BatchFn, item, *, flow: str = "",
                  cost: int = 1):
        """``fn([item])[0]``, run on the lane's thread, perhaps with other queued items."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        with self._cv:
            tag = max(self._last.get((priority, flow), 0), self._now.get(priority, 0)) + 1
            self._last[(priority, flow)] = tag
            if len(self._last) > 10_000:  # flows are agencies: a handful; never let it grow
                self._last = {(priority, flow): tag}
            heapq.heappush(self._heap, (priority, tag, next(self._count), fn, item, cost,
                                        done, loop))
            self._cv.notify()
        self.start()  # started with the app; again after a close (a test's second app)
        return await done

    def _next_batch(self) -> List[Tuple] | None:
        """The jobs to run next (under the lock), or None once closed."""
        while not self._heap and not self._closed:
            self._cv.wait()
        if self._closed:
            return None
        batch = [heapq.heappop(self._heap)]
        priority, fn, spent = batch[0][0], batch[0][3], batch[0][5]
        while (self._heap and len(batch) < BATCH and self._heap[0][0] == priority
               and self._heap[0][3] == fn and spent + self._heap[0][5] <= BATCH_COST):
            spent += self._heap[0][5]
            batch.append(heapq.heappop(self._heap))
        self._now[priority] = max(self._now.get(priority, 0), batch[-1][1])
        return batch

    def _serve(self) -> None:
        while True:
            with self._cv:
                batch = self._next_batch()
            if batch is None:
                return
            batch = [job for job in batch if not job[6].cancelled()]
            if not batch:
                continue
            for job, outcome in zip(batch, _call(batch[0][3], [job[4] for job in batch]),
                                    strict=True):
                try:
                    job[7].call_soon_threadsafe(_settle, job[6], outcome)
                except RuntimeError:  # its event loop has closed: nobody waits for it
                    pass


def _call(fn: BatchFn, items: List) -> List[Tuple[bool, object]]:
    """(ok, result or exception) per item. A failing batch is run again item by item, so
    one bad item fails alone."""
    try:
        results = list(fn(items))
        if len(results) != len(items):
            raise ValueError(f"{fn!r} gave {len(results)} results for {len(items)} items")
        return [(True, result) for result in results]
    except Exception as exc:  # noqa: BLE001 - handed to the callers
        if len(items) == 1:
            return [(False, exc)]
        logger.warning("a batch of %d failed (%s); running them one by one", len(items), exc)
        return [_call(fn, [item])[0] for item in items]


def _settle(done: asyncio.Future, outcome: Tuple[bool, object]) -> None:
    if done.done():
        return
    ok, value = outcome
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value)
