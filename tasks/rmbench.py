"""`inspect eval tasks/rmbench.py`: the packaged task rubric_arm/rm_bench (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def rmbench(**options):  # noqa: ANN003, ANN201
    return file_task("rm-bench", options)
