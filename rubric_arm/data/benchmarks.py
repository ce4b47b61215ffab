"""Loaders for public reward-model benchmarks, from local files or the Hugging Face hub.

Each loader reads rows in the benchmark's own schema (column names as the hub releases
them) and converts them to rubric-arm types: pairwise benchmarks to PreferencePair with the
chosen response as `response_a` and label "A" (the runner randomises the order with its
seed), best-of-N benchmarks (RewardBench 2, RM-Bench) to MultiResponseItem. Columns are
checked for every row before any row is converted, so a wrong file fails at once.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from rubric_arm.data.jsonl import read_jsonl
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import (
    PreferencePair,
    Prompt,
    normalize_label,
    text_field,
    validate_prompt,
)

RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")
PPE_IFEVAL_K = 32


@dataclass
class MultiResponseItem:
    """One prompt with several correct and incorrect responses (best-of-N benchmarks)."""

    id: str
    prompt: Prompt
    correct: list[str]
    incorrect: list[str]
    subset: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class BenchmarkPairs(list[PreferencePair]):
    """The pairs a pairwise loader returns, plus `dropped`: rows left out by the benchmark's rule.

    Only HelpSteer3 drops rows (overall_preference == 0); elsewhere `dropped` is 0.
    """

    def __init__(self, pairs: Sequence[PreferencePair] = (), dropped: int = 0) -> None:
        super().__init__(pairs)
        self.dropped = dropped


class BenchmarkSpec(NamedTuple):
    """Where a benchmark lives on the hub and which function converts its rows."""

    loader: Callable[..., Any]
    hub_id: str
    config: str | None
    split: str


Row = dict[str, Any]


def _hub_rows(hub_id: str, config: str | None, split: str) -> list[Row]:
    """Rows of a hub dataset through `datasets` (imported here so it stays optional)."""
    try:
        import datasets
    except ImportError as exc:
        raise RubricArmError(
            f"loading {hub_id} from the hub needs the datasets package: pip install datasets "
            "(or pass a local .jsonl file as the source)"
        ) from exc
    try:
        ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        detail = lines[0] if lines else type(exc).__name__
        offline = os.environ.get("HF_DATASETS_OFFLINE", "").lower() in ("1", "true", "yes")
        hint = (
            "; HF_DATASETS_OFFLINE is set, so only the local HF cache is read: "
            "pass a local .jsonl/.parquet file in the same schema instead"
            if offline
            else ""
        )
        raise RubricArmError(f"cannot load {hub_id} (split {split!r}): {detail}{hint}") from exc
    return [dict(row) for row in ds]


def _parquet_rows(path: Path) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise RubricArmError(f"{path}: reading parquet needs pyarrow: pip install pyarrow") from exc
    if not path.is_file():
        raise RubricArmError(f"input file {path} does not exist or is not a file")
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:
        raise InputError(f"{path}: not a readable parquet file ({exc})") from exc


def _file_rows(path: Path) -> tuple[list[Row], list[str]]:
    """Rows of a local .jsonl or .parquet file, or of a .json file holding a list of objects, and
    where each one is for messages: the line of a JSONL file (from 1, as an editor counts), the
    index of a table row (from 0, as datasets and pyarrow count)."""
    if path.suffix.lower() == ".parquet":
        rows = _parquet_rows(path)
        return rows, [f"{path}, row {i}" for i in range(len(rows))]
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise RubricArmError(f"input file {path} does not exist or is not a file")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise InputError(
                    f"{path}, row {i}: expected a JSON object, got {type(row).__name__}"
                )
        return data, [f"{path}, row {i}" for i in range(len(data))]
    rows, places = [], []
    for line, row in read_jsonl(path):
        if isinstance(row, InputError):
            raise row
        rows.append(row)
        places.append(f"{path}, line {line}")
    return rows, places


def _load_rows(
    source: str | Path | None, benchmark: str, columns: Sequence[str], split: str
) -> tuple[list[Row], list[str]]:
    """Rows and where each one is, for messages; every row must hold every required column."""
    spec = BENCHMARKS.get(benchmark) or SOURCES[benchmark]
    if source is None:
        rows = _hub_rows(spec.hub_id, spec.config, split)
        places = [f"{spec.hub_id} ({split}), row {i}" for i in range(len(rows))]
    else:
        rows, places = _file_rows(Path(source))
    for row, where in zip(rows, places, strict=True):
        missing = [c for c in columns if c not in row]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise InputError(
                f"{where}: missing column(s) {names} for {benchmark} ({spec.hub_id}) (the first "
                f"row without it); found columns: {', '.join(sorted(row)) or 'none'}"
            )
    return rows, places


def _texts(row: Row, col: str, where: str, count: int | None = None) -> list[str]:
    value = row[col]
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: field {col!r} must be a non-empty list of strings")
    if count is not None and len(value) != count:
        raise InputError(
            f"{where}: field {col!r} must hold exactly {count} responses, got {len(value)}"
        )
    for j, item in enumerate(value):
        if not isinstance(item, str):
            raise InputError(
                f"{where}: field {col}[{j}] must be a string, got {type(item).__name__}"
            )
        if not item.strip():
            raise InputError(f"{where}: field {col}[{j}] is empty")
    return list(value)


def _row_id(row: Row, col: str, where: str) -> str:
    value = row[col]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise InputError(f"{where}: field {col!r} must be a non-empty string or an integer")
    return str(value)


def _optional_text(row: Row, col: str, where: str) -> str | None:
    value = row.get(col)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: field {col!r} must be a string, got {type(value).__name__}")
    return value


def _pair(
    pid: str, prompt: Prompt, chosen: str, rejected: str, subset: str | None, meta: Row
) -> PreferencePair:
    return PreferencePair(pid, prompt, chosen, rejected, "A", subset, meta)


def load_rewardbench(
    source: str | Path | None = None, *, split: str = "filtered"
) -> BenchmarkPairs:
    """RewardBench v1: one pair per row, chosen first with label "A", subset kept."""
    cols = ("id", "prompt", "chosen", "chosen_model", "rejected", "rejected_model", "subset")
    rows, src = _load_rows(source, "rewardbench", cols, split)
    pairs = BenchmarkPairs()
    for row, where in zip(rows, src, strict=True):
        pid = _row_id(row, "id", where)
        meta = {
            "chosen_model": _optional_text(row, "chosen_model", where),
            "rejected_model": _optional_text(row, "rejected_model", where),
        }
        pairs.append(
            _pair(
                pid,
                validate_prompt(row["prompt"], f"{where}: field 'prompt'"),
                text_field(row, "chosen", where),
                text_field(row, "rejected", where),
                text_field(row, "subset", where),
                meta,
            )
        )
    return pairs


def load_rewardbench2(
    source: str | Path | None = None, *, split: str = "test"
) -> list[MultiResponseItem]:
    """RewardBench 2: one item per row, id "subset/id" since ids restart in every subset."""
    cols = (
        "id",
        "prompt",
        "chosen",
        "rejected",
        "num_correct",
        "num_incorrect",
        "total_completions",
        "models",
        "subset",
        "additional_metadata",
    )
    rows, src = _load_rows(source, "rewardbench2", cols, split)
    items: list[MultiResponseItem] = []
    seen: dict[str, int] = {}
    for i, (row, where) in enumerate(zip(rows, src, strict=True)):
        subset = text_field(row, "subset", where)
        item_id = f"{subset}/{_row_id(row, 'id', where)}"
        if item_id in seen:
            raise InputError(f"{where}: item {item_id!r} repeats row {seen[item_id]}")
        seen[item_id] = i
        correct = _texts(row, "chosen", where)
        incorrect = _texts(row, "rejected", where)
        meta = {
            "source_id": row["id"],
            "models": row["models"],
            "num_correct": row["num_correct"],
            "num_incorrect": row["num_incorrect"],
            "total_completions": row["total_completions"],
            "additional_metadata": row["additional_metadata"],
        }
        prompt = validate_prompt(row["prompt"], f"{where}: field 'prompt'")
        items.append(MultiResponseItem(item_id, prompt, correct, incorrect, subset, meta))
    return items


def load_rm_bench(
    source: str | Path | None = None, *, split: str = "train"
) -> list[MultiResponseItem]:
    """RM-Bench: 3 chosen x 3 rejected style variants per prompt, subset = domain.

    Both lists keep the benchmark's style order, recorded in metadata["styles"].
    """
    rows, src = _load_rows(
        source, "rm-bench", ("id", "prompt", "chosen", "rejected", "domain"), split
    )
    items: list[MultiResponseItem] = []
    for row, where in zip(rows, src, strict=True):
        n = len(RM_BENCH_STYLES)
        items.append(
            MultiResponseItem(
                _row_id(row, "id", where),
                validate_prompt(row["prompt"], f"{where}: field 'prompt'"),
                _texts(row, "chosen", where, n),
                _texts(row, "rejected", where, n),
                text_field(row, "domain", where),
                {"styles": list(RM_BENCH_STYLES)},
            )
        )
    return items


def load_helpsteer3(
    source: str | Path | None = None, *, split: str = "validation"
) -> BenchmarkPairs:
    """HelpSteer3 preference: winner by the sign of overall_preference (negative = response1).

    Rows with overall_preference == 0 are dropped and counted in the result's `dropped`.
    Ids are the row's position in the source, as the dataset has no id column.
    """
    cols = ("domain", "language", "context", "response1", "response2", "overall_preference")
    rows, src = _load_rows(source, "helpsteer3", cols, split)
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
            "language": _optional_text(row, "language", where),
            "overall_preference": pref,
            "chosen_response": 1 if pref < 0 else 2,
            "row": i,
        }
        pairs.append(
            _pair(str(i), prompt, chosen, rejected, text_field(row, "domain", where), meta)
        )
    return pairs


def load_judgebench(source: str | Path | None = None, *, split: str = "gpt") -> BenchmarkPairs:
    """JudgeBench: label "A>B" or "B>A"; the winner becomes response_a, subset = source."""
    cols = (
        "pair_id",
        "original_id",
        "source",
        "question",
        "response_model",
        "response_A",
        "response_B",
        "label",
    )
    rows, src = _load_rows(source, "judgebench", cols, split)
    pairs = BenchmarkPairs()
    for row, where in zip(rows, src, strict=True):
        label = row["label"]
        if label not in ("A>B", "B>A"):
            raise InputError(f"{where}: field 'label' must be 'A>B' or 'B>A', got {label!r}")
        a, b = text_field(row, "response_A", where), text_field(row, "response_B", where)
        chosen, rejected = (a, b) if label == "A>B" else (b, a)
        meta = {
            "original_id": row["original_id"],
            "response_model": _optional_text(row, "response_model", where),
            "original_label": label,
        }
        pairs.append(
            _pair(
                _row_id(row, "pair_id", where),
                validate_prompt(row["question"], f"{where}: field 'question'"),
                chosen,
                rejected,
                text_field(row, "source", where),
                meta,
            )
        )
    return pairs


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
    rows, src = _load_rows(source, "ppe-ifeval", cols, split)
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
                _pair(
                    f"{i}/{win}-{lose}",
                    prompt,
                    text_field(row, responses[win], where),
                    text_field(row, responses[lose], where),
                    None,
                    meta,
                )
            )
    return pairs


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
    rows, src = _load_rows(source, "writing-preference", cols, split)
    pairs = BenchmarkPairs()
    seen: Counter[str] = Counter()
    for row, where in zip(rows, src, strict=True):
        base = _row_id(row, "prompt_id", where)
        seen[base] += 1
        pid = base if seen[base] == 1 else f"{base}#{seen[base]}"
        chosen, chosen_meta = _writing_response(row, "chosen", where)
        rejected, rejected_meta = _writing_response(row, "rejected", where)
        meta = {"prompt_id": row["prompt_id"], "chosen": chosen_meta, "rejected": rejected_meta}
        prompt = validate_prompt(row["prompt"], f"{where}: field 'prompt'")
        pairs.append(_pair(pid, prompt, chosen, rejected, _subset_name(row, where), meta))
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


def load_openrubric(source: str | Path | None = None, *, split: str = "train") -> BenchmarkPairs:
    """OpenRubric-v2 (training data): pairs in the given order, label from `winner`.

    The reference rubric and source go to metadata, with every further column kept as is
    (the judge-trajectory column's name is not documented upstream).
    """
    cols = ("instruction", "response_a", "response_b", "winner", "rubric", "source")
    rows, src = _load_rows(source, "openrubric-v2", cols, split)
    pairs = BenchmarkPairs()
    for i, (row, where) in enumerate(zip(rows, src, strict=True)):
        label = normalize_label(row["winner"], f"{where}: field 'winner'")
        if label is None:
            raise InputError(f"{where}: field 'winner' is empty")
        extra = {k: v for k, v in row.items() if k not in cols}
        meta = {"rubric": _optional_text(row, "rubric", where), "extra": extra}
        pid = str(row["id"]) if "id" in row and row["id"] is not None else str(i)
        pairs.append(
            PreferencePair(
                pid,
                validate_prompt(row["instruction"], f"{where}: field 'instruction'"),
                text_field(row, "response_a", where),
                text_field(row, "response_b", where),
                label,
                text_field(row, "source", where),
                meta,
            )
        )
    return pairs


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "rewardbench": BenchmarkSpec(load_rewardbench, "allenai/reward-bench", None, "filtered"),
    "rewardbench2": BenchmarkSpec(load_rewardbench2, "allenai/reward-bench-2", None, "test"),
    "rm-bench": BenchmarkSpec(load_rm_bench, "THU-KEG/RM-Bench", None, "train"),
    "helpsteer3": BenchmarkSpec(load_helpsteer3, "nvidia/HelpSteer3", "preference", "validation"),
    "judgebench": BenchmarkSpec(load_judgebench, "ScalerLab/JudgeBench", None, "gpt"),
    "ppe-ifeval": BenchmarkSpec(load_ppe_ifeval, "lmarena-ai/PPE-IFEval-Best-of-K", None, "train"),
    # Config and split names of WritingPreferenceBench are not documented upstream [U].
    "writing-preference": BenchmarkSpec(
        load_writing_preference, "m-a-p/Writing-Preference-Bench", None, "train"
    ),
}

# Data that is not a benchmark of its own: training pairs and prompt sources for pair builders
# (filled in by rubric_arm.data.if_sources for the verifiable-prompt sets).
SOURCES: dict[str, BenchmarkSpec] = {
    "openrubric-v2": BenchmarkSpec(load_openrubric, "OpenRubrics/OpenRubric-v2", None, "train"),
}
