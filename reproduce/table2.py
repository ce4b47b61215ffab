"""`make reproduce-table2`: the paper's main reward-model table (Table 1 columns) with the
ablation rows of Table 2, each single-sample and voting@5, beside the published figures.

A recipe (configs/reproduce/table2-{mini,paper}.yaml) names the training recipe, the variants,
the judge settings and which harness metric fills which column. The target is a plan of
`rubric-arm train` / `data build-pairs` / `eval` commands (steps.py); finished ones are reused.

Every model row is evaluated once with `votes` judge samples per pair at the paper's judge
temperature; the single-sample row reads vote 0 of the same run (one sample drawn exactly as a
single-sample run draws it), the voting row the majority of all votes.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.harness.benchmarks import Metric, get_benchmark, score
from rubric_arm.harness.paper import COLUMN_TITLES, COLUMNS, paper_row
from rubric_arm.harness.runner import EvalConfig, read_run
from rubric_arm.presets import get_preset
from rubric_arm.records import JudgeRecord
from rubric_arm.reproduce.preflight import preflight
from rubric_arm.reproduce.steps import Step, format_plan, load_timings, run_steps, write_outputs
from rubric_arm.verdict import majority_vote

# variant key -> (row label, paper row for one sample, paper row for voting@5, trainer switches)
VARIANTS: dict[str, tuple[str, str | None, str | None, dict[str, Any]]] = {
    "alternating": ("Rubric-ARM", "Rubric-ARM", "Rubric-ARM voting@5", {}),
    "generator_first": (
        "generator first",
        "generator first",
        "generator first, voting@5",
        {"order": "generator_first"},
    ),
    "no_format_reward": (
        "without R_fmt",
        "without R_fmt",
        "without R_fmt, voting@5",
        {"format_reward": False},
    ),
    "joint": ("joint (not in the paper)", None, None, {"schedule": "joint"}),
}


@dataclass
class Table2Config:
    """A reproduce-table2 recipe; every path is relative to the repository root."""

    name: str = "table2"
    profile: str = "mini"
    description: str = ""
    out: str = "runs/table2"
    report: str = "reports/table2.md"
    train_recipe: str = "configs/mini.yaml"
    train_overrides: dict[str, Any] = field(default_factory=dict)
    train_smoke: bool = False
    # a run of train_recipe as it is (no train_overrides) to serve as the alternating variant,
    # e.g. `make train-mini`'s runs/train/mini: finished phases are reused, missing ones trained
    alternating_run: str = ""
    train_launcher: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    released: dict[str, str] = field(default_factory=dict)
    prompted: dict[str, str] = field(default_factory=dict)
    judge_args: dict[str, Any] = field(default_factory=dict)
    votes: int = 5
    seed: int = 0
    limit: int = 0
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    pair_builds: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs_gpu: bool = False
    # Folders of finished evaluations to reuse (e.g. `make train-mini`'s runs/eval/mini): an
    # evaluation this target would run is read from one of their subfolders instead when that
    # run's resolved config.json and its models' weight fingerprints are the same.
    reuse_evals: list[str] = field(default_factory=list)

    def validate(self) -> Table2Config:
        if self.profile not in ("mini", "paper"):
            raise InputError(f"profile must be mini or paper, got {self.profile!r}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise InputError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
        if "alternating" not in self.variants:
            raise InputError("variants must include alternating (the others start from its SFT)")
        bad = [c for c in self.columns if c not in COLUMNS]
        if bad:
            raise InputError(f"unknown column(s) {bad}; the paper's columns: {', '.join(COLUMNS)}")
        for col, spec in self.columns.items():
            if "benchmark" not in spec:
                raise InputError(f"columns.{col} needs a benchmark")
            bench = get_benchmark(spec["benchmark"])
            if "metric" not in spec:
                declared = {c: m for m, c in bench.paper_columns.items()}
                if col not in declared:
                    raise InputError(
                        f"columns.{col}: benchmark {bench.name!r} declares no metric for this "
                        "column; name one (metric: ...)"
                    )
                spec["metric"] = declared[col]
        if self.votes < 1:
            raise InputError("votes must be >= 1")
        if self.alternating_run and self.train_overrides:
            raise InputError(
                "alternating_run reuses a run of train_recipe as it is; train_overrides would "
                "make the variants a different recipe (drop one of the two)"
            )
        return self


def load_table2_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Table2Config:
    from rubric_arm.trainer.config import load_config

    return load_config(path, overrides, cls=Table2Config)


# ---- the plan -------------------------------------------------------------------------------
@dataclass
class Entry:
    """One evaluated model pair and the two table rows it fills."""

    key: str
    label: str
    paper_single: str | None
    paper_voting: str | None
    generator: str
    judge: str
    run: str = ""
    """The training run folder of a trained variant (its metrics.jsonl has the gradients)."""
    reused: dict[str, str] = field(default_factory=dict)
    """Evaluation folder per benchmark tag, where a finished one from `reuse_evals` stands in."""


def _train_done(run_dir: Path) -> bool:
    state = run_dir / "state.json"
    if not state.is_file():
        return False
    from rubric_arm.trainer.config import load_config
    from rubric_arm.trainer.loop import phase_names

    cfg = load_config(run_dir / "config.yaml")
    done = json.loads(state.read_text(encoding="utf-8")).get("phases", {})
    return all(name in done for name, _ in phase_names(cfg))


def _overrides_argv(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    argv = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            argv += _overrides_argv(value, f"{prefix}{key}.")
        else:
            text = json.dumps(value) if isinstance(value, bool | int | float) else str(value)
            argv += [f"--{prefix}{key}", text]
    return argv


def _eval_done(out: Path) -> bool:
    return (out / "scores.json").is_file()


def benchmarks_of(cfg: Table2Config) -> list[tuple[str, str | None]]:
    """The distinct (benchmark, local data file or None for the default source) evaluated."""
    out: list[tuple[str, str | None]] = []
    for spec in cfg.columns.values():
        key = (spec["benchmark"], spec.get("data"))
        if key not in out:
            out.append(key)
    return out


def _tag(benchmark: str, data: str | None) -> str:
    return benchmark if data is None else f"{benchmark}-{Path(data).stem}"


def eval_dir(root: Path, entry: str | Entry, benchmark: str, data: str | None) -> Path:
    """Where an entry's evaluation on one benchmark lives: a reused folder, else under root."""
    tag = _tag(benchmark, data)
    if isinstance(entry, Entry):
        if tag in entry.reused:
            return Path(entry.reused[tag])
        entry = entry.key
    return root / "eval" / entry / tag


