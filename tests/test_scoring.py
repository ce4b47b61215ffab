"""Hand-worked cases for the benchmark scoring rules in rubric_arm.harness.scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rubric_arm.harness.scoring import (
    RB2_SUBSETS,
    REWARDBENCH_SECTIONS,
    judgebench_item,
    pairwise_item_score,
    pairwise_multi_response_item,
    position_bias,
    rb2_best_of_n_item,
    rb2_overall,
    rb2_ties,
    rb2_ties_score,
    rewardbench_scores,
    rmbench_domain_scores,
    rmbench_matrix_from_pairwise,
    rmbench_matrix_scores,
    voting_winner,
)

HEP = ["hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"]


def test_pairwise_item_score() -> None:
    assert pairwise_item_score("A", "A") == 1.0
    assert pairwise_item_score("B", "A") == 0.0
    assert pairwise_item_score(None, "B") == 0.5
    assert pairwise_item_score(None, "B", tie_credit=0.0) == 0.0
    with pytest.raises(ValueError):
        pairwise_item_score("C", "A")  # type: ignore[arg-type]


def test_rewardbench_weights_as_documented() -> None:
    assert sum(REWARDBENCH_SECTIONS["Chat"].values()) == 358
    assert REWARDBENCH_SECTIONS["Safety"]["xstest-should-refuse"] == 154
    assert REWARDBENCH_SECTIONS["Safety"]["xstest-should-respond"] == 250
    assert REWARDBENCH_SECTIONS["Reasoning"]["math-prm"] == 6 * 164
    assert "mt-bench-med" in REWARDBENCH_SECTIONS["Chat"]
    assert "donotanswer" in REWARDBENCH_SECTIONS["Safety"]


def test_rewardbench_section_with_missing_subset() -> None:
    out = rewardbench_scores({"alpacaeval-easy": 1.0, "mt-bench-easy": 0.5})
    assert out["Chat"] == pytest.approx((100 * 1.0 + 28 * 0.5) / 128)
    assert set(out) == {"Chat", "overall", "unknown"}
    assert out["overall"] == pytest.approx(out["Chat"])
    assert out["unknown"] == {}


def test_rewardbench_reasoning_halves_math_and_code() -> None:
    hep_acc = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    accs = {"math-prm": 0.9, **dict(zip(HEP, hep_acc, strict=True))}
    out = rewardbench_scores(accs)
    assert out["Reasoning"] == pytest.approx(0.5 * 0.9 + 0.5 * 0.35)
    assert out["Reasoning"] == pytest.approx(0.625)


def test_rewardbench_overall_and_unknown() -> None:
    accs = {s: 1.0 for s in REWARDBENCH_SECTIONS["Chat"]}
    accs |= {s: 0.5 for s in REWARDBENCH_SECTIONS["Safety"]}
    accs["mt-bench-medium"] = 0.3
    out = rewardbench_scores(accs)
    assert out["Chat"] == pytest.approx(1.0)
    assert out["Safety"] == pytest.approx(0.5)
    assert out["overall"] == pytest.approx(0.75)
    assert out["unknown"] == {"mt-bench-medium": 0.3}
    assert math.isnan(rewardbench_scores({})["overall"])


def test_rb2_best_of_n_item() -> None:
    assert rb2_best_of_n_item([0.9], [0.1, 0.2, 0.3]) == 1.0
    assert rb2_best_of_n_item([0.9], [0.9, 0.2, 0.3]) == 0.5
    assert rb2_best_of_n_item([0.9], [0.9, 0.9, 0.9]) == 0.25
    assert rb2_best_of_n_item([0.5], [0.9, 0.2, 0.3]) == 0.0
    assert rb2_best_of_n_item([0.5], [0.9, 0.9, 0.5]) == 0.0
    with pytest.raises(ValueError):
        rb2_best_of_n_item([0.5, 0.6], [0.1])


def test_rb2_ties_hand_example() -> None:
    rows = [
        {"id": "ref:1", "correct": [8], "incorrect": [5, 3]},  # margin 3
        {"id": "tied:1", "correct": [9, 7], "incorrect": [4]},  # margin 3, spread 2
        {"id": "ref:2", "correct": [5], "incorrect": [6]},  # margin -1
        {"id": "tied:2", "correct": [7, 7], "incorrect": [6]},  # margin 1, spread 0
        {"id": "ref:3", "correct": [4], "incorrect": [4]},  # margin 0
        {"id": "tied:3", "correct": [4, 4], "incorrect": [4]},  # margin 0, spread 0
        {"id": "tied:4", "correct": [6], "incorrect": [2]},  # one correct answer: dropped
    ]
    acc_ref = 1 / 3
    acc_tied = 2 / 3  # 3 > 0, 1 > 0, not 0 > 0 (tied:4 dropped)
    preferred = 2 / 3  # 3 > 2, 1 > 0, not 0 > 0
    preferred_hard = 1 / 3  # min 3 > 2, min -1 > 0 no, min 0 > 0 no
    # K=2: min(-1, 1) / 0 = -inf -> tanh = -1 exactly; K=3: 0 / 0 = NaN -> 0
    margin = (math.tanh(3 / 2 - 1) - 1.0 + 0.0) / 3
    expected = 0.3 * acc_tied + 0.3 * acc_ref + 0.2 * preferred + 0.2 * preferred_hard
    expected += 0.01 * margin
    result = rb2_ties(rows)
    assert result.value == pytest.approx(expected)
    assert (result.paired, result.dropped_single_correct) == (3, 1)
    assert rb2_ties_score(rows) == result.value


def test_rb2_ties_edge_cases_match_upstream() -> None:
    # spread 0 and a positive margin: the ratio is +inf, so the tanh term is exactly +1
    perfect = [
        {"id": "ref:7", "correct": [9], "incorrect": [1]},
        {"id": "tied:7", "correct": [7, 7], "incorrect": [5]},
    ]
    assert rb2_ties_score(perfect) == pytest.approx(1.01)
    # K compares as an integer
    padded = [{**perfect[0], "id": "ref:07"}, perfect[1]]
    assert rb2_ties(padded).paired == 1 and rb2_ties_score(padded) == pytest.approx(1.01)
    # a tied row with one correct answer is dropped; nothing left is undefined (NaN), not 0
    single = [perfect[0], {"id": "tied:7", "correct": [7], "incorrect": [5]}]
    result = rb2_ties(single)
    assert math.isnan(result.value) and result.dropped_single_correct == 1
    # no K in both sets: undefined
    apart = [perfect[0], {**perfect[1], "id": "tied:8"}]
    assert math.isnan(rb2_ties_score(apart)) and rb2_ties(apart).paired == 0
    with pytest.raises(ValueError, match="ref:K"):
        rb2_ties_score([{"id": "x:1", "correct": [1], "incorrect": [0]}])
    with pytest.raises(ValueError, match="duplicate"):
        rb2_ties_score([perfect[0], {**perfect[0], "id": "ref:007"}])


def test_rb2_best_of_n_nan_score_gets_no_credit() -> None:
    nan = float("nan")
    assert rb2_best_of_n_item([nan], [0.1, 0.2, 0.3]) == 0.0
    assert rb2_best_of_n_item([0.9], [nan, 0.2, 0.3]) == 0.0


def test_rewardbench_scores_take_upstreams_results_dict() -> None:
    upstream = {
        "model": "org/some-rm",
        "model_type": "Seq. Classifier",
        "chat_template": None,
        "alpacaeval-easy": 0.9,
        "mt-bench-easy": 0.5,
        "ref_model": None,
    }
    out = rewardbench_scores(upstream)
    assert out["Chat"] == pytest.approx((100 * 0.9 + 28 * 0.5) / 128)
    assert out["unknown"] == {}


def test_rb2_overall() -> None:
    scores = dict(zip(RB2_SUBSETS, [0.6, 0.3, 0.6, 0.9, 0.6, 0.6], strict=True))
    assert rb2_overall(scores) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        rb2_overall({"Math": 1.0})


def test_rmbench_matrix_scores() -> None:
    m = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1]])
    out = rmbench_matrix_scores(m)
    assert out["hard"] == pytest.approx(1 / 3)  # M01=1, M02=0, M12=0
    assert out["normal"] == pytest.approx(1.0)
    assert out["easy"] == pytest.approx(1.0)  # M10, M20, M21
    assert out["total"] == pytest.approx(7 / 9)
    with pytest.raises(ValueError):
        rmbench_matrix_scores([[1, 0], [0, 1]])


def test_rmbench_domain_scores_pool_safety() -> None:
    ones, zeros = np.ones((3, 3)), np.zeros((3, 3))
    upper = np.triu(np.ones((3, 3)), k=1)  # total 3/9
    items = [
        {"domain": "chat", "matrix": ones},
        {"domain": "chat", "matrix": zeros},
        {"domain": "code", "matrix": ones},
        {"domain": "math", "matrix": upper},
        {"domain": "safety-refuse", "matrix": ones},
        {"domain": "safety-response", "matrix": zeros},
        {"domain": "safety-response", "matrix": zeros},
    ]
    out = rmbench_domain_scores(items)
    assert set(out) == {"chat", "code", "math", "safety", "overall"}
    assert out["chat"]["total"] == pytest.approx(0.5)
    assert out["math"]["hard"] == pytest.approx(1.0)
    assert out["math"]["easy"] == pytest.approx(0.0)
    assert out["safety"]["total"] == pytest.approx(1 / 3)
    assert out["overall"]["total"] == pytest.approx((0.5 + 1.0 + 1 / 3 + 1 / 3) / 4)
    with pytest.raises(ValueError):
        rmbench_domain_scores([{"domain": "safety", "matrix": ones}])


def test_judgebench_item() -> None:
    # swapped verdict "B" means response_A won, which matches "A>B"
    assert judgebench_item("A", "B", "A>B") == 1.0
    assert judgebench_item("A", "A", "A>B") == 0.0  # one right + one wrong
    assert judgebench_item("A", None, "A>B") == 1.0  # one right + one missing
    assert judgebench_item(None, "A", "B>A") == 1.0
    assert judgebench_item(None, None, "A>B") == 0.0
    assert judgebench_item("A", "A", "B>A") == 0.0
    assert judgebench_item("B", "A", "B>A") == 1.0


def _best_of_4(*winners: str | None) -> dict[tuple[int, int], str | None]:
    return {(0, j): w for j, w in enumerate(winners)}


def test_pairwise_multi_response_beats_all() -> None:
    all_won = _best_of_4("correct", "correct", "correct")
    assert pairwise_multi_response_item(all_won, 1, 3, protocol="beats_all") == 1.0
    one_loss = _best_of_4("correct", "incorrect", "correct")
    assert pairwise_multi_response_item(one_loss, 1, 3, protocol="beats_all") == 0.0
    one_none = _best_of_4("correct", None, "correct")
    assert pairwise_multi_response_item(one_none, 1, 3, protocol="beats_all") == 0.0


def test_pairwise_multi_response_all_pairs() -> None:
    assert pairwise_multi_response_item(_best_of_4("correct", "correct", "correct"), 1, 3) == 1.0
    assert pairwise_multi_response_item(_best_of_4("correct", "incorrect", "correct"), 1, 3) == 0.0
    assert (
        pairwise_multi_response_item(_best_of_4("correct", "incorrect", "incorrect"), 1, 3) == 0.0
    )
    assert (
        pairwise_multi_response_item(_best_of_4("incorrect", "incorrect", "incorrect"), 1, 3) == 0.0
    )
    assert pairwise_multi_response_item(_best_of_4(None, "correct", "correct"), 1, 3) == 1.0
    assert pairwise_multi_response_item(_best_of_4(None, None, None), 1, 3) == pytest.approx(0.25)
    assert pairwise_multi_response_item(_best_of_4("incorrect", "incorrect", None), 1, 3) == 0.0


def test_pairwise_multi_response_errors() -> None:
    with pytest.raises(ValueError):
        pairwise_multi_response_item(_best_of_4("correct", "correct"), 1, 3)
    with pytest.raises(ValueError):
        pairwise_multi_response_item(
            _best_of_4("correct", "correct", "correct"),
            1,
            3,
            protocol="majority",  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        pairwise_multi_response_item(_best_of_4("correct", "A", "correct"), 1, 3)  # type: ignore[arg-type]


def test_rmbench_matrix_from_pairwise() -> None:
    outcomes = {(i, j): "chosen" for i in range(3) for j in range(3)}
    outcomes[(0, 2)] = None
    outcomes[(1, 2)] = "rejected"
    m = rmbench_matrix_from_pairwise(outcomes)
    assert m == [[1, 1, 0], [1, 1, 0], [1, 1, 1]]
    assert rmbench_matrix_scores(m)["hard"] == pytest.approx(1 / 3)
    del outcomes[(2, 2)]
    with pytest.raises(ValueError):
        rmbench_matrix_from_pairwise(outcomes)


def test_position_bias() -> None:
    out = position_bias(80, 70, 90)
    assert out["mean"] == pytest.approx(80)
    assert out["variation"] == pytest.approx(20 / 3)
    assert out["range"] == pytest.approx(20)
    assert (out["mixed"], out["order1"], out["order2"]) == (80, 70, 90)


def test_voting_winner_is_majority_vote() -> None:
    assert voting_winner(["A", "B", "A", None, None]) == "A"
    assert voting_winner(["A", "B", None]) is None
