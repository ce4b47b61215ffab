"""`rubric-arm report`: Markdown tables, a PNG figure and a JSON of every number, from run folders."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rubric_arm.data.benchmarks import BENCHMARKS
from rubric_arm.data.jsonl import read_results
from rubric_arm.errors import RubricArmError
from rubric_arm.harness.benchmarks import TIE_POLICIES, get_benchmark, pair_credit
from rubric_arm.harness.paper import paper_figure
from rubric_arm.harness.stats import paired_bootstrap


def load_run(path: str | Path) -> dict[str, Any]:
    """A finished run folder's config, metadata and scores."""
    path = Path(path)
    parts = {}
    for name in ("config", "metadata", "scores"):
        file = path / f"{name}.json"
        if not file.is_file():
            raise RubricArmError(f"{path} is not a finished run: {file.name} is missing")
        parts[name] = json.loads(file.read_text(encoding="utf-8"))
    parts["path"] = str(path)
    parts["label"] = run_label(parts)
    return parts


def run_label(run: dict[str, Any]) -> str:
    """A judge's name in tables: judge, its model or preset, votes."""
    cfg = run["config"]
    args = cfg.get("judge_args") or {}
    parts = [str(args.get("model") or args.get("preset") or "")]
    # models that replace the preset's are named too, so two runs of one preset stay apart
    for role in ("generator", "judge"):
        if args.get(role) and args.get(role) != args.get("model"):
            parts.append(f"{role} {_short(str(args[role]))}")
    detail = ", ".join(p for p in parts if p)
    label = cfg["judge"] + (f" ({detail})" if detail else "")
    if cfg.get("votes", 1) > 1:
        label += f" voting@{cfg['votes']}"
    return label


def _short(path: str) -> str:
    """The last two parts of a model path (e.g. `models/cycle3-judge`), or a model name."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) > 2 else path


def _cell(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "-"
    value = metric.get("value")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"n/a (n={metric['n']})"
    if metric.get("low") is None or (
        isinstance(metric["low"], float) and math.isnan(metric["low"])
    ):
        return f"{100 * value:.1f} (n={metric['n']})"
    return f"{100 * value:.1f} [{100 * metric['low']:.1f}, {100 * metric['high']:.1f}] (n={metric['n']})"


def paired_differences(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Paired bootstrap of overall pairwise accuracy between every two runs on the same pairs.

    Only for pairwise benchmarks (per-pair credit); multi-response benchmarks are left out.
    """
    credits = []
    for run in runs:
        bench = get_benchmark(run["scores"]["benchmark"])
        if bench.multi or bench.orders:
            return []
        records = read_results(Path(run["path"]) / "records.jsonl")
        tie = TIE_POLICIES[run["scores"]["tie_policy"]]
        credits.append({r["id"]: pair_credit(r, tie) for r in records})
    out = []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            ids = sorted(credits[i].keys() & credits[j].keys())
            if not ids:
                continue
            res = paired_bootstrap(
                [credits[i][k] for k in ids], [credits[j][k] for k in ids], seed=0
            )
            out.append({"a": runs[i]["label"], "b": runs[j]["label"], **res})
    return out