def _judge_args(args: dict[str, Any]) -> dict[str, str]:
    """-J arguments as strings, with the generator and judge a preset implies written out."""
    out = {k: str(v) for k, v in args.items()}
    if "preset" in out:
        preset = get_preset(out["preset"])
        out.setdefault("generator", preset.generator)
        out.setdefault("judge", preset.judge)
    return out


def _comparable(config: EvalConfig) -> EvalConfig:
    """The settings that decide an evaluation's results: the preset's models written out, the
    -J values as the CLI stores them, and chunk_size (batching only) left out."""
    return replace(config, judge_args=_judge_args(config.judge_args), chunk_size=0)


def _weights(judge_args: dict[str, str]) -> dict[str, str] | None:
    """The fingerprints of the generator's and judge's weights now, as an evaluation's
    metadata.json records them; None when either cannot be read."""
    from rubric_arm.models import model_fingerprint, prepare_model

    try:
        return {
            f"{role}_model": model_fingerprint(prepare_model(judge_args[role], progress=False))
            for role in ("generator", "judge")
        }
    except (RubricArmError, OSError):
        return None


def find_reusable_eval(cfg: Table2Config, wanted: EvalConfig) -> Path | None:
    """A finished evaluation under `cfg.reuse_evals` with the same resolved settings and of the
    same weights (a model folder retrained in place keeps its path, not its fingerprint)."""
    target = _comparable(wanted)
    weights: dict[str, str] | None = None
    for folder in (Path(f) for f in cfg.reuse_evals if Path(f).is_dir()):
        for run in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
            config, metadata = run / "config.json", run / "metadata.json"
            if not (_eval_done(run) and config.is_file() and metadata.is_file()):
                continue
            found = EvalConfig.from_dict(json.loads(config.read_text(encoding="utf-8")), config)
            if _comparable(found) != target:
                continue
            weights = weights or _weights(target.judge_args)
            judged = json.loads(metadata.read_text(encoding="utf-8")).get("judge_config", {})
            if weights and all(judged.get(k) == v for k, v in weights.items()):
                return run
    return None


