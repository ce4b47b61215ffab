"""Benchmark loaders on small local files in each benchmark's real schema (never the hub)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.harness.benchmarks import BUILTIN, EVAL_BENCHMARKS
from rubric_arm.harness.benchmarks.helpsteer3 import load_helpsteer3
from rubric_arm.harness.benchmarks.judgebench import load_judgebench
from rubric_arm.harness.benchmarks.ppe_ifeval import PPE_IFEVAL_K, load_ppe_ifeval
from rubric_arm.harness.benchmarks.rewardbench import load_rewardbench
from rubric_arm.harness.benchmarks.rewardbench2 import load_rewardbench2
from rubric_arm.harness.benchmarks.rm_bench import load_rm_bench


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rb_row(rid: int, subset: str) -> dict[str, Any]:
    return {
        "prompt": f"question {rid}",
        "chosen": f"good {rid}",
        "chosen_model": "gpt-4",
        "rejected": f"bad {rid}",
        "rejected_model": "llama-7b",
        "subset": subset,
        "id": rid,
    }


def rb2_row(rid: str, subset: str, n_correct: int = 1) -> dict[str, Any]:
    return {
        "id": rid,
        "prompt": f"prompt {subset} {rid}",
        "chosen": [f"right {k}" for k in range(n_correct)],
        "rejected": ["wrong 0", "wrong 1", "wrong 2"],
        "num_correct": n_correct,
        "num_incorrect": 3,
        "total_completions": n_correct + 3,
        "models": ["m1", "m2", "m3", "m4"],
        "subset": subset,
        "additional_metadata": {"note": "x"},
    }


def hs3_row(pref: int, domain: str = "general") -> dict[str, Any]:
    return {
        "domain": domain,
        "language": "english",
        "context": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": f"rate {pref}"},
        ],
        "response1": f"first {pref}",
        "response2": f"second {pref}",
        "overall_preference": pref,
        "individual_preference": [],
    }


def jb_row(pair_id: str, label: str) -> dict[str, Any]:
    return {
        "pair_id": pair_id,
        "original_id": "orig-" + pair_id,
        "source": "mmlu-pro-math",
        "question": "What is 2 + 2?",
        "response_model": "gpt-4o",
        "response_A": "4",
        "response_B": "5",
        "label": label,
    }


def ppe_row(passing: set[int], sampled: list[list[int]]) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": "Write in all caps."}
    for k in range(PPE_IFEVAL_K):
        row[f"response_{k + 1}"] = f"resp {k}"
    row["scores"] = [k in passing for k in range(PPE_IFEVAL_K)]
    row["model_name"] = "some-model"
    row["conflict_pairs"] = sampled
    row["sampled_conflict_pairs"] = sampled
    return row


def test_rewardbench_pairs(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "rb.jsonl", [rb_row(1, "alpacaeval-easy"), rb_row(2, "donotanswer")]
    )
    pairs = load_rewardbench(src)
    assert [p.id for p in pairs] == ["1", "2"]
    assert all(p.label == "A" for p in pairs)
    assert pairs[0].response_a == "good 1" and pairs[0].response_b == "bad 1"
    assert [p.subset for p in pairs] == ["alpacaeval-easy", "donotanswer"]
    assert pairs[0].metadata == {"chosen_model": "gpt-4", "rejected_model": "llama-7b"}
    assert pairs.dropped == 0


def test_rewardbench_json_list(tmp_path: Path) -> None:
    src = tmp_path / "rb.json"
    src.write_text(json.dumps([rb_row(7, "hep-go")]), encoding="utf-8")
    assert load_rewardbench(src)[0].subset == "hep-go"


def test_rewardbench_missing_column_before_conversion(tmp_path: Path) -> None:
    bad = rb_row(2, "x")
    del bad["rejected_model"]
    rows = [rb_row(1, "x") | {"prompt": ""}, bad]
    src = write_jsonl(tmp_path / "rb.jsonl", rows)
    with pytest.raises(InputError) as err:
        load_rewardbench(src)
    msg = str(err.value)
    assert "'rejected_model'" in msg and "rb.jsonl" in msg and "rewardbench" in msg
    assert "line 2" in msg


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("prompt", "  ", "field 'prompt'"), ("chosen", 3, "field 'chosen'")],
)
def test_rewardbench_bad_value_names_row_and_field(
    tmp_path: Path, field: str, value: Any, expected: str
) -> None:
    src = write_jsonl(tmp_path / "rb.jsonl", [rb_row(1, "x"), rb_row(2, "x") | {field: value}])
    with pytest.raises(InputError, match="line 2") as err:
        load_rewardbench(src)
    assert expected in str(err.value)


def test_rewardbench2_items_keyed_by_subset(tmp_path: Path) -> None:
    rows = [
        rb2_row("0", "Focus"),
        rb2_row("0", "Precise IF"),
        rb2_row("tied:3", "Ties", n_correct=2),
    ]
    items = load_rewardbench2(write_jsonl(tmp_path / "rb2.jsonl", rows))
    assert [it.id for it in items] == ["Focus/0", "Precise IF/0", "Ties/tied:3"]
    assert [len(it.correct) for it in items] == [1, 1, 2]
    assert all(len(it.incorrect) == 3 for it in items)
    assert items[2].subset == "Ties"
    assert items[0].metadata["source_id"] == "0"
    assert items[0].metadata["models"] == ["m1", "m2", "m3", "m4"]


def test_rewardbench2_duplicate_and_missing(tmp_path: Path) -> None:
    dup = write_jsonl(tmp_path / "dup.jsonl", [rb2_row("1", "Math"), rb2_row("1", "Math")])
    with pytest.raises(InputError, match="Math/1"):
        load_rewardbench2(dup)
    bad = rb2_row("1", "Math")
    del bad["num_correct"]
    with pytest.raises(InputError, match="'num_correct'"):
        load_rewardbench2(write_jsonl(tmp_path / "m.jsonl", [bad]))


def test_rm_bench_items(tmp_path: Path) -> None:
    row = {
        "id": 5,
        "prompt": "explain",
        "chosen": ["c short", "c plain", "c **md**"],
        "rejected": ["r short", "r plain", "r **md**"],
        "domain": "safety-refuse",
    }
    items = load_rm_bench(write_jsonl(tmp_path / "rm.jsonl", [row]))
    assert items[0].id == "5" and items[0].subset == "safety-refuse"
    assert items[0].correct == row["chosen"] and items[0].incorrect == row["rejected"]
    assert items[0].metadata["styles"] == ["concise", "detailed_plain", "detailed_markdown"]
    short = row | {"rejected": ["r1", "r2"]}
    with pytest.raises(InputError, match="exactly 3"):
        load_rm_bench(write_jsonl(tmp_path / "rm2.jsonl", [short]))
    with pytest.raises(InputError, match="'domain'"):
        load_rm_bench(
            write_jsonl(tmp_path / "rm3.jsonl", [{k: row[k] for k in row if k != "domain"}])
        )


def test_helpsteer3_sign_and_dropped(tmp_path: Path) -> None:
    rows = [hs3_row(-2), hs3_row(0), hs3_row(3, "code"), hs3_row(0)]
    pairs = load_helpsteer3(write_jsonl(tmp_path / "hs3.jsonl", rows))
    assert pairs.dropped == 2
    assert [p.id for p in pairs] == ["0", "2"]
    assert pairs[0].response_a == "first -2" and pairs[0].response_b == "second -2"
    assert pairs[1].response_a == "second 3" and pairs[1].response_b == "first 3"
    assert all(p.label == "A" for p in pairs)
    assert [p.subset for p in pairs] == ["general", "code"]
    assert isinstance(pairs[0].prompt, list) and pairs[0].prompt[-1]["content"] == "rate -2"


def test_helpsteer3_bad_rows(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 1.*overall_preference"):
        load_helpsteer3(write_jsonl(tmp_path / "a.jsonl", [hs3_row(4)]))
    ends_assistant = hs3_row(1)
    ends_assistant["context"] = ends_assistant["context"][:2]
    with pytest.raises(InputError, match="line 1.*context"):
        load_helpsteer3(write_jsonl(tmp_path / "b.jsonl", [ends_assistant]))
    with pytest.raises(InputError, match="'context'"):
        load_helpsteer3(write_jsonl(tmp_path / "c.jsonl", [{"domain": "general"}]))


def test_judgebench_labels(tmp_path: Path) -> None:
    pairs = load_judgebench(
        write_jsonl(tmp_path / "jb.jsonl", [jb_row("p1", "A>B"), jb_row("p2", "B>A")])
    )
    assert [p.id for p in pairs] == ["p1", "p2"]
    assert (pairs[0].response_a, pairs[0].response_b) == ("4", "5")
    assert (pairs[1].response_a, pairs[1].response_b) == ("5", "4")
    assert all(p.label == "A" and p.subset == "mmlu-pro-math" for p in pairs)
    assert pairs[1].metadata["original_label"] == "B>A"
    assert pairs[0].metadata["response_model"] == "gpt-4o"


def test_judgebench_bad_label_and_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 2.*'label'"):
        load_judgebench(
            write_jsonl(tmp_path / "a.jsonl", [jb_row("p1", "A>B"), jb_row("p2", "A=B")])
        )
    bad = jb_row("p1", "A>B")
    del bad["response_B"]
    with pytest.raises(InputError, match="'response_B'"):
        load_judgebench(write_jsonl(tmp_path / "b.jsonl", [bad]))


def test_ppe_ifeval_conflict_pairs(tmp_path: Path) -> None:
    rows = [ppe_row({0, 5}, [[0, 1], [2, 5]]), ppe_row({31}, [[30, 31]])]
    pairs = load_ppe_ifeval(write_jsonl(tmp_path / "ppe.jsonl", rows))
    assert [p.id for p in pairs] == ["0/0-1", "0/5-2", "1/31-30"]
    assert (pairs[1].response_a, pairs[1].response_b) == ("resp 5", "resp 2")
    assert all(p.label == "A" for p in pairs)
    assert (
        pairs[2].metadata["chosen_index"] == 31 and pairs[2].metadata["model_name"] == "some-model"
    )


def test_ppe_ifeval_bad_pairs_and_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"line 1.*sampled_conflict_pairs\[0\].*both fail"):
        load_ppe_ifeval(write_jsonl(tmp_path / "a.jsonl", [ppe_row({0}, [[1, 2]])]))
    with pytest.raises(InputError, match="sampled_conflict_pairs"):
        load_ppe_ifeval(write_jsonl(tmp_path / "b.jsonl", [ppe_row({0}, [[0, 32]])]))
    bad = ppe_row({0}, [[0, 1]])
    del bad["response_17"]
    with pytest.raises(InputError, match="'response_17'"):
        load_ppe_ifeval(write_jsonl(tmp_path / "c.jsonl", [bad]))


def test_registry() -> None:
    hubs = {b.name: b.hub for b in BUILTIN if b.hub is not None}
    assert set(hubs) == {
        "rewardbench",
        "rewardbench2",
        "rm-bench",
        "helpsteer3",
        "judgebench",
        "ppe-ifeval",
        "writing-preference",
    }
    helpsteer = EVAL_BENCHMARKS["helpsteer3"]
    assert helpsteer.load is load_helpsteer3
    assert tuple(helpsteer.hub) == ("nvidia/HelpSteer3", "preference", "validation")
    assert EVAL_BENCHMARKS["rewardbench"].split == "filtered"
    assert EVAL_BENCHMARKS["mini"].split == "heldout" and EVAL_BENCHMARKS["pairs"].split is None


def test_each_builtin_benchmark_is_one_module_of_the_package() -> None:
    """One file per benchmark: its loader, expansion and scorer are defined in its own module."""
    import sys

    for bench in BUILTIN:
        module = sys.modules[bench.load.__module__]
        assert module.BENCHMARK is bench, bench.name
        for part in (bench.scorer, bench.expand):
            assert part is None or part.__module__ == module.__name__, (bench.name, part)


def test_paper_columns_are_the_papers_and_fill_the_report() -> None:
    from rubric_arm.harness.benchmarks import paper_sources
    from rubric_arm.harness.paper import COLUMNS, TABLE1, paper_figure

    sources = paper_sources()
    assert set(sources) <= set(COLUMNS)
    assert sources["ChatH"] == ("rewardbench", "section: Chat Hard")
    assert paper_figure("rewardbench2", "Focus") == TABLE1["Rubric-ARM"][COLUMNS.index("Focus")]
    assert paper_figure("rewardbench2", "Ties") is None and paper_figure("nope", "overall") is None


def test_hub_without_datasets_gives_pip_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(RubricArmError, match="pip install datasets"):
        load_rewardbench()


def test_hub_error_becomes_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def load_dataset(*args: Any, **kwargs: Any) -> None:
        calls.append((*args, kwargs))
        raise ConnectionError("Couldn't reach 'nvidia/HelpSteer3' on the Hub (offline)\ndetails")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(RubricArmError) as err:
        load_helpsteer3()
    assert "\n" not in str(err.value) and "offline" in str(err.value)
    assert calls == [("nvidia/HelpSteer3", "preference", {"split": "validation"})]


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(RubricArmError, match="does not exist"):
        load_judgebench(tmp_path / "nope.jsonl")


def test_hub_rows_are_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_dataset(hub_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
        assert (hub_id, config, split) == ("ScalerLab/JudgeBench", None, "claude")
        return [jb_row("p9", "B>A")]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    pairs = load_judgebench(split="claude")
    assert pairs[0].id == "p9" and pairs[0].response_a == "5"
