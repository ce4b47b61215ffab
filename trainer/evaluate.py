"""The held-out check of a training run: judge accuracy of (generator, judge) on pairs the
trainer never saw, before and after training, with bootstrap CIs, under the decoding and verdict
rule of the recipe's `eval:` section (recorded with every figure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.harness.benchmarks import pair_credit
from rubric_arm.harness.stats import bootstrap_ci
from rubric_arm.pipeline import RubricARM
from rubric_arm.trainer.config import TrainConfig
from rubric_arm.types import PreferencePair, SamplingParams


def heldout_arm(cfg: TrainConfig, generator: Path | Engine, judge: Path | Engine) -> RubricARM:
    """The evaluation pipeline of a run: greedy rubric and judge with the run's templates, under
    `cfg.eval.decoding` and `cfg.eval.verdict`, the rubric budget `cfg.eval.rubric_max_tokens`
    (default: the run's) and at most `cfg.eval.max_rubric_items` constrained rubric items.
    `generator` / `judge` are model folders (loaded in a TransformersEngine) or ready engines."""
    from rubric_arm.engines.transformers_engine import TransformersEngine

    def engine(model: Path | Engine) -> Engine:
        if isinstance(model, Engine):
            return model
        return TransformersEngine(model, batch_size=cfg.hardware.judge_batch_size, progress=False)

    return RubricARM(
        engine(generator),
        engine(judge),
        generator_template=cfg.generator.template,
        judge_template=cfg.judge.template,
        rubric_sampling=SamplingParams(
            temperature=0.0, max_new_tokens=cfg.eval.rubric_max_tokens or cfg.rubric_max_tokens
        ),
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=cfg.eval.max_new_tokens),
        cache=False,
        decoding=cfg.eval.decoding,
        verdict=cfg.eval.verdict,
        max_rubric_items=cfg.eval.max_rubric_items,
        aggregation=cfg.eval.aggregation,
    )


def heldout_accuracy(
    cfg: TrainConfig,
    generator: Path | Engine,
    judge: Path | Engine,
    pairs: list[PreferencePair],
) -> dict[str, Any]:
    """Greedy rubric, greedy judge, seeded random order; an unparsed verdict (or, under the prob
    rule, a pair without a verdict probability) gets the tie credit of `cfg.eval.tie_policy` (0.5
    by default, as RewardBench scores ties). The result names the decoding and verdict rule and
    counts the pairs whose judgments recorded P(A) (`with_probability`)."""
    arm = heldout_arm(cfg, generator, judge)
    records = arm.judge(pairs, order="random", seed=cfg.eval.seed, desc="held-out")
    tie = 0.5 if cfg.eval.tie_policy == "half" else 0.0
    labelled = [r for r in records if r.label is not None]
    scores = [pair_credit(r, tie) for r in labelled]
    est = bootstrap_ci(scores, seed=cfg.eval.seed)
    return {
        "accuracy": est.value,
        "ci": [est.low, est.high],
        "n": est.n,
        "decoding": arm.decoding,
        "verdict": arm.verdict,
        "aggregation": arm.aggregation,
        "unparsed": sum(r.winner is None for r in records),
        "format_ok": sum(
            all(j.format_ok for j in r.judgments) and bool(r.judgments) for r in records
        ),
        "with_probability": sum(r.p_a is not None for r in records),
        "per_pair": {r.id: c for r, c in zip(labelled, scores, strict=True)},
        "generator": str(getattr(generator, "fingerprint", generator)),
        "judge": str(getattr(judge, "fingerprint", judge)),
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


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The printed summary of `evaluate_run`'s result; the last line is machine-read
    (`heldout_accuracy=<trained> baseline=<starting models>`)."""
    b, t = result["baseline"], result["trained"]
    lines = [
        f"held-out n={t['n']} (decoding {t['decoding']}, verdict {t['verdict']}): trained "
        f"{t['accuracy']:.3f} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}] (unparsed {t['unparsed']}), "
        f"starting models {b['accuracy']:.3f} [{b['ci'][0]:.3f}, {b['ci'][1]:.3f}] "
        f"(unparsed {b['unparsed']})"
    ]
    if "after_sft" in result:
        a = result["after_sft"]
        lines.append(
            f"after the SFT warm-up only: {a['accuracy']:.3f} [{a['ci'][0]:.3f}, "
            f"{a['ci'][1]:.3f}] (unparsed {a['unparsed']})"
        )
    lines.append(f"heldout_accuracy={t['accuracy']:.4f} baseline={b['accuracy']:.4f}")
    return lines
