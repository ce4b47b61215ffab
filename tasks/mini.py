"""Inspect task: the offline mini suite (held-out split by default).

inspect eval tasks/mini.py --model rubric-arm/mini --limit 20
inspect eval tasks/mini.py --model hf/<SmolLM2 folder> -M device=cpu   # a direct-judge baseline
Options: -T split=train|heldout -T subsets=ifbench,easy-chat -T seed=0 -T order=random|both|as_given
-T tie_policy=half|wrong -T data=<folder holding train.jsonl / heldout.jsonl>
"""

from __future__ import annotations

from inspect_ai import Task, task

from rubric_arm.harness.inspect_tasks import benchmark_task


@task
def mini(
    split: str = "heldout",
    subsets: str | None = None,
    seed: int = 0,
    order: str = "random",
    tie_policy: str = "half",
    data: str | None = None,
) -> Task:
    return benchmark_task(
        "mini",
        data=data,
        split=split,
        subsets=subsets,
        seed=seed,
        order=order,
        tie_policy=tie_policy,
    )
