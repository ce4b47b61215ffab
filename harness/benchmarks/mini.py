"""The offline mini suite (rubric_arm/data/mini): verifier-labelled pairs built from data shipped
by pip packages, held-out split by default; pairwise accuracy per subset with CIs that resample
source prompts (construction and label balance: CARD.md there)."""

from __future__ import annotations

from pathlib import Path

from rubric_arm.harness.benchmarks.base import EvalBenchmark
from rubric_arm.types import PreferencePair


def load(source: str | Path | None = None, *, split: str | None = None) -> list[PreferencePair]:
    """A split of the packaged suite, or of a suite folder / file given as `source`."""
    from rubric_arm.data.mini import load_mini

    return load_mini(split or "heldout", path=Path(source) if source else None)


BENCHMARK = EvalBenchmark(
    "mini",
    load,
    "offline mini suite (held-out split by default)",
    default_split="heldout",
    data_note="rubric_arm/data/mini (construction and label balance: CARD.md there)",
)
