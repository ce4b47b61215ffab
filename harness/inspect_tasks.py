"""Inspect building blocks for pairwise reward-model tasks: samples, solver, scorer, metrics.

A sample shows the pair in a seeded order (the runner's rule, so the same pairs see the same
order through `inspect eval` and `rubric-arm eval`). A plain model gets the direct-judge prompt
(`prompts/direct.yaml`) and its `Winner:` line is parsed; a `rubric-arm/...` model gets the pair
itself and runs the full pipeline. Scores reuse the harness rules: 1 / 0, and the tie credit
(0.5 by default, as RewardBench) for a missing verdict.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import get_model
from inspect_ai.scorer import (
    Metric,
    SampleScore,
    Score,
    Target,
    accuracy,
    metric,
    scorer,
    stderr,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver

from rubric_arm.harness.benchmarks import TIE_POLICIES
from rubric_arm.harness.inspect_provider import PAIR_KEY
from rubric_arm.pipeline import shown_orders
from rubric_arm.records import JudgeRecord, Judgment
from rubric_arm.templates import load_template
from rubric_arm.types import PreferencePair, as_shown, prompt_text
from rubric_arm.verdict import parse_winner


def pair_dataset(
    pairs: Sequence[PreferencePair], *, name: str, seed: int = 0, order: str = "random"
) -> MemoryDataset:
    """One sample per pair and shown order; the label becomes the target ("A" / "B")."""
    template = load_template("direct")
    samples = []
    item_samples = Counter(_item(p.id) for p in pairs for _ in shown_orders(p.id, order, seed))
    for index, pair in enumerate(pairs):
        for o in shown_orders(pair.id, order, seed):
            shown = pair if o == "AB" else pair.swapped()
            chat = template.render(
                prompt=prompt_text(shown.prompt),
                response_a=shown.response_a,
                response_b=shown.response_b,
            )
            samples.append(
                Sample(
                    id=pair.id if order != "both" else f"{pair.id}|{o}",
                    input=chat[-1]["content"],
                    target=shown.label or "",
                    metadata={
                        "pair": shown.to_dict(),
                        "pair_id": pair.id,
                        "index": index,
                        "item_samples": item_samples[_item(pair.id)],
                        "subset": pair.subset or "all",
                        "cluster": pair.cluster,
                        "order": o,
                    },
                )
            )
    return MemoryDataset(samples, name=name)


def _item(pair_id: str) -> str:
    """The item a pair belongs to: expanded multi-response pairs are "<item>|c<i>r<j>"."""
    return pair_id.split("|", 1)[0]


@solver
def pairwise_judge() -> Solver:
    """Ask the model for a verdict: the pair itself for rubric-arm, the prompt for others."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if str(get_model()).startswith("rubric-arm/"):
            return await generate(state, extra_body={PAIR_KEY: state.metadata["pair"]})
        return await generate(state)

    return solve


# Tasks replace these defaults with harness_metrics (every figure of the runner, with CIs).
@scorer(metrics=[accuracy(), stderr()])
def pairwise_scorer(tie_policy: str = "half"):
    """1 if the verdict names the labelled response, 0 if not, the tie credit if none."""
    credit = TIE_POLICIES[tie_policy]

    async def score(state: TaskState, target: Target) -> Score:
        meta = state.output.metadata or {}
        parsed = meta["winner"] if "winner" in meta else parse_winner(state.output.completion)[0]
        winner = parsed
        label = target.text
        value = credit if winner is None else float(winner == label)
        o = state.metadata.get("order", "AB")
        original = as_shown(winner, o)
        original_label = as_shown(label, o)
        p_a = meta.get("p_a")
        if p_a is not None and o == "BA":
            p_a = round(1.0 - float(p_a), 6)
        return Score(
            value=value,
            answer=winner or "none",
            explanation=meta.get("rubric") or None,
            metadata={
                "subset": state.metadata.get("subset"),
                "cluster": state.metadata.get("cluster"),
                "parsed": winner is not None,
                "pair_id": state.metadata.get("pair_id"),
                "index": state.metadata.get("index", 0),
                "item_samples": state.metadata.get("item_samples", 1),
                "order": o,
                "winner": original,
                "label": original_label,
                "p_a": p_a,
                "verdict_rule": meta.get("verdict_rule"),
                "decoding": meta.get("decoding"),
            },
        )

    return score


def task_metadata(**kwargs: Any) -> dict[str, Any]:
    """The task's settings, recorded in the log."""
    return {k: v for k, v in kwargs.items() if v is not None}