def plan(cfg: Table2Config, root: Path) -> tuple[list[Step], list[Entry]]:
    train_root = root / "train"
    steps: list[Step] = []
    entries: list[Entry] = []
    if cfg.prompted:
        entries.append(
            Entry(
                "prompted",
                f"prompted Rubric+Judge ({cfg.prompted['judge']}, untrained)",
                "Qwen3-8B prompted Rubric+Judge",
                None,
                cfg.prompted["generator"],
                cfg.prompted["judge"],
            )
        )
    base = ["train", "--config", cfg.train_recipe, "--output_dir", str(train_root)]
    if cfg.train_smoke:
        base.append("--smoke")
    common = _overrides_argv(cfg.train_overrides)
    main_run = Path(cfg.alternating_run) if cfg.alternating_run else train_root / "alternating"
    sft = {r: str(main_run / "models" / f"sft-{r}") for r in ("generator", "judge")}
    for key in cfg.variants:
        label, p1, p5, switches = VARIANTS[key]
        run_dir = main_run if key == "alternating" else train_root / key
        argv = [*base, "--name", run_dir.name, *common]
        if key == "alternating" and cfg.alternating_run:
            argv[argv.index("--output_dir") + 1] = str(run_dir.parent)
        if key != "alternating":
            argv += ["--sft.enabled", "false", "--generator.model", sft["generator"]]
            argv += ["--judge.model", sft["judge"], *_overrides_argv(switches)]
        note = "Stage I SFT, then Stage II" if key == "alternating" else "Stage II from its SFT"
        steps.append(
            Step(
                f"train {key}",
                argv,
                lambda d=run_dir: _train_done(d),
                note=note,
                launcher=list(cfg.train_launcher),
            )
        )
        if key == "alternating":
            entries.append(
                Entry(
                    "sft",
                    "Rubric-RM analogue (SFT only)",
                    "Rubric-RM (SFT only)",
                    "Rubric-RM voting@5",
                    sft["generator"],
                    sft["judge"],
                )
            )
        final = _final_models(run_dir, key, cfg)
        entries.append(
            Entry(key, label, p1, p5, final["generator"], final["judge"], run=str(run_dir))
        )
    if cfg.released:
        entries.insert(
            0,
            Entry(
                "released",
                "Rubric-ARM (released checkpoints)",
                "Rubric-ARM",
                "Rubric-ARM voting@5",
                cfg.released["generator"],
                cfg.released["judge"],
            ),
        )
    for col, build in cfg.pair_builds.items():
        data = cfg.columns[col].get("data")
        if not data:
            raise InputError(f"pair_builds.{col}: columns.{col}.data names the file it writes")
        argv = ["data", "build-pairs", "--out", data, *_overrides_argv(build)]
        steps.append(
            Step(
                f"build {col} pairs", argv, lambda p=Path(data): p.is_file(), note="verifier labels"
            )
        )
    judge_args = [x for k, v in cfg.judge_args.items() for x in ("-J", f"{k}={v}")]
    for e in entries:
        for bench, data in benchmarks_of(cfg):
            wanted = EvalConfig(
                judge="rubric-arm",
                benchmark=bench,
                judge_args={**cfg.judge_args, "generator": e.generator, "judge": e.judge},
                votes=cfg.votes,
                data=data,
                limit=cfg.limit or None,
                seed=cfg.seed,
            ).resolved()
            reused = find_reusable_eval(cfg, wanted)
            if reused is not None:
                e.reused[_tag(bench, data)] = str(reused)
                steps.append(
                    Step(f"eval {e.key} on {bench}", [], lambda: True, note=f"reused: {reused}")
                )
                continue
            out = eval_dir(root, e.key, bench, data)
            argv = ["eval", "--judge", "rubric-arm", *judge_args]
            argv += ["-J", f"generator={e.generator}", "-J", f"judge={e.judge}"]
            argv += ["--votes", str(cfg.votes), "--benchmark", bench, "--seed", str(cfg.seed)]
            argv += ["--out", str(out), "--quiet"]
            if data:
                argv += ["--data", data]
            if cfg.limit:
                argv += ["--limit", str(cfg.limit)]
            steps.append(Step(f"eval {e.key} on {out.name}", argv, lambda o=out: _eval_done(o)))
    return steps, entries


