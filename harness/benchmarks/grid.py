"""Multi-response items as pair grids: each correct (chosen) response against each incorrect
(rejected) one, judged pairwise and folded back per item by the benchmark's rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from rubric_arm.data.rows import MultiResponseItem
from rubric_arm.errors import InputError
from rubric_arm.records import JudgeRecord
from rubric_arm.types import PreferencePair


def grid_pairs(
    name: str,
    items: Sequence[Any],
    keep: Callable[[MultiResponseItem], bool] = lambda item: True,
) -> list[PreferencePair]:
    """Every grid pair of the kept items: correct response i as response_a, incorrect j as
    response_b, label "A", id "ITEM|c{i}r{j}" (the runner randomises the shown order)."""
    pairs = []
    for item in items:
        if not isinstance(item, MultiResponseItem):
            raise InputError(f"{name}: expected multi-response items, got {type(item).__name__}")
        if not keep(item):
            continue
        for i, good in enumerate(item.correct):
            for j, bad in enumerate(item.incorrect):
                meta = {"item": item.id, "ci": i, "ri": j}
                pairs.append(
                    PreferencePair(
                        f"{item.id}|c{i}r{j}", item.prompt, good, bad, "A", item.subset, meta
                    )
                )
    return pairs


def by_item(records: Sequence[JudgeRecord]) -> dict[str, list[JudgeRecord]]:
    """Grid records grouped by their item id (the part of the pair id before "|")."""
    items: dict[str, list[JudgeRecord]] = defaultdict(list)
    for r in records:
        items[r.id.split("|", 1)[0]].append(r)
    return items


def grid_key(rec: JudgeRecord) -> tuple[int, int]:
    """(i, j) of a grid record: its correct and incorrect response indices."""
    tail = rec.id.split("|", 1)[1]  # "c{i}r{j}"
    i, j = tail[1:].split("r")
    return int(i), int(j)


def cell(rec: JudgeRecord, yes: str, no: str) -> str | None:
    """`yes` when the judge preferred the labelled response, `no` when not, None without a verdict."""
    if rec.status != "ok" or rec.winner is None:
        return None
    return yes if rec.winner == rec.label else no