def records_from_scores(scores: list[SampleScore]) -> list[JudgeRecord]:
    """Per-pair records (the runner's shape) from sample scores; both orders merge into one.

    Inspect also computes metrics on the samples finished so far: only items whose every
    sample (all grid pairs, all orders) is scored are kept, so an item is never scored half.
    Orders merge by the model's verdict rule: the majority of their winners, or under "prob"
    the side of their mean p_a (in the pair's own labels), as the pipeline merges them.
    """
    seen = Counter(_item((s.score.metadata or {})["pair_id"]) for s in scores)
    merged: dict[str, JudgeRecord] = {}
    index: dict[str, int] = {}
    for s in scores:
        meta = s.score.metadata or {}
        if seen[_item(meta["pair_id"])] < meta.get("item_samples", 1):
            continue
        rid = meta["pair_id"]
        if rid not in merged:
            subset = meta.get("subset")
            merged[rid] = JudgeRecord(
                id=rid,
                subset=None if subset == "all" else subset,
                label=meta["label"],
                status="ok",
                cluster=meta.get("cluster"),
                verdict_rule=meta.get("verdict_rule") or "vote",
                decoding=meta.get("decoding"),
            )
            index[rid] = meta.get("index", 0)
        merged[rid].judgments.append(
            Judgment(
                order=meta["order"],
                vote=0,
                winner=meta["winner"],
                format_ok=meta["winner"] is not None,
                failure=None,
                format_problems=[],
                text="",
                prompt_tokens=0,
                completion_tokens=0,
                finish_reason="stop",
                p_a=meta.get("p_a"),
            )
        )
    for rec in merged.values():
        rec.judgments.sort(key=lambda j: j.order)
        rec.decide()
    # The dataset's pair order, as the runner scores them (bootstrap resamples follow it).
    return sorted(merged.values(), key=lambda r: index[r.id])


@metric
def harness_metrics(
    benchmark: str, tie_policy: str = "half", protocol: str = "all_pairs", seed: int = 0
) -> Metric:
    """Every metric `rubric-arm eval` reports for `benchmark`, with its CI (same code path;
    the bootstrap is seeded with the task's seed, as the runner seeds it with the run's)."""
    from rubric_arm.harness.benchmarks import get_benchmark, score

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        records = records_from_scores(scores)
        out: dict[str, float] = {}
        bench = get_benchmark(benchmark)
        for m in score(bench, records, tie_policy=tie_policy, protocol=protocol, seed=seed):
            out[m.name] = m.estimate.value
            out[f"{m.name} ci_low"] = m.estimate.low
            out[f"{m.name} ci_high"] = m.estimate.high
        return out

    return compute


def launch_relative(data: str | None) -> str | None:
    """A relative `-T data=` path as the user meant it: Inspect runs a task from the task file's
    folder, so a path that is not there is looked up from the shell's directory ($PWD)."""
    if not data or Path(data).is_absolute() or Path(data).exists() or "://" in data:
        return data
    launch = os.environ.get("PWD")
    if launch and (Path(launch) / data).exists():
        return str(Path(launch) / data)
    return data


def benchmark_task(
    benchmark: str,
    *,
    data: str | None = None,
    split: str | None = None,
    subsets: str | None = None,
    seed: int = 0,
    order: str = "random",
    tie_policy: str = "half",
    protocol: str = "all_pairs",
) -> Any:
    """A Task for any harness benchmark: its pairs (multi-response items expanded), scored
    with exactly the runner's rules through `harness_metrics`."""
    from inspect_ai import Task

    from rubric_arm.harness.benchmarks import expand, get_benchmark

    bench = get_benchmark(benchmark)
    data = launch_relative(data)
    items = bench.load_items(data, split)
    chosen = {s.strip() for s in subsets.split(",")} if subsets else None
    if chosen:
        items = [it for it in items if getattr(it, "subset", None) in chosen]
    pairs = expand(bench, items)
    order = bench.orders or order
    return Task(
        dataset=pair_dataset(pairs, name=benchmark, seed=seed, order=order),
        solver=pairwise_judge(),
        scorer=pairwise_scorer(tie_policy),
        metrics=[harness_metrics(benchmark, tie_policy, protocol, seed)],
        metadata=task_metadata(
            benchmark=benchmark,
            data=data,
            split=split,
            subsets=subsets,
            seed=seed,
            order=order,
            tie_policy=tie_policy,
            protocol=protocol,
        ),
    )
