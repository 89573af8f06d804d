"""Dynamic batching for the server: requests that arrive while the model is busy, and under
concurrent traffic those within `max_wait_ms` of the first one, are decoded together in one
batched search on one worker thread (up to `max_batch_sentences` sentences within the token
budget of `max_batch_tokens` padded source tokens: nmt.data.batching's rule); each request gets
exactly its own sentences back, in order, and long requests are decoded in slices so that
short ones are not held behind them. The sentences waiting are bounded (`QueueFull` past the
bound), and a request whose client has gone is dropped: not decoded if it still waits, its
next slices not decoded if it was decoding.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nmt.data.batching import fits_token_budget
from nmt.inference.translator import Translation, Translator, search_options


class QueueFull(Exception):
    """More sentences wait than the server takes (serve.max_queued_sentences): answered 503."""


class ClientGone(Exception):
    """The client closed its connection before its translations were ready."""


@dataclass
class Ticket:
    """A request as the batcher tracks it across its slices: its size, and whether it was dropped."""

    sentences: int
    cancelled: bool = False


@dataclass
class Pending:
    """One slice of a request waiting in the batcher: its source ids, the request's decoding
    options, future and ticket, the translations of its slices decoded so far, the slices to come."""

    sources: list[list[int]]
    options_key: tuple[int, int, bool]  # (beam_size, n_best, attention): batched with others of the same key
    future: asyncio.Future
    ticket: Ticket
    results: list = field(default_factory=list)
    rest: list = field(default_factory=list)  # the request's later slices

    def next_slice(self) -> "Pending":
        return Pending(self.rest[0], self.options_key, self.future, self.ticket, self.results, self.rest[1:])


class DynamicBatcher:
    """Gathers concurrent requests and decodes them in one batched search on one worker thread.

    A batch opens with the first waiting request and takes every request that arrives within
    `max_wait_ms`, up to `max_batch_sentences` sentences within the token budget of
    `max_batch_tokens` padded source tokens (a single request larger than that is decoded
    alone). While a batch decodes, new requests queue and form the next one.
    `max_batch_sentences=1` turns batching off. A request of more than `max_slice` sentences is
    decoded a slice at a time, each next slice queued behind the requests that came meanwhile:
    one client's large request delays another's by one slice, not by all of it."""

    def __init__(self, translator: Translator, max_wait_ms: float, max_batch_sentences: int, max_batch_tokens: int,
                 max_slice: int = 16, max_waiting: int = 1024, watch_seconds: float = 0.1):
        self.translator, self.max_slice = translator, max_slice
        self.max_waiting, self.waiting = max_waiting, 0  # sentences submitted and not yet answered
        self.watch_seconds = watch_seconds
        self.max_wait = max_wait_ms / 1000.0
        self.max_sentences, self.max_tokens = max_batch_sentences, max_batch_tokens
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="nmt-decode")
        self.carry: Pending | None = None  # a request that did not fit the previous batch
        self.stats = {"requests": 0, "sentences": 0, "batches": 0, "largest_batch": 0, "abandoned": 0, "refused_busy": 0}
        self.task: asyncio.Task | None = None
        self.last_batch_requests = 0  # > 1: there is concurrent traffic worth waiting for

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def submit(self, sources: list[list[int]], options, attention: bool = False,
                     client_gone=None) -> list[Translation]:
        """Decode `sources` with the search `options` (batched with other requests of the same
        beam_size, n_best and attention); their translations, in order. QueueFull when the
        sentences waiting would pass the bound. `client_gone` (an async function): asked every
        `watch_seconds` while the request waits; when true the request is dropped (ClientGone)."""
        if self.waiting + len(sources) > self.max_waiting:
            self.stats["refused_busy"] += 1
            raise QueueFull(f"{self.waiting} sentences are waiting (serve.max_queued_sentences={self.max_waiting})")
        future = asyncio.get_running_loop().create_future()
        ticket = Ticket(len(sources))
        self.waiting += ticket.sentences
        slices = [sources[i:i + self.max_slice] for i in range(0, len(sources), self.max_slice)] or [[]]
        try:
            await self.queue.put(Pending(slices[0], (options.beam_size, options.n_best, attention), future, ticket,
                                         [], slices[1:]))
            while client_gone is not None and not future.done():
                await asyncio.wait({future}, timeout=self.watch_seconds)
                if not future.done() and await client_gone():
                    ticket.cancelled = True
                    self.stats["abandoned"] += 1
                    raise ClientGone()
            return await future
        finally:
            self.waiting -= ticket.sentences

    async def _next(self, timeout: float | None) -> Pending | None:
        if self.carry is not None:
            item, self.carry = self.carry, None
            return item
        if timeout is None:
            return await self.queue.get()
        if timeout <= 0:
            return self.queue.get_nowait() if not self.queue.empty() else None
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _next_live(self, timeout: float | None) -> Pending | None:
        """The next slice whose request was not dropped (a dropped one is discarded here)."""
        while True:
            item = await self._next(timeout)
            if item is None or not item.ticket.cancelled:
                return item

    async def _gather(self) -> list[Pending]:
        first = await self._next_live(None)
        batch, n, longest = [first], len(first.sources), max(map(len, first.sources), default=0)
        # requests queued while the model was busy always join; waiting for more pays only under
        # concurrent traffic (the last batch held several requests): a lone client is never delayed
        deadline = time.perf_counter() + (self.max_wait if self.last_batch_requests > 1 else 0.0)
        while n < self.max_sentences:
            item = await self._next_live(deadline - time.perf_counter())
            if item is None:
                break
            size, item_longest = len(item.sources), max(max(map(len, item.sources), default=0), longest)
            # a large request's next slice does not join a batch that others opened: they would
            # wait for the slice's decoding; it opens the next batch instead
            continuing = bool(item.results) and item.future is not first.future
            if continuing or n + size > self.max_sentences or \
                    not fits_token_budget(n + size, item_longest, self.max_tokens):
                self.carry = item
                break
            batch.append(item)
            n, longest = n + size, item_longest
        self.last_batch_requests = len(batch)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            groups: dict[tuple[int, int, bool], list[Pending]] = {}
            for item in batch:
                groups.setdefault(item.options_key, []).append(item)
            for (beam_size, n_best, attention), items in groups.items():
                sources = [s for item in items for s in item.sources]
                opts = search_options(self.translator.options, beam_size=beam_size, n_best=n_best)
                try:
                    results = await loop.run_in_executor(self.executor, self._decode, sources, opts, attention)
                except Exception as err:  # a bug, not bad input (that is refused before): fail these requests only
                    for item in items:
                        if not item.future.done() and not item.ticket.cancelled:
                            item.future.set_exception(err)
                    continue
                self.stats["batches"] += 1
                self.stats["largest_batch"] = max(self.stats["largest_batch"], len(sources))
                start = 0
                for item in items:
                    k = len(item.sources)
                    item.results.extend(results[start:start + k])
                    start += k
                    self.stats["sentences"] += k
                    if item.ticket.cancelled:  # its client left while this slice decoded: no more of it
                        continue
                    if item.rest:  # behind the requests that came while this slice decoded
                        self.queue.put_nowait(item.next_slice())
                    elif not item.future.done():
                        item.future.set_result(item.results)
                        self.stats["requests"] += 1

    def _decode(self, sources: list[list[int]], opts, attention: bool = False) -> list[Translation]:
        return self.translator.translations(sources, opts, attention)
