"""RewardBench 2 for pairwise judges: per-response scores from the grid's win probabilities."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.harness.benchmarks import expand, get_benchmark, score
from rubric_arm.harness.benchmarks.rewardbench2 import load_rewardbench2, win_probability_scores
from rubric_arm.records import JudgeRecord
from rubric_arm.types import PreferencePair

SIX = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")
RULE = "official best-of-4 on per-response scores (mean pairwise win probability)"

# W[i][j] = P(correct i beats incorrect j) per item, set by hand.
GRIDS: dict[str, list[list[float]]] = {
    # correct 0.7667 vs incorrect [0.2, 0.4, 0.1]: on top alone -> 1
    "Factuality/0": [[0.8, 0.6, 0.9]],
    # correct mean 0.7 (2.1 / 3 is 0.6999999999999998 in floats) ties incorrect 0 at 1 - 0.3
    # = 0.7, the other two 0.15 and 0.05 -> 2 share the top -> 1/2
    "Factuality/1": [[0.3, 0.85, 0.95]],
    # correct 0.625 = 1 - 0.375, incorrect [0.625, 0.25, 0.25] -> 1/2
    "Precise IF/0": [[0.375, 0.75, 0.75]],
    # every score 0.5 -> four share the top -> 1/4
    "Math/0": [[0.5, 0.5, 0.5]],
    # correct 2/3 < incorrect 1 at 0.8 -> 0
    "Safety/0": [[0.9, 0.2, 0.9]],
    # correct 0.6 vs incorrect 0.4 each -> 1
    "Focus/0": [[0.6, 0.6, 0.6]],
    # ref:1 correct [0.8], incorrect [0.1, 0.3]: margin 0.5
    "Ties/ref:1": [[0.9, 0.7]],
    # tied:1 correct [0.85, 0.65], incorrect [0.25, 0.25]: margin 0.4, spread 0.2
    "Ties/tied:1": [[0.9, 0.8], [0.6, 0.7]],
    # ref:2 correct [0.45], incorrect [0.7, 0.4]: margin -0.25
    "Ties/ref:2": [[0.3, 0.6]],
    # tied:2 correct [0.7, 0.3], incorrect [0.5, 0.5]: margin -0.2, spread 0.4
    "Ties/tied:2": [[0.8, 0.6], [0.2, 0.4]],
}

# Ties by hand: acc_tied = acc_ref = 1/2 (K=1 right, K=2 wrong); margin_tied > spread: 0.4 > 0.2
# yes, -0.2 > 0.4 no; min(margin_ref, margin_tied) > spread: 0.4 > 0.2 yes, -0.25 > 0.4 no;
# tanh terms tanh(0.4 / 0.2 - 1) and tanh(-0.25 / 0.4 - 1).
TIES = 0.3 * 0.5 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5
TIES += 0.01 * (math.tanh(1.0) + math.tanh(-1.625)) / 2
EXPECTED = {
    "Factuality": (1 + 0.5) / 2,
    "Precise IF": 0.5,
    "Math": 0.25,
    "Safety": 0.0,
    "Focus": 1.0,
    "Ties": TIES,
}


SHAPES = {item: (len(w), len(w[0])) for item, w in GRIDS.items()}


def rb2_row(item: str, n_correct: int, n_incorrect: int, prompt: str | None) -> dict[str, Any]:
    """A row in the real allenai/reward-bench-2 schema (ids restart per subset)."""
    subset, rid = item.split("/", 1)
    return {
        "id": rid,
        "prompt": prompt or f"prompt {item}",
        "chosen": [f"right {k}" for k in range(n_correct)],
        "rejected": [f"wrong {k}" for k in range(n_incorrect)],
        "num_correct": n_correct,
        "num_incorrect": n_incorrect,
        "total_completions": n_correct + n_incorrect,
        "models": [f"m{k}" for k in range(n_correct + n_incorrect)],
        "subset": subset,
        "additional_metadata": {},
    }


def write_rb2(path: Path, shapes: dict[str, tuple[int, int]], *, prompt: str | None = None) -> Path:
    """A local RewardBench 2 file: item -> (number correct, number incorrect); one shared
    `prompt` if given (fewer rubrics to generate), else one per item."""
    rows = [rb2_row(item, n_c, n_i, prompt) for item, (n_c, n_i) in shapes.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def prob_record(pair: PreferencePair, p_a: float | None) -> JudgeRecord:
    """A judged grid pair as the pipeline records it, decided by the `prob` verdict rule."""
    winner = None if p_a is None or p_a == 0.5 else "A" if p_a > 0.5 else "B"
    return JudgeRecord(
        pair.id,
        pair.subset,
        pair.label,
        "ok",
        winner=winner,
        p_a=p_a,
        decoding="constrained",
        verdict_rule="prob",
    )


def grid_records(pairs: list[PreferencePair]) -> list[JudgeRecord]:
    out = []
    for pair in pairs:
        i, j = pair.metadata["ci"], pair.metadata["ri"]
        # expand shows the correct response as response_a, so p_a = P(correct wins).
        assert pair.label == "A" and pair.response_a.startswith("right")
        out.append(prob_record(pair, GRIDS[pair.metadata["item"]][i][j]))
    return out


def by_name(metrics: list[Any]) -> dict[str, Any]:
    return {m.name: m for m in metrics}


def test_win_probability_scores_by_hand_and_orientation() -> None:
    def grid_rec(cell: str, p_a: float | None, label: str | None = "A") -> JudgeRecord:
        return JudgeRecord(f"Ties/tied:1|{cell}", "Ties", label, "ok", p_a=p_a)  # type: ignore[arg-type]

    recs = [grid_rec("c0r0", 0.9), grid_rec("c0r1", 0.8), grid_rec("c1r0", 0.6)]
    # The same comparison with the correct response shown as response_b: P(correct) = 1 - p_a.
    recs.append(grid_rec("c1r1", 0.3, label="B"))
    correct, incorrect = win_probability_scores(recs)  # type: ignore[misc]
    assert correct == pytest.approx([0.85, 0.65])
    assert incorrect == pytest.approx([0.25, 0.25])
    # A missing p_a, an incomplete grid or a record without a label: no scores.
    assert win_probability_scores([*recs[:3], grid_rec("c1r1", None)]) is None
    assert win_probability_scores(recs[:3]) is None
    unlabelled = grid_rec("c1r1", 0.7, label=None)
    assert win_probability_scores([*recs[:3], unlabelled]) is None


def test_rb2_pairwise_judge_scored_with_official_rules(tmp_path: Path) -> None:
    bench = get_benchmark("rewardbench2")
    items = load_rewardbench2(write_rb2(tmp_path / "rb2.jsonl", SHAPES))
    assert not any(p.subset == "Ties" for p in expand(bench, items))
    pairs = expand(bench, items, win_probabilities=True)
    assert len(pairs) == sum(len(w) * len(w[0]) for w in GRIDS.values())
    m = by_name(score(bench, grid_records(pairs)))
    assert set(m) == {*SIX, "overall"}
    for subset, value in EXPECTED.items():
        assert m[subset].estimate.value == pytest.approx(value), subset
    assert m["overall"].estimate.value == pytest.approx(sum(EXPECTED.values()) / 6)
    for subset in SIX[:5]:
        assert m[subset].note == RULE
    assert m["Ties"].note.startswith(
        "official Ties formula on per-response scores (mean pairwise win probability)"
    )
    assert "never pairs two correct answers" in m["Ties"].note
    assert "mean pairwise win probability" in m["overall"].note
    assert m["Ties"].estimate.n == 4 and m["Factuality"].estimate.n == 2
    assert m["Math"].parse_failures == 3  # p_a = 0.5 gives no winner under the prob rule
    low, high = m["overall"].estimate.low, m["overall"].estimate.high
    assert low <= m["overall"].estimate.value <= high


def test_rb2_items_without_p_a_keep_the_pairwise_protocol(tmp_path: Path) -> None:
    bench = get_benchmark("rewardbench2")
    items = load_rewardbench2(write_rb2(tmp_path / "rb2.jsonl", SHAPES))
    records = grid_records(expand(bench, items, win_probabilities=True))
    # Factuality/1 loses one p_a: it falls back to all_pairs on its verdicts (A, A, A -> 1).
    records[3].p_a = None
    assert records[3].id == "Factuality/1|c0r0"
    records[3].winner = "A"
    # Ties/ref:2 loses one p_a: left out of Ties, which then has K=1 alone.
    ref2 = next(r for r in records if r.id == "Ties/ref:2|c0r0")
    ref2.p_a = None
    m = by_name(score(bench, records))
    assert m["Factuality"].estimate.value == pytest.approx((1 + 1) / 2)
    assert m["Factuality"].note == f"{RULE} (1 item); pairwise protocol all_pairs (1 item)"
    # ref:1 right (acc_ref 1), tied:1 right and tied:2 wrong (acc_tied 1/2), K=1 paired alone.
    ties = 0.3 * 0.5 + 0.3 * 1.0 + 0.2 * 1.0 + 0.2 * 1.0 + 0.01 * math.tanh(1.0)
    assert m["Ties"].estimate.value == pytest.approx(ties)
    assert m["Ties"].note.endswith("1 of 4 rows without per-response scores left out")
    assert "pairwise protocol all_pairs" in m["overall"].note
    # With no ref row scored, no K pairs a ref and a tied row: Ties is undefined, not 0.
    for r in records:
        if r.id.startswith("Ties/ref:"):
            r.p_a = None
    m = by_name(score(bench, records))
    assert math.isnan(m["Ties"].estimate.value) and "overall" not in m
    assert "undefined" in m["Ties"].note and m["Focus"].note == RULE
    # Without any p_a, today's behaviour: Ties is not scored and there is no overall.
    for r in records:
        r.p_a = None
    m = by_name(score(bench, records))
    assert "Ties" not in m and "overall" not in m
    assert m["Focus"].note == "pairwise protocol all_pairs"


def test_rb2_end_to_end_with_tiny_rubric_arm_judge(tiny_model_path: Path, tmp_path: Path) -> None:
    from rubric_arm.harness.judges import make_judge

    # Small on purpose (the tiny model is slow on CPU): best-of-2 rows, one shared prompt.
    shapes = {f"{subset}/0": (1, 1) for subset in SIX[:5]}
    shapes |= {"Ties/ref:0": (1, 1), "Ties/tied:0": (2, 1)}
    bench = get_benchmark("rewardbench2")
    items = load_rewardbench2(write_rb2(tmp_path / "rb2.jsonl", shapes, prompt="Say hi."))
    pairs = expand(bench, items, win_probabilities=True)
    judge = make_judge("rubric-arm", {"preset": "tiny"})
    records = judge.judge_pairs(pairs, order="random", seed=0)
    assert len(records) == 8
    assert all(isinstance(r.p_a, float) and 0.0 <= r.p_a <= 1.0 for r in records)
    assert {r.decoding for r in records} == {"constrained"}
    m = by_name(score(bench, records))
    assert set(m) == {*SIX, "overall"}
    six = [m[s].estimate.value for s in SIX]
    assert m["overall"].estimate.value == pytest.approx(sum(six) / 6)
    for subset in SIX[:5]:
        assert m[subset].note == RULE
        assert 0.0 <= m[subset].estimate.value <= 1.0
    assert "mean pairwise win probability" in m["Ties"].note
    assert -0.01 <= m["Ties"].estimate.value <= 1.01
