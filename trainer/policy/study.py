"""The downstream study of one recipe: base vs DPO vs IterDPO vs online GRPO, each evaluated on
the same held-out verifiable prompts, written as a Markdown report with paired bootstrap CIs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rubric_arm.trainer.policy.config import PolicyConfig
from rubric_arm.trainer.policy.data import load_policy_data
from rubric_arm.trainer.policy.evaluate import (
    METRICS,
    evaluate_policy,
    paired_prompt_differences,
    read_checks,
    winrate_eval,
)
from rubric_arm.trainer.policy.runs import PolicyRun


def policy_models(run: PolicyRun, which: tuple[str, ...]) -> dict[str, Path]:
    """Train what `which` asks for (dpo covers DPO = iteration 1 and IterDPO = the last)."""
    models = {"base": run.base_model()}
    if "dpo" in which:
        dpo = run.dpo()
        models["dpo"] = dpo[0]
        if len(dpo) > 1:
            models[f"iterdpo-{len(dpo)}"] = dpo[-1]
    if "grpo" in which:
        models["grpo"] = run.grpo()
    return models


def run_study(
    cfg: PolicyConfig, report: Path | None, which: tuple[str, ...] = ("dpo", "grpo")
) -> dict[str, Any]:
    """Train, evaluate every policy on the held-out prompts, and write the report."""
    start = time.perf_counter()
    run = PolicyRun(cfg)
    models = policy_models(run, which)
    data = load_policy_data(cfg)
    items = data.heldout
    results = {}
    evaluated: dict[Path, str] = {}
    for name, path in models.items():
        if path in evaluated:  # e.g. a DPO iteration that kept no pair is the base model itself
            import shutil

            run._say(f"{name} is the same model as {evaluated[path]}: its evaluation is reused")
            shutil.copytree(
                run.run_dir / "eval" / evaluated[path],
                run.run_dir / "eval" / name,
                dirs_exist_ok=True,
            )
        else:
            evaluated[path] = name
            run._say(f"evaluating {name} on {len(items)} held-out prompts")
        results[name] = evaluate_policy(
            path,
            items,
            run.run_dir / "eval" / name,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            seed=cfg.eval.seed,
        )
    winrates = {
        name: winrate_eval(path, cfg.eval, run.run_dir / "eval" / name)
        for name, path in models.items()
    }
    base_rows = read_checks(run.run_dir / "eval" / "base")
    diffs = {
        name: paired_prompt_differences(
            base_rows, read_checks(run.run_dir / "eval" / name), seed=cfg.eval.seed
        )
        for name in models
        if name != "base"
    }
    study = {
        "config": cfg.to_dict(),
        "models": {k: str(v) for k, v in models.items()},
        "results": results,
        "paired_vs_base": diffs,
        "winrate": winrates,
        "eval_overlap_removed": data.overlap_removed,
        "state": run.state(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (run.run_dir / "study.json").write_text(json.dumps(study, indent=2))
    if report is not None:
        write_study_report(study, report)
    return study


def write_study_report(study: dict[str, Any], report: Path) -> None:
    """Markdown + PNG (prompt-level strict accuracy per policy, 95% CI) + JSON."""
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render_report(study) + render_paper_section(), encoding="utf-8")
    report.with_suffix(".json").write_text(json.dumps(study, indent=2) + "\n", encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(study["results"])
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    for y, name in enumerate(names):
        block = study["results"][name]["all"]["prompt_strict"]
        value, (lo, hi) = 100 * block["value"], block["ci"]
        ax.errorbar(value, y, xerr=[[value - 100 * lo], [100 * hi - value]], fmt="o", capsize=3)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("held-out prompt-level strict accuracy % (95% CI)")
    fig.tight_layout()
    fig.savefig(report.with_suffix(".png"), dpi=110)
    plt.close(fig)


def render_paper_section() -> str:
    """The paper's downstream figures, for the shape of the comparison (Qwen2.5-7B policy)."""
    from rubric_arm.harness.paper import DOWNSTREAM_DPO, DOWNSTREAM_GRPO_AVG

    lines = [
        "## The paper (Qwen2.5-7B-Instruct policy; different model, prompts and benchmarks)",
        "",
        "| benchmark | base | DPO | IterDPO |",
        "|---|---:|---:|---:|",
    ]
    for name, (base, dpo, it) in DOWNSTREAM_DPO.items():
        lines.append(f"| {name} | {base:.1f} | {dpo:.1f} | {it:.1f} |")
    grpo = ", ".join(f"{k} {v:.1f}" for k, v in DOWNSTREAM_GRPO_AVG.items())
    lines += ["", f"Online GRPO average (IFEval x4, IFBench, AlpacaEval x2): {grpo}.", ""]
    return "\n".join(lines)


