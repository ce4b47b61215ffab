"""`inspect eval tasks/ppe_ifeval.py`: the packaged task rubric_arm/ppe_ifeval (tasks/README.md)."""

from inspect_ai import task

from rubric_arm.harness.inspect_registry import file_task


@task
def ppe_ifeval(**options):  # noqa: ANN003, ANN201
    return file_task("ppe-ifeval", options)
