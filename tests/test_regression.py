"""CI's accuracy regression checker: it passes on today's code and fails, with a readable diff,
when the judge parser is broken on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubric_arm import verdict
from rubric_arm.reproduce import regression as rg


def frozen_only_baselines(tmp_path: Path) -> Path:
    """The committed baselines minus the live (training) rows, so the test stays fast."""
    data = rg.load_baselines()
    data["figures"] = {k: v for k, v in data["figures"].items() if k.startswith("frozen.")}
    path = tmp_path / "ci.json"
    path.write_text(json.dumps(data))
    return path


def test_committed_baselines_hold_for_the_frozen_outputs(tmp_path: Path) -> None:
    ok, text = rg.check(live=False, baseline_path=frozen_only_baselines(tmp_path))
    assert ok, text
    assert "passed:" in text
    names = rg.load_baselines()["figures"]
    assert any(k.startswith("live.tiny.") for k in names)  # CI also trains the tiny recipe
    assert {"frozen.tiny-trained.accuracy", "frozen.mini-trained.parsed_verdicts"} <= set(names)


def _swap_winner(original):
    def broken(scan):
        winner, failure, line = original(scan)
        return ({"A": "B", "B": "A"}.get(winner), failure, line)

    return broken


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda orig: lambda scan: (None, "no_winner", None), id="no-verdict"),
        pytest.param(_swap_winner, id="swapped-winner"),
    ],
)
def test_a_broken_parser_fails_the_check(tmp_path: Path, monkeypatch, breakage) -> None:
    monkeypatch.setattr(verdict, "_decision", breakage(verdict._decision))
    ok, text = rg.check(live=False, baseline_path=frozen_only_baselines(tmp_path))
    assert not ok
    assert "FAIL (dropped)" in text and "frozen.tiny-trained.accuracy" in text
    assert "make update-baselines" in text
    failing = [line for line in text.splitlines() if "FAIL" in line and "accuracy" in line]
    assert failing, text


def test_a_broken_format_check_fails_the_check(tmp_path: Path, monkeypatch) -> None:
    """An off-by-one in the criterion check leaves winners alone but drops well-formed counts."""
    original = verdict._problems
    monkeypatch.setattr(verdict, "_problems", lambda scan, n: original(scan, n + 1))
    ok, text = rg.check(live=False, baseline_path=frozen_only_baselines(tmp_path))
    assert not ok
    assert "frozen.tiny-trained.well_formed" in text.split("FAILED:")[1]


def test_compare_rules() -> None:
    base = {
        "figures": {
            "a": {"value": 0.9, "tolerance": 0.05},
            "b": {"value": 0.5, "tolerance": 0.0},
            "gone": {"value": 1.0, "tolerance": 0.0},
        }
    }
    figures = [rg.Figure("a", 0.86, 0.05), rg.Figure("b", 0.6, 0.0), rg.Figure("new", 1.0, 0.0)]
    rows = {r.name: r for r in rg.compare(figures, base)}
    assert rows["a"].status == "ok"  # within tolerance
    assert rows["b"].status.startswith("improved")
    assert rows["gone"].failed and rows["gone"].status == "FAIL (not computed)"
    assert rows["new"].status.startswith("new")
    rows = {
        r.name: r for r in rg.compare([rg.Figure("a", 0.84, 0.05)], {"figures": base["figures"]})
    }
    assert rows["a"].failed


def test_bad_frozen_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "frozen.jsonl"
    path.write_text('{"set": "x", "id": "1"}\n')
    with pytest.raises(rg.InputError, match=r"frozen.jsonl:1"):
        rg.frozen_figures(path)
