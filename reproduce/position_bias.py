"""`make reproduce-position-bias`: the paper's Table 13. Every judge runs once with both orders;
accuracy with the better response shown first, shown second, and in the seeded random order a
single-order run uses ("mixed"), then the variation of the three (mean absolute deviation from
their mean, percentage points) with a bootstrap CI over pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.harness.paper import TABLE13_VARIATION
from rubric_arm.reproduce.evalset import EvalSetConfig, FinishedRun, read_runs
from rubric_arm.reproduce.steps import write_outputs

NAMES = {
    "mixed": "position: mixed",
    "order1": "position: better first",
    "order2": "position: better second",
    "variation": "position: variation",
}


def run_figures(run: FinishedRun) -> dict[str, Any]:
    out: dict[str, Any] = {"judge": run.label}
    for key, name in NAMES.items():
        m = run.run.scores.metric(name)
        if m is None:
            raise InputError(f"{run.run.path}: no {name!r} metric; was it run with --order both?")
        est = m.estimate
        out[key] = {"value": 100 * est.value, "low": 100 * est.low, "high": 100 * est.high}
        out[key]["n"] = est.n
    overall = run.run.scores.metric("overall")
    records = run.run.records
    out["parse_failures"] = overall.parse_failures if overall else None
    out["judgments"] = sum(len(r.judgments) for r in records)
    out["unparsed_judgments"] = sum(j.winner is None for r in records for j in r.judgments)
    return out


def _c(cell: dict[str, Any]) -> str:
    return f"{cell['value']:.1f} [{cell['low']:.1f}, {cell['high']:.1f}]"


def render(cfg: EvalSetConfig, rows: list[dict[str, Any]]) -> str:
    lines = [f"# Position bias (the paper's Table 13): {cfg.profile} profile", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    lines += [
        "| judge | n | mixed | better first (order 1) | better second (order 2) | variation "
        "| unparsed judgments |",
        "|---|---:|---|---|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['judge']} | {r['mixed']['n']} | {_c(r['mixed'])} | {_c(r['order1'])} | "
            f"{_c(r['order2'])} | {_c(r['variation'])} | "
            f"{r['unparsed_judgments']} of {r['judgments']} |"
        )
    lines += [
        "",
        "Accuracy in % with 95% bootstrap CIs (10,000 resamples over pairs, seeded). An "
        "unparsed verdict gets 0.5 credit in every column, so a judge that never parses shows "
        "no bias at all: read the unparsed count beside it.",
        "Variation: mean absolute deviation of the three accuracies from their mean "
        "(PAPER.md gives no formula; the JSON also holds the range).",
        "",
        cfg.data_line(),
        "",
        "## The paper (mean variation, RubricARM-8B and baselines)",
        "",
        "| model | variation |",
        "|---|---:|",
    ]
    for name, (lo, hi) in TABLE13_VARIATION.items():
        lines.append(f"| {name} | {lo:.2f}{'' if lo == hi else f'-{hi:.2f}'} |")
    lines += ["", f"![accuracy by order]({Path(cfg.report).with_suffix('.png').name})", ""]
    return "\n".join(lines)


def render_png(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 0.6 * len(rows) + 1.5))
    keys = [
        ("mixed", "mixed", -0.2),
        ("order1", "better first", 0.0),
        ("order2", "better second", 0.2),
    ]
    for key, label, dy in keys:
        ys = [i + dy for i in range(len(rows))]
        xs = [r[key]["value"] for r in rows]
        err = [
            [r[key]["value"] - r[key]["low"] for r in rows],
            [r[key]["high"] - r[key]["value"] for r in rows],
        ]
        ax.errorbar(xs, ys, xerr=err, fmt="o", capsize=3, label=label)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["judge"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(-3, 103)
    ax.axvline(50, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("accuracy % with 95% CI")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_position_report(cfg: EvalSetConfig) -> Path:
    rows = [run_figures(run) for run in read_runs(cfg)]
    payload = {"profile": cfg.profile, "config": cfg.__dict__, "rows": rows}
    return write_outputs(
        Path(cfg.report), render(cfg, rows), lambda p: render_png(rows, p), payload
    )
