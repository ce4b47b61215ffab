"""`rubric-arm bench train` figures read from a run folder, and `bench summary`'s merge of the
sub-benchmark reports (a missing part is named, never silently dropped)."""

from __future__ import annotations

import json
from pathlib import Path

from rubric_arm.reproduce.bench_summary import write_summary
from rubric_arm.reproduce.bench_train import phase_throughput, render_markdown


def write_run(run: Path) -> None:
    run.mkdir(parents=True)
    phases = {
        "sft-generator": {"seconds": 20.0},
        "cycle1-judge": {"seconds": 9.0},
        "cycle1-generator": {"seconds": 5.0},
    }
    (run / "state.json").write_text(json.dumps({"phases": phases}), encoding="utf-8")
    rows = [
        {"phase": "sft-generator", "step": 1, "num_tokens": 100.0},
        {"phase": "sft-generator", "step": 2, "num_tokens": 200.0},
        {"phase": "sft-generator", "step": 3, "num_tokens": 300.0},
        {"phase": "sft-generator", "step": 4, "num_tokens": 400.0},
        {"phase": "cycle1-judge", "event": "data", "step": 99, "rubrics_cached": 0},
        {"phase": "cycle1-judge", "step": 1, "step_time": 1.0, "num_tokens": 50.0},
        {"phase": "cycle1-judge", "step": 2, "step_time": 2.0, "num_tokens": 90.0},
        {"phase": "cycle1-judge", "step": 3, "step_time": 3.0, "num_tokens": 130.0},
        {"summary": "no phase"},
    ]
    lines = [json.dumps(r) for r in rows]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_phase_throughput_per_phase(tmp_path: Path) -> None:
    write_run(tmp_path / "run")
    rows = {r["phase"]: r for r in phase_throughput(tmp_path / "run")}
    assert list(rows) == ["sft-generator", "cycle1-judge", "cycle1-generator"]
    sft = rows["sft-generator"]
    assert (sft["steps"], sft["seconds_per_step"], sft["sft_tokens_per_second"]) == (4, 5.0, 20.0)
    assert sft["trainer_step_seconds"] is None
    judge = rows["cycle1-judge"]
    # The data event's step is not an optimiser step; GRPO phases report no SFT tokens/s.
    assert (judge["steps"], judge["seconds_per_step"]) == (3, 3.0)
    assert judge["trainer_step_seconds"] == 2.0 and judge["sft_tokens_per_second"] is None
    gen = rows["cycle1-generator"]
    assert gen["steps"] == 0 and gen["seconds_per_step"] is None

    md = render_markdown({"tiny": list(rows.values())})
    assert "| sft-generator | 20.0 | 4 | 5.0 | — | 20.0 |" in md
    assert "| cycle1-generator | 5.0 | 0 | — | — | — |" in md


def test_phase_throughput_without_metrics(tmp_path: Path) -> None:
    write_run(tmp_path / "run")
    (tmp_path / "run" / "metrics.jsonl").unlink()
    rows = phase_throughput(tmp_path / "run")
    assert [r["steps"] for r in rows] == [0, 0, 0]
    assert all(r["seconds_per_step"] is None for r in rows)


def test_summary_merges_present_parts_and_names_missing(tmp_path: Path) -> None:
    (tmp_path / "bench_engine.json").write_text(json.dumps({"tok_s": 12.5}), encoding="utf-8")
    (tmp_path / "bench_engine.md").write_text("# Engine benchmark\n\n| a | b |\n", encoding="utf-8")
    (tmp_path / "bench_stats.json").write_text(json.dumps({"seconds": {"bca": 0.1}}), "utf-8")

    merged = write_summary(tmp_path)
    assert merged["engine"] == {"tok_s": 12.5}
    assert merged["bootstrap"] == {"seconds": {"bca": 0.1}}
    assert merged["missing"] == ["decoding", "harness", "serve", "training", "rollouts"]
    assert json.loads((tmp_path / "bench.json").read_text(encoding="utf-8")) == merged
    md = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert md.startswith("# Benchmarks (`make bench`)")
    assert "\n## Engine benchmark\n" in md and "| a | b |" in md
    assert "## GPU" in md and merged["gpu"] in md
    assert md.rstrip().endswith("Not run: decoding, harness, serve, training, rollouts.")


