"""Dynamic batching: requests queued within a delay are stacked into one ONNX Runtime run and split back.

Invariant: every submitted request gets exactly its own rows back, computed by one session run that
held only requests of the same per-sample shape and dtype, in arrival order; the queue is bounded
(``submit`` raises :class:`~zoo.errors.Unavailable` when it is full, it never grows without limit);
``close`` finishes everything already queued before the workers stop.

One worker coroutine per instance takes the first waiting request, then whatever else arrives within
``max_queue_delay`` (0: only what is already waiting, the way Triton's default batcher adds no delay),
up to ``max_batch_size`` rows, and runs the batch on its own session in a worker thread (ORT releases
the GIL), so the event loop keeps parsing requests while a batch computes.
"""
from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..errors import Unavailable

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Item:
    x: np.ndarray
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    def fits(self, other: _Item) -> bool:
        return self.x.shape[1:] == other.x.shape[1:] and self.x.dtype == other.x.dtype


@dataclass(frozen=True)
class BatchStats:
    """What one batch cost: observed by the metrics."""

    rows: int
    queue_s: tuple[float, ...]
    compute_s: float


class Batcher:
    """Queue + ``len(runners)`` workers, each running batches on its own runner (session)."""

    def __init__(self, runners: Sequence[Runner], *, max_batch_size: int, max_queue_delay_us: int, max_queue: int,
                 on_batch: Callable[[BatchStats], None] | None = None, name: str = "model"):
        self._runners = list(runners)
        self.max_batch_size = max(1, int(max_batch_size))
        self._delay = max(0, int(max_queue_delay_us)) / 1e6
        self.max_queue = max(1, int(max_queue))
        self._queue: collections.deque[_Item] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._on_batch = on_batch
        self._pool = ThreadPoolExecutor(len(self._runners), thread_name_prefix=f"zoo-serve-{name}")
        self._workers: list[asyncio.Task] = []
        self._closing = False
        self.name = name

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._workers = [asyncio.ensure_future(self._work(runner)) for runner in self._runners]

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, x: np.ndarray) -> asyncio.Future:
        """Queue one request's batch ``x``; the future resolves to its output rows. Synchronous: no await
        between the caller choosing this batcher and the request being queued on it."""
        if len(self._queue) >= self.max_queue:
            raise Unavailable(f"Expected a free place in {self.name}'s queue. Received: a request with all "
                              f"{self.max_queue} places taken", hint="retry after a short back-off, or start the "
                                                                    "server with more --instances or a larger --max-queue")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(x, future))
        assert self._wake is not None
        self._wake.set()
        return future

    async def _next(self) -> _Item | None:
        assert self._wake is not None
        while not self._queue:
            if self._closing:
                return None
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()

    def _take_compatible(self, batch: list[_Item], rows: int) -> int:
        """Move queued requests that fit ``batch`` into it (in order; stop at the first that does not)."""
        while self._queue and rows < self.max_batch_size:
            item = self._queue[0]
            if item.future.done():  # timed out or cancelled while queued
                self._queue.popleft()
                continue
            if not batch[0].fits(item) or rows + item.rows > self.max_batch_size:
                break
            batch.append(self._queue.popleft())
            rows += item.rows
        return rows

    async def _work(self, runner: Runner) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next()
            if first is None:
                return
            if first.future.done():
                continue
            batch = [first]
            rows = self._take_compatible(batch, first.rows)
            if self._delay and rows < self.max_batch_size:
                deadline = loop.time() + self._delay
                while rows < self.max_batch_size and (left := deadline - loop.time()) > 0:
                    assert self._wake is not None
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except TimeoutError:
                        pass
                    before = rows
                    rows = self._take_compatible(batch, rows)
                    if rows == before and self._queue:  # the head does not fit: run what we have
                        break
                if self._queue:
                    assert self._wake is not None
                    self._wake.set()  # let another worker see what is left
            await self._run(loop, runner, batch, rows)

    async def _run(self, loop: asyncio.AbstractEventLoop, runner: Runner, batch: list[_Item], rows: int) -> None:
        started = time.perf_counter()
        x = batch[0].x if len(batch) == 1 else np.concatenate([item.x for item in batch])
        try:
            y = await loop.run_in_executor(self._pool, runner, x)
        except Exception as exc:  # an ORT failure fails this batch's requests, not the server
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        done = time.perf_counter()
        at = 0
        for item in batch:
            if not item.future.done():
                item.future.set_result(y[at:at + item.rows])
            at += item.rows
        if self._on_batch is not None:
            self._on_batch(BatchStats(rows, tuple(started - item.queued_at for item in batch), done - started))

    async def close(self) -> None:
        """Finish what is queued, then stop the workers and their threads."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._pool.shutdown(wait=False)


__all__ = ["BatchStats", "Batcher"]
