"""PPE IFEval best-of-K (lmarena-ai/PPE-IFEval-Best-of-K): one pair per sampled conflict pair (a
response that passes the IFEval verifier against one that fails), pairwise accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rubric_arm.data.rows import BenchmarkPairs, HubSource, chosen_first, read_rows
from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks.base import EvalBenchmark
from rubric_arm.types import text_field, validate_prompt

HUB = HubSource("lmarena-ai/PPE-IFEval-Best-of-K", None, "train")
PPE_IFEVAL_K = 32


def _index_pair(value: Any, scores: list[bool], where: str) -> tuple[int, int]:
    """(passing, failing) response indices of one sampled conflict pair."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2
    ok = ok and all(isinstance(k, int) and not isinstance(k, bool) for k in value)
    ok = ok and all(0 <= k < len(scores) for k in value)
    if not ok:
        raise InputError(
            f"{where}: expected two response indices in 0..{len(scores) - 1}, got {value!r}"
        )
    i, j = value
    if scores[i] == scores[j]:
        raise InputError(f"{where}: responses {i} and {j} both {'pass' if scores[i] else 'fail'}")
    return (i, j) if scores[i] else (j, i)


def load_ppe_ifeval(source: str | Path | None = None, *, split: str = "train") -> BenchmarkPairs:
    """PPE IFEval best-of-32: one pair per sampled conflict pair, the passing response chosen.

    Ids are "<row>/<passing>-<failing>" with 0-based response indices.
    """
    responses = [f"response_{k}" for k in range(1, PPE_IFEVAL_K + 1)]
    cols = ("prompt", *responses, "scores", "sampled_conflict_pairs")
    rows, src = read_rows(source, HUB, "ppe-ifeval", cols, split)
    pairs = BenchmarkPairs()
    for i, (row, where) in enumerate(zip(rows, src, strict=True)):
        scores = row["scores"]
        if (
            not isinstance(scores, list)
            or len(scores) != PPE_IFEVAL_K
            or not all(isinstance(s, bool) for s in scores)
        ):
            raise InputError(f"{where}: field 'scores' must be a list of {PPE_IFEVAL_K} booleans")
        sampled = row["sampled_conflict_pairs"]
        if not isinstance(sampled, list):
            raise InputError(
                f"{where}: field 'sampled_conflict_pairs' must be a list of index pairs"
            )
        prompt = validate_prompt(row["prompt"], f"{where}: field 'prompt'")
        for n, value in enumerate(sampled):
            win, lose = _index_pair(value, scores, f"{where}: sampled_conflict_pairs[{n}]")
            meta = {
                "row": i,
                "chosen_index": win,
                "rejected_index": lose,
                "model_name": row.get("model_name"),
            }
            pairs.append(
                chosen_first(
                    f"{i}/{win}-{lose}",
                    prompt,
                    text_field(row, responses[win], where),
                    text_field(row, responses[lose], where),
                    None,
                    meta,
                )
            )
    return pairs


BENCHMARK = EvalBenchmark(
    "ppe-ifeval",
    load_ppe_ifeval,
    "PPE IFEval best-of-K pairs",
    hub=HUB,
    paper_columns={"overall": "PPE-IF"},
)
