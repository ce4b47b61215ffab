"""One request batcher for every front end that takes requests one at a time (`rubric-arm serve`,
the Inspect provider): requests that arrive together become one batched engine call.

The models are not thread-safe and batching is where the throughput is, so one worker thread
runs every call. A request is a list of items with a `kind` (which handler runs it) and a `key`
(settings that must be equal for two requests to share a call); the worker waits `window_s`
after the first request, then merges every queued request of the same kind and key, up to
`max_batch_items` items, and hands each request its own slice of the results. Requests of other
kinds or keys wait in arrival order for the next call. A handler's exception goes to every
request of its call; the worker goes on.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[Any, list[Any]], Sequence[Any]]


@dataclass
class _Request:
    kind: str
    key: Any
    items: list[Any]
    future: Future = field(default_factory=Future)


class RequestBatcher:
    """A worker thread that merges concurrent requests of equal (kind, key) into one call.

    Args:
        handlers: kind -> function(key, items) returning one result per item, in order.
        max_queue: requests that may wait (0: unbounded); `submit` raises `queue.Full` beyond.
        max_batch_items: the most items one handler call receives (a larger single request
            still runs, alone).
        window_s: how long the worker waits after a first request for others to merge with it.
    """

    def __init__(
        self,
        handlers: dict[str, Handler],
        *,
        max_queue: int = 0,
        max_batch_items: int = 512,
        window_s: float = 0.01,
        name: str = "rubric-arm-batcher",
    ) -> None:
        self.handlers = handlers
        self.max_batch_items = max_batch_items
        self.window_s = window_s
        self.queue: queue.Queue[_Request] = queue.Queue(maxsize=max_queue)
        self.calls = 0
        self.merged = 0
        self._held: list[_Request] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def submit(self, kind: str, key: Any, items: list[Any]) -> Future:
        """Queue a request; its future gets the results for `items` (raises queue.Full)."""
        if kind not in self.handlers:
            raise KeyError(f"no handler for request kind {kind!r}")
        request = _Request(kind, key, list(items))
        self.queue.put_nowait(request)
        return request.future

    async def run(self, kind: str, key: Any, items: list[Any]) -> list[Any]:
        """`submit` for asyncio callers: awaits the results without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(kind, key, items))

    def stop(self) -> None:
        """Let the worker exit after its current call (queued requests are not run)."""
        self._stop.set()

    def _next(self) -> _Request | None:
        if self._held:
            return self._held.pop(0)
        try:
            return self.queue.get(timeout=0.2)
        except queue.Empty:
            return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            first = self._next()
            if first is None:
                continue
            if self.window_s > 0:
                time.sleep(self.window_s)
            while True:
                try:
                    self._held.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            batch, size, rest = [first], len(first.items), []
            for request in self._held:
                fits = size + len(request.items) <= self.max_batch_items
                if (request.kind, request.key) == (first.kind, first.key) and fits:
                    batch.append(request)
                    size += len(request.items)
                else:
                    rest.append(request)
            self._held = rest
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        items = [item for request in batch for item in request.items]
        self.calls += 1
        self.merged += len(batch) - 1
        try:
            results = list(self.handlers[batch[0].kind](batch[0].key, items))
            if len(results) != len(items):
                raise RuntimeError(
                    f"the {batch[0].kind!r} handler returned {len(results)} results for "
                    f"{len(items)} items"
                )
        except Exception as exc:  # every request of the call gets the error
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        start = 0
        for request in batch:
            if not request.future.done():
                request.future.set_result(results[start : start + len(request.items)])
            start += len(request.items)
