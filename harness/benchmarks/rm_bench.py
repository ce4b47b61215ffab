"""RM-Bench (THU-KEG/RM-Bench): three chosen and three rejected responses per prompt in three
styles; easy / normal / hard accuracy from the 3 x 3 style matrix per domain, safety pooled, and
the mean over domains (BENCHMARKS.md)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rubric_arm.data.rows import HubSource, MultiResponseItem, read_rows, row_id, text_list
from rubric_arm.harness import scoring
from rubric_arm.harness.benchmarks.base import EvalBenchmark, Metric, failures, metric
from rubric_arm.harness.benchmarks.grid import by_item, cell, grid_key, grid_pairs
from rubric_arm.harness.stats import grouped_bootstrap_ci
from rubric_arm.records import JudgeRecord
from rubric_arm.types import PreferencePair, text_field, validate_prompt

HUB = HubSource("THU-KEG/RM-Bench", None, "train")
RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")


def load_rm_bench(
    source: str | Path | None = None, *, split: str = "train"
) -> list[MultiResponseItem]:
    """RM-Bench: 3 chosen x 3 rejected style variants per prompt, subset = domain.

    Both lists keep the benchmark's style order, recorded in metadata["styles"].
    """
    rows, src = read_rows(
        source, HUB, "rm-bench", ("id", "prompt", "chosen", "rejected", "domain"), split
    )
    items: list[MultiResponseItem] = []
    for row, where in zip(rows, src, strict=True):
        n = len(RM_BENCH_STYLES)
        items.append(
            MultiResponseItem(
                row_id(row, "id", where),
                validate_prompt(row["prompt"], f"{where}: field 'prompt'"),
                text_list(row, "chosen", where, n),
                text_list(row, "rejected", where, n),
                text_field(row, "domain", where),
                {"styles": list(RM_BENCH_STYLES)},
            )
        )
    return items


def expand_rm_bench(items: Sequence[Any], *, with_scores: bool = False) -> list[PreferencePair]:
    """The 3 x 3 chosen x rejected style grid of every item."""
    return grid_pairs("rm-bench", items)


def score_rmbench(records: Sequence[JudgeRecord], *, seed: int = 0, **_: Any) -> list[Metric]:
    """Per-domain hard / normal / easy / total from the 3 x 3 grid (a missing verdict counts 0)."""
    rows = []
    recs_by_domain: dict[str, list[JudgeRecord]] = defaultdict(list)
    for _item, recs in sorted(by_item(records).items()):
        outcomes = {grid_key(r): cell(r, "chosen", "rejected") for r in recs}
        matrix = scoring.rmbench_matrix_from_pairwise(outcomes)
        domain = str(recs[0].subset)
        rows.append(
            (scoring._RMBENCH_POOL.get(domain, domain), scoring.rmbench_matrix_scores(matrix))
        )
        recs_by_domain[scoring._RMBENCH_POOL.get(domain, domain)] += recs
    metrics = []
    for domain in scoring.RMBENCH_DOMAINS:
        items = [s for d, s in rows if d == domain]
        if not items:
            continue
        for level in ("total", "hard", "normal", "easy"):
            name = domain if level == "total" else f"{domain} ({level})"
            metrics.append(metric(name, [s[level] for s in items], recs_by_domain[domain], seed))
    for level in ("total", "hard", "normal", "easy"):
        domains = [d for d in scoring.RMBENCH_DOMAINS if any(dd == d for dd, _ in rows)]
        if not domains:
            break
        groups = [d for d, _ in rows]
        scores = [s[level] for _, s in rows]

        def combine(means: dict[Any, np.ndarray], ds: list[str] = domains) -> np.ndarray:
            return sum(means[d] for d in ds) / len(ds)

        est = grouped_bootstrap_ci(scores, groups, combine, seed=seed)
        name = "overall" if level == "total" else f"overall ({level})"
        parse, nj = failures(records)
        metrics.append(Metric(name, est, parse, nj, note="mean over domains"))
    return metrics


BENCHMARK = EvalBenchmark(
    "rm-bench",
    load_rm_bench,
    "RM-Bench",
    scorer=score_rmbench,
    expand=expand_rm_bench,
    hub=HUB,
    paper_columns={"chat": "RMB"},
)
