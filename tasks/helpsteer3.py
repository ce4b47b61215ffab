"""Inspect task: helpsteer3, scored with the harness's official rules (same code as rubric-arm eval).

inspect eval tasks/helpsteer3.py --model rubric-arm/paper                 # hub data (GPU machine)
inspect eval tasks/helpsteer3.py --model rubric-arm/tiny -T data=<local file in the real schema>
Options: -T data=... -T split=... -T subsets=a,b -T seed=0 -T order=random|both|as_given
-T tie_policy=half|wrong -T protocol=all_pairs|beats_all (best-of-n items)
"""

from __future__ import annotations

from inspect_ai import Task, task

from rubric_arm.harness.inspect_tasks import benchmark_task


@task
def helpsteer3(
    data: str | None = None,
    split: str | None = None,
    subsets: str | None = None,
    seed: int = 0,
    order: str = "random",
    tie_policy: str = "half",
    protocol: str = "all_pairs",
) -> Task:
    return benchmark_task(
        "helpsteer3",
        data=data,
        split=split,
        subsets=subsets,
        seed=seed,
        order=order,
        tie_policy=tie_policy,
        protocol=protocol,
    )
