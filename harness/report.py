"""`rubric-arm report`: Markdown tables, PNG figures (accuracy; reliability where records carry
win probabilities) and a JSON of every number, from run folders."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from rubric_arm.errors import RubricArmError
from rubric_arm.harness.benchmarks import (
    TIE_POLICIES,
    Metric,
    get_benchmark,
    pair_credit,
    record_clusters,
)
from rubric_arm.harness.paper import paper_figure
from rubric_arm.harness.runner import EvalConfig, EvalRun, read_run
from rubric_arm.harness.stats import bootstrap_ci, paired_bootstrap
from rubric_arm.records import JudgeRecord

CALIBRATION_BINS = 5
"""Equal-width confidence bins over [0.5, 1] in the reliability table."""


@dataclass
class ReportedRun:
    """A finished run as a report shows it: the run folder and what its records say."""

    run: EvalRun
    label: str
    decoding: str | None
    verdict_rule: str | None
    judgments: dict[str, int]
    """Single judgments and how many of them have no parsed verdict (judgment_counts)."""
    parse_failures: int | None
    """Pairs without a verdict over the whole run (None: the folder has no records)."""
    not_judged: int | None
    calibration: dict[str, Any] | None


def load_run(path: str | Path) -> ReportedRun:
    """A finished run folder, with the settings and counts its records state."""
    run = read_run(path)
    records = run.records
    decoding = _setting(run, "decoding")
    verdict_rule = _setting(run, "verdict_rule")
    return ReportedRun(
        run=run,
        label=run_label(run.config, decoding, verdict_rule),
        decoding=decoding,
        verdict_rule=verdict_rule,
        judgments=judgment_counts(records),
        parse_failures=sum(r.status == "ok" and r.winner is None for r in records)
        if records
        else None,
        not_judged=sum(r.status != "ok" for r in records) if records else None,
        calibration=calibration(records),
    )


def _setting(run: EvalRun, key: str) -> str | None:
    """A judge setting as the run's records state it (values joined by "+" if they differ),
    else as its judge arguments or judge config state it, else None (judges without it)."""
    values = sorted({str(v) for r in run.records if (v := getattr(r, key)) is not None})
    if values:
        return "+".join(values)
    for source in (run.config.judge_args, run.metadata.judge_config):
        if isinstance(source, dict) and source.get(key) is not None:
            return str(source[key])
    return None


def judgment_counts(records: Sequence[JudgeRecord]) -> dict[str, int]:
    """Single judgments (samples x orders) and how many of them gave no parsed verdict.

    A pair's verdict combines its judgments, so a pair can have a verdict while some of its
    judgments failed to parse; the pair-level count is the metrics' `parse_failures`.
    """
    judgments = [j for r in records for j in r.judgments]
    return {
        "judgments": len(judgments),
        "unparsed": sum(j.winner is None for j in judgments),
    }


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (kept inside [0, 1] and sensible at 0 or n).

    `successes` may be fractional (a record with P = 0.5 counts half a hit).
    """
    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each confidence in equal-width bins [low, high) over [0.5, 1], 1.0 in the last."""
    edges = np.linspace(0.5, 1.0, bins + 1)
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)


def _ece_rows(confidence: np.ndarray, hit: np.ndarray, bins: int) -> np.ndarray:
    """ECE of every row of (resamples, n) arrays: sum over bins of |sum(hit - confidence)| / n."""
    index = _bin_index(confidence, bins)
    gap = hit - confidence
    total = np.zeros(confidence.shape[:-1])
    for k in range(bins):
        total += np.abs(np.where(index == k, gap, 0.0).sum(axis=-1))
    return total / confidence.shape[-1]


def calibration(
    records: Sequence[JudgeRecord], *, bins: int = CALIBRATION_BINS, seed: int = 0
) -> dict[str, Any] | None:
    """Calibration of the judge's win probability `p_a` against the labels, or None without any.

    P(chosen) = p_a when the label is A, 1 - p_a when it is B; only records with an A/B label and
    a p_a count (n). P(chosen) cannot be checked bin by bin against how often the chosen response
    wins (by definition always), so the reliability table uses the judge's confidence in the side
    it favours, confidence = max(P(chosen), 1 - P(chosen)), binned equal-width over [0.5, 1]:
    per bin n, mean confidence and accuracy = share of records whose favoured side is the
    labelled one (P(chosen) = 0.5 counts half), with a Wilson 95% interval. ECE = sum over bins
    of n_bin / n * |accuracy - mean confidence|. Brier = mean (1 - P(chosen))^2, the same as the
    Brier score of p_a against [label = A]. Brier and ECE get 95% percentile bootstrap CIs over
    records (10,000 resamples, seeded).
    """
    chosen: list[float] = []
    for r in records:
        p = r.p_a
        if r.label not in ("A", "B") or p is None:
            continue
        p = float(p)
        if not math.isfinite(p):
            continue
        chosen.append(p if r.label == "A" else 1.0 - p)
    if not chosen:
        return None
    q = np.asarray(chosen)
    conf = np.maximum(q, 1.0 - q)
    hit = np.where(q > 0.5, 1.0, np.where(q < 0.5, 0.0, 0.5))
    index = _bin_index(conf, bins)
    edges = np.linspace(0.5, 1.0, bins + 1)
    table = []
    for k in range(bins):
        mask = index == k
        n_k = int(mask.sum())
        row: dict[str, Any] = {"low": float(edges[k]), "high": float(edges[k + 1]), "n": n_k}
        if n_k:
            low, high = wilson_interval(float(hit[mask].sum()), n_k)
            row |= {
                "confidence": float(conf[mask].mean()),
                "accuracy": float(hit[mask].mean()),
                "accuracy_low": low,
                "accuracy_high": high,
            }
        else:
            row |= {
                "confidence": None,
                "accuracy": None,
                "accuracy_low": None,
                "accuracy_high": None,
            }
        table.append(row)
    brier = bootstrap_ci((1.0 - q) ** 2, seed=seed)
    rows = np.arange(q.size, dtype=float)
    ece = bootstrap_ci(
        rows,
        statistic=lambda idx: _ece_rows(conf[idx.astype(int)], hit[idx.astype(int)], bins),
        seed=seed,
    )
    return {
        "n": int(q.size),
        "n_records": len(records),
        "bins": table,
        "brier": brier.to_dict(),
        "ece": ece.to_dict(),
        "accuracy": float(hit.mean()),
        "mean_confidence": float(conf.mean()),
    }


def run_label(
    config: EvalConfig, decoding: str | None = None, verdict_rule: str | None = None
) -> str:
    """A judge's name in tables: judge, its model or preset, votes, decoding and verdict rule."""
    args = config.judge_args
    parts = [str(args.get("model") or args.get("preset") or "")]
    # models that replace the preset's are named too, so two runs of one preset stay apart
    for role in ("generator", "judge"):
        if args.get(role) and args.get(role) != args.get("model"):
            parts.append(f"{role} {_short(str(args[role]))}")
    if args.get("aggregation"):
        parts.append(f"{args['aggregation']} aggregation")
    # engine settings that change the numbers (e.g. engine.dtype=bfloat16) are named too
    parts += [
        f"{k.removeprefix('engine.')} {v}"
        for k, v in sorted(args.items())
        if k.startswith("engine.")
    ]
    detail = ", ".join(p for p in parts if p)
    label = config.judge + (f" ({detail})" if detail else "")
    if config.votes > 1:
        label += f" voting@{config.votes}"
    # constrained and free runs (or vote and prob verdicts) of one judge stay apart
    if decoding or verdict_rule:
        label += f" [{decoding or '-'}, {verdict_rule or '-'}]"
    return label


