"""Reading benchmark and training rows from the Hugging Face hub or a local file, and checking them.

Loaders (one per benchmark in `rubric_arm.harness.benchmarks`, the training and prompt sources in
`rubric_arm.data.sources`) read rows in the dataset's own schema through `read_rows`, which checks
every row for the required columns before any is converted, so a wrong file fails at once and
names the row. The helpers below validate single fields with the row's place in the message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from rubric_arm.data.jsonl import read_jsonl
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import PreferencePair, Prompt

Row = dict[str, Any]


class HubSource(NamedTuple):
    """Where a dataset lives on the hub: its id, config and default split."""

    hub_id: str
    config: str | None
    split: str


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


def hub_rows(hub_id: str, config: str | None, split: str) -> list[Row]:
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


def file_rows(path: Path) -> tuple[list[Row], list[str]]:
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


def read_rows(
    source: str | Path | None, hub: HubSource, name: str, columns: Sequence[str], split: str
) -> tuple[list[Row], list[str]]:
    """Rows of `source` (a local file) or of the hub dataset, and where each one is, for
    messages; every row must hold every required column."""
    if source is None:
        rows = hub_rows(hub.hub_id, hub.config, split)
        places = [f"{hub.hub_id} ({split}), row {i}" for i in range(len(rows))]
    else:
        rows, places = file_rows(Path(source))
    for row, where in zip(rows, places, strict=True):
        missing = [c for c in columns if c not in row]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise InputError(
                f"{where}: missing column(s) {names} for {name} ({hub.hub_id}) (the first "
                f"row without it); found columns: {', '.join(sorted(row)) or 'none'}"
            )
    return rows, places


def text_list(row: Row, col: str, where: str, count: int | None = None) -> list[str]:
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


def row_id(row: Row, col: str, where: str) -> str:
    value = row[col]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise InputError(f"{where}: field {col!r} must be a non-empty string or an integer")
    return str(value)


def optional_text(row: Row, col: str, where: str) -> str | None:
    value = row.get(col)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: field {col!r} must be a string, got {type(value).__name__}")
    return value


def chosen_first(
    pid: str, prompt: Prompt, chosen: str, rejected: str, subset: str | None, meta: Row
) -> PreferencePair:
    """A benchmark pair with the chosen response as response_a, label "A" (the runner
    randomises the shown order with its seed)."""
    return PreferencePair(pid, prompt, chosen, rejected, "A", subset, meta)