def build_report(
    runs: Sequence[dict[str, Any]],
    *,
    title: str = "rubric-arm evaluation",
    profile: str | None = None,
    figure: str | None = None,
    extra: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(Markdown, JSON-able dict holding every number in the Markdown)."""
    by_bench: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_bench[run["scores"]["benchmark"]].append(run)
    lines = [f"# {title}", ""]
    if profile:
        lines += [f"Profile: **{profile}**.", ""]
    data: dict[str, Any] = {"title": title, "profile": profile, "benchmarks": {}}
    for bench, bench_runs in by_bench.items():
        names: list[str] = []
        for run in bench_runs:
            for m in run["scores"]["metrics"]:
                if m["name"] not in names:
                    names.append(m["name"])
        has_paper = any(paper_figure(bench, n) is not None for n in names)
        header = ["metric", *[r["label"] for r in bench_runs]] + (
            ["paper: Rubric-ARM"] if has_paper else []
        )
        lines += [f"## {bench}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        bench_data: dict[str, Any] = {"runs": [], "paper": {}}
        for name in names:
            row = [name]
            for run in bench_runs:
                metric = next((m for m in run["scores"]["metrics"] if m["name"] == name), None)
                row.append(_cell(metric))
            if has_paper:
                fig = paper_figure(bench, name)
                row.append("-" if fig is None else f"{fig:.1f}")
                if fig is not None:
                    bench_data["paper"][name] = fig
            lines.append("| " + " | ".join(row) + " |")
        lines += [
            "",
            "| judge | pairs | parse failures | not judged | order | unparsed verdict credit | wall time |",
            "|---|---:|---:|---:|---|---|---:|",
        ]
        for run in bench_runs:
            overall = next(
                (m for m in run["scores"]["metrics"] if m["name"] == "overall"),
                run["scores"]["metrics"][-1],
            )
            meta, sc = run["metadata"], run["scores"]
            lines.append(
                f"| {run['label']} | {meta['n_pairs']} | {overall['parse_failures']} | "
                f"{overall['not_judged']} | {sc['order']} | {sc['tie_credit']} ({sc['tie_policy']}) | "
                f"{meta['wall_seconds']:.0f} s |"
            )
            bench_data["runs"].append(
                {
                    "label": run["label"],
                    "path": run["path"],
                    "config": run["config"],
                    "n_pairs": meta["n_pairs"],
                    "wall_seconds": meta["wall_seconds"],
                    "tokens": meta.get("tokens"),
                    "judge_config": meta.get("judge_config"),
                    "metrics": sc["metrics"],
                    "tie_policy": sc["tie_policy"],
                    "protocol": sc.get("protocol"),
                }
            )
        protocols = {r["scores"].get("protocol") for r in bench_runs} - {None}
        lines += [""]
        spec = get_benchmark(bench)
        hub = BENCHMARKS.get(bench)
        default_source = spec.data_note or (f"{hub.hub_id} (hub)" if hub else "given file")
        default_split = spec.default_split or (hub.split if hub else "-")
        sources = sorted(
            {
                (
                    r["config"].get("data") or default_source,
                    f"split {r['config'].get('split') or default_split}",
                    r["metadata"]["n_items"],
                    r["config"].get("seed"),
                )
                for r in bench_runs
            },
            key=str,
        )
        for data_source, split, n_items, seed in sources:
            lines.append(
                f"Data: {data_source}, {split}, {n_items} items; position order seeded with seed {seed}."
            )
        lines += [""]
        if protocols:
            lines += [
                f"Pairwise protocol for multi-response items: {', '.join(sorted(protocols))}.",
                "",
            ]
        diffs = paired_differences(bench_runs)
        if diffs:
            lines += [
                "Paired differences on the same pairs (row judge minus column judge, overall "
                "accuracy, percentage points, 95% paired bootstrap CI, two-sided p):",
                "",
                "| judge | vs | difference | p | n |",
                "|---|---|---|---:|---:|",
            ]
            for d in diffs:
                lines.append(
                    f"| {d['a']} | {d['b']} | {100 * d['difference']:+.1f} "
                    f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {d['p_value']:.3f} | {d['n']} |"
                )
            lines += [""]
            bench_data["paired_differences"] = diffs
        data["benchmarks"][bench] = bench_data
    lines += [
        "Cells: accuracy in % with a 95% percentile bootstrap CI (10,000 resamples, seeded) and "
        "the number of items n. A pair without a parsed verdict (or not judged: prompt too long, "
        "bad row) gets the credit shown in the last table; the counts are listed there.",
        "",
    ]
    if figure:
        lines += [f"![accuracy with 95% CI per benchmark and judge]({figure})", ""]
    if extra:
        lines += [extra.rstrip(), ""]
    return "\n".join(lines), data


def plot(data: dict[str, Any], path: str | Path) -> None:
    """Accuracy with CI whiskers per benchmark metric and judge (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = list(data["benchmarks"].items())
    fig, axes = plt.subplots(len(benches), 1, figsize=(9, 3.2 * len(benches)), squeeze=False)
    for ax, (bench, bd) in zip(axes[:, 0], benches, strict=True):
        names = []
        for run in bd["runs"]:
            for m in run["metrics"]:
                if m["name"] not in names and m["name"] != "position: variation":
                    names.append(m["name"])
        width = 0.8 / max(len(bd["runs"]), 1)
        for k, run in enumerate(bd["runs"]):
            xs, ys, lo, hi = [], [], [], []
            for i, name in enumerate(names):
                m = next((m for m in run["metrics"] if m["name"] == name), None)
                if m is None or m.get("value") is None:
                    continue
                v = 100 * m["value"]
                low = 100 * m["low"] if m.get("low") is not None else v
                high = 100 * m["high"] if m.get("high") is not None else v
                xs.append(i + (k - (len(bd["runs"]) - 1) / 2) * width)
                ys.append(v)
                lo.append(v - low)
                hi.append(high - v)
            ax.bar(xs, ys, width=width, label=run["label"], yerr=[lo, hi], capsize=3)
        for name, fig_value in bd["paper"].items():
            if name in names:
                i = names.index(name)
                ax.plot(
                    [i - 0.4, i + 0.4], [fig_value] * 2, color="black", linestyle="--", linewidth=1
                )
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(bench)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    run_dirs: Sequence[str | Path],
    output: str | Path,
    *,
    title: str = "rubric-arm evaluation",
    profile: str | None = None,
    extra: str | None = None,
) -> dict[str, Any]:
    """Write NAME.md, NAME.png and NAME.json next to each other; returns the JSON data."""
    output = Path(output)
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise RubricArmError("no run folders given")
    png = output.with_suffix(".png")
    _, data = build_report(runs, title=title, profile=profile)
    output.parent.mkdir(parents=True, exist_ok=True)
    plot(data, png)
    text, data = build_report(runs, title=title, profile=profile, figure=png.name, extra=extra)
    output.write_text(text, encoding="utf-8")
    output.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
