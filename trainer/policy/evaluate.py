"""Policy evaluation on held-out verifiable prompts: greedy responses checked by the official
IFBench / IFEval rule verifiers, scored prompt-level and instruction-level, strict and loose
(IFEval's four numbers), with bootstrap CIs; per-prompt results kept for paired comparisons."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rubric_arm.data.verifiers import RuleVerifier, VerifiableItem
from rubric_arm.harness.stats import bootstrap_ci, paired_bootstrap
from rubric_arm.policy_reward import as_chat
from rubric_arm.types import SamplingParams

METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")


@dataclass
class PromptCheck:
    """One held-out prompt's greedy response and what the official verifier said of it."""

    key: str
    registry: str
    status: str
    """"ok", or why the checker could not run here (such prompts are left out of every metric)."""
    strict: list[bool]
    loose: list[bool]
    response: str
    subset: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PromptCheck:
        return cls(**d)


@dataclass
class PolicyScores:
    """The verifier checks of every prompt and IFEval's four accuracies from them."""

    metrics: dict[str, Any]
    rows: list[PromptCheck]


def score_items(
    items: Sequence[VerifiableItem], responses: Sequence[str], seed: int = 0
) -> PolicyScores:
    """IFEval's four accuracies with 95% bootstrap CIs. Prompts whose checker cannot run here
    are counted as `unavailable` and left out of every metric, never scored as a fail."""
    verifier = RuleVerifier()
    rows = []
    for item, response in zip(items, responses, strict=True):
        v = verifier.verify(item, [response])[0]
        rows.append(
            PromptCheck(
                key=item.key,
                registry=item.registry,
                subset=item.metadata.get("subset"),
                status=v.status,
                strict=list(v.strict),
                loose=list(v.loose),
                error=v.error,
                response=response,
            )
        )
    return PolicyScores(summarise(rows, seed), rows)


def summarise(rows: Sequence[PromptCheck], seed: int = 0) -> dict[str, Any]:
    """The four accuracies (overall and per registry) from per-prompt verifier checks."""
    ok = [r for r in rows if r.status == "ok"]
    out: dict[str, Any] = {"n_prompts": len(ok), "unavailable": len(rows) - len(ok)}
    groups = {"all": ok}
    for reg in sorted({r.registry for r in ok}):
        groups[reg] = [r for r in ok if r.registry == reg]
    for name, part in groups.items():
        per_prompt = {
            "prompt_strict": [float(all(r.strict)) for r in part],
            "prompt_loose": [float(all(r.loose)) for r in part],
            "instruction_strict": [float(x) for r in part for x in r.strict],
            "instruction_loose": [float(x) for r in part for x in r.loose],
        }
        block = {}
        for metric, scores in per_prompt.items():
            est = bootstrap_ci(scores, seed=seed)
            block[metric] = {"value": est.value, "ci": [est.low, est.high], "n": est.n}
        out[name] = block
    return out


def evaluate_policy(
    model: Path,
    items: Sequence[VerifiableItem],
    out_dir: Path,
    *,
    max_new_tokens: int,
    batch_size: int,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Greedy responses of `model` to every item, verified and scored; written to `out_dir`
    (responses.jsonl, metrics.json). A finished folder is read back, not recomputed."""
    metrics_file = out_dir / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    from rubric_arm.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(model, batch_size=batch_size, progress=progress)
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    outs = engine.generate([as_chat(i.prompt) for i in items], params, desc=f"eval {model.name}")
    result = score_items(items, [o[0].text for o in outs], seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "responses.jsonl").open("w") as f:
        for row in result.rows:
            f.write(json.dumps(row.to_dict()) + "\n")
    summary = {"model": str(model), "model_fingerprint": engine.fingerprint, **result.metrics}
    metrics_file.write_text(json.dumps(summary, indent=2))
    return summary


def paired_prompt_differences(
    base_rows: Sequence[PromptCheck], other_rows: Sequence[PromptCheck], seed: int = 0
) -> dict[str, Any]:
    """Other minus base on the prompts both could score: prompt-level strict and loose, and each
    prompt's instruction-level strict share, with paired bootstrap CIs and p-values."""
    base = {r.key: r for r in base_rows if r.status == "ok"}
    other = {r.key: r for r in other_rows if r.status == "ok"}
    keys = sorted(set(base) & set(other))
    out: dict[str, Any] = {"n": len(keys)}

    def share(xs: list[bool]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    for name, fn in (
        ("prompt_strict", lambda r: float(all(r.strict))),
        ("prompt_loose", lambda r: float(all(r.loose))),
        ("instruction_strict", lambda r: share(r.strict)),
    ):
        out[name] = paired_bootstrap(
            [fn(other[k]) for k in keys], [fn(base[k]) for k in keys], seed=seed
        )
    return out


def read_checks(folder: Path) -> list[PromptCheck]:
    """The per-prompt checks an evaluation folder's responses.jsonl holds."""
    lines = (folder / "responses.jsonl").read_text().splitlines()
    return [PromptCheck.from_dict(json.loads(x)) for x in lines if x]


def winrate_eval(model: Path, cfg: Any, out_dir: Path) -> dict[str, Any]:
    """The Inspect win-rate task for one policy (`hf/<folder>`), graded by `cfg.api_judge`; a
    record saying it was skipped when no API judge is configured."""
    from rubric_arm.harness.winrate_task import NO_GRADER

    if not cfg.api_judge:
        return {"status": "skipped", "reason": NO_GRADER}
    done = out_dir / "winrate.json"
    if done.is_file():
        return json.loads(done.read_text())
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    from rubric_arm.harness.winrate_task import winrate_task

    log = inspect_eval(
        winrate_task(cfg.winrate_data, cfg.winrate_limit, cfg.max_new_tokens),
        model=f"hf/{model}",
        model_roles={"grader": get_model(cfg.api_judge)},
        log_dir=str(out_dir / "inspect-logs"),
        display="none",
    )[0]
    if log.status != "success":
        return {"status": "error", "reason": str(log.error)[:500]}
    values = [s.scores["winrate_vs_reference"].value for s in log.samples]
    est = bootstrap_ci(values, seed=cfg.seed)
    out = {
        "status": "ok",
        "grader": cfg.api_judge,
        "winrate": {"value": est.value, "ci": [est.low, est.high], "n": est.n},
        "unparsed": sum(s.scores["winrate_vs_reference"].metadata["unparsed"] for s in log.samples),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(out, indent=2))
    return out
