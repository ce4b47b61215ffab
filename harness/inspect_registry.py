"""What the package's `inspect_ai` entry point loads: the `rubric-arm/<preset>` provider, the
`rubric_arm_grader` scorer and one task per harness benchmark, so an installed package runs
`inspect eval rubric_arm/mini --model rubric-arm/mini` (or `inspect score <log> --scorer
rubric_arm/rubric_arm_grader`) with no file of ours."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from inspect_ai import Task, task

from rubric_arm.harness import inspect_grader, inspect_provider  # noqa: F401 (registrations)
from rubric_arm.harness.benchmarks import EVAL_BENCHMARKS, load_benchmark_plugins
from rubric_arm.harness.inspect_tasks import benchmark_task
from rubric_arm.harness.winrate_task import winrate_task


def task_name(benchmark: str) -> str:
    """The Inspect name of a benchmark's task: `rm-bench` -> `rm_bench` (`rubric_arm/rm_bench`)."""
    return benchmark.replace("-", "_")


def _benchmark_task(benchmark: str) -> Callable[..., Task]:
    def make(**options: Any) -> Task:
        return benchmark_task(benchmark, **options)

    # Inspect reads a task's options from its signature: benchmark_task's, less `benchmark`.
    params = list(inspect.signature(benchmark_task).parameters.values())[1:]
    make.__signature__ = inspect.Signature(params, return_annotation=Task)  # type: ignore[attr-defined]
    make.__name__ = make.__qualname__ = task_name(benchmark)
    make.__doc__ = (
        f"{EVAL_BENCHMARKS[benchmark].description}, judged pairwise and scored with the harness's "
        "official rules. Options: data, split, subsets (a,b), seed, order (random|both|as_given), "
        "tie_policy (half|wrong), protocol (all_pairs|beats_all)."
    )
    return task(name=task_name(benchmark))(make)


load_benchmark_plugins()
BENCHMARK_TASKS: dict[str, Callable[..., Task]] = {
    name: _benchmark_task(name) for name in EVAL_BENCHMARKS
}
"""One registered Inspect task per harness benchmark, by benchmark name."""


@task
def policy_winrate(
    data: str | None = None, limit: int | None = None, max_tokens: int = 512
) -> Task:
    """A policy's win rate against reference answers, judged in both orders by the grader role."""
    return winrate_task(data=data, limit=limit, max_tokens=max_tokens)


def file_task(benchmark: str, options: dict[str, Any]) -> Task:
    """The body of a checkout task file (tasks/<name>.py): the packaged benchmark's task."""
    return benchmark_task(benchmark, **options)
