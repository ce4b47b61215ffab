"""Inspect task: the offline mini suite (held-out split by default).

inspect eval tasks/mini.py --model rubric-arm/mini --limit 20
inspect eval tasks/mini.py --model hf/<SmolLM2 folder> -M device=cpu   # a direct-judge baseline
Options: -T split=train|heldout -T subsets=ifbench,easy-chat -T seed=0 -T order=random|both|as_given
-T tie_policy=half|wrong -T data=<folder holding train.jsonl / heldout.jsonl>
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task

from rubric_arm.harness.inspect_registry import file_task


@task
def mini(**options: Any) -> Task:
    """The packaged task `rubric_arm/mini` as a file of the checkout."""
    return file_task("mini", options)
