"""Rewards: every winner/label combination, both judging orders, the verdict-based reward, and
the probability forms of the policy reward and the DPO filter."""

from __future__ import annotations

import itertools

import pytest

from rubric_arm.rewards import (
    NEUTRAL_PROBABILITY,
    dpo_agreement,
    dpo_margin,
    generator_probability_reward,
    generator_reward,
    judge_reward,
    prob_reward_vs_reference,
    r_acc,
    r_fmt,
    reward_vs_reference,
)
from rubric_arm.types import PreferencePair, Verdict
from rubric_arm.verdict import parse_verdict

OUTCOMES = ["A", "B", None]

GOOD_OUTPUT = (
    "--- Analysis ---\n**Response A:**\n- Criterion 1 [Hard Rule]: Justification: ok\n"
    "**Response B:**\n- Criterion 1 [Hard Rule]: Justification: no\n"
    "--- Final Judgment ---\nJustification: A follows the rule.\nWinner: Response A"
)


@pytest.mark.parametrize(
    ("winner", "label", "expected"),
    [("A", "A", 1.0), ("B", "B", 1.0), ("A", "B", 0.0), ("B", "A", 0.0), (None, "A", 0.0)]
    + [(None, "B", 0.0), ("A", None, 0.0), (None, None, 0.0)],
)
def test_r_acc(winner, label, expected):
    assert r_acc(winner, label) == expected
    assert isinstance(r_acc(winner, label), float)


def test_r_fmt():
    assert r_fmt(Verdict("A", format_ok=True)) == 1.0
    assert r_fmt(Verdict("A", format_ok=False)) == 0.0
    assert r_fmt(Verdict(None)) == 0.0


@pytest.mark.parametrize(
    ("winner", "format_ok", "label", "with_fmt", "without_fmt"),
    [
        ("A", True, "A", 2.0, 1.0),
        ("A", False, "A", 1.0, 1.0),
        ("A", True, "B", 1.0, 0.0),
        ("A", False, "B", 0.0, 0.0),
        ("B", True, "B", 2.0, 1.0),
        ("B", True, "A", 1.0, 0.0),
        (None, False, "A", 0.0, 0.0),
        (None, False, "B", 0.0, 0.0),
    ],
)
def test_judge_reward_table(winner, format_ok, label, with_fmt, without_fmt):
    verdict = Verdict(winner, format_ok=format_ok)
    assert judge_reward(verdict, label) == with_fmt
    assert judge_reward(verdict, label, format_reward=True) == with_fmt
    assert judge_reward(verdict, label, format_reward=False) == without_fmt


def test_judge_reward_from_parsed_outputs():
    good = parse_verdict(GOOD_OUTPUT, 1)
    assert judge_reward(good, "A") == 2.0
    assert judge_reward(good, "B") == 1.0
    sloppy = parse_verdict("Winner: Response A", 1)
    assert judge_reward(sloppy, "A") == 1.0
    assert judge_reward(sloppy, "A", format_reward=False) == 1.0
    garbage = parse_verdict("I cannot decide.", 1)
    assert judge_reward(garbage, "A") == 0.0 and judge_reward(garbage, "B") == 0.0
    conflicted = parse_verdict(GOOD_OUTPUT + "\nWinner: Response B", 1)
    assert judge_reward(conflicted, "A") == 0.0 and judge_reward(conflicted, "B") == 0.0


@pytest.mark.parametrize(("winner", "label"), list(itertools.product(OUTCOMES, ["A", "B"])))
def test_generator_reward(winner, label):
    assert generator_reward(winner, label) == (1.0 if winner == label else 0.0)


@pytest.mark.parametrize(("winner", "label"), list(itertools.product(OUTCOMES, ["A", "B"])))
def test_generator_probability_reward(winner, label):
    """P(label) from P(A), and the binary reward when no probability was recorded."""
    assert generator_probability_reward(None, winner, label) == generator_reward(winner, label)
    p_label = 0.9 if label == "A" else 0.1
    assert generator_probability_reward(0.9, winner, label) == pytest.approx(p_label)
    assert generator_probability_reward(0.5, winner, label) == 0.5


# forward: candidate is Response A; swapped: candidate is Response B.
VS_REFERENCE = {
    ("A", "B"): 1.0,
    ("A", "A"): 0.5,
    ("A", None): 0.5,
    ("B", "B"): 0.5,
    (None, "B"): 0.5,
    ("B", "A"): 0.0,
    ("B", None): 0.0,
    (None, "A"): 0.0,
    (None, None): 0.0,
}