def _final_models(run_dir: Path, key: str, cfg: Table2Config) -> dict[str, str]:
    """The export folders the finished run will hold (known before it runs)."""
    from rubric_arm.trainer.config import load_config
    from rubric_arm.trainer.loop import phase_names

    overrides: dict[str, Any] = dict(cfg.train_overrides)
    overrides.update(VARIANTS[key][3])
    if key != "alternating":
        overrides["sft"] = {**overrides.get("sft", {}), "enabled": False}
    tcfg = load_config(cfg.train_recipe, overrides, smoke=cfg.train_smoke)
    last: dict[str, str] = {}
    for name, role in phase_names(tcfg):
        if role == "both":
            last.update({r: f"{name}-{r}" for r in ("generator", "judge")})
        else:
            last[role] = name
    return {r: str(run_dir / "models" / folder) for r, folder in last.items()}


# ---- preflight (paper profile) --------------------------------------------------------------
def table2_preflight(cfg: Table2Config) -> list[str]:
    """What the recipe needs and this machine lacks (empty: good to go)."""
    models = [m for d in (cfg.released, cfg.prompted) for m in d.values()]
    return preflight(
        needs_gpu=cfg.needs_gpu,
        benchmarks=benchmarks_of(cfg),
        models=models,
        built_later=[cfg.columns[c]["data"] for c in cfg.pair_builds],
    )


# ---- the table ------------------------------------------------------------------------------
def single_vote(records: list[JudgeRecord]) -> list[JudgeRecord]:
    """Records as a single-sample run would have written them: vote 0 of every order."""
    out = []
    for r in records:
        single = replace(r, judgments=[j for j in r.judgments if j.vote == 0], votes=1)
        if r.status == "ok":
            single.set_winner(majority_vote([j.winner for j in single.judgments]))
        else:
            single.winner = None
        out.append(single)
    return out


@dataclass
class Cell:
    value: float
    low: float
    high: float
    n: int
    parse_failures: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _cell(m: Metric) -> Cell:
    e = m.estimate
    return Cell(100 * e.value, 100 * e.low, 100 * e.high, e.n, m.parse_failures)


def _average(cells: list[Cell]) -> Cell | None:
    """Mean of the filled columns; CI by a normal approximation from the column CIs (columns
    are scored on different items and treated as independent)."""
    if not cells:
        return None
    k = len(cells)
    mean = sum(c.value for c in cells) / k
    se = math.sqrt(sum(((c.high - c.low) / (2 * 1.959964)) ** 2 for c in cells)) / k
    return Cell(mean, mean - 1.959964 * se, mean + 1.959964 * se, sum(c.n for c in cells), 0)


def collect(cfg: Table2Config, root: Path, entries: list[Entry]) -> list[dict[str, Any]]:
    """One table row per (entry, single | voting@k) with a cell per filled column."""
    rows = []
    for e in entries:
        for mode in ("single", "voting"):
            if mode == "voting" and cfg.votes == 1:
                continue
            paper_name = e.paper_single if mode == "single" else e.paper_voting
            label = e.label if mode == "single" else f"{e.label}, voting@{cfg.votes}"
            cells: dict[str, Cell] = {}
            missing = []
            for col, spec in cfg.columns.items():
                out = eval_dir(root, e, spec["benchmark"], spec.get("data"))
                if not _eval_done(out):
                    missing.append(col)
                    continue
                run = read_run(out)
                records = single_vote(run.records) if mode == "single" else run.records
                metrics = score(
                    get_benchmark(spec["benchmark"]),
                    records,
                    tie_policy=run.config.tie_policy,
                    protocol=run.config.protocol,
                    seed=run.config.seed,
                )
                by_name = {m.name: m for m in metrics}
                if spec["metric"] not in by_name:  # e.g. a --limit run without that subset
                    missing.append(col)
                    continue
                cells[col] = _cell(by_name[spec["metric"]])
            avg = _average([cells[c] for c in cfg.columns if c in cells])
            rows.append(
                {
                    "label": label,
                    "entry": e.key,
                    "mode": mode,
                    "generator": e.generator,
                    "judge": e.judge,
                    "paper_row": paper_name,
                    "paper": paper_row(paper_name) if paper_name else None,
                    "cells": {c: v.to_dict() for c, v in cells.items()},
                    "avg": avg.to_dict() if avg else None,
                    "missing": missing,
                }
            )
    return rows


