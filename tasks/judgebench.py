"""`inspect eval tasks/judgebench.py`: the packaged task rubric_arm/judgebench (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def judgebench(**options):  # noqa: ANN003, ANN201
    return file_task("judgebench", options)
