"""JudgeBench (ScalerLab/JudgeBench, split "gpt"): every pair judged in both orders, scored by the
official +1/-1 rule per pair, per source and overall (BENCHMARKS.md)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rubric_arm.data.rows import (
    BenchmarkPairs,
    HubSource,
    chosen_first,
    optional_text,
    read_rows,
    row_id,
)
from rubric_arm.errors import InputError
from rubric_arm.harness import scoring
from rubric_arm.harness.benchmarks.base import EvalBenchmark, Metric, metric
from rubric_arm.records import JudgeRecord
from rubric_arm.types import flip, text_field, validate_prompt

HUB = HubSource("ScalerLab/JudgeBench", None, "gpt")


def load_judgebench(source: str | Path | None = None, *, split: str = "gpt") -> BenchmarkPairs:
    """JudgeBench: label "A>B" or "B>A"; the winner becomes response_a, subset = source."""
    cols = (
        "pair_id",
        "original_id",
        "source",
        "question",
        "response_model",
        "response_A",
        "response_B",
        "label",
    )
    rows, src = read_rows(source, HUB, "judgebench", cols, split)
    pairs = BenchmarkPairs()
    for row, where in zip(rows, src, strict=True):
        label = row["label"]
        if label not in ("A>B", "B>A"):
            raise InputError(f"{where}: field 'label' must be 'A>B' or 'B>A', got {label!r}")
        a, b = text_field(row, "response_A", where), text_field(row, "response_B", where)
        chosen, rejected = (a, b) if label == "A>B" else (b, a)
        meta = {
            "original_id": row["original_id"],
            "response_model": optional_text(row, "response_model", where),
            "original_label": label,
        }
        pairs.append(
            chosen_first(
                row_id(row, "pair_id", where),
                validate_prompt(row["question"], f"{where}: field 'question'"),
                chosen,
                rejected,
                text_field(row, "source", where),
                meta,
            )
        )
    return pairs


def score_judgebench(records: Sequence[JudgeRecord], *, seed: int = 0, **_: Any) -> list[Metric]:
    """JudgeBench's both-order rule per pair, per source and overall."""
    by_source: dict[str, list[float]] = defaultdict(list)
    for r in records:
        verdicts = {j.order: j.winner for j in r.judgments}
        fwd = verdicts.get("AB")
        swapped_raw = verdicts.get("BA")
        # judgments store winners in the pair's own labels; judgebench_item wants the raw
        # verdict of the swapped prompt, i.e. mapped back.
        swapped = flip(swapped_raw)
        label = "A>B" if r.label == "A" else "B>A"
        by_source[str(r.subset)].append(scoring.judgebench_item(fwd, swapped, label))
    metrics = [
        metric(s, v, [r for r in records if str(r.subset) == s], seed)
        for s, v in sorted(by_source.items())
    ]
    all_scores = [x for v in by_source.values() for x in v]
    metrics.append(metric("overall", all_scores, records, seed, note="both orders, +1/-1 rule"))
    return metrics


BENCHMARK = EvalBenchmark(
    "judgebench",
    load_judgebench,
    "JudgeBench (both orders)",
    scorer=score_judgebench,
    orders="both",
    hub=HUB,
)
