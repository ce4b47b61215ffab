"""Targets made of several judges evaluated on one benchmark (efficiency, position bias):
the recipe, its `rubric-arm eval` steps, and reading the finished run folders back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks import get_benchmark
from rubric_arm.harness.runner import EvalRun, read_run
from rubric_arm.reproduce.steps import Step


@dataclass
class EvalSetConfig:
    """Judges x one benchmark; `judges` entries: {label, judge, args, votes, paper}."""

    name: str = "evalset"
    profile: str = "mini"
    description: str = ""
    out: str = "runs/evalset"
    report: str = "reports/evalset.md"
    benchmark: str = "mini"
    data: str | None = None
    split: str | None = None
    limit: int = 0
    order: str = "random"
    seed: int = 0
    judges: list[dict[str, Any]] = field(default_factory=list)
    needs_gpu: bool = False

    def validate(self) -> EvalSetConfig:
        get_benchmark(self.benchmark)
        if not self.judges:
            raise InputError("judges: at least one judge is needed")
        labels = []
        for i, j in enumerate(self.judges):
            missing = {"label", "judge"} - set(j)
            if missing:
                raise InputError(f"judges[{i}] needs {', '.join(sorted(missing))}")
            unknown = set(j) - {"label", "judge", "args", "votes", "paper"}
            if unknown:
                raise InputError(f"judges[{i}]: unknown key(s) {', '.join(sorted(unknown))}")
            labels.append(j["label"])
        if len(set(labels)) != len(labels):
            raise InputError("judges: labels must be distinct")
        if self.order not in ("random", "both", "as_given"):
            raise InputError(f"order must be random, both or as_given, got {self.order!r}")
        return self

    def data_line(self) -> str:
        """Which items the judges saw, in words, for the reports."""
        where = self.benchmark + (f" split {self.split}" if self.split else "")
        first = f", first {self.limit} items" if self.limit else ""
        order = "both orders" if self.order == "both" else f"order {self.order}"
        return f"Data: {where}{first}, {order}, seed {self.seed}."


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def run_dir(cfg: EvalSetConfig, judge: dict[str, Any]) -> Path:
    return Path(cfg.out) / slug(judge["label"])


def eval_steps(cfg: EvalSetConfig) -> list[Step]:
    steps = []
    for j in cfg.judges:
        out = run_dir(cfg, j)
        argv = ["eval", "--judge", j["judge"]]
        for k, v in (j.get("args") or {}).items():
            argv += ["-J", f"{k}={v}"]
        argv += ["--benchmark", cfg.benchmark, "--order", cfg.order, "--seed", str(cfg.seed)]
        argv += ["--votes", str(j.get("votes", 1)), "--out", str(out), "--quiet"]
        if cfg.data:
            argv += ["--data", cfg.data]
        if cfg.split:
            argv += ["--split", cfg.split]
        if cfg.limit:
            argv += ["--limit", str(cfg.limit)]
        steps.append(Step(f"eval {j['label']}", argv, lambda o=out: (o / "scores.json").is_file()))
    return steps


@dataclass
class FinishedRun:
    """A finished eval run folder of the set, read back, and the judge's label in the set."""

    label: str
    run: EvalRun


def read_runs(cfg: EvalSetConfig) -> list[FinishedRun]:
    return [FinishedRun(j["label"], read_run(run_dir(cfg, j))) for j in cfg.judges]


def hardware_line() -> str:
    """The machine the figures were measured on, in words."""
    import os
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads, "
        f"no GPU, torch {torch.__version__}"
    )
