"""Any JSONL file of pairs (`--data FILE`; one PreferencePair per line), scored as pairwise
accuracy: the pairs a user or `rubric-arm data build-pairs` made."""

from __future__ import annotations

from pathlib import Path

from rubric_arm.data.jsonl import read_jsonl
from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks.base import EvalBenchmark
from rubric_arm.types import PreferencePair


def load(source: str | Path | None = None, *, split: str | None = None) -> list[PreferencePair]:
    """Every line of `source` as a pair; a bad line is an error naming it."""
    if source is None:
        raise InputError("the 'pairs' benchmark needs --data <file.jsonl>")
    pairs = []
    for i, row in read_jsonl(source):
        if isinstance(row, InputError):
            raise row
        pairs.append(PreferencePair.from_dict(row, i))
    return pairs


BENCHMARK = EvalBenchmark("pairs", load, "a JSONL of pairs")
