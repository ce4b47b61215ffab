"""`rubric-arm bench rollouts`: seconds per judge GRPO step with engine rollouts vs TRL's own
generation, on the mini recipe's judge phase with written judgments (the paper's judge; same
model, prompts, rubrics seed and steps).

Each variant trains the first judge phase of `configs/mini.yaml` from the untrained model (no
SFT, so every variant starts from the same weights) for `steps` optimiser steps, then stops.
TRL logs each step's wall time; the rollout stats say how much of it was sampling.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rubric_arm.errors import RubricArmError
from rubric_arm.reproduce.regression import REPO

ROOT = REPO / "runs" / "bench-rollouts"
# The paper's judge phase: written judgments of up to 384 tokens, 8 completions (2 prompts) a
# step. The mini recipe itself now rolls its explicitly aggregating judge out on single checks.
WRITTEN = [
    "--eval.aggregation", "implicit", "--grpo.judge.max_completion_length", "384",
    "--grpo.judge.per_device_train_batch_size", "2", "--grpo.judge.gradient_accumulation_steps", "4",
]  # fmt: skip
VARIANTS = {
    "trl": [*WRITTEN, "--grpo.judge.rollouts", "trl"],
    "engine": [*WRITTEN, "--grpo.judge.rollouts", "engine"],
    "engine-constrained": [
        *WRITTEN,
        "--grpo.judge.rollouts",
        "engine",
        "--grpo.judge.rollout_decoding",
        "constrained",
    ],
}


def _train(name: str, extra: list[str], steps: int) -> Path:
    run = ROOT / name
    if run.exists():
        shutil.rmtree(run)  # every variant starts cold: no reused phase
    cmd = [sys.executable, "-m", "rubric_arm.cli", "train", "--config"]
    cmd += [str(REPO / "configs" / "mini.yaml"), "--name", name, "--output_dir", str(ROOT)]
    cmd += ["--sft.enabled", "false", "--cycles", "1", "--grpo.judge.max_steps", str(steps)]
    cmd += ["--stop-after", "cycle1-judge", *extra]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode not in (0, 3):  # 3: stopped after the phase, as asked
        raise RubricArmError(f"rollout bench run {name} failed (exit {proc.returncode})")
    return run


MEANS = (
    "reward",
    "frac_reward_zero_std",
    "judge/accuracy",
    "judge/format_pass",
    "judge/parse_failures",
    "completions/mean_length",
)


def phase_figures(run: Path, phase: str = "cycle1-judge") -> dict[str, Any]:
    """Step times, sampling times, rollout stats and metric means of one phase (metrics.jsonl)."""
    step_times: list[float] = []
    rollouts: dict[str, Any] = {}
    means: dict[str, Any] = {}
    generation: list[float] = []
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("phase") != phase:
            continue
        if "rollouts" in row:
            rollouts = row["rollouts"]
        elif row.get("summary"):
            means = row.get("means", {})
            generation = [float(t) for t in row.get("generation_seconds", [])]
        elif "step_time" in row:
            step_times.append(float(row["step_time"]))
    n = len(step_times)
    return {
        "steps": n,
        "step_seconds": [round(t, 2) for t in step_times],
        "seconds_per_step": round(sum(step_times) / n, 2) if n else None,
        "sampling_seconds_per_step": (
            round(sum(generation) / len(generation), 2) if generation else None
        ),
        "rollouts": rollouts,
        "means": {k: round(float(means[k]), 4) for k in MEANS if k in means},
    }


def run_rollout_bench(
    output: Path = Path("reports/bench_rollouts.json"), *, steps: int = 2
) -> dict[str, Any]:
    """Train each variant's judge phase for `steps` steps; writes `output` (.json) and its .md."""
    result: dict[str, Any] = {"recipe": "configs/mini.yaml (judge phase, no SFT)", "steps": steps}
    for name, extra in VARIANTS.items():
        print(f"rollout bench: {name} ...", flush=True)
        result[name] = phase_figures(_train(f"judge-{name}", extra, steps))
    trl = result["trl"]["seconds_per_step"]
    for name in VARIANTS:
        mine = result[name]["seconds_per_step"]
        result[name]["vs_trl"] = round(mine / trl, 3) if mine and trl else None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    output.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    return result


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# GRPO rollouts: the engine vs TRL's generation",
        "",
        f"Recipe: {result['recipe']}; {result['steps']} optimiser steps per variant, each from "
        "the untrained model. Step seconds as TRL logs them (sampling, reward, forward and "
        "backward); sampling s / step is the time TRL spends in its generation call (its "
        "own `model.generate` or our rollout function), one call per step here.",
        "",
        "| rollouts | s / step | x TRL | sampling s / step | sampling x TRL | "
        "sampled / forced tokens (engine) | mean reward | groups with zero reward spread |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    trl_sampling = result["trl"].get("sampling_seconds_per_step")
    for name in VARIANTS:
        r = result[name]
        ro = r.get("rollouts") or {}
        sampling = r.get("sampling_seconds_per_step")
        ratio = round(sampling / trl_sampling, 3) if sampling and trl_sampling else "-"
        tokens = f"{ro['sampled_tokens']} / {ro['forced_tokens']}" if ro else "-"
        means = r.get("means") or {}
        lines.append(
            f"| {name} | {r['seconds_per_step']} | {r['vs_trl']} | {_v(sampling)} | {ratio} "
            f"| {tokens} | {_v(means.get('reward'))} | {_v(means.get('frac_reward_zero_std'))} |"
        )
    return "\n".join(lines) + "\n"


def _v(x: Any) -> str:
    return "-" if x is None else str(x)
