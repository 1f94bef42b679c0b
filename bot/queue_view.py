"""Read-only views of the human queue for a busy shift: filters, transcript search, paging.

Everything runs in Redis over what the queue already keeps (the queue and claimed sorted
sets, each conversation's hash and transcript); nothing here writes.

How each filter is answered, cheapest first:

* urgent only, waiting longer than N minutes: score ranges of the queue sorted set (its
  score is ``priority * PRIORITY_SPAN + waiting-since ms``, so each priority is one band and
  "waiting since before the cutoff" is the start of each band). Counted with ZCOUNT and paged
  with ZRANGEBYSCORE ... LIMIT, so paging stays exact past any number of conversations.
* channel: the first part of the conversation id (``<channel>:<account>:<sender>``), no
  reads.
* outcome, language, "mine": fields of each candidate's hash, read in pipelined batches, at
  most ``MAX_EXAMINED`` candidates per request (in queue order); past that the answer says it
  is incomplete rather than taking Redis's time from the gateway.
* search: a bounded scan of the filtered candidates' transcripts (at most
  ``MAX_TRANSCRIPTS`` transcripts, the newest ``MAX_ENTRIES`` entries of each), and the
  answer says how many it read and whether that was all of them. Chosen over an inverted
  index: an index would be one more structure to keep right on every transcript write (the
  enqueue script's dedupe and replay rules, staff replies, deletions), on resolve and on
  retention expiry, while a search is an occasional request by one officer; filters narrow
  the scan first, and a few thousand short transcripts read in pipelined batches take tens
  of milliseconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from redis.asyncio import Redis

from bot import keys

# Conversations whose hash fields one request may read (outcome, language, mine).
MAX_EXAMINED = 10_000
# Transcripts one search may read, and entries read from the end of each.
MAX_TRANSCRIPTS = 2_000
MAX_ENTRIES = 500
_BATCH = 250
VIEWS = ("waiting", "mine", "held")


@dataclass(frozen=True)
class QueueFilter:
    """What an officer asked to see. Empty strings and zero mean "any"."""

    view: str = "waiting"  # waiting | mine (held by ``staff``) | held (by anyone)
    staff: str = ""
    urgent: bool = False
    outcome: str = ""
    channel: str = ""
    language: str = ""
    older_than_s: int = 0
    text: str = ""

    @property
    def needs_fields(self) -> bool:
        return bool(self.outcome or self.language or self.view == "mine"
                    or (self.view != "waiting" and (self.urgent or self.older_than_s)))


@dataclass
class Page:
    """One page of matching conversation ids, first to serve first, and how it was found."""

    ids: List[str]
    total: int
    # Candidates whose hash was read, and whether every candidate was (see MAX_EXAMINED).
    examined: int = 0
    complete: bool = True
    # Transcripts read by a search, and whether every filtered candidate's was.
    transcripts_read: int = 0
    search_complete: bool = True
    # For a search: the matching line of each conversation on the page.
    hits: Dict[str, str] = field(default_factory=dict)


class QueueView:
    """Filtered, searched and paged lists over the queue's Redis structures."""

    def __init__(self, redis: Redis, scope: keys.AgencyKeys = keys.SINGLE) -> None:
        self.redis = redis
        # One agency's queue: staff see only their own (bot.agencies).
        self.scope = scope

    async def find(self, wanted: QueueFilter, offset: int, limit: int,
                   now: float | None = None) -> Page:
        now_ms = int((now if now is not None else time.time()) * 1000)
        if wanted.view == "waiting" and not (wanted.needs_fields or wanted.channel
                                             or wanted.text):
            return await self._score_page(self._bands(wanted, now_ms), offset, limit)
        # Everything else filters a candidate list (ids in queue or claim order).
        if wanted.view == "waiting":
            ids: List[str] = []
            for low, high in self._bands(wanted, now_ms):
                ids += await self.redis.zrangebyscore(self.scope.queue, low, high)
        else:
            ids = await self.redis.zrange(self.scope.claimed, 0, -1)
        if wanted.channel:
            ids = [c for c in ids if c.startswith(wanted.channel + ":")]
        page = Page(ids=[], total=0)
        if wanted.needs_fields:
            ids, page.examined, page.complete = await self._by_fields(ids, wanted, now_ms)
        if wanted.text:
            ids, page.transcripts_read, page.search_complete, hits = await self._search(
                ids, wanted.text)
        else:
            hits = {}
        page.total = len(ids)
        page.ids = ids[offset:offset + limit]
        page.hits = {c: hits[c] for c in page.ids if c in hits}
        return page

    # -- score ranges -----------------------------------------------------------------------

    @staticmethod
    def _bands(wanted: QueueFilter, now_ms: int) -> List[Tuple[int, int]]:
        """Score ranges of the queue holding what ``wanted`` asks for (urgent, older than)."""
        span = keys.PRIORITY_SPAN
        cutoff = now_ms - wanted.older_than_s * 1000 if wanted.older_than_s else span - 1
        priorities = (0,) if wanted.urgent else (0, 1)
        return [(p * span, p * span + cutoff) for p in priorities]

    async def _score_page(self, bands: Sequence[Tuple[int, int]], offset: int,
                          limit: int) -> Page:
        counts = [await self.redis.zcount(self.scope.queue, low, high) for low, high in bands]
        ids: List[str] = []
        skip = offset
        for (low, high), count in zip(bands, counts, strict=True):
            if skip >= count:
                skip -= count
                continue
            if len(ids) < limit:
                ids += await self.redis.zrangebyscore(self.scope.queue, low, high, start=skip,
                                                      num=limit - len(ids))
            skip = 0
        return Page(ids=ids, total=sum(counts))

    # -- hash fields ------------------------------------------------------------------------

    async def _by_fields(self, ids: List[str], wanted: QueueFilter,
                         now_ms: int) -> Tuple[List[str], int, bool]:
        examined = ids[:MAX_EXAMINED]
        names = ("outcome", "language", "claimed_by", "priority", "waiting_since")
        kept = []
        for start in range(0, len(examined), _BATCH):
            chunk = examined[start:start + _BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for conversation_id in chunk:
                    pipe.hmget(keys.conversation(conversation_id), names)
                rows = await pipe.execute()
            for conversation_id, row in zip(chunk, rows, strict=True):
                meta = dict(zip(names, row, strict=True))
                if self._matches(meta, wanted, now_ms):
                    kept.append(conversation_id)
        return kept, len(examined), len(examined) == len(ids)

    @staticmethod
    def _matches(meta: Dict[str, str | None], wanted: QueueFilter, now_ms: int) -> bool:
        if wanted.outcome and meta["outcome"] != wanted.outcome:
            return False
        # A conversation without a language is answered in English (the console's default).
        if wanted.language and (meta["language"] or "en") != wanted.language:
            return False
        if wanted.view == "mine" and meta["claimed_by"] != wanted.staff:
            return False
        if wanted.view != "waiting":  # held lists: the score ranges did not apply
            if wanted.urgent and (meta["priority"] or "1") != "0":
                return False
            since = int(meta["waiting_since"] or 0)
            if wanted.older_than_s and (not since
                                        or since > now_ms - wanted.older_than_s * 1000):
                return False
        return True

    # -- transcripts ------------------------------------------------------------------------

    async def _search(self, ids: List[str],
                      text: str) -> Tuple[List[str], int, bool, Dict[str, str]]:
        needle = text.casefold()
        read = ids[:MAX_TRANSCRIPTS]
        kept, hits = [], {}
        for start in range(0, len(read), _BATCH):
            chunk = read[start:start + _BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for conversation_id in chunk:
                    pipe.lrange(keys.transcript(conversation_id), -MAX_ENTRIES, -1)
                    pipe.hget(keys.conversation(conversation_id), "preview")
                rows = await pipe.execute()
            for i, conversation_id in enumerate(chunk):
                lines = [json.loads(raw).get("text") or "" for raw in rows[2 * i]]
                lines.append(rows[2 * i + 1] or "")
                hit = next((line for line in lines if needle in line.casefold()), None)
                if hit is not None:
                    kept.append(conversation_id)
                    hits[conversation_id] = _snippet(hit, needle)
        return kept, len(read), len(read) == len(ids), hits


def _snippet(line: str, needle: str, around: int = 60) -> str:
    """The part of ``line`` around the first match, for the console to show. The match is
    found in the case-folded line and mapped back character by character ("ß" folds to
    "ss": positions in the folded line drift from the original's; live attack)."""
    folded: List[str] = []
    origin: List[int] = []  # for each folded character, its index in ``line``
    for i, char in enumerate(line):
        for part in char.casefold():
            folded.append(part)
            origin.append(i)
    at = "".join(folded).find(needle)
    if at < 0:
        return line[:2 * around] + ("…" if len(line) > 2 * around else "")
    first, last = origin[at], origin[at + len(needle) - 1] + 1
    start = max(0, first - around)
    end = min(len(line), last + around)
    return ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")
