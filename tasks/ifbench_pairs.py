"""Inspect task: verifier-labelled IFBench pairs (from `rubric-arm data build-pairs`).

rubric-arm data build-pairs --source ifbench-prompts --policy <model> --out ifbench_pairs.jsonl
inspect eval tasks/ifbench_pairs.py --model rubric-arm/paper -T data=ifbench_pairs.jsonl
Without -T data, the IFBench subset of the mini suite's held-out split is used.
"""

from __future__ import annotations

from inspect_ai import Task, task

from rubric_arm.harness.inspect_tasks import benchmark_task


@task
def ifbench_pairs(
    data: str | None = None, seed: int = 0, order: str = "random", tie_policy: str = "half"
) -> Task:
    if data is None:
        return benchmark_task(
            "mini", subsets="ifbench", seed=seed, order=order, tie_policy=tie_policy
        )
    return benchmark_task("pairs", data=data, seed=seed, order=order, tie_policy=tie_policy)
