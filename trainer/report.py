"""A Markdown comparison of training runs of the same task (the ablation switches): held-out
accuracy with bootstrap CIs, paired differences from the first run, and the per-cycle variance of
the generator's and the judge's gradient (Theorem 5.5: alternating should lower the generator's).

python -m rubric_arm.trainer.report runs/ablation-tiny/alternating runs/ablation-tiny/joint ...
    --out reports/ablation-tiny.md
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

from rubric_arm.harness.stats import paired_bootstrap

SWITCHES = ("order", "schedule", "format_reward", "rubric_cache")


def load_training_run(folder: Path) -> dict[str, Any]:
    cfg = json.loads((folder / "config.json").read_text())
    evaluation = json.loads((folder / "eval.json").read_text())
    state = json.loads((folder / "state.json").read_text())
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x]
    return {"name": folder.name, "config": cfg, "eval": evaluation, "state": state, "rows": rows}


def gradient_variance(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per cycle and role: variance across optimizer steps of the gradient norm and of the fixed
    random projection (steps of a joint cycle are spread over per-step phases; pooled here)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("summary") or "grad/norm" not in r:
            continue
        m = re.match(r"cycle(\d+)", r.get("phase", ""))
        if not m:
            continue
        key = f"cycle{m.group(1)}/{r['role']}"
        slot = out.setdefault(key, {"norms": [], "projections": []})
        slot["norms"].append(r["grad/norm"])
        slot["projections"].append(r["grad/projection"])
    return {
        k: {
            "steps": len(v["norms"]),
            "norm_variance": statistics.variance(v["norms"]) if len(v["norms"]) > 1 else None,
            "projection_variance": (
                statistics.variance(v["projections"]) if len(v["projections"]) > 1 else None
            ),
        }
        for k, v in sorted(out.items())
    }


def _pct(block: dict[str, Any]) -> str:
    return f"{100 * block['accuracy']:.1f} [{100 * block['ci'][0]:.1f}, {100 * block['ci'][1]:.1f}]"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def render(runs: list[dict[str, Any]]) -> str:
    first = runs[0]
    lines = [
        "# Ablation on the synthetic task (tiny profile)",
        "",
        "Each run: `rubric-arm train --config configs/tiny.yaml --eval` with one switch changed, "
        "same seed, same SFT warm-up, same held-out pairs (greedy rubric, greedy judge, seeded "
        "order; an unparsed verdict counts 0.5). Accuracy in %, 95% bootstrap CI.",
        "",
        "| run | switches | held-out accuracy | n | unparsed | after SFT only | starting models "
        "| wall (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        t, b = run["eval"]["trained"], run["eval"]["baseline"]
        a = run["eval"].get("after_sft")
        switches = ", ".join(f"{k}={run['config'][k]}" for k in SWITCHES)
        seconds = sum(p.get("seconds", 0) for p in run["state"]["phases"].values())
        lines.append(
            f"| {run['name']} | {switches} | {_pct(t)} | {t['n']} | {t['unparsed']} | "
            f"{_pct(a) if a else '-'} | {100 * b['accuracy']:.1f} | {seconds:.0f} |"
        )
    lines += [
        "",
        f"## Paired difference from `{first['name']}` (percentage points, same held-out pairs)",
        "",
        "| run | difference | 95% CI | p |",
        "|---|---:|---:|---:|",
    ]
    base = first["eval"]["trained"]["per_pair"]
    for run in runs[1:]:
        other = run["eval"]["trained"]["per_pair"]
        ids = sorted(set(base) & set(other))
        d = paired_bootstrap([other[i] for i in ids], [base[i] for i in ids])
        lines.append(
            f"| {run['name']} | {100 * d['difference']:+.1f} | "
            f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {d['p_value']:.3f} |"
        )
    lines += [
        "",
        "## Gradient variance per cycle (Theorem 5.5)",
        "",
        "Variance across optimizer steps of the gradient's L2 norm and of a fixed random "
        "projection of it (`trainer/diagnostics.py`). Few steps per cycle: read as a "
        "diagnostic, not a test of the theorem.",
        "",
        "| run | cycle / model | steps | var(norm) | var(projection) |",
        "|---|---|---:|---:|---:|",
    ]
    for run in runs:
        for key, v in gradient_variance(run["rows"]).items():
            lines.append(
                f"| {run['name']} | {key} | {v['steps']} | {_fmt(v['norm_variance'])} | "
                f"{_fmt(v['projection_variance'])} |"
            )
    lines.append("")
    return "\n".join(lines)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def phase_summaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per GRPO phase (in run order) from metrics.jsonl: steps, reward at the first and last
    step and on average, the share of groups whose rewards differ (TRL's 1 -
    frac_reward_zero_std: only those groups carry an advantage), the judge's accuracy and
    parse-failure rate on its rollouts, the generator's frozen-judge accuracy and parse
    failures."""
    phases: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "reward" in r and not r.get("summary") and r.get("phase"):
            phases.setdefault(r["phase"], []).append(r)
    out = []
    for name, steps in phases.items():
        rewards = [float(r["reward"]) for r in steps]
        spread = [
            1 - float(r["frac_reward_zero_std"]) for r in steps if "frac_reward_zero_std" in r
        ]
        role = steps[0].get("role", "")
        accuracy = [
            float(r[k])
            for r in steps
            for k in ("judge/accuracy", "generator/judge_accuracy")
            if k in r
        ]
        parse = [
            float(r[k])
            for r in steps
            for k in ("judge/parse_failures", "generator/judge_parse_failures")
            if k in r
        ]
        out.append(
            {
                "phase": name,
                "role": role,
                "steps": len(steps),
                "reward_first": rewards[0],
                "reward_last": rewards[-1],
                "reward_mean": statistics.fmean(rewards),
                "groups_with_spread": _mean(spread),
                "rollout_accuracy": _mean(accuracy),
                "parse_failures": _mean(parse),
                "rewards": rewards,
            }
        )
    return out