def paired_against_alternating(
    cfg: Table2Config, root: Path, entries: list[Entry]
) -> list[dict[str, Any]]:
    """Per benchmark, each other row minus alternating on the pairs both judged: paired
    bootstrap of the per-pair credit, resampling source prompts where a prompt has several."""
    from rubric_arm.harness.report import load_run, paired_differences

    out = []
    for bench, data in benchmarks_of(cfg):
        main = next((e for e in entries if e.key == "alternating"), "alternating")
        base = eval_dir(root, main, bench, data)
        if not _eval_done(base):
            continue
        alternating = load_run(base)
        for e in entries:
            other = eval_dir(root, e, bench, data)
            if e.key == "alternating" or not _eval_done(other):
                continue
            for d in paired_differences([load_run(other), alternating]):
                out.append({"entry": e.key, "label": e.label, "benchmark": bench, **d})
    return out


def gradient_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """Per trained variant, cycle and model: the variance across optimizer steps of the
    gradient's norm and of its fixed random projection (Theorem 5.5 compares the generator's
    under joint and alternating updates)."""
    from rubric_arm.trainer.report import gradient_variance

    out = []
    for e in entries:
        log = Path(e.run) / "metrics.jsonl" if e.run else None
        if log is None or not log.is_file():
            continue
        rows = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x]
        for key, v in gradient_variance(rows).items():
            cycle, role = key.split("/")
            out.append({"entry": e.key, "label": e.label, "cycle": cycle, "role": role, **v})
    return out


