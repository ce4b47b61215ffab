"""Inspect task: the offline mini suite (held-out split by default).

inspect eval tasks/mini.py --model rubric-arm/mini --limit 20
inspect eval tasks/mini.py --model hf/<SmolLM2 folder>      # a direct-judge baseline
Options: -T split=train|heldout -T subsets=ifbench,easy-chat -T seed=0 -T order=random|both|as_given
-T tie_policy=half|wrong -T data=<folder holding train.jsonl / heldout.jsonl>
"""

from __future__ import annotations

from pathlib import Path

from inspect_ai import Task, task

from rubric_arm.data.mini import load_mini
from rubric_arm.harness.inspect_tasks import (
    pair_dataset,
    pairwise_judge,
    pairwise_scorer,
    task_metadata,
)


@task
def mini(
    split: str = "heldout",
    subsets: str | None = None,
    seed: int = 0,
    order: str = "random",
    tie_policy: str = "half",
    data: str | None = None,
) -> Task:
    chosen = [s.strip() for s in subsets.split(",")] if subsets else None
    pairs = load_mini(split, chosen, path=Path(data) if data else None)
    return Task(
        dataset=pair_dataset(pairs, name=f"mini-{split}", seed=seed, order=order),
        solver=pairwise_judge(),
        scorer=pairwise_scorer(tie_policy),
        metadata=task_metadata(
            split=split, subsets=subsets, seed=seed, order=order, tie_policy=tie_policy
        ),
    )