def plot_rewards(summaries: list[dict[str, Any]], path: Path) -> None:
    """Reward per optimizer step, one line per phase, judge and generator in two panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=False)
    for ax, role in zip(axes, ("judge", "generator"), strict=True):
        x = 0
        for s in (s for s in summaries if s["role"] == role):
            xs = list(range(x, x + len(s["rewards"])))
            ax.plot(xs, s["rewards"], marker="o", label=s["phase"])
            x += len(s["rewards"])
        ax.set_title(f"{role} GRPO reward per step")
        ax.set_xlabel("optimizer step (phases in order)")
        ax.set_ylabel("mean reward" + (" (judge R_j)" if role == "judge" else " (R_r)"))
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def training_section(run_dir: Path, figure: Path | None = None) -> str:
    """Markdown on a training run: its phases (time, reward, groups with an advantage, parse
    failures) and, when the run was evaluated (`--eval`), held-out accuracy after each stage."""
    run_dir = Path(run_dir)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    state = json.loads((run_dir / "state.json").read_text())
    summaries = phase_summaries(rows)
    config = run_dir / "config.json"
    graded = (
        config.is_file() and json.loads(config.read_text()).get("generator_reward") == "probability"
    )
    generator_reward = (
        "the frozen judge's P(labelled winner) given the rubric (generator_reward: probability)"
        if graded
        else "R_r from one greedy judgment of the frozen judge"
    )
    lines = [
        f"## Training run `{run_dir}`",
        "",
        "| phase | seconds | steps | reward first / last / mean | groups with reward spread "
        "| rollout accuracy | parse failures |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    by_phase = {s["phase"]: s for s in summaries}
    for name, info in state.get("phases", {}).items():
        s = by_phase.get(name)
        seconds = f"{info.get('seconds', 0):.0f}"
        if s is None:
            lines.append(f"| {name} | {seconds} | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {seconds} | {s['steps']} | {s['reward_first']:.3f} / "
            f"{s['reward_last']:.3f} / {s['reward_mean']:.3f} | {_share(s['groups_with_spread'])} | "
            f"{_share(s['rollout_accuracy'])} | {_share(s['parse_failures'])} |"
        )
    lines += [
        "",
        "Reward: the phase's mean reward per optimizer step (judge: R_acc + R_fmt, on sampled "
        "rollouts; a judge trained for explicit aggregation: R_acc of single sampled checks, "
        f"so about 0.5 is chance; generator: {generator_reward}). Groups with "
        "reward spread: the share of a step's prompt groups whose rewards are not all equal "
        "(GRPO's advantage is zero for the others); rollout accuracy and parse failures are "
        "the judge's on its own rollouts (generator phases: the frozen judge's verdicts on the "
        "sampled rubrics).",
        "",
    ]
    if figure is not None and summaries:
        plot_rewards(summaries, figure)
        lines += [f"![GRPO reward per step]({figure.name})", ""]
    eval_path = run_dir / "eval.json"
    if eval_path.is_file():
        ev = json.loads(eval_path.read_text())
        lines += [
            "Held-out accuracy after each stage (the run's own `--eval`):",
            "",
            "| models | accuracy [95% CI] | n | unparsed |",
            "|---|---|---:|---:|",
        ]
        for key, label in (
            ("baseline", "starting models"),
            ("after_sft", "after the SFT warm-up"),
            ("trained", "after Stage II"),
        ):
            if key in ev:
                b = ev[key]
                lines.append(f"| {label} | {_pct(b)} | {b['n']} | {b['unparsed']} |")
        lines.append("")
    return "\n".join(lines)


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rubric_arm.trainer.report")
    parser.add_argument("runs", nargs="+", help="run folders; the first is the reference")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    text = render([load_training_run(Path(r)) for r in args.runs])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