def _fmt(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "—"
    return f"{cell['value']:.1f} [{cell['low']:.1f}, {cell['high']:.1f}]"


def _paper_avg(paper: dict[str, float], cols: list[str]) -> float:
    """The paper's mean over the columns our row has, so the two Avg cells compare alike."""
    return sum(paper[c] for c in cols) / len(cols)


def render_markdown(cfg: Table2Config, rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    cols = list(cfg.columns)
    unfilled = [c for c in COLUMNS if c not in cols]
    lines = [f"# Table 2 reproduction: {cfg.profile} profile", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    header = ["row"]
    for c in [*cols, "Avg"]:
        header += [f"{c} (ours)", f"{c} (paper)"]
        if cfg.profile == "paper":
            header.append(f"{c} Δ")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        paper = r["paper"] or {}
        cells = [r["label"]]
        for c in cols:
            ours = r["cells"].get(c)
            cells += [_fmt(ours), f"{paper[c]:.1f}" if c in paper else "—"]
            if cfg.profile == "paper":
                cells.append(_diff(ours, paper.get(c)))
        filled = [c for c in cols if c in r["cells"]]
        pav = _paper_avg(paper, filled) if paper and filled else None
        cells += [_fmt(r["avg"]), f"{pav:.1f}" if pav is not None else "—"]
        if cfg.profile == "paper":
            cells.append(_diff(r["avg"], pav))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Cells: accuracy in % with a 95% percentile bootstrap CI (10,000 resamples, seeded); "
        "Avg is the mean of the columns shown, its CI a normal approximation from the column "
        "CIs. The paper's Avg here is recomputed over the columns the row has"
        + (" (its published 10-column Avg is in PAPER.md)." if unfilled else ".")
    )
    if cfg.profile == "paper":
        lines.append("Δ: ours minus the paper, with our CI shifted by the paper's figure.")
    lines.append("")
    if unfilled:
        lines.append(
            f"Columns this profile cannot fill: {', '.join(f'{c} ({COLUMN_TITLES[c]})' for c in unfilled)}."
        )
        lines.append("")
    lines += ["## Where each column comes from", "", "| column | benchmark | metric | data |"]
    lines.append("|---|---|---|---|")
    for c in cols:
        s = cfg.columns[c]
        note = s.get("note", "")
        lines.append(
            f"| {c} ({COLUMN_TITLES[c]}) | {s['benchmark']} | {s['metric']} | "
            f"{s.get('data') or 'default source'}{'; ' + note if note else ''} |"
        )
    if meta.get("paired"):
        lines += [
            "",
            "## Against alternating (paired)",
            "",
            "Row minus alternating on every pair both judged (all the benchmark's pairs, not "
            "only the columns above): paired bootstrap, resampling source prompts.",
            "",
            "| row | benchmark | pairs (prompts) | difference, points | 95% CI | p |",
            "|---|---|---:|---:|---|---:|",
        ]
        for d in meta["paired"]:
            size = f"{d['n']}" + (f" ({d['clusters']})" if "clusters" in d else "")
            lines.append(
                f"| {d['label']} | {d['benchmark']} | {size} | {100 * d['difference']:+.1f} | "
                f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | {d['p_value']:.3f} |"
            )
    if meta.get("gradients"):
        lines += [
            "",
            "## Gradient variance (Theorem 5.5)",
            "",
            "Variance across one cycle's optimizer steps of the gradient's L2 norm and of a "
            "fixed random projection of it (trainer/diagnostics.py), per variant, cycle and "
            "model. The theorem predicts a lower generator variance under alternating than "
            "under joint updates. A cycle has few steps: a diagnostic, not a test.",
            "",
            "| row | cycle | model | steps | var(norm) | var(projection) |",
            "|---|---|---|---:|---:|---:|",
        ]
        for g in meta["gradients"]:
            lines.append(
                f"| {g['label']} | {g['cycle']} | {g['role']} | {g['steps']} | "
                f"{_sci(g['norm_variance'])} | {_sci(g['projection_variance'])} |"
            )
        lines += ["", f"![gradient variance per cycle]({_gradient_png(cfg).name})"]
    lines += ["", "## Counts", "", "| row | n per column | parse failures per column |"]
    lines.append("|---|---|---|")
    for r in rows:
        ns = ", ".join(f"{c} {r['cells'][c]['n']}" for c in cols if c in r["cells"])
        pf = ", ".join(f"{c} {r['cells'][c]['parse_failures']}" for c in cols if c in r["cells"])
        lines.append(f"| {r['label']} | {ns or '—'} | {pf or '—'} |")
    empty = sorted({c for r in rows for c in r["missing"]})
    if empty:
        lines += ["", f"No finished run or no items for: {', '.join(empty)} (shown as —)."]
    lines += [
        "",
        "A pair without a parsed verdict (or whose votes tie) gets 0.5 credit, as RewardBench "
        "scores ties; parse failures count pairs with no verdict.",
        "",
        "## How it was run",
        "",
    ]
    lines += [f"- {line}" for line in meta["how"]]
    lines += ["", "## Time", "", "| step | wall seconds |", "|---|---:|"]
    for name, t in meta["timings"].items():
        lines.append(f"| {name} | {t['seconds']:.0f} |")
    lines.append(f"| **total** | **{meta['total_seconds']:.0f}** |")
    lines += [
        "",
        f"![accuracy per column and row]({Path(cfg.report).with_suffix('.png').name})",
        "",
    ]
    return "\n".join(lines)


def _sci(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def _gradient_png(cfg: Table2Config) -> Path:
    report = Path(cfg.report)
    return report.with_name(report.stem + "-gradients.png")


def render_gradient_png(rows: list[dict[str, Any]], path: Path) -> None:
    """var(projection) per cycle, one panel per model, one line per variant (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roles = sorted({g["role"] for g in rows})
    fig, axes = plt.subplots(1, len(roles), figsize=(4.5 * len(roles), 3.4), squeeze=False)
    for ax, role in zip(axes[0], roles, strict=True):
        for label in dict.fromkeys(g["label"] for g in rows):
            pts = [
                (int(g["cycle"].removeprefix("cycle")), g["projection_variance"])
                for g in rows
                if g["label"] == label and g["role"] == role and g["projection_variance"]
            ]
            if pts:
                ax.plot(*zip(*sorted(pts), strict=True), "o-", label=label)
        ax.set_yscale("log")
        ax.set_title(f"{role} gradient")
        ax.set_xlabel("cycle")
        ax.set_ylabel("variance of the projected gradient")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _diff(ours: dict[str, Any] | None, paper: float | None) -> str:
    if not ours or paper is None:
        return "—"
    return f"{ours['value'] - paper:+.1f} [{ours['low'] - paper:+.1f}, {ours['high'] - paper:+.1f}]"


def render_png(cfg: Table2Config, rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [*cfg.columns, "Avg"]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 0.45 * len(rows) + 1.6))
    axes = list(axes) if len(cols) > 1 else [axes]
    for ax, col in zip(axes, cols, strict=True):
        for y, r in enumerate(rows):
            cell = r["avg"] if col == "Avg" else r["cells"].get(col)
            if cell:
                ax.errorbar(
                    cell["value"],
                    y,
                    xerr=[[cell["value"] - cell["low"]], [cell["high"] - cell["value"]]],
                    fmt="o",
                    color="tab:blue",
                    capsize=3,
                )
            paper = r["paper"] or {}
            filled = [c for c in cfg.columns if c in r["cells"]]
            if col == "Avg":
                pv = _paper_avg(paper, filled) if paper and filled else None
            else:
                pv = paper.get(col)
            if pv is not None:
                ax.plot(pv, y, "x", color="tab:red")
        ax.set_title(col)
        ax.set_xlim(0, 100)
        ax.axvline(50, color="grey", lw=0.5, ls=":")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r["label"] for r in rows] if ax is axes[0] else [])
        ax.invert_yaxis()
    axes[0].set_xlabel("accuracy % (o ours with 95% CI, x paper)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(cfg: Table2Config, root: Path, entries: list[Entry], how: list[str]) -> Path:
    rows = collect(cfg, root, entries)
    timings = load_timings(root)
    meta = {
        "how": how,
        "timings": timings,
        "total_seconds": sum(t["seconds"] for t in timings.values()),
        "paired": paired_against_alternating(cfg, root, entries),
        "gradients": gradient_rows(entries),
    }
    payload = {"profile": cfg.profile, "config": cfg.__dict__, "rows": rows, **meta}
    if meta["gradients"]:
        Path(cfg.report).parent.mkdir(parents=True, exist_ok=True)
        render_gradient_png(meta["gradients"], _gradient_png(cfg))
    return write_outputs(
        Path(cfg.report),
        render_markdown(cfg, rows, meta),
        lambda p: render_png(cfg, rows, p),
        payload,
    )


def how_lines(cfg: Table2Config) -> list[str]:
    ja = ", ".join(f"{k}={v}" for k, v in cfg.judge_args.items())
    over = json.dumps(cfg.train_overrides) if cfg.train_overrides else "none"
    main = cfg.alternating_run or f"{cfg.out}/train/alternating"
    if cfg.judge_args.get("aggregation") == "explicit":
        judging = (
            "explicit aggregation: one P(Meets) check per hard rule and response, computed into "
            "one position-free judgment per pair (votes do not apply)"
        )
    else:
        judging = (
            f"{cfg.votes} judge samples per pair with one rubric per prompt (greedy); "
            "single-sample rows read vote 0 of the same runs"
        )
    lines = [
        f"training recipe `{cfg.train_recipe}` with overrides {over}; variants "
        f"{', '.join(cfg.variants)}; the alternating run is `{main}`, the others start Stage II "
        "from its SFT exports (Stage I is identical across variants)",
        f"judge settings: {ja}; {judging}",
        f"position order seeded with seed {cfg.seed}"
        + (f"; first {cfg.limit} items" if cfg.limit else ""),
    ]
    if cfg.released:
        lines.append(f"released checkpoints: {cfg.released['generator']} + {cfg.released['judge']}")
    return lines


def reproduce_table2(
    cfg: Table2Config, *, force: bool = False, dry_run: bool = False, log: Any = print
) -> int:
    root = Path(cfg.out)
    if force and root.exists():
        shutil.rmtree(root)
    steps, entries = plan(cfg, root)
    log(format_plan(steps, f"reproduce-table2 ({cfg.profile} profile) into {root}:"))
    if dry_run:
        return 0
    problems = table2_preflight(cfg)
    if problems:
        log("cannot run the " + cfg.profile + " profile here:")
        for p in problems:
            log(f"  - {p}")
        return 2
    run_steps(steps, root, log=log)
    report = write_report(cfg, root, entries, how_lines(cfg))
    log(f"wrote {report} (+ .png, .json)")
    return 0
