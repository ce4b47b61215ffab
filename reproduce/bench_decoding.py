"""`rubric-arm bench decoding`: constrained vs free judge decoding on one judge workload.

The same held-out mini pairs and the same rubrics (generated once, constrained) are judged
greedily three ways with the embedded model: free decoding, constrained decoding, and
constrained decoding with forced runs fed one token a step (`jump_tokens=1`, no jump-forward).
A second, small workload repeats the three at batch size 1, the latency-bound regime where
feeding a forced run in one forward matters most. All figures come from one process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rubric_arm.data.jsonl import read_jsonl
from rubric_arm.engines import load_engine
from rubric_arm.pipeline import RubricARM
from rubric_arm.presets import get_preset
from rubric_arm.types import PreferencePair


def _heldout(n: int) -> list[PreferencePair]:
    from importlib import resources

    path = resources.files("rubric_arm.data").joinpath("mini/heldout.jsonl")
    rows = list(read_jsonl(Path(str(path))))[:n]
    return [PreferencePair.from_dict(row, i) for i, row in rows]


def _judge_run(arm: RubricARM, pairs: list[PreferencePair], rubrics: list[Any]) -> dict[str, Any]:
    engine = arm.judge_engine
    stats = getattr(engine, "grammar_runtime", None)
    runtime = engine.grammar_runtime() if stats is not None else None
    if runtime is not None:
        runtime.stats.reset()
        runtime.clear_cache()  # compile time per shape is part of the figure
    start = time.perf_counter()
    records = arm.judge(pairs, order="as_given", rubrics=rubrics, desc=f"judge ({arm.decoding})")
    seconds = time.perf_counter() - start
    judgments = [j for r in records for j in r.judgments]
    completion = sum(j.completion_tokens for j in judgments)
    forced = sum(j.forced_tokens for j in judgments)
    out: dict[str, Any] = {
        "decoding": arm.decoding,
        "judgments": len(judgments),
        "seconds": round(seconds, 2),
        "seconds_per_judgment": round(seconds / max(1, len(judgments)), 3),
        "completion_tokens": completion,
        "sampled_tokens": completion - forced,
        "forced_tokens": forced,
        "parsed": sum(j.winner is not None for j in judgments),
        "format_ok": sum(j.format_ok for j in judgments),
        "with_p_a": sum(j.p_a is not None for j in judgments),
        "hit_token_limit": sum(j.finish_reason == "length" for j in judgments),
    }
    if runtime is not None and arm.decoding == "constrained":
        s = runtime.stats.to_dict()
        out["mask_ms_per_token"] = s["mask_ms_per_token"]
        out["compiles"] = s["compiles"]
        out["compile_seconds_per_grammar"] = s["compile_seconds_per_grammar"]
    return out


def _three_ways(
    engine: Any, pairs: list[PreferencePair], rubrics: list[Any], batch_size: int
) -> dict[str, Any]:
    preset = get_preset("mini")
    saved = engine.batch_size, engine.jump_tokens
    engine.batch_size = batch_size
    runs: dict[str, Any] = {}
    try:
        for label, decoding, jump in (
            ("free", "free", saved[1]),
            ("constrained", "constrained", saved[1]),
            ("constrained_no_jump", "constrained", 1),
        ):
            engine.jump_tokens = jump
            arm = RubricARM(
                engine,
                engine,
                judge_sampling=preset.judge_sampling,
                cache=False,
                decoding=decoding,  # type: ignore[arg-type]
            )
            print(f"batch {batch_size}: {label} ...", flush=True)
            runs[label] = _judge_run(arm, pairs, rubrics)
    finally:
        engine.batch_size, engine.jump_tokens = saved
    free, con, nojump = runs["free"], runs["constrained"], runs["constrained_no_jump"]
    runs["constrained_vs_free_seconds"] = round(con["seconds"] / free["seconds"], 3)
    runs["no_jump_vs_jump_seconds"] = round(nojump["seconds"] / con["seconds"], 3)
    runs["batch_size"] = batch_size
    runs["pairs"] = len(pairs)
    return runs


def run_decoding_bench(
    output: Path = Path("reports/bench_decoding.json"),
    *,
    model: str = "smollm2-135m-instruct",
    pairs: int = 24,
    latency_pairs: int = 3,
) -> dict[str, Any]:
    """Measure constrained vs free judge decoding; writes `output` (.json) and its .md."""
    preset = get_preset("mini")
    engine = load_engine(model, "transformers")
    items = _heldout(pairs)
    maker = RubricARM(
        engine,
        engine,
        rubric_sampling=preset.rubric_sampling,
        cache=False,
        decoding="constrained",
        max_rubric_items=preset.max_rubric_items,
    )
    print(f"rubrics for {len(items)} pairs (constrained, reused by every run) ...", flush=True)
    rubrics = maker.rubrics([p.prompt for p in items])
    result: dict[str, Any] = {
        "model": model,
        "judge_max_new_tokens": preset.judge_sampling.max_new_tokens,
        "jump_tokens": engine.jump_tokens,
        "batched": _three_ways(engine, items, rubrics, engine.batch_size),
        "latency": _three_ways(engine, items[:latency_pairs], rubrics[:latency_pairs], 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    output.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    return result


def _rows(runs: dict[str, Any]) -> list[str]:
    lines = []
    for label in ("free", "constrained", "constrained_no_jump"):
        r = runs[label]
        mask = r.get("mask_ms_per_token")
        compile_s = r.get("compile_seconds_per_grammar")
        shapes = "-" if compile_s is None else f"{compile_s} ({r['compiles']} shapes)"
        lines.append(
            f"| {label.replace('_', ' ')} | {r['seconds_per_judgment']} | {r['sampled_tokens']} | "
            f"{r['forced_tokens']} | {r['parsed']}/{r['judgments']} | "
            f"{r['format_ok']}/{r['judgments']} | {r['hit_token_limit']} | "
            f"{'-' if mask is None else mask} | "
            f"{shapes} |"
        )
    return lines


def render_markdown(r: dict[str, Any]) -> str:
    """The decoding benchmark as a Markdown section."""
    head = [
        "| run | s / judgment | sampled tokens | forced tokens | parsed | format ok | "
        "at token limit | mask ms / token | compile s / shape |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    b, lat = r["batched"], r["latency"]
    return "\n".join(
        [
            "# Decoding benchmark: constrained vs free",
            "",
            f"Model `{r['model']}`, greedy, judge max {r['judge_max_new_tokens']} new tokens, the "
            "same rubrics for every run. `constrained no jump` feeds forced text one token a step "
            f"(jump_tokens=1; default {r['jump_tokens']}).",
            "",
            f"## {b['pairs']} held-out mini pairs, engine batch size {b['batch_size']}",
            "",
            *head,
            *_rows(b),
            "",
            f"Constrained / free seconds: **{b['constrained_vs_free_seconds']}**; "
            f"no jump / jump: {b['no_jump_vs_jump_seconds']}.",
            "",
            f"## {lat['pairs']} pairs at batch size 1 (latency-bound)",
            "",
            *head,
            *_rows(lat),
            "",
            f"Constrained / free seconds: **{lat['constrained_vs_free_seconds']}**; "
            f"no jump / jump: {lat['no_jump_vs_jump_seconds']}.",
            "",
        ]
    )
