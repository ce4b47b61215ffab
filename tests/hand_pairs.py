"""Hand-made preference pairs with verifiable instructions, shared by tests."""

from __future__ import annotations

from typing import Any

from rubric_arm.types import PreferencePair


def bullets_and_postscript(
    label: str = "A", response_a: str = "a", response_b: str = "b", **metadata: Any
) -> PreferencePair:
    """A verifiable-if pair asking for 3 bullet points and a P.S. (IFEval checkers); extra
    metadata (e.g. the responses' recorded verification) is added as given."""
    return PreferencePair(
        id="hand/1",
        prompt="Write about rivers in exactly 3 bullet points, and end with a P.S.",
        response_a=response_a,
        response_b=response_b,
        label=label,
        subset="verifiable-if",
        metadata={
            "instruction_id_list": [
                "detectable_format:number_bullet_lists",
                "detectable_content:postscript",
            ],
            "kwargs": [{"num_bullets": 3}, {"postscript_marker": "P.S."}],
            "registry": "ifeval",
            **metadata,
        },
    )