def _cell(block: dict[str, Any]) -> str:
    lo, hi = block["ci"]
    return f"{100 * block['value']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def render_report(study: dict[str, Any]) -> str:
    cfg = study["config"]
    results = study["results"]
    state = study["state"]
    lines = [
        f"# Downstream study: {cfg['name']}",
        "",
        f"Policy `{cfg['policy']['model']}`; reward judge `{cfg['reward']['judge']}` "
        f"({', '.join(f'{k}={v}' for k, v in cfg['reward']['args'].items()) or 'defaults'}); "
        f"prompts: {cfg['data']['source']} train split. Held-out: {cfg['data']['eval_source']} "
        "verifiable prompts scored by the "
        "official IFBench / IFEval rule checkers (greedy decoding, "
        f"{cfg['eval']['max_new_tokens']} new tokens). Accuracies in %, 95% bootstrap CIs.",
        "",
        "| policy | n | prompt strict | prompt loose | instruction strict | instruction loose |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in results.items():
        block = res["all"]
        cells = " | ".join(_cell(block[m]) for m in METRICS)
        lines.append(f"| {name} | {res['n_prompts']} | {cells} |")
    if study.get("eval_overlap_removed"):
        lines += [
            "",
            f"{study['eval_overlap_removed']} evaluation prompts were removed because the policy "
            "trains on them.",
        ]
    unavailable = {k: v["unavailable"] for k, v in results.items() if v["unavailable"]}
    if unavailable:
        lines += ["", f"Prompts whose checker cannot run offline (left out): {unavailable}."]
    lines += [
        "",
        "## Difference from the base policy (paired over the same prompts)",
        "",
        "| policy | n | prompt strict (pp) | p | prompt loose (pp) | p | "
        "instruction strict (pp) | p |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, d in study["paired_vs_base"].items():
        cells = []
        for m in ("prompt_strict", "prompt_loose", "instruction_strict"):
            x = d[m]
            if x["difference"] is None:
                cells += ["-", "-"]
            else:
                cells += [
                    f"{100 * x['difference']:+.1f} [{100 * x['low']:+.1f}, {100 * x['high']:+.1f}]",
                    f"{x['p_value']:.3f}",
                ]
        lines.append(f"| {name} | {d['n']} | {' | '.join(cells)} |")
    lines += ["", "## Per registry (prompt-level strict)", ""]
    regs = sorted({k for r in results.values() for k in r if k in ("ifbench", "ifeval")})
    if regs:
        lines += ["| policy | " + " | ".join(regs) + " |", "|---|" + "---:|" * len(regs)]
        for name, res in results.items():
            cells = [
                f"{_cell(res[r]['prompt_strict'])} (n={res[r]['prompt_strict']['n']})"
                if r in res
                else "-"
                for r in regs
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Win rate against reference answers (AlpacaEval / Arena-Hard style)", ""]
    skipped = {w.get("reason") for w in study["winrate"].values() if w["status"] == "skipped"}
    if len(skipped) == 1 and all(w["status"] == "skipped" for w in study["winrate"].values()):
        lines.append(f"Skipped: {skipped.pop()}.")
    for name, w in study["winrate"].items():
        if w["status"] == "skipped" and not skipped:
            continue
        if w["status"] == "ok":
            lines.append(
                f"- {name}: {_cell(w['winrate'])} (n={w['winrate']['n']}, grader {w['grader']}, "
                f"{w['unparsed']} unparsed verdicts)"
            )
        else:
            lines.append(f"- {name}: {w['status']}: {w['reason']}")
    lines += ["", "## Training", "", *training_lines(state)]
    lines += [
        "",
        f"DPO is iteration 1 of the IterDPO run (same seed and data), so the two share their first "
        f"round. Whole study: {study['seconds']:.0f} s. Reproduce: "
        f"`rubric-arm policy study --config <recipe>`; every sample, label, model and per-prompt "
        f"verdict is in `{cfg['output_dir']}/{cfg['name']}/`.",
        "",
    ]
    return "\n".join(lines)


def training_lines(state: dict[str, Any]) -> list[str]:
    """The report's training bullets from a run's state: per DPO iteration what its labelling
    kept and dropped under its rule (agreement or probability margin), and the GRPO reward's
    form and counters (with the neutral fallbacks of a prob reward). States written before the
    margin rule and the prob reward existed read as agreement and binary."""
    lines: list[str] = []
    for key in sorted(k for k in state if k.startswith("dpo-iter")):
        s = state[key]["label_stats"]
        if s.get("margin") is None:
            dropped = f"disagreed {s['disagreed']}, unparsed {s['unparsed']}"
        else:
            dropped = (
                f"below the margin {s.get('below_margin', 0)}, without a verdict probability "
                f"{s.get('no_probability', 0)}"
            )
        lines.append(
            f"- {key}: {s['prompts']} prompts, 2 samples each; identical {s['identical']}, "
            f"judged {s['judged']}, kept {s['kept']} ({100 * s['kept_fraction']:.1f}% of judged: "
            f"{s.get('rule', 'both orders agree')}), {dropped}; "
            f"{'trained' if state[key]['trained'] else 'not trained (no pair kept)'}; "
            f"{state[key]['seconds']:.0f} s."
        )
    if "grpo" in state:
        st = state["grpo"]["reward_stats"]
        score = state["grpo"].get("score", "binary")
        fallbacks = (
            f", {st.get('prob_fallbacks', 0)} orders without a verdict probability (scored 0.5)"
            if score == "prob"
            else ""
        )
        lines.append(
            f"- grpo ({score} reward): {st['calls']} reward calls, {st['completions']} "
            f"completions scored, {st['rubrics_generated']} rubrics generated (the rest came from "
            f"the rubric cache), {st['references_generated']} greedy references, "
            f"{st['unparsed_verdicts']} unparsed verdicts{fallbacks}, {st['invalid']} invalid; "
            f"{state['grpo']['seconds']:.0f} s."
        )
    return lines
