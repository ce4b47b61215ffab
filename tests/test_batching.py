"""The shared request batcher (serve and the Inspect provider): merging, separation, limits."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from rubric_arm.harness.batching import RequestBatcher


class Recorder:
    """A handler that records each call and can be held until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, list[int]]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key: object, items: list[int]) -> list[int]:
        self.calls.append((key, list(items)))
        self.entered.set()
        assert self.release.wait(10)
        return [i * 10 for i in items]


def test_requests_queued_together_share_one_call_and_get_their_own_slices() -> None:
    rec = Recorder()
    rec.release.clear()
    b = RequestBatcher({"double": rec}, window_s=0.0)
    try:
        blocker = b.submit("double", "k", [0])
        assert rec.entered.wait(5)
        futures = [b.submit("double", "k", [i, i + 100]) for i in range(1, 4)]
        rec.release.set()
        assert blocker.result(5) == [0]
        assert [f.result(5) for f in futures] == [[10, 1010], [20, 1020], [30, 1030]]
        assert rec.calls[1] == ("k", [1, 101, 2, 102, 3, 103])
        assert (b.calls, b.merged) == (2, 2)
    finally:
        b.stop()


def test_other_keys_and_kinds_wait_for_their_own_call_in_arrival_order() -> None:
    rec, other = Recorder(), Recorder()
    rec.release.clear()
    b = RequestBatcher({"a": rec, "b": other}, window_s=0.0)
    try:
        first = b.submit("a", 1, [1])
        assert rec.entered.wait(5)
        x = b.submit("a", 2, [2])
        y = b.submit("b", 1, [3])
        z = b.submit("a", 2, [4])
        rec.release.set()
        assert [f.result(5) for f in (first, x, y, z)] == [[10], [20], [30], [40]]
        assert rec.calls == [(1, [1]), (2, [2, 4])]
        assert other.calls == [(1, [3])]
    finally:
        b.stop()


def test_a_call_never_exceeds_max_batch_items() -> None:
    rec = Recorder()
    rec.release.clear()
    b = RequestBatcher({"a": rec}, max_batch_items=3, window_s=0.0)
    try:
        b.submit("a", 0, [0])
        assert rec.entered.wait(5)
        futures = [b.submit("a", 0, [i, i]) for i in range(1, 4)]
        rec.release.set()
        [f.result(5) for f in futures]
        assert [len(items) for _, items in rec.calls] == [1, 2, 2, 2]
    finally:
        b.stop()


def test_errors_reach_every_request_of_the_call_and_the_worker_goes_on() -> None:
    def broken(_key: object, items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items[:-1] if 7 in items else items

    b = RequestBatcher({"a": broken}, window_s=0.0)
    try:
        with pytest.raises(ValueError, match="unlucky"):
            b.submit("a", 0, [13]).result(5)
        with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
            b.submit("a", 0, [7, 8]).result(5)
        assert b.submit("a", 0, [1, 2]).result(5) == [1, 2]
        with pytest.raises(KeyError, match="no handler"):
            b.submit("missing", 0, [1])
    finally:
        b.stop()


def test_a_full_queue_refuses_at_once() -> None:
    rec = Recorder()
    rec.release.clear()
    b = RequestBatcher({"a": rec}, max_queue=1, window_s=0.0)
    try:
        b.submit("a", 0, [1])
        assert rec.entered.wait(5)
        b.submit("a", 0, [2])
        with pytest.raises(queue.Full):
            b.submit("a", 0, [3])
        rec.release.set()
    finally:
        b.stop()


def test_asyncio_callers_from_several_event_loops() -> None:
    """Inspect may run evals on new event loops; the batcher is not tied to one."""
    b = RequestBatcher({"a": Recorder()}, window_s=0.01)

    async def many() -> list[list[int]]:
        return await asyncio.gather(*(b.run("a", 0, [i]) for i in range(5)))

    try:
        assert asyncio.run(many()) == [[0], [10], [20], [30], [40]]
        assert asyncio.run(many()) == [[0], [10], [20], [30], [40]]
        assert b.calls <= 4
    finally:
        b.stop()
