"""`inspect eval tasks/rewardbench2.py`: the packaged task rubric_arm/rewardbench2 (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def rewardbench2(**options):  # noqa: ANN003, ANN201
    return file_task("rewardbench2", options)
