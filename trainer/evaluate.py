"""The held-out check of a training run: judge accuracy of (generator, judge) on pairs the
trainer never saw, before and after training, with bootstrap CIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rubric_arm.harness.benchmarks import pair_credit
from rubric_arm.harness.stats import bootstrap_ci
from rubric_arm.pipeline import RubricARM
from rubric_arm.trainer.config import TrainConfig
from rubric_arm.types import PreferencePair, SamplingParams


def heldout_arm(cfg: TrainConfig, generator: Path, judge: Path) -> RubricARM:
    """The evaluation pipeline of a run: greedy rubric and judge with the run's templates."""
    from rubric_arm.engines.transformers_engine import TransformersEngine

    engines = {
        role: TransformersEngine(path, batch_size=cfg.hardware.judge_batch_size, progress=False)
        for role, path in (("generator", generator), ("judge", judge))
    }
    return RubricARM(
        engines["generator"],
        engines["judge"],
        generator_template=cfg.generator.template,
        judge_template=cfg.judge.template,
        rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=cfg.rubric_max_tokens),
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=cfg.eval.max_new_tokens),
        cache=False,
    )


def heldout_accuracy(
    cfg: TrainConfig, generator: Path, judge: Path, pairs: list[PreferencePair]
) -> dict[str, Any]:
    """Greedy rubric, greedy judge, seeded random order; an unparsed verdict gets the tie
    credit of `cfg.eval.tie_policy` (0.5 by default, as RewardBench scores ties)."""
    arm = heldout_arm(cfg, generator, judge)
    records = arm.judge(pairs, order="random", seed=cfg.eval.seed, desc="held-out")
    tie = 0.5 if cfg.eval.tie_policy == "half" else 0.0
    scores = [pair_credit(r.to_dict(timings=False), tie) for r in records if r.label is not None]
    est = bootstrap_ci(scores, seed=cfg.eval.seed)
    return {
        "accuracy": est.value,
        "ci": [est.low, est.high],
        "n": est.n,
        "unparsed": sum(r.winner is None for r in records),
        "format_ok": sum(
            all(j.format_ok for j in r.judgments) and bool(r.judgments) for r in records
        ),
        "per_pair": {
            r.id: c
            for r, c in zip([r for r in records if r.label is not None], scores, strict=True)
        },
        "generator": str(generator),
        "judge": str(judge),
        "examples": [r.to_dict(timings=False) for r in records[:3]],
    }


def evaluate_run(cfg: TrainConfig, final: dict[str, Path], base: dict[str, Path]) -> dict[str, Any]:
    """Held-out accuracy of the starting models, of the models after the SFT warm-up (when the
    run has one), and of the trained ones; written to eval.json. The SFT-only figure separates
    what Stage II adds from what the warm-up already gives."""
    from rubric_arm.trainer.data import load_train_data

    pairs = load_train_data(cfg).heldout
    out = {"baseline": heldout_accuracy(cfg, base["generator"], base["judge"], pairs)}
    sft = {r: cfg.run_dir / "models" / f"sft-{r}" for r in ("generator", "judge")}
    if cfg.sft.enabled and all((p / "config.json").is_file() for p in sft.values()):
        out["after_sft"] = heldout_accuracy(cfg, sft["generator"], sft["judge"], pairs)
    out["trained"] = heldout_accuracy(cfg, final["generator"], final["judge"], pairs)
    (cfg.run_dir / "eval.json").write_text(json.dumps(out, indent=2))
    return out
