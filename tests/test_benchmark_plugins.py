"""A third party adds a benchmark in one file, declared under the `rubric_arm.benchmarks` entry
point group: `rubric-arm eval --benchmark NAME` finds it and scores with its own rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rubric_arm.errors import InputError
from rubric_arm.harness import benchmarks
from rubric_arm.harness.runner import EvalConfig, run_eval

PLUGIN = """
from rubric_arm.harness.benchmarks import EvalBenchmark, Metric
from rubric_arm.harness.stats import bootstrap_ci
from rubric_arm.types import PreferencePair


def load(source=None, *, split=None):
    return [PreferencePair(f"q{i}", f"Say {i}.", str(i), "no", "A") for i in range(6)]


def strict_accuracy(records, *, tie_credit, protocol, seed):
    hits = [float(r.winner == r.label) for r in records]  # JudgeRecords; no tie credit
    return [Metric("strict", bootstrap_ci(hits, seed=seed))]


BENCHMARK = EvalBenchmark("my-bench", load, "a third party's benchmark", scorer=strict_accuracy)
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "my_bench.py").write_text(PLUGIN, encoding="utf-8")
    info = tmp_path / "my_bench-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-bench\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{benchmarks.ENTRY_POINT_GROUP}]\nmy-bench = my_bench:BENCHMARK\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(benchmarks, "EVAL_BENCHMARKS", dict(benchmarks.EVAL_BENCHMARKS))
    monkeypatch.setattr(benchmarks, "_plugins_loaded", False)
    yield tmp_path
    sys.modules.pop("my_bench", None)


def test_an_entry_point_benchmark_is_found_and_scored_by_its_own_rule(plugin, tmp_path):
    bench = benchmarks.get_benchmark("my-bench")
    assert bench.description == "a third party's benchmark"
    config = EvalConfig(judge="random", benchmark="my-bench", seed=3)
    metrics = run_eval(config, tmp_path / "run", progress=False)
    assert [m.name for m in metrics] == ["strict"]
    records = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert metrics[0].estimate.value == sum(r["winner"] == "A" for r in records) / 6


def test_a_taken_name_is_refused():
    with pytest.raises(InputError, match="already registered"):
        benchmarks.register_benchmark(
            benchmarks.EvalBenchmark("mini", lambda *a, **k: [], "another mini")
        )
