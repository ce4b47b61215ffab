"""Evaluation harness: judges, scoring, statistics, runners and reports (grows with the harness issue).

`rubric_arm_grader` (the Inspect scorer, harness/inspect_grader.py) is exported lazily: importing
this package does not import inspect_ai.
"""

from __future__ import annotations

from typing import Any

__all__ = ["rubric_arm_grader"]


def __getattr__(name: str) -> Any:
    if name == "rubric_arm_grader":
        from rubric_arm.harness.inspect_grader import rubric_arm_grader

        return rubric_arm_grader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
