"""RewardBench v1 (allenai/reward-bench, split "filtered"): pairwise accuracy per subset, the four
sections with the official subset weights, and their mean (BENCHMARKS.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rubric_arm.data.rows import (
    BenchmarkPairs,
    HubSource,
    chosen_first,
    optional_text,
    read_rows,
    row_id,
)
from rubric_arm.harness import scoring
from rubric_arm.harness.benchmarks.base import (
    EvalBenchmark,
    Metric,
    failures,
    pair_credit,
    score_pairwise,
)
from rubric_arm.harness.stats import grouped_bootstrap_ci
from rubric_arm.records import JudgeRecord
from rubric_arm.types import text_field, validate_prompt

HUB = HubSource("allenai/reward-bench", None, "filtered")


def load_rewardbench(
    source: str | Path | None = None, *, split: str = "filtered"
) -> BenchmarkPairs:
    """RewardBench v1: one pair per row, chosen first with label "A", subset kept."""
    cols = ("id", "prompt", "chosen", "chosen_model", "rejected", "rejected_model", "subset")
    rows, src = read_rows(source, HUB, "rewardbench", cols, split)
    pairs = BenchmarkPairs()
    for row, where in zip(rows, src, strict=True):
        pid = row_id(row, "id", where)
        meta = {
            "chosen_model": optional_text(row, "chosen_model", where),
            "rejected_model": optional_text(row, "rejected_model", where),
        }
        pairs.append(
            chosen_first(
                pid,
                validate_prompt(row["prompt"], f"{where}: field 'prompt'"),
                text_field(row, "chosen", where),
                text_field(row, "rejected", where),
                text_field(row, "subset", where),
                meta,
            )
        )
    return pairs


def score_rewardbench(
    records: Sequence[JudgeRecord], *, tie_credit: float, seed: int = 0, **_: Any
) -> list[Metric]:
    """Subset accuracies, then the official weighted section scores and their mean (CIs resample
    within subsets)."""
    metrics = score_pairwise(records, tie_credit=tie_credit, seed=seed)
    metrics = [m for m in metrics if m.name != "overall"]
    scores = np.array([pair_credit(r, tie_credit) for r in records])
    subsets = [str(r.subset) for r in records]
    section_of = {s: sec for sec, ws in scoring.REWARDBENCH_SECTIONS.items() for s in ws}
    present = {
        sec: [s for s in ws if s in subsets] for sec, ws in scoring.REWARDBENCH_SECTIONS.items()
    }
    present = {sec: ss for sec, ss in present.items() if ss}
    section_values = []
    for sec, ss in present.items():
        weights = scoring.REWARDBENCH_SECTIONS[sec]
        idx = [i for i, s in enumerate(subsets) if s in ss]

        def combine(
            means: dict[Any, np.ndarray], ss: list[str] = ss, w: dict[str, int] = weights
        ) -> np.ndarray:
            total = sum(w[s] for s in ss)
            return sum(means[s] * w[s] for s in ss) / total

        est = grouped_bootstrap_ci(scores[idx], [subsets[i] for i in idx], combine, seed=seed)
        recs = [records[i] for i in idx]
        parse, nj = failures(recs)
        metrics.append(Metric(f"section: {sec}", est, parse, nj, note="official subset weights"))
        section_values.append((sec, ss, weights))
    if section_values:
        idx = [i for i, s in enumerate(subsets) if s in section_of]

        def overall(means: dict[Any, np.ndarray]) -> np.ndarray:
            per = [
                sum(means[s] * w[s] for s in ss) / sum(w[s] for s in ss)
                for _, ss, w in section_values
            ]
            return sum(per) / len(per)

        est = grouped_bootstrap_ci(scores[idx], [subsets[i] for i in idx], overall, seed=seed)
        recs = [records[i] for i in idx]
        parse, nj = failures(recs)
        note = f"mean of {len(section_values)} section(s) present"
        metrics.append(Metric("overall", est, parse, nj, note=note))
    return metrics


BENCHMARK = EvalBenchmark(
    "rewardbench",
    load_rewardbench,
    "RewardBench v1",
    scorer=score_rewardbench,
    hub=HUB,
    paper_columns={"section: Chat": "Chat", "section: Chat Hard": "ChatH"},
)
