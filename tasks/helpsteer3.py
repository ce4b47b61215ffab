"""`inspect eval tasks/helpsteer3.py`: the packaged task rubric_arm/helpsteer3 (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def helpsteer3(**options):  # noqa: ANN003, ANN201
    return file_task("helpsteer3", options)
