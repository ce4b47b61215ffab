"""Named generator + judge + engine combinations with their decoding settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.types import Decoding, SamplingParams, VerdictRule


@dataclass(frozen=True)
class Preset:
    """Everything needed to build a RubricARM: which weights, which engine, how to decode."""

    name: str
    generator: str
    judge: str
    engine: str = "transformers"
    generator_template: str = "generator"
    judge_template: str = "judge"
    rubric_sampling: SamplingParams = field(default_factory=SamplingParams)
    judge_sampling: SamplingParams = field(default_factory=SamplingParams)
    votes: int = 1
    description: str = ""
    decoding: Decoding = "free"
    verdict: VerdictRule = "vote"
    max_rubric_items: int = 8
    # "implicit": the judge writes the verdict (the paper); "explicit": the judge answers one
    # Meets / Fails check per hard rule and response and the verdict is computed from them
    # (rubric_arm.checklist).
    aggregation: str = "implicit"

    def with_overrides(self, **overrides: Any) -> Preset:
        """A copy with the non-None overrides applied (unknown keys are an error)."""
        known = set(self.__dataclass_fields__)
        unknown = set(overrides) - known
        if unknown:
            raise InputError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# PAPER.md section 5: generator greedy with 1024 new tokens, judge T=1.0, top_p=1.0, 4096 tokens.
_PAPER = Preset(
    name="paper",
    generator="rubricarm-8b-rubric",
    judge="rubricarm-8b-judge",
    engine="vllm",
    rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=1024),
    judge_sampling=SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=4096),
    description="released OpenRubrics/RubricARM-8B-{Rubric,Judge} on vLLM (GPU + hub)",
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="mini",
            generator="smollm2-135m-instruct",
            judge="smollm2-135m-instruct",
            rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=256),
            # A 135M model sampled at T=1 mostly produces noise; greedy keeps it readable.
            judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=448),
            description="embedded SmolLM2-135M-Instruct for both roles (prompted, CPU, offline)",
            # Free decoding never reaches a Winner line at 135M (0 of 52 held-out pairs).
            decoding="constrained",
            max_rubric_items=5,
        ),
        Preset(
            name="tiny",
            generator="tiny-random",
            judge="tiny-random",
            # room for the judge format's forced text in the tiny tokenizer's short tokens
            rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=96),
            judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=200),
            description="random-init test model built locally (tests only; output is noise)",
            decoding="constrained",
            max_rubric_items=3,
        ),
        _PAPER,
        replace(
            _PAPER,
            name="paper-voting",
            votes=5,
            description="the paper preset with voting@5 over judge samples",
        ),
        replace(
            _PAPER,
            name="rubric-rm-8b",
            generator="rubricrm-8b-rubric",
            judge="rubricrm-8b-judge",
            judge_template="judge-general",
            description="OpenRubrics/RubricRM-8B (SFT-only predecessor) with the general judge format",
        ),
    ]
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name with a clear error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}"
        ) from None