def test_decoding_bench_markdown_names_every_figure() -> None:
    from rubric_arm.reproduce.bench_decoding import render_markdown as decoding_markdown

    def run(decoding: str, seconds: float, mask: float | None) -> dict:
        r = {
            "decoding": decoding,
            "judgments": 4,
            "seconds": seconds,
            "seconds_per_judgment": seconds / 4,
            "completion_tokens": 900,
            "sampled_tokens": 500,
            "forced_tokens": 400 if mask else 0,
            "parsed": 4 if mask else 1,
            "format_ok": 4 if mask else 0,
            "with_p_a": 4,
            "hit_token_limit": 0 if mask else 3,
        }
        if mask:
            r.update(mask_ms_per_token=mask, compiles=3, compile_seconds_per_grammar=0.05)
        return r

    part = {
        "free": run("free", 40.0, None),
        "constrained": run("constrained", 20.0, 0.4),
        "constrained_no_jump": run("constrained", 30.0, 0.4),
        "constrained_vs_free_seconds": 0.5,
        "no_jump_vs_jump_seconds": 1.5,
        "batch_size": 256,
        "pairs": 4,
    }
    md = decoding_markdown(
        {
            "model": "m",
            "judge_max_new_tokens": 448,
            "jump_tokens": 64,
            "batched": part,
            "latency": {**part, "batch_size": 1},
        }
    )
    assert "| constrained | 5.0 | 500 | 400 | 4/4 | 4/4 | 0 | 0.4 | 0.05 (3 shapes) |" in md
    assert "| free | 10.0 | 500 | 0 | 1/4 | 0/4 | 3 | - | - |" in md
    assert md.count("Constrained / free seconds: **0.5**") == 2


def test_decoding_bench_reads_the_heldout_pairs() -> None:
    from rubric_arm.reproduce.bench_decoding import _heldout

    pairs = _heldout(3)
    assert len(pairs) == 3 and all(p.label in ("A", "B") for p in pairs)


def test_rollout_bench_reads_step_times_and_rollout_stats(tmp_path: Path) -> None:
    from rubric_arm.reproduce.bench_rollouts import VARIANTS, phase_figures
    from rubric_arm.reproduce.bench_rollouts import render_markdown as rollout_markdown

    rows = [
        {"phase": "cycle1-judge", "event": "data", "rubrics_cached": 0},
        {"phase": "cycle1-judge", "step": 1, "step_time": 30.0, "reward": 0.5},
        {"phase": "cycle1-judge", "step": 2, "step_time": 10.0, "reward": 1.0},
        {
            "phase": "cycle1-judge",
            "event": "data",
            "rollouts": {
                "calls": 2,
                "seconds": 8.0,
                "completions": 16,
                "sampled_tokens": 900,
                "forced_tokens": 300,
                "prompt_tokens": 9,
            },
        },
        {
            "phase": "cycle1-judge",
            "summary": True,
            "means": {"reward": 0.75, "loss": 0.1},
            "generation_seconds": [5.0, 3.0],
        },
        {"phase": "cycle1-generator", "step": 1, "step_time": 99.0},
    ]
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", "utf-8")
    fig = phase_figures(run)
    assert fig["steps"] == 2 and fig["seconds_per_step"] == 20.0
    assert fig["sampling_seconds_per_step"] == 4.0
    assert fig["rollouts"]["calls"] == 2 and fig["means"] == {"reward": 0.75}
    result = {"recipe": "r", "steps": 2}
    for name in VARIANTS:
        result[name] = dict(fig, vs_trl=1.0)
    result["trl"] = dict(fig, rollouts={}, vs_trl=1.0)
    md = rollout_markdown(result)
    assert "| engine | 20.0 | 1.0 | 4.0 | 1.0 | 900 / 300 | 0.75 | - |" in md
    assert "| trl | 20.0 | 1.0 | 4.0 | 1.0 | - | 0.75 | - |" in md


def test_engine_bench_scoring_times_the_forward_passes_on_held_out_checks(tiny_engine) -> None:
    from rubric_arm.reproduce.bench_engine import _scoring, _scoring_rows

    sc = _scoring(tiny_engine, 3)
    assert sc["checks"] == 3 and sc["mean_prompt_tokens"] > 20
    assert sc["checks_per_s"] > 0 and sc["full_logits_checks_per_s"] > 0
    assert sc["bf16_checks_per_s"] > 0 and 0 <= sc["bf16_max_abs_p_meets_diff"] < 0.2
    rows = _scoring_rows({"scoring": sc})
    assert len(rows) == 3 and f"{sc['speedup']}x" in rows[1] and f"{sc['bf16_speedup']}x" in rows[2]
    assert _scoring_rows({}) == []
