"""CI's accuracy regression check: figures from a deterministic evaluation, compared with the
committed baselines in reports/baselines/ci.json.

Two kinds of figure:
- frozen: judge outputs written by real runs (reports/baselines/frozen-judgments.jsonl) are
  parsed and scored again with the current parser and scoring code. The texts never change, so
  any drop is a change in our code (tolerance 0).
- live: the tiny recipe (configs/tiny.yaml) is trained and its judge evaluated on the held-out
  synthetic pairs. Deterministic on one machine; a different CPU or torch build can move a few
  of the 64 pairs, hence a tolerance of 3 pairs.

`rubric-arm regress check` exits 1 with a table of every figure when one dropped beyond its
tolerance; `make update-baselines` rewrites the baselines on purpose.
"""

from __future__ import annotations

import json
import platform
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.harness.benchmarks import score_pairwise
from rubric_arm.records import JudgeRecord, Judgment, read_records
from rubric_arm.verdict import majority_vote

REPO = Path(__file__).resolve().parents[1]
BASELINES = REPO / "reports" / "baselines" / "ci.json"
FROZEN = REPO / "reports" / "baselines" / "frozen-judgments.jsonl"
TINY_RECIPE = "tiny"
LIVE_RUN = REPO / "runs" / "ci"
BASELINE_FORMAT = 1

TOLERANCE = {"frozen": 0.0, "live": 3 / 64}
"""Largest drop (accuracy as a fraction, counts as counts) a figure may show and still pass."""


@dataclass
class Figure:
    """One checked number: its value now and how far it may fall below its baseline."""

    name: str
    value: float
    tolerance: float
    note: str = ""


# ---- frozen judge outputs -------------------------------------------------------------------
def frozen_rows_from_records(
    records: Iterable[JudgeRecord], set_name: str, *, direct: bool = False
) -> list[dict[str, Any]]:
    """The parts of judged records the check needs (ids, labels and the raw judge texts), as the
    frozen file's rows."""
    rows = []
    for r in records:
        if r.status != "ok" or r.label not in ("A", "B"):
            continue
        rows.append(
            {
                "set": set_name,
                "id": r.id,
                "subset": r.subset,
                "label": r.label,
                "seed": 0 if r.seed is None else r.seed,
                "n_criteria": r.rubric.n_criteria if r.rubric else 0,
                "direct": direct,
                "judgments": [
                    {"order": j.order, "vote": j.vote, "text": j.text} for j in r.judgments
                ],
            }
        )
    return rows


def rescore_row(row: dict[str, Any]) -> JudgeRecord:
    """A pair record rebuilt from frozen texts with today's parser (Judgment.from_text)."""
    judgments = [
        Judgment.from_text(
            j["text"],
            order=j["order"],
            vote=int(j.get("vote", 0)),
            n_criteria=int(row["n_criteria"]),
            direct=bool(row.get("direct", False)),
        )
        for j in row["judgments"]
    ]
    rec = JudgeRecord(
        id=row["id"],
        subset=row.get("subset"),
        label=row["label"],
        status="ok",
        seed=row.get("seed", 0),
        judgments=judgments,
    )
    rec.set_winner(majority_vote([j.winner for j in judgments]))
    return rec


def frozen_figures(path: Path = FROZEN) -> list[Figure]:
    """Accuracy, parsed verdicts and well-formed outputs per frozen set, re-parsed now."""
    if not path.is_file():
        raise InputError(f"{path} not found: the frozen judge outputs are committed with the repo")
    by_set: dict[str, list[JudgeRecord]] = defaultdict(list)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            by_set[row["set"]].append(rescore_row(row))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{lineno}: not a frozen judgment row ({exc})") from exc
    tol = TOLERANCE["frozen"]
    out = []
    for name in sorted(by_set):
        records = by_set[name]
        metrics = {m.name: m for m in score_pairwise(records, tie_credit=0.5, seed=0)}
        judgments = [j for r in records for j in r.judgments]
        n = len(records)
        out.append(
            Figure(f"frozen.{name}.accuracy", metrics["overall"].estimate.value, tol, f"n={n}")
        )
        out.append(
            Figure(
                f"frozen.{name}.parsed_verdicts",
                float(sum(j.winner is not None for j in judgments)),
                tol,
                f"of {len(judgments)} judgments",
            )
        )
        out.append(
            Figure(
                f"frozen.{name}.well_formed",
                float(sum(j.format_ok for j in judgments)),
                tol,
                f"of {len(judgments)} judgments",
            )
        )
        for key in ("position: better first", "position: better second"):
            if key in metrics:
                label = key.split(": ")[1].replace(" ", "_")
                out.append(Figure(f"frozen.{name}.{label}", metrics[key].estimate.value, tol))
    return out


# ---- live tiny training ---------------------------------------------------------------------
def live_figures(run_root: Path = LIVE_RUN, *, progress: bool = False) -> list[Figure]:
    """Train the tiny recipe (or resume a finished run) and evaluate it on its held-out pairs."""
    from rubric_arm.trainer.config import load_config
    from rubric_arm.trainer.evaluate import evaluate_run
    from rubric_arm.trainer.loop import RubricARMTrainer

    cfg = load_config(TINY_RECIPE, {"output_dir": str(run_root), "name": "tiny"})
    trainer = RubricARMTrainer(cfg, progress=progress)
    final = trainer.run()
    eval_path = cfg.run_dir / "eval.json"
    state_path = cfg.run_dir / "state.json"
    if eval_path.is_file() and eval_path.stat().st_mtime >= state_path.stat().st_mtime:
        result = json.loads(eval_path.read_text(encoding="utf-8"))
    else:
        result = evaluate_run(cfg, final, trainer.base_models())
    tol = TOLERANCE["live"]
    out = []
    for key in ("trained", "after_sft"):
        if key in result:
            r = result[key]
            note = f"n={r['n']}, unparsed {r['unparsed']}"
            out.append(Figure(f"live.tiny.{key}_accuracy", float(r["accuracy"]), tol, note))
    return out


