"""Data that is not a benchmark of its own: training pairs (OpenRubric-v2) and the prompt sources
the pair builders sample from (IFBench, IFEval, InfoBench, FollowBench), by name.

`rubric-arm data build-pairs --source NAME` and the trainer look names up in `SOURCES`; the
reward-model benchmarks are in `rubric_arm.harness.benchmarks`, one file each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from rubric_arm.data import if_sources
from rubric_arm.data.rows import (
    BenchmarkPairs,
    HubSource,
    optional_text,
    read_rows,
)
from rubric_arm.errors import InputError
from rubric_arm.types import PreferencePair, normalize_label, text_field, validate_prompt

OPENRUBRIC_HUB = HubSource("OpenRubrics/OpenRubric-v2", None, "train")


class DataSource(NamedTuple):
    """A named source: the function that loads it (a local file or None for the hub) and where
    it lives on the hub."""

    loader: Callable[..., Any]
    hub: HubSource


def load_openrubric(source: str | Path | None = None, *, split: str = "train") -> BenchmarkPairs:
    """OpenRubric-v2 (training data): pairs in the given order, label from `winner`.

    The reference rubric and source go to metadata, with every further column kept as is
    (the judge-trajectory column's name is not documented upstream).
    """
    cols = ("instruction", "response_a", "response_b", "winner", "rubric", "source")
    rows, src = read_rows(source, OPENRUBRIC_HUB, "openrubric-v2", cols, split)
    pairs = BenchmarkPairs()
    for i, (row, where) in enumerate(zip(rows, src, strict=True)):
        label = normalize_label(row["winner"], f"{where}: field 'winner'")
        if label is None:
            raise InputError(f"{where}: field 'winner' is empty")
        extra = {k: v for k, v in row.items() if k not in cols}
        meta = {"rubric": optional_text(row, "rubric", where), "extra": extra}
        pid = str(row["id"]) if "id" in row and row["id"] is not None else str(i)
        pairs.append(
            PreferencePair(
                pid,
                validate_prompt(row["instruction"], f"{where}: field 'instruction'"),
                text_field(row, "response_a", where),
                text_field(row, "response_b", where),
                label,
                text_field(row, "source", where),
                meta,
            )
        )
    return pairs


SOURCES: dict[str, DataSource] = {
    "openrubric-v2": DataSource(load_openrubric, OPENRUBRIC_HUB),
    "ifbench-prompts": DataSource(if_sources.load_ifbench_prompts, if_sources.IFBENCH_HUB),
    "ifeval-prompts": DataSource(if_sources.load_ifeval_prompts, if_sources.IFEVAL_HUB),
    "infobench": DataSource(if_sources.load_infobench, if_sources.INFOBENCH_HUB),
    "followbench": DataSource(if_sources.load_followbench, if_sources.FOLLOWBENCH_HUB),
}
