"""`inspect eval tasks/mini.py`: the packaged task rubric_arm/mini (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def mini(**options):  # noqa: ANN003, ANN201
    return file_task("mini", options)
