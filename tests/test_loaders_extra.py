"""WritingPreferenceBench, OpenRubric-v2, parquet files and the verifiable-prompt sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.data.if_sources import (
    FOLLOWBENCH_QUESTION,
    load_followbench,
    load_ifbench_prompts,
    load_ifbench_sample_outputs,
    load_ifeval_prompts,
    load_infobench,
    load_mtbench,
)
from rubric_arm.data.sources import SOURCES, load_openrubric
from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks.writing_preference import load_writing_preference


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def wp_row(pid: str, tag: Any = "Poetry") -> dict[str, Any]:
    return {
        "prompt": f"Write a poem {pid}",
        "prompt_id": pid,
        "tag": tag,
        "chosen": {"text": "a fine poem", "score": 3, "model": "m1", "length": 11},
        "rejected": {"text": "a weak poem", "score": 1, "model": "m2", "length": 11},
    }


def test_writing_preference(tmp_path: Path) -> None:
    rows = [wp_row("p1"), wp_row("p1", ["Fiction", "Sci-fi"]), wp_row("p2", {"domain": "Funny"})]
    pairs = load_writing_preference(write_jsonl(tmp_path / "wp.jsonl", rows))
    assert [p.id for p in pairs] == ["p1", "p1#2", "p2"]
    assert [p.subset for p in pairs] == ["Poetry", "Fiction", "Funny"]
    assert pairs[0].response_a == "a fine poem" and pairs[0].label == "A"
    assert pairs[0].metadata["chosen"] == {"score": 3, "model": "m1", "length": 11}


def test_writing_preference_errors(tmp_path: Path) -> None:
    row = wp_row("p1")
    del row["tag"]
    with pytest.raises(InputError, match=r"line 1: missing column\(s\) 'tag'"):
        load_writing_preference(write_jsonl(tmp_path / "a.jsonl", [row]))
    row = wp_row("p1")
    row["chosen"] = {"body": "x"}
    with pytest.raises(InputError, match="line 1: field 'chosen' has none of the text keys"):
        load_writing_preference(write_jsonl(tmp_path / "b.jsonl", [row]))


def or_row(winner: Any) -> dict[str, Any]:
    return {
        "instruction": "Explain X.",
        "response_a": "first",
        "response_b": "second",
        "winner": winner,
        "rubric": "1. The response explains X. [Hard Rule]",
        "source": "ultrafeedback",
        "judge_trajectory": "...",
    }


def test_openrubric(tmp_path: Path) -> None:
    pairs = load_openrubric(write_jsonl(tmp_path / "o.jsonl", [or_row("Response B"), or_row("a")]))
    assert [p.label for p in pairs] == ["B", "A"]
    assert pairs[0].subset == "ultrafeedback"
    assert pairs[0].metadata["rubric"].endswith("[Hard Rule]")
    assert pairs[0].metadata["extra"] == {"judge_trajectory": "..."}
    with pytest.raises(InputError, match="line 1: field 'winner'"):
        load_openrubric(write_jsonl(tmp_path / "bad.jsonl", [or_row("tie")]))
    row = or_row("A")
    del row["rubric"], row["source"]
    with pytest.raises(InputError, match=r"'rubric', 'source'.*OpenRubrics/OpenRubric-v2"):
        load_openrubric(write_jsonl(tmp_path / "m.jsonl", [row]))
    assert SOURCES["openrubric-v2"].hub.hub_id == "OpenRubrics/OpenRubric-v2"


def test_parquet_file(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "o.parquet"
    pq.write_table(pa.Table.from_pylist([or_row("B")]), path)
    assert load_openrubric(path)[0].label == "B"
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable parquet file"):
        load_openrubric(tmp_path / "broken.parquet")


def ifb_row(key: str, ids: list[str], kwargs: Any) -> dict[str, Any]:
    return {"key": key, "prompt": "Write about cats.", "instruction_id_list": ids, "kwargs": kwargs}


def test_rule_prompt_sources(tmp_path: Path) -> None:
    rows = [ifb_row("1", ["punctuation:no_comma"], [{"N": None}])]
    items = load_ifeval_prompts(write_jsonl(tmp_path / "e.jsonl", rows))
    assert items[0].registry == "ifeval" and items[0].kwargs == ({},)
    rows = [ifb_row("2", ["count:word_count_range"], json.dumps([{"min_words": 5}]))]
    items = load_ifbench_prompts(write_jsonl(tmp_path / "b.jsonl", rows))
    assert items[0].kwargs == ({"min_words": 5},) and items[0].registry == "ifbench"
    with pytest.raises(InputError, match="line 1: field 'kwargs' must be a list of 2"):
        load_ifbench_prompts(write_jsonl(tmp_path / "c.jsonl", [ifb_row("3", ["a", "b"], [{}])]))
    with pytest.raises(InputError, match=r"missing column\(s\) 'kwargs'"):
        load_ifbench_prompts(
            write_jsonl(
                tmp_path / "d.jsonl", [{"key": 1, "prompt": "p", "instruction_id_list": ["x"]}]
            )
        )


def test_shipped_ifbench_and_mtbench() -> None:
    items = load_ifbench_prompts()
    outputs = load_ifbench_sample_outputs()
    assert len(items) == 294 and all(it.prompt in outputs for it in items)
    mt = load_mtbench("gpt-4")
    assert len(mt) == 30 and all(len(q["reference"]) == 2 for q in mt)
    assert {q["category"] for q in mt} == {"math", "reasoning", "coding"}


def test_infobench_and_followbench(tmp_path: Path) -> None:
    rows = [
        {
            "id": "i1",
            "input": "Some text.",
            "category": "c",
            "instruction": "Summarise.",
            "decomposed_questions": ["Is it short?", "Is it in English?"],
        }
    ]
    item = load_infobench(write_jsonl(tmp_path / "i.jsonl", rows))[0]
    assert item.prompt == "Summarise.\n\nSome text." and len(item.questions) == 2
    rows[0]["decomposed_questions"] = []
    with pytest.raises(InputError, match="decomposed_questions"):
        load_infobench(write_jsonl(tmp_path / "j.jsonl", rows))
    fb = [
        {
            "example_id": 1,
            "category": "content",
            "source": "s",
            "level": lv,
            "instruction": f"do {lv}",
            "target": "",
        }
        for lv in (0, 1, 3)
    ]
    items = load_followbench(write_jsonl(tmp_path / "f.jsonl", fb))
    assert [it.key for it in items] == ["content/1/1", "content/1/3"]
    assert items[0].questions == (FOLLOWBENCH_QUESTION,)


def test_infobench_and_followbench_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"missing column\(s\) 'decomposed_questions'.*kqsong/InFoBench"
    ):
        load_infobench(
            write_jsonl(
                tmp_path / "i.jsonl", [{"id": 1, "input": "", "category": "c", "instruction": "x"}]
            )
        )
    with pytest.raises(InputError, match=r"missing column\(s\) 'level'.*YuxinJiang/FollowBench"):
        load_followbench(
            write_jsonl(
                tmp_path / "f.jsonl",
                [
                    {
                        "example_id": 1,
                        "category": "c",
                        "source": "s",
                        "instruction": "x",
                        "target": "",
                    }
                ],
            )
        )


def test_offline_hub_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real `datasets` and HF_DATASETS_OFFLINE=1, an uncached dataset is a clear error."""
    pytest.importorskip("datasets")
    from rubric_arm.errors import RubricArmError

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RubricArmError, match="HF_DATASETS_OFFLINE is set.*local .jsonl/.parquet"):
        load_writing_preference()