def _short(path: str) -> str:
    """The last two parts of a model path (e.g. `models/cycle3-judge`), or a model name."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) > 2 else path


def _cell(metric: Metric | None) -> str:
    if metric is None:
        return "-"
    est = metric.estimate
    if math.isnan(est.value):
        return f"n/a (n={est.n})"
    if math.isnan(est.low):
        return f"{100 * est.value:.1f} (n={est.n})"
    size = f"n={est.n}"
    if est.clusters is not None and est.clusters != est.n:
        size += f", {est.clusters} prompts"
    return f"{100 * est.value:.1f} [{100 * est.low:.1f}, {100 * est.high:.1f}] ({size})"


def paired_differences(runs: Sequence[ReportedRun]) -> list[dict[str, Any]]:
    """Paired bootstrap of overall pairwise accuracy between every two runs on the same pairs.

    Only for pairwise benchmarks (per-pair credit); multi-response benchmarks are left out.
    """
    credits = []
    clusters: dict[str, str] = {}
    for reported in runs:
        run = reported.run
        bench = get_benchmark(run.scores.benchmark)
        if bench.multi_response or bench.orders:
            return []
        records = run.records
        tie = TIE_POLICIES[run.scores.tie_policy]
        credits.append({r.id: pair_credit(r, tie) for r in records})
        clusters.update(zip([r.id for r in records], record_clusters(records) or [], strict=False))
    out = []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            ids = sorted(credits[i].keys() & credits[j].keys())
            if not ids:
                continue
            res = paired_bootstrap(
                [credits[i][k] for k in ids],
                [credits[j][k] for k in ids],
                seed=0,
                clusters=[clusters[k] for k in ids] if clusters else None,
            )
            out.append({"a": runs[i].label, "b": runs[j].label, **res})
    return out


def build_report(
    runs: Sequence[ReportedRun],
    *,
    title: str = "rubric-arm evaluation",
    profile: str | None = None,
    figure: str | None = None,
    calibration_figure: str | None = None,
    extra: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(Markdown, JSON-able dict holding every number in the Markdown)."""
    by_bench: dict[str, list[ReportedRun]] = defaultdict(list)
    for run in runs:
        by_bench[run.run.scores.benchmark].append(run)
    lines = [f"# {title}", ""]
    if profile:
        lines += [f"Profile: **{profile}**.", ""]
    data: dict[str, Any] = {"title": title, "profile": profile, "benchmarks": {}}
    clustered = any(
        m.estimate.clusters is not None and m.estimate.clusters != m.estimate.n
        for run in runs
        for m in run.run.scores.metrics
    )
    for bench, bench_runs in by_bench.items():
        names: list[str] = []
        for run in bench_runs:
            for m in run.run.scores.metrics:
                if m.name not in names:
                    names.append(m.name)
        has_paper = any(paper_figure(bench, n) is not None for n in names)
        header = ["metric", *[r.label for r in bench_runs]] + (
            ["paper: Rubric-ARM"] if has_paper else []
        )
        lines += [f"## {bench}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        bench_data: dict[str, Any] = {"runs": [], "paper": {}}
        for name in names:
            row = [name]
            for run in bench_runs:
                row.append(_cell(run.run.scores.metric(name)))
            if has_paper:
                fig = paper_figure(bench, name)
                row.append("-" if fig is None else f"{fig:.1f}")
                if fig is not None:
                    bench_data["paper"][name] = fig
            lines.append("| " + " | ".join(row) + " |")
        lines += [
            "",
            "| judge | decoding | verdict rule | overall | pairs | parse failures | "
            "unparsed judgments | not judged | order | unparsed verdict credit | wall time |",
            "|---|---|---|---|---:|---:|---:|---:|---|---|---:|",
        ]
        for run in bench_runs:
            sc, meta = run.run.scores, run.run.metadata
            overall = sc.metric("overall")
            # pair counts over the whole run (a metric's counts cover only its own pairs)
            fallback = overall or sc.metrics[-1]
            parse_failures = (
                fallback.parse_failures if run.parse_failures is None else run.parse_failures
            )
            not_judged = fallback.not_judged if run.not_judged is None else run.not_judged
            counts = run.judgments
            unparsed = (
                f"{counts['unparsed']} / {counts['judgments']}" if counts["judgments"] else "-"
            )
            lines.append(
                f"| {run.label} | {run.decoding or '-'} | "
                f"{run.verdict_rule or '-'} | {_cell(overall)} | {meta.n_pairs} | "
                f"{parse_failures} | {unparsed} | {not_judged} | "
                f"{sc.order} | {sc.tie_credit} ({sc.tie_policy}) | "
                f"{meta.wall_seconds:.0f} s |"
            )
            bench_data["runs"].append(
                {
                    "label": run.label,
                    "path": str(run.run.path),
                    "config": run.run.config.to_dict(),
                    "decoding": run.decoding,
                    "verdict_rule": run.verdict_rule,
                    "judgments": counts,
                    "pairs_failed": {"parse_failures": parse_failures, "not_judged": not_judged},
                    "n_pairs": meta.n_pairs,
                    "wall_seconds": meta.wall_seconds,
                    "tokens": meta.tokens,
                    "judge_config": meta.judge_config,
                    "metrics": [m.to_dict() for m in sc.metrics],
                    "tie_policy": sc.tie_policy,
                    "protocol": sc.protocol,
                    "calibration": run.calibration,
                }
            )
        lines += [
            "",
            "Overall: the run's overall metric with its 95% CI (- where the benchmark's rules "
            "give none, e.g. RewardBench 2 without Ties). Parse failures: pairs without "
            "a verdict; unparsed judgments: single judgments (samples x orders) without a parsed "
            "verdict, of all judgments.",
        ]
        protocols = {r.run.scores.protocol for r in bench_runs} - {None}
        lines += [""]
        spec = get_benchmark(bench)
        hub = spec.hub
        default_source = spec.data_note or (f"{hub.hub_id} (hub)" if hub else "given file")
        default_split = spec.split or "-"
        sources = sorted(
            {
                (
                    r.run.config.data or default_source,
                    f"split {r.run.config.split or default_split}",
                    r.run.metadata.n_items,
                    r.run.config.seed,
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
                "Pairwise protocol for multi-response items scored on verdicts: "
                f"{', '.join(sorted(protocols))}.",
                "",
            ]
        if spec.multi_response:
            lines += _rule_lines(bench_runs)
        calibrated = [r for r in bench_runs if r.calibration]
        if calibrated:
            lines += calibration_lines(calibrated)
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
        "bad row) gets the credit shown in the last table; the counts are listed there."
        + (
            " Where pairs share a source prompt (`k prompts` in a cell), the bootstrap resamples "
            "prompts, not pairs, here and in the paired differences."
            if clustered
            else ""
        ),
        "",
    ]
    if figure:
        lines += [f"![accuracy with 95% CI per benchmark and judge]({figure})", ""]
    if calibration_figure:
        lines += [f"![reliability of P(chosen) per benchmark and judge]({calibration_figure})", ""]
    if extra:
        lines += [extra.rstrip(), ""]
    return "\n".join(lines), data


def _rule_lines(runs: Sequence[ReportedRun]) -> list[str]:
    """Which rule scored which metrics of each run (metric notes, grouped by rule)."""
    lines = []
    for run in runs:
        by_rule: dict[str, list[str]] = defaultdict(list)
        for m in run.run.scores.metrics:
            if m.note:
                by_rule[m.note].append(m.name)
        for rule, names in by_rule.items():
            lines.append(f"- {run.label}: {', '.join(names)}: {rule}")
    return ["Scoring rules:", "", *lines, ""] if lines else []


def _prob(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _estimate_text(est: dict[str, Any]) -> str:
    if est.get("low") is None:
        return _prob(est.get("value"))
    return f"{_prob(est['value'])} [{_prob(est['low'])}, {_prob(est['high'])}]"


def calibration_lines(runs: Sequence[ReportedRun]) -> list[str]:
    """The calibration section of one benchmark: per run its n, Brier, ECE and reliability table."""
    lines = [
        "### Calibration of P(chosen)",
        "",
        "P(chosen) = p_a when the label is A, 1 - p_a when it is B (pairs with a label and p_a "
        "only). Rows bin the judge's confidence in the side it favours, max(P, 1 - P), in equal "
        "bins over [0.5, 1]; accuracy = share of those pairs whose favoured side is the labelled "
        "one (P = 0.5 counts half), with a 95% Wilson interval. ECE = sum of n_bin / n x "
        "|accuracy - mean confidence|; Brier = mean (1 - P(chosen))^2; both with 95% bootstrap "
        "CIs over pairs.",
        "",
    ]
    for run in runs:
        cal = run.calibration or {}
        lines.append(
            f"{run.label}: n = {cal['n']} of {cal['n_records']} pairs; "
            f"Brier {_estimate_text(cal['brier'])}; ECE {_estimate_text(cal['ece'])}."
        )
    lines += [
        "",
        "| judge | confidence bin | n | mean confidence | accuracy [95% CI] |",
        "|---|---|---:|---:|---|",
    ]
    for run in runs:
        for b in (run.calibration or {}).get("bins", []):
            close = "]" if b["high"] >= 1.0 else ")"
            accuracy = "-"
            if b["n"]:
                accuracy = (
                    f"{_prob(b['accuracy'])} [{_prob(b['accuracy_low'])}, "
                    f"{_prob(b['accuracy_high'])}]"
                )
            edges = f"[{round(b['low'], 3)}, {round(b['high'], 3)}{close}"
            lines.append(
                f"| {run.label} | {edges} | {b['n']} | {_prob(b['confidence'])} | {accuracy} |"
            )
    return [*lines, ""]


def plot_calibration(data: dict[str, Any], path: str | Path) -> bool:
    """Reliability diagram per benchmark (accuracy vs mean confidence per bin, Wilson whiskers).

    Returns False, writing nothing, when no run has calibration data.
    """
    benches = [
        (bench, [r for r in bd["runs"] if r.get("calibration")])
        for bench, bd in data["benchmarks"].items()
    ]
    benches = [(bench, runs) for bench, runs in benches if runs]
    if not benches:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(benches), figsize=(4.5 * len(benches), 4.2), squeeze=False)
    for ax, (bench, runs) in zip(axes[0], benches, strict=True):
        ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", linestyle="--", linewidth=1)
        for run in runs:
            filled = [b for b in run["calibration"]["bins"] if b["n"]]
            xs = [b["confidence"] for b in filled]
            ys = [b["accuracy"] for b in filled]
            err = [
                [y - b["accuracy_low"] for y, b in zip(ys, filled, strict=True)],
                [b["accuracy_high"] - y for y, b in zip(ys, filled, strict=True)],
            ]
            ece = run["calibration"]["ece"]["value"]
            ax.errorbar(
                xs, ys, yerr=err, marker="o", capsize=3, label=f"{run['label']} (ECE {ece:.3f})"
            )
        ax.set_xlim(0.5, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("mean confidence in the favoured side")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{bench}: reliability")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


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
    training: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Write NAME.md, NAME.png and NAME.json next to each other, and NAME-calibration.png when
    some run's records carry win probabilities; returns the JSON data. Each training run folder
    in `training` adds its phases and reward curves (NAME-rewards.png, NAME-rewards-2.png, ...)."""
    output = Path(output)
    if training:
        from rubric_arm.trainer.report import training_section

        parts = [extra] if extra else []
        for k, run_dir in enumerate(training, 1):
            suffix = "" if k == 1 else f"-{k}"
            parts.append(
                training_section(
                    Path(run_dir), output.with_name(f"{output.stem}-rewards{suffix}.png")
                )
            )
        extra = "\n".join(parts)
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise RubricArmError("no run folders given")
    png = output.with_suffix(".png")
    calibration_png = output.with_name(f"{output.stem}-calibration.png")
    _, data = build_report(runs, title=title, profile=profile)
    output.parent.mkdir(parents=True, exist_ok=True)
    plot(data, png)
    has_calibration = plot_calibration(data, calibration_png)
    text, data = build_report(
        runs,
        title=title,
        profile=profile,
        figure=png.name,
        calibration_figure=calibration_png.name if has_calibration else None,
        extra=extra,
    )
    output.write_text(text, encoding="utf-8")
    output.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
