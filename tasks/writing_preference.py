"""`inspect eval tasks/writing_preference.py`: the packaged task rubric_arm/writing_preference (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def writing_preference(**options):  # noqa: ANN003, ANN201
    return file_task("writing-preference", options)
