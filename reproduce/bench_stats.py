"""`rubric-arm bench stats`: how long the bootstrap statistics take (vectorised NumPy)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from rubric_arm.harness import scoring
from rubric_arm.harness.stats import bootstrap_ci, grouped_bootstrap_ci, paired_bootstrap


def _best_of(fn: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_stats_bench(output: Path, n: int = 3000, resamples: int = 10_000) -> dict[str, Any]:
    """Seconds per call (best of 3) for each CI method on `n` 0/1 scores; JSON + Markdown."""
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 2, n).astype(float)
    other = rng.integers(0, 2, n).astype(float)
    subsets = [list(scoring.REWARDBENCH_SECTIONS["Chat"])[i % 5] for i in range(n)]
    weights = scoring.REWARDBENCH_SECTIONS["Chat"]

    def section(means: dict[Any, np.ndarray]) -> np.ndarray:
        return sum(means[s] * w for s, w in weights.items()) / sum(weights.values())

    cases = {
        "percentile": lambda: bootstrap_ci(scores, resamples=resamples),
        "bca": lambda: bootstrap_ci(scores, resamples=resamples, method="bca"),
        "grouped (RewardBench section, 5 subsets)": lambda: grouped_bootstrap_ci(
            scores, subsets, section, resamples=resamples
        ),
        "paired difference": lambda: paired_bootstrap(scores, other, resamples=resamples),
    }
    result = {
        "n": n,
        "resamples": resamples,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "seconds": {name: round(_best_of(fn), 4) for name, fn in cases.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Bootstrap timing",
        "",
        f"{resamples:,} resamples of {n:,} items, best of 3 calls, {result['machine']}, "
        f"numpy {result['numpy']}.",
        "",
        "| method | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.3f} |" for k, v in result["seconds"].items()],
        "",
    ]
    output.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    return result
