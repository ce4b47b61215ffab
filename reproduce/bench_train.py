"""`rubric-arm bench train`: training throughput per phase for the tiny recipe and the mini
recipe (its smoke section, plus the full mini run when `make train-mini` has produced one)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from rubric_arm.errors import RubricArmError
from rubric_arm.reproduce.regression import LIVE_RUN, REPO

MINI_RUN = REPO / "runs" / "train" / "mini"
SMOKE_ROOT = REPO / "runs" / "bench"


def phase_throughput(run_dir: Path) -> list[dict[str, Any]]:
    """Seconds, optimiser steps, seconds per step and (SFT) tokens per second of every finished
    phase, from state.json and metrics.jsonl."""
    state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    steps: dict[str, int] = defaultdict(int)
    tokens: dict[str, float] = defaultdict(float)
    step_times: dict[str, list[float]] = defaultdict(list)
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            phase = row.get("phase")
            if phase is None or "step" not in row or "event" in row:
                continue
            steps[phase] = max(steps[phase], int(row["step"]))
            if "num_tokens" in row:
                tokens[phase] = max(tokens[phase], float(row["num_tokens"]))
            if "step_time" in row:
                step_times[phase].append(float(row["step_time"]))
    out = []
    for name, rec in state.get("phases", {}).items():
        seconds = float(rec["seconds"])
        n = steps.get(name, 0)
        row = {
            "phase": name,
            "seconds": seconds,
            "steps": n,
            "seconds_per_step": round(seconds / n, 2) if n else None,
            "trainer_step_seconds": (
                round(sum(step_times[name]) / len(step_times[name]), 2)
                if step_times[name]
                else None
            ),
            "sft_tokens_per_second": (
                round(tokens[name] / seconds, 1)
                if name.startswith("sft-") and tokens[name]
                else None
            ),
        }
        out.append(row)
    return out


def _train_smoke() -> Path:
    cmd = [
        sys.executable,
        "-m",
        "rubric_arm.cli",
        "train",
        "--config",
        str(REPO / "configs" / "mini.yaml"),
    ]
    cmd += ["--smoke", "--output_dir", str(SMOKE_ROOT)]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        raise RubricArmError(
            f"mini smoke training failed (exit {proc.returncode}): {' '.join(cmd)}"
        )
    return SMOKE_ROOT / "mini-smoke"


def run_train_bench(output: Path) -> dict[str, Any]:
    from rubric_arm.reproduce.regression import live_figures

    live_figures()  # trains (or reuses) the tiny recipe in runs/ci/tiny
    runs = {"tiny (configs/tiny.yaml)": LIVE_RUN / "tiny"}
    runs["mini smoke (configs/mini.yaml --smoke)"] = _train_smoke()
    if (MINI_RUN / "state.json").is_file():
        runs["mini (configs/mini.yaml, make train-mini)"] = MINI_RUN
    result = {name: phase_throughput(path) for name, path in runs.items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    output.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    return result


def _v(x: Any) -> str:
    return "—" if x is None else str(x)


def render_markdown(result: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["# Training throughput per phase", ""]
    for name, phases in result.items():
        lines += [
            f"## {name}",
            "",
            "| phase | seconds | optimiser steps | s / step | trainer step s (GRPO) | SFT tokens/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for p in phases:
            lines.append(
                f"| {p['phase']} | {p['seconds']:.1f} | {p['steps']} | {_v(p['seconds_per_step'])} "
                f"| {_v(p['trainer_step_seconds'])} | {_v(p['sft_tokens_per_second'])} |"
            )
        lines.append("")
    lines.append(
        "Phase seconds include loading the model, sampling the phase's rubrics and exporting "
        "the weights; s / step divides them by the optimiser steps."
    )
    return "\n".join(lines) + "\n"