@pytest.mark.parametrize(("forward", "swapped"), list(itertools.product(OUTCOMES, OUTCOMES)))
def test_reward_vs_reference_all_combinations(forward, swapped):
    reward = reward_vs_reference(forward, swapped)
    assert reward == VS_REFERENCE[(forward, swapped)]
    assert isinstance(reward, float)


def test_reward_vs_reference_matches_a_position_blind_judge():
    def judge(pair: PreferencePair) -> str:
        return "A" if pair.response_a == "candidate" else "B"

    forward = PreferencePair("1", "p", "candidate", "reference")
    assert reward_vs_reference(judge(forward), judge(forward.swapped())) == 1.0

    def always_a(pair: PreferencePair) -> str:
        return "A"

    assert reward_vs_reference(always_a(forward), always_a(forward.swapped())) == 0.5


# forward: y1 is Response A; swapped: y1 is Response B.
DPO = {("A", "B"): "A", ("B", "A"): "B"}


@pytest.mark.parametrize(("forward", "swapped"), list(itertools.product(OUTCOMES, OUTCOMES)))
def test_dpo_agreement_all_combinations(forward, swapped):
    assert dpo_agreement(forward, swapped) == DPO.get((forward, swapped))


def test_dpo_agreement_and_reward_are_consistent():
    for forward, swapped in itertools.product(OUTCOMES, OUTCOMES):
        agreed = dpo_agreement(forward, swapped)
        reward = reward_vs_reference(forward, swapped)
        assert (agreed == "A") == (reward == 1.0)
        mirrored = dpo_agreement(swapped, forward)
        assert mirrored == {"A": "B", "B": "A", None: None}[agreed]


# ---- probability forms ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p_first", "p_second", "expected"),
    [
        (0.875, 0.625, 0.75),
        (1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
        (0.75, None, 0.625),
        (None, 0.25, 0.375),
        (None, None, NEUTRAL_PROBABILITY),
    ],
)
def test_prob_reward_vs_reference(p_first, p_second, expected):
    reward = prob_reward_vs_reference(p_first, p_second)
    assert reward == expected and isinstance(reward, float)


def test_prob_reward_equals_the_binary_reward_on_certain_verdicts():
    """With P = 1 for the parsed winner (0 for the other), both forms agree on every verdict
    pair; an unparsed order is where they differ (binary 0, prob the neutral 0.5)."""
    for forward, swapped in itertools.product(("A", "B"), ("A", "B")):
        p_first = 1.0 if forward == "A" else 0.0  # the candidate is Response A shown first
        p_second = 1.0 if swapped == "B" else 0.0  # and Response B shown second
        assert prob_reward_vs_reference(p_first, p_second) == reward_vs_reference(forward, swapped)
    assert reward_vs_reference(None, None) == 0.0
    assert prob_reward_vs_reference(None, None) == 0.5


@pytest.mark.parametrize(
    ("p_forward", "p_swapped", "margin", "expected"),
    [
        (0.9375, 0.8125, 0.25, "A"),  # mean 0.875: 0.375 above 0.5
        (0.3125, 0.1875, 0.25, "B"),  # mean 0.25: exactly on the margin counts
        (0.625, 0.5, 0.25, None),  # mean 0.5625: 0.0625 from 0.5, too close
        (0.75, 0.25, 0.0, None),  # mean exactly 0.5 names no side, even with no margin
        (0.5625, 0.5, 0.0, "A"),
        (0.9, None, 0.1, None),  # one order alone is not enough
        (None, None, 0.0, None),
        (0.7, 0.7, 0.2, "A"),  # 0.7 - 0.5 is 0.19999999999999996 in floats: still on the margin
    ],
)
def test_dpo_margin(p_forward, p_swapped, margin, expected):
    assert dpo_margin(p_forward, p_swapped, margin) == expected


def test_dpo_margin_is_symmetric_under_swapping_the_samples():
    """Exchanging y1 and y2 turns P(y1 better) into 1 - P in each order, and the forward order
    into the swapped one: the kept side flips, the decision to keep does not."""
    for p_forward, p_swapped in itertools.product((0.0625, 0.3125, 0.5, 0.6875, 1.0), repeat=2):
        kept = dpo_margin(p_forward, p_swapped, 0.125)
        mirrored = dpo_margin(1 - p_swapped, 1 - p_forward, 0.125)
        assert mirrored == {"A": "B", "B": "A", None: None}[kept]
