"""`inspect eval tasks/rewardbench.py`: the packaged task rubric_arm/rewardbench (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def rewardbench(**options):  # noqa: ANN003, ANN201
    return file_task("rewardbench", options)
