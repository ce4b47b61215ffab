"""`make reproduce-efficiency`: the paper's Table 7 (seconds to score 100 RewardBench 2 prompts
per judge) on the hardware at hand, with generated tokens per judgment, the rubric-cache hit
rate and tokens per second.

Seconds are the eval run's wall time (model loading included, as a user waits for it), scaled
to 100 prompts; a run whose rubric cache was filled by an earlier run shows what caching saves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rubric_arm.harness.paper import TABLE7_SECONDS
from rubric_arm.reproduce.evalset import EvalSetConfig, FinishedRun, hardware_line, read_runs
from rubric_arm.reproduce.steps import write_outputs


def run_figures(run: FinishedRun) -> dict[str, Any]:
    meta = run.run.metadata
    tokens = meta.tokens
    records = run.run.records
    judgments = sum(len(r.judgments) for r in records)
    rubric_rows = [r.rubric for r in records if r.rubric]
    prompts = meta.n_items
    generated = int(tokens.get("judge_completion", 0)) + int(tokens.get("rubric_completion", 0))
    wall = meta.wall_seconds
    model_seconds = sum(r.seconds or 0.0 for r in records)
    return {
        "judge": run.label,
        "prompts": prompts,
        "pairs": meta.n_pairs,
        "judgments": judgments,
        "wall_seconds": wall,
        "seconds_per_100_prompts": 100 * wall / prompts if prompts else None,
        "judge_tokens_per_judgment": (
            int(tokens.get("judge_completion", 0)) / judgments if judgments else None
        ),
        "rubric_tokens_generated": int(tokens.get("rubric_completion", 0)),
        "rubric_cache_hit_rate": (
            sum(r.cached for r in rubric_rows) / len(rubric_rows) if rubric_rows else None
        ),
        "generated_tokens": generated,
        "tokens_per_second": generated / wall if wall else None,
        "model_call_seconds": round(model_seconds, 2),
        "resumed": bool(meta.resumed_from_pairs),
    }


def _f(x: Any, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def render(cfg: EvalSetConfig, rows: list[dict[str, Any]], hardware: str) -> str:
    lines = [f"# Efficiency (the paper's Table 7): {cfg.profile} profile", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    lines += [
        f"Hardware: {hardware}.",
        "",
        "| judge | prompts | judgments | wall s | s per 100 prompts | judge tokens / judgment "
        "| rubric tokens | rubric-cache hit rate | generated tok/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['judge']} | {r['prompts']} | {r['judgments']} | {r['wall_seconds']:.0f} | "
            f"{_f(r['seconds_per_100_prompts'], '.1f')} | "
            f"{_f(r['judge_tokens_per_judgment'], '.1f')} | {r['rubric_tokens_generated']} | "
            f"{_f(r['rubric_cache_hit_rate'], '.0%')} | {_f(r['tokens_per_second'], '.1f')} |"
        )
    resumed = [r["judge"] for r in rows if r["resumed"]]
    lines += [
        "",
        "Wall time includes loading the models (a user waits for it) and is summed over resumed "
        "invocations"
        + (f" ({', '.join(resumed)} were resumed)." if resumed else " (none was resumed)."),
        cfg.data_line(),
        "",
        "## The paper (8B models with vLLM on their GPUs; not comparable hardware)",
        "",
        "| model | s per 100 RewardBench 2 prompts |",
        "|---|---:|",
    ]
    for name, (lo, hi) in TABLE7_SECONDS.items():
        lines.append(f"| {name} | {lo:.1f}{'' if lo == hi else f'-{hi:.1f}'} |")
    lines += [
        "",
        "The paper gives no token counts. Ratios between judges on one machine are the "
        "comparable figures; absolute seconds are not.",
        "",
        f"![seconds per 100 prompts]({Path(cfg.report).with_suffix('.png').name})",
        "",
    ]
    return "\n".join(lines)


def render_png(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    names = [r["judge"] for r in rows]
    values = [r["seconds_per_100_prompts"] or 0 for r in rows]
    ax.barh(names, values, color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("seconds per 100 prompts (this machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_efficiency_report(cfg: EvalSetConfig) -> Path:
    rows = [run_figures(run) for run in read_runs(cfg)]
    hardware = hardware_line()
    payload = {"profile": cfg.profile, "hardware": hardware, "config": cfg.__dict__, "rows": rows}
    return write_outputs(
        Path(cfg.report), render(cfg, rows, hardware), lambda p: render_png(rows, p), payload
    )
