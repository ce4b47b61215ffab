"""WritingPreferenceBench (m-a-p/Writing-Preference-Bench): chosen / rejected response objects,
pairwise accuracy per domain (the row's tag). Config and split names are not documented
upstream [U]."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rubric_arm.data.rows import BenchmarkPairs, HubSource, Row, chosen_first, read_rows, row_id
from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks.base import EvalBenchmark
from rubric_arm.types import text_field, validate_prompt

HUB = HubSource("m-a-p/Writing-Preference-Bench", None, "train")

_WRITING_TEXT_KEYS = ("text", "content", "response")


def _writing_response(row: Row, col: str, where: str) -> tuple[str, Row]:
    """A WritingPreferenceBench response object -> (text, the object's other fields)."""
    value = row[col]
    if isinstance(value, str):
        return text_field(row, col, where), {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: field {col!r} must be an object or a string")
    key = next((k for k in _WRITING_TEXT_KEYS if k in value), None)
    if key is None:
        raise InputError(
            f"{where}: field {col!r} has none of the text keys {_WRITING_TEXT_KEYS}; "
            f"found: {', '.join(sorted(value)) or 'none'}"
        )
    text = text_field(value, key, f"{where}: field {col!r}")
    return text, {k: v for k, v in value.items() if k != key}


def load_writing_preference(
    source: str | Path | None = None, *, split: str = "train"
) -> BenchmarkPairs:
    """WritingPreferenceBench: chosen / rejected response objects; subset = tag (the domain)."""
    cols = ("prompt", "prompt_id", "tag", "chosen", "rejected")
    rows, src = read_rows(source, HUB, "writing-preference", cols, split)
    pairs = BenchmarkPairs()
    seen: Counter[str] = Counter()
    for row, where in zip(rows, src, strict=True):
        base = row_id(row, "prompt_id", where)
        seen[base] += 1
        pid = base if seen[base] == 1 else f"{base}#{seen[base]}"
        chosen, chosen_meta = _writing_response(row, "chosen", where)
        rejected, rejected_meta = _writing_response(row, "rejected", where)
        meta = {"prompt_id": row["prompt_id"], "chosen": chosen_meta, "rejected": rejected_meta}
        prompt = validate_prompt(row["prompt"], f"{where}: field 'prompt'")
        pairs.append(chosen_first(pid, prompt, chosen, rejected, _subset_name(row, where), meta))
    return pairs


def _subset_name(row: Row, where: str) -> str:
    tag = row["tag"]
    if isinstance(tag, list) and tag and all(isinstance(t, str) for t in tag):
        return tag[0]
    if isinstance(tag, dict):
        domain = tag.get("domain") or tag.get("category")
        if isinstance(domain, str) and domain:
            return domain
    if isinstance(tag, str) and tag:
        return tag
    raise InputError(f"{where}: field 'tag' must name the domain (a string), got {tag!r}")


BENCHMARK = EvalBenchmark(
    "writing-preference", load_writing_preference, "WritingPreferenceBench", hub=HUB
)
