"""`rubric-arm bench harness`: judge pipeline throughput through the runner and the harness's
overhead, the share of an eval's wall time spent outside model calls (target < 5%)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rubric_arm.harness.runner import EvalConfig, read_run, run_eval


def run_harness_bench(
    output: Path, *, model: str = "smollm2-135m-instruct", limit: int = 24
) -> dict[str, Any]:
    """One `rubric-arm eval` of the mini preset on `limit` held-out pairs, the judge built
    beforehand (model loading is not harness time), every rubric generated (no cache)."""
    from rubric_arm.harness.judges import make_judge

    args = {"preset": "mini", "generator": model, "judge": model, "cache": False}
    load_start = time.perf_counter()
    judge = make_judge("rubric-arm", args)
    load_seconds = time.perf_counter() - load_start
    config = EvalConfig(judge="rubric-arm", benchmark="mini", limit=limit, judge_args=args)
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        out = Path(tmp) / "run"
        run_eval(config, out, judge=judge, progress=False, log=lambda _: None)
        run = read_run(out)
    records = run.records
    wall = run.metadata.wall_seconds
    model_seconds = sum(r.seconds or 0.0 for r in records)
    tokens = run.metadata.tokens
    generated = tokens["judge_completion"] + tokens["rubric_completion"]
    result = {
        "model": model,
        "pairs": len(records),
        "load_seconds": round(load_seconds, 2),
        "eval_wall_seconds": round(wall, 2),
        "model_call_seconds": round(model_seconds, 2),
        "overhead_seconds": round(wall - model_seconds, 2),
        "overhead_fraction": round(1 - model_seconds / wall, 4),
        "pairs_per_second": round(len(records) / wall, 3),
        "generated_tokens": generated,
        "generated_tok_s": round(generated / wall, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    output.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    return result


def render_markdown(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "# Harness overhead",
            "",
            f"`rubric-arm eval` of the mini preset (`{r['model']}` as generator and judge, no "
            f"rubric cache) on {r['pairs']} held-out mini pairs; the judge was loaded first "
            f"({r['load_seconds']} s, not counted).",
            "",
            "| figure | value |",
            "|---|---|",
            f"| eval wall seconds | {r['eval_wall_seconds']} |",
            f"| inside model calls (engine.generate) | {r['model_call_seconds']} s |",
            f"| outside model calls (data, prompts, parsing, records, scoring) | "
            f"{r['overhead_seconds']} s ({r['overhead_fraction']:.1%}; target < 5%) |",
            f"| pairs per second | {r['pairs_per_second']} |",
            f"| generated tokens per second (rubrics + judgments) | {r['generated_tok_s']} |",
            "",
        ]
    )
