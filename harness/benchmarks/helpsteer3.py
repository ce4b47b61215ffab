"""HelpSteer3 preference (nvidia/HelpSteer3, config "preference", split "validation"): the winner by
the sign of overall_preference, ties (0) dropped and counted; pairwise accuracy per domain."""

from __future__ import annotations

from pathlib import Path

from rubric_arm.data.rows import BenchmarkPairs, HubSource, chosen_first, optional_text, read_rows
from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks.base import EvalBenchmark
from rubric_arm.types import text_field, validate_prompt

HUB = HubSource("nvidia/HelpSteer3", "preference", "validation")


def load_helpsteer3(
    source: str | Path | None = None, *, split: str = "validation"
) -> BenchmarkPairs:
    """HelpSteer3 preference: winner by the sign of overall_preference (negative = response1).

    Rows with overall_preference == 0 are dropped and counted in the result's `dropped`.
    Ids are the row's position in the source, as the dataset has no id column.
    """
    cols = ("domain", "language", "context", "response1", "response2", "overall_preference")
    rows, src = read_rows(source, HUB, "helpsteer3", cols, split)
    pairs = BenchmarkPairs()
    for i, (row, where) in enumerate(zip(rows, src, strict=True)):
        pref = row["overall_preference"]
        if isinstance(pref, bool) or not isinstance(pref, int) or not -3 <= pref <= 3:
            raise InputError(
                f"{where}: field 'overall_preference' must be an integer in -3..3, got {pref!r}"
            )
        prompt = validate_prompt(row["context"], f"{where}: field 'context'")
        r1, r2 = text_field(row, "response1", where), text_field(row, "response2", where)
        if pref == 0:
            pairs.dropped += 1
            continue
        chosen, rejected = (r1, r2) if pref < 0 else (r2, r1)
        meta = {
            "language": optional_text(row, "language", where),
            "overall_preference": pref,
            "chosen_response": 1 if pref < 0 else 2,
            "row": i,
        }
        pairs.append(
            chosen_first(str(i), prompt, chosen, rejected, text_field(row, "domain", where), meta)
        )
    return pairs


BENCHMARK = EvalBenchmark(
    "helpsteer3",
    load_helpsteer3,
    "HelpSteer3 preference",
    hub=HUB,
    paper_columns={"overall": "HS3"},
)
