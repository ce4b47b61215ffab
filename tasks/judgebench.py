"""Inspect task: judgebench, scored with the harness's official rules (same code as rubric-arm eval).

inspect eval tasks/judgebench.py --model rubric-arm/paper                 # hub data (GPU machine)
inspect eval tasks/judgebench.py --model rubric-arm/tiny -T data=<local file in the real schema>
Options: -T data=... -T split=... -T subsets=a,b -T seed=0 -T order=random|both|as_given
-T tie_policy=half|wrong -T protocol=all_pairs|beats_all (best-of-n items)
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task

from rubric_arm.harness.inspect_registry import file_task


@task
def judgebench(**options: Any) -> Task:
    """The packaged task `rubric_arm/judgebench` as a file of the checkout."""
    return file_task("judgebench", options)
