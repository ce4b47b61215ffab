"""The reward-model benchmarks: one module each (loader, expansion into pairs, official scoring,
the paper column it fills), collected in a registry that other packages extend.

Multi-response benchmarks are expanded into pairs (RewardBench 2: each correct response vs each
incorrect one; RM-Bench: the 3 x 3 chosen-vs-rejected style grid), judged pairwise, and folded
back per item with the official rules (harness.scoring). Every score comes with a bootstrap CI,
its n, the parse failures it absorbed and the policy that scored them.

A third party adds a benchmark with one module defining an `EvalBenchmark` and an entry point in
the `rubric_arm.benchmarks` group naming it (README: "Adding a benchmark").
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks.base import (
    TIE_POLICIES,
    EvalBenchmark,
    Metric,
    pair_credit,
    position_metrics,
    record_clusters,
    scalar_tie,
    score_pairwise,
)
from rubric_arm.records import JudgeRecord
from rubric_arm.types import PreferencePair


def _builtin() -> tuple[EvalBenchmark, ...]:
    """The `BENCHMARK` of every module of this package, in module-name order: a new module is
    a new benchmark, with nothing to edit elsewhere."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        bench = getattr(module, "BENCHMARK", None)
        if isinstance(bench, EvalBenchmark):
            found.append(bench)
    return tuple(found)


BUILTIN: tuple[EvalBenchmark, ...] = _builtin()
EVAL_BENCHMARKS: dict[str, EvalBenchmark] = {b.name: b for b in BUILTIN}
"""Every registered benchmark by name: the built-in ones, then plugins as they are loaded."""

ENTRY_POINT_GROUP = "rubric_arm.benchmarks"
_plugins_loaded = False


def register_benchmark(bench: EvalBenchmark) -> EvalBenchmark:
    """Add a benchmark to the registry (`rubric-arm eval --benchmark NAME`, the Inspect task
    `rubric_arm/NAME`); a name already taken is an error, not a silent replacement."""
    if bench.name in EVAL_BENCHMARKS and EVAL_BENCHMARKS[bench.name] is not bench:
        raise InputError(f"a benchmark named {bench.name!r} is already registered")
    EVAL_BENCHMARKS[bench.name] = bench
    return bench


def load_benchmark_plugins() -> None:
    """Register the benchmarks other packages declare under the `rubric_arm.benchmarks` entry
    point group (each entry point names an EvalBenchmark); done once per process."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        bench = ep.load()
        if not isinstance(bench, EvalBenchmark):
            raise InputError(
                f"entry point {ep.name!r} ({ep.value}) of {ENTRY_POINT_GROUP} is not an "
                "EvalBenchmark"
            )
        register_benchmark(bench)


def get_benchmark(name: str) -> EvalBenchmark:
    """The registered benchmark called `name` (plugins are loaded on the first unknown name)."""
    if name not in EVAL_BENCHMARKS:
        load_benchmark_plugins()
    if name not in EVAL_BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(EVAL_BENCHMARKS)}")
    return EVAL_BENCHMARKS[name]


def paper_sources() -> dict[str, tuple[str, str]]:
    """The paper's Table 1 column -> (benchmark, metric) of the registered benchmarks that
    reproduce it."""
    return {
        column: (bench.name, metric)
        for bench in EVAL_BENCHMARKS.values()
        for metric, column in bench.paper_columns.items()
    }


def expand(
    bench: EvalBenchmark,
    items: Sequence[Any],
    *,
    per_response: bool = False,
    win_probabilities: bool = False,
) -> list[PreferencePair]:
    """The pairs to judge (EvalBenchmark.pairs)."""
    return bench.pairs(items, per_response=per_response, win_probabilities=win_probabilities)


def score(
    bench: EvalBenchmark,
    records: Sequence[JudgeRecord],
    *,
    tie_policy: str = "half",
    protocol: str = "all_pairs",
    seed: int = 0,
) -> list[Metric]:
    """All metrics of one benchmark from its judged pairs, under a named tie policy."""
    if tie_policy not in TIE_POLICIES:
        raise InputError(f"tie policy must be one of {', '.join(TIE_POLICIES)}, got {tie_policy!r}")
    if not records:
        return []
    return bench.score(records, tie_credit=TIE_POLICIES[tie_policy], protocol=protocol, seed=seed)


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "EVAL_BENCHMARKS",
    "TIE_POLICIES",
    "EvalBenchmark",
    "Metric",
    "expand",
    "get_benchmark",
    "load_benchmark_plugins",
    "pair_credit",
    "paper_sources",
    "position_metrics",
    "record_clusters",
    "register_benchmark",
    "scalar_tie",
    "score",
    "score_pairwise",
]