def current_figures(*, live: bool = True, progress: bool = False) -> list[Figure]:
    figures = frozen_figures()
    if live:
        figures += live_figures(progress=progress)
    return figures


# ---- compare --------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    baseline: float | None
    now: float | None
    tolerance: float
    status: str
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status.startswith("FAIL")


def compare(figures: list[Figure], baselines: dict[str, Any]) -> list[Row]:
    """One row per figure in either set; a drop beyond tolerance or a missing figure fails."""
    base = baselines.get("figures", {})
    now = {f.name: f for f in figures}
    rows = []
    for name in sorted(set(base) | set(now)):
        b = base.get(name)
        f = now.get(name)
        if f is None:
            rows.append(Row(name, b["value"], None, b["tolerance"], "FAIL (not computed)"))
            continue
        if b is None:
            rows.append(Row(name, None, f.value, f.tolerance, "new (not in baselines)", f.note))
            continue
        tol = float(b["tolerance"])
        delta = f.value - float(b["value"])
        if delta < -tol - 1e-9:
            status = "FAIL (dropped)"
        elif delta > tol + 1e-9:
            status = "improved (make update-baselines)"
        else:
            status = "ok"
        rows.append(Row(name, float(b["value"]), f.value, tol, status, f.note))
    return rows


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def format_rows(rows: list[Row], baseline_path: Path) -> str:
    """The readable diff CI prints: every figure, its baseline, the change and the verdict."""
    header = ("figure", "baseline", "now", "change", "tolerance", "status")
    table = [header]
    for r in rows:
        change = "-" if r.baseline is None or r.now is None else f"{r.now - r.baseline:+.4f}"
        table.append(
            (r.name, _fmt(r.baseline), _fmt(r.now), change, f"{r.tolerance:.4f}", r.status)
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [f"accuracy regression check against {baseline_path}"]
    for row in table:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    failed = [r for r in rows if r.failed]
    if failed:
        lines.append(
            f"FAILED: {len(failed)} figure(s) fell below baseline - tolerance: "
            + ", ".join(r.name for r in failed)
            + ". If the change is intended, run `make update-baselines` and commit the result."
        )
    else:
        lines.append(f"passed: {len(rows)} figures within tolerance")
    return "\n".join(lines)


def load_baselines(path: Path = BASELINES) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path} not found: run `make update-baselines` to write it")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != BASELINE_FORMAT:
        raise InputError(f"{path}: baseline format {data.get('format')!r}, expected 1")
    return data


def write_baselines(figures: list[Figure], path: Path = BASELINES) -> dict[str, Any]:
    from rubric_arm.harness.runner import git_commit

    data = {
        "format": BASELINE_FORMAT,
        "written_by": "make update-baselines",
        "git_commit": git_commit(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "tolerances": {
            "frozen": "0: the same texts parsed and scored again; any drop is a code change",
            "live": f"{TOLERANCE['live']:.4f}: 3 of the 64 held-out pairs of the tiny recipe",
        },
        "figures": {
            f.name: {"value": f.value, "tolerance": f.tolerance, "note": f.note} for f in figures
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return data


def check(
    *, live: bool = True, baseline_path: Path = BASELINES, progress: bool = False
) -> tuple[bool, str]:
    """(passed, report). Live figures are skipped when `live` is False (frozen only); the
    baselines' live rows then count as not computed only if live was asked for."""
    baselines = load_baselines(baseline_path)
    figures = current_figures(live=live, progress=progress)
    if not live:
        baselines = {
            **baselines,
            "figures": {k: v for k, v in baselines["figures"].items() if not k.startswith("live.")},
        }
    rows = compare(figures, baselines)
    return not any(r.failed for r in rows), format_rows(rows, baseline_path)


# ---- writing the frozen set -----------------------------------------------------------------
def freeze_tiny(run_dir: Path) -> list[dict[str, Any]]:
    """Judge outputs of a finished tiny run's trained models on its held-out pairs, both orders
    (so the frozen set also checks the position figures)."""
    from rubric_arm.trainer.config import load_config
    from rubric_arm.trainer.data import load_train_data
    from rubric_arm.trainer.evaluate import heldout_arm
    from rubric_arm.trainer.loop import RubricARMTrainer

    recipe = run_dir / "config.yaml"
    if not recipe.is_file():
        raise InputError(f"{run_dir} is not a training run folder (no config.yaml)")
    cfg = load_config(recipe)
    final = RubricARMTrainer(cfg, progress=False).current_models()
    arm = heldout_arm(cfg, final["generator"], final["judge"])
    pairs = load_train_data(cfg).heldout
    records = arm.judge(pairs, order="both", seed=cfg.eval.seed, desc="frozen set")
    return frozen_rows_from_records(records, "tiny-trained")


def freeze_run(run_dir: Path, set_name: str) -> list[dict[str, Any]]:
    """Judge outputs of a `rubric-arm eval` run folder (records.jsonl)."""
    path = run_dir / "records.jsonl"
    if not path.is_file():
        raise InputError(f"{run_dir} is not an eval run folder (no records.jsonl)")
    from rubric_arm.harness.runner import EvalConfig

    config = EvalConfig.from_dict(json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
    direct = config.judge not in ("rubric-arm", "prompted-rubric")
    return frozen_rows_from_records(read_records(path), set_name, direct=direct)


def write_frozen(rows: list[dict[str, Any]], path: Path = FROZEN) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
