"""Rubric-ARM: a rubric generator and a judge (two LLMs) used as a pairwise reward model."""

from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.records import JudgeRecord, Judgment, RubricRecord, RubricResult, read_records
from rubric_arm.types import (
    Completion,
    Criterion,
    PreferencePair,
    Rubric,
    SamplingParams,
    Verdict,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    """`RubricARM` on first use, so that `import rubric_arm` does not load torch."""
    if name == "RubricARM":
        from rubric_arm.pipeline import RubricARM

        return RubricARM
    raise AttributeError(f"module 'rubric_arm' has no attribute {name!r}")


__all__ = [
    "Completion",
    "Criterion",
    "InputError",
    "JudgeRecord",
    "Judgment",
    "PreferencePair",
    "Rubric",
    "RubricARM",
    "RubricArmError",
    "RubricRecord",
    "RubricResult",
    "SamplingParams",
    "Verdict",
    "__version__",
    "read_records",
]
