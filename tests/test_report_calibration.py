"""Reports: the decoding / verdict-rule columns and the calibration of P(chosen) from p_a."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.harness.judges import Judge
from rubric_arm.harness.report import calibration, wilson_interval, write_report
from rubric_arm.harness.runner import EvalConfig, run_eval
from rubric_arm.records import JudgeRecord, Judgment
from rubric_arm.types import PreferencePair, flip

Z2 = 1.959963984540054**2

# (label, p_a) -> P(chosen), confidence max(P, 1 - P), hit, (1 - P(chosen))^2
HAND = [
    ("A", 0.93),  # 0.93, 0.93 bin [0.9, 1.0], hit 1, 0.0049
    ("B", 0.17),  # 0.83, 0.83 bin [0.8, 0.9), hit 1, 0.0289
    ("A", 0.26),  # 0.26, 0.74 bin [0.7, 0.8), hit 0, 0.5476
    ("B", 0.78),  # 0.22, 0.78 bin [0.7, 0.8), hit 0, 0.6084
    ("A", 0.55),  # 0.55, 0.55 bin [0.5, 0.6), hit 1, 0.2025
    ("A", 0.5),  # 0.50, 0.50 bin [0.5, 0.6), hit 1/2, 0.25
    ("B", 0.04),  # 0.96, 0.96 bin [0.9, 1.0], hit 1, 0.0016
    ("A", None),  # no p_a: left out
    (None, 0.7),  # no label: left out
]


def record(label: str | None, p_a: float | None, rid: str = "x") -> JudgeRecord:
    return JudgeRecord(rid, None, label, "ok", p_a=p_a)  # type: ignore[arg-type]


def hand_records() -> list[JudgeRecord]:
    return [record(lab, p, str(k)) for k, (lab, p) in enumerate(HAND)]


def test_calibration_by_hand() -> None:
    cal = calibration(hand_records())
    assert cal is not None
    assert (cal["n"], cal["n_records"]) == (7, 9)
    bins = cal["bins"]
    assert [b["low"] for b in bins] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert [b["high"] for b in bins] == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0])
    assert [b["n"] for b in bins] == [2, 0, 2, 1, 2]
    assert bins[1]["accuracy"] is None and bins[1]["confidence"] is None
    expected = [(0.525, 0.75), None, (0.76, 0.0), (0.83, 1.0), (0.945, 1.0)]
    for b, exp in zip(bins, expected, strict=True):
        if exp is not None:
            assert (b["confidence"], b["accuracy"]) == pytest.approx(exp)
    # Wilson at 0 of 2: [0, z^2 / (2 + z^2)]; at 2 of 2: [2 / (2 + z^2), 1].
    assert (bins[2]["accuracy_low"], bins[2]["accuracy_high"]) == pytest.approx(
        (0.0, Z2 / (2 + Z2))
    )
    assert (bins[4]["accuracy_low"], bins[4]["accuracy_high"]) == pytest.approx((2 / (2 + Z2), 1.0))
    # ECE = (2 |0.75 - 0.525| + 2 |0 - 0.76| + |1 - 0.83| + 2 |1 - 0.945|) / 7 = 2.25 / 7
    assert cal["ece"]["value"] == pytest.approx(2.25 / 7)
    brier = (0.0049 + 0.0289 + 0.5476 + 0.6084 + 0.2025 + 0.25 + 0.0016) / 7
    assert cal["brier"]["value"] == pytest.approx(brier)
    for key in ("ece", "brier"):
        est = cal[key]
        assert est["low"] <= est["value"] <= est["high"] and est["low"] < est["high"]
        assert est["n"] == 7
    assert calibration([record("A", None)]) is None


def test_calibration_orientation_and_perfect_judge() -> None:
    # The same judgments with the pair flipped (label B, p_a -> 1 - p_a) calibrate identically.
    flipped = [
        record(flip(r.label), 1 - r.p_a, r.id)
        for r in hand_records()
        if r.label and r.p_a is not None
    ]
    a, b = calibration(hand_records()), calibration(flipped)
    assert a is not None and b is not None
    assert b["brier"]["value"] == pytest.approx(a["brier"]["value"])
    assert b["ece"]["value"] == pytest.approx(a["ece"]["value"])
    sure = calibration([record("A", 1.0), record("B", 0.0)] * 3)
    assert sure is not None
    assert sure["brier"]["value"] == 0.0 and sure["ece"]["value"] == 0.0
    assert [b["n"] for b in sure["bins"]] == [0, 0, 0, 0, 6]


def test_wilson_interval_matches_the_formula() -> None:
    low, high = wilson_interval(7, 10)
    center = (0.7 + Z2 / 20) / (1 + Z2 / 10)
    half = math.sqrt(Z2) / (1 + Z2 / 10) * math.sqrt(0.7 * 0.3 / 10 + Z2 / 400)
    assert (low, high) == pytest.approx((center - half, center + half))
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


class ScriptedProbJudge(Judge):
    """Records as the pipeline writes them, with hand-set p_a, decoding and verdict rule."""

    def __init__(self, p_a: Sequence[float | None], decoding: str, rule: str) -> None:
        self.name, self.p_a, self.decoding, self.rule = "scripted", list(p_a), decoding, rule

    def config(self) -> dict[str, Any]:
        return {"judge": "scripted", "decoding": self.decoding, "verdict": self.rule}

    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        out = []
        for pair, p in zip(pairs, self.p_a, strict=True):
            winner = None if p is None or p == 0.5 else "A" if p > 0.5 else "B"
            judgment = Judgment("AB", 0, winner, winner is not None, None, [], "", 0, 0, "stop", p)
            out.append(
                JudgeRecord(
                    pair.id,
                    pair.subset,
                    pair.label,
                    "ok",
                    winner=winner,
                    correct=None if winner is None else winner == pair.label,
                    order=order,
                    judgments=[judgment],
                    decoding=self.decoding,
                    verdict_rule=self.rule,
                    p_a=p,
                )
            )
        return out


def test_report_shows_decoding_parse_counts_and_calibration(tmp_path: Path) -> None:
    labelled = [(lab, p) for lab, p in HAND if lab is not None]
    pairs = [
        PreferencePair(str(k), f"q{k}", "x", "y", lab, "s") for k, (lab, _) in enumerate(labelled)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs), encoding="utf-8")
    p_as = [p for _, p in labelled]
    for decoding, rule in (("constrained", "prob"), ("free", "vote")):
        config = EvalConfig(
            judge="scripted", benchmark="pairs", data=str(data), judge_args={"decoding": decoding}
        )
        run_eval(
            config,
            tmp_path / decoding,
            judge=ScriptedProbJudge(p_as, decoding, rule),
            progress=False,
        )
    out = write_report(
        [tmp_path / "constrained", tmp_path / "free"], tmp_path / "rep" / "x.md", title="t"
    )
    text = (tmp_path / "rep" / "x.md").read_text()
    assert json.loads((tmp_path / "rep" / "x.json").read_text()) == out
    assert (tmp_path / "rep" / "x-calibration.png").stat().st_size > 1000
    assert "![reliability of P(chosen)" in text
    header = next(line for line in text.splitlines() if line.startswith("| judge | decoding"))
    assert "verdict rule" in header and "overall" in header and "unparsed judgments" in header
    runs = out["benchmarks"]["pairs"]["runs"]
    assert [(r["decoding"], r["verdict_rule"]) for r in runs] == [
        ("constrained", "prob"),
        ("free", "vote"),
    ]
    for run in runs:
        overall = next(m for m in run["metrics"] if m["name"] == "overall")
        value, low, high = (100 * overall[k] for k in ("value", "low", "high"))
        ci = f"{value:.1f} [{low:.1f}, {high:.1f}]"
        # one judgment per pair; p_a = 0.5 and the pair without p_a give no verdict
        row = (
            f"| {run['label']} | {run['decoding']} | {run['verdict_rule']} | {ci} (n=8) | 8 | 2 | "
            "2 / 8 | 0 |"
        )
        assert row in text
        assert run["judgments"] == {"judgments": 8, "unparsed": 2}
    assert runs[0]["label"] == "scripted [constrained, prob]"
    assert runs[1]["label"] == "scripted [free, vote]"
    assert "### Calibration of P(chosen)" in text
    cal = runs[0]["calibration"]
    assert cal["n"] == 7 and cal["n_records"] == 8
    assert cal["ece"]["value"] == pytest.approx(2.25 / 7)
    brier, ece = cal["brier"], cal["ece"]
    assert (
        f"scripted [constrained, prob]: n = 7 of 8 pairs; Brier {brier['value']:.3f} "
        f"[{brier['low']:.3f}, {brier['high']:.3f}]; ECE {ece['value']:.3f} "
        f"[{ece['low']:.3f}, {ece['high']:.3f}]." in text
    )
    assert (
        "| scripted [constrained, prob] | [0.7, 0.8) | 2 | 0.760 | 0.000 [0.000, 0.658] |" in text
    )
    assert "| scripted [free, vote] | [0.9, 1.0] | 2 | 0.945 | 1.000 [0.342, 1.000] |" in text
    assert "| scripted [free, vote] | [0.6, 0.7) | 0 | - | - |" in text


def test_run_label_names_models_aggregation_and_engine_settings() -> None:
    """Two runs of one judge that differ only in engine precision get different table labels."""
    from rubric_arm.harness.report import run_label
    from rubric_arm.harness.runner import EvalConfig

    args = {"preset": "mini", "judge": "runs/train/mini/models/cycle3-judge"}
    base = EvalConfig(judge="rubric-arm", benchmark="mini", judge_args=dict(args))
    half = EvalConfig(
        judge="rubric-arm", benchmark="mini", judge_args={**args, "engine.dtype": "bfloat16"}
    )
    assert run_label(base) == "rubric-arm (mini, judge models/cycle3-judge)"
    assert run_label(half) == "rubric-arm (mini, judge models/cycle3-judge, dtype bfloat16)"
