"""The paper's rewards: judge, generator, policy-vs-reference, and the DPO agreement filter; plus
their probability forms, read from the verdict probabilities the judge records (P(A) at the
`Winner:` position), for a judge that decides under constrained decoding."""

from __future__ import annotations

from rubric_arm.types import Verdict, Winner

# The probability that stands in for one a judgment did not record: no preference either way.
NEUTRAL_PROBABILITY = 0.5
# Slack of the margin test: probabilities are stored to 6 decimals, so a mean that should sit
# exactly on the margin may land a rounding step inside it.
_MARGIN_SLACK = 1e-9


def r_acc(winner: Winner | None, label: Winner | None) -> float:
    """R_acc = 1(o = o*); an unparsed winner (or a missing label) scores 0."""
    return 1.0 if winner is not None and winner == label else 0.0


def r_fmt(verdict: Verdict) -> float:
    """R_fmt = 1 when the trajectory passed the format check, else 0."""
    return 1.0 if verdict.format_ok else 0.0


def judge_reward(verdict: Verdict, label: Winner, *, format_reward: bool = True) -> float:
    """R_j = R_acc + R_fmt (R_fmt left out when format_reward is False, as in the ablation)."""
    return r_acc(verdict.winner, label) + (r_fmt(verdict) if format_reward else 0.0)


def generator_reward(greedy_winner: Winner | None, label: Winner) -> float:
    """R_r = 1(o = o*), o from one greedy rollout of the frozen judge on the generated rubric."""
    return r_acc(greedy_winner, label)


def reward_vs_reference(winner_forward: Winner | None, winner_swapped: Winner | None) -> float:
    """Online-GRPO reward: half a point per order the candidate wins (A forward, B swapped)."""
    return 0.5 * (winner_forward == "A") + 0.5 * (winner_swapped == "B")


def prob_reward_vs_reference(p_first: float | None, p_second: float | None) -> float:
    """Online-GRPO reward from verdict probabilities, in [0, 1]: the mean over the two orders of
    P(candidate better than the reference), `p_first` read with the candidate shown as Response
    A, `p_second` with it shown as Response B (both already in the candidate's terms, not the
    shown label's). A missing probability counts as NEUTRAL_PROBABILITY (0.5), so an order the
    judge recorded nothing for pulls the reward to neither side; callers count those.

    With probabilities of exactly 0 or 1 it equals `reward_vs_reference` of the same verdicts;
    in between it separates a narrow win from a confident one, which a binary verdict cannot.
    """
    first = NEUTRAL_PROBABILITY if p_first is None else float(p_first)
    second = NEUTRAL_PROBABILITY if p_second is None else float(p_second)
    return 0.5 * (first + second)


def dpo_agreement(winner_forward: Winner | None, winner_swapped: Winner | None) -> Winner | None:
    """'A' if y1 wins both orders, 'B' if y2 does, None when the orders disagree (pair dropped)."""
    if winner_forward == "A" and winner_swapped == "B":
        return "A"
    if winner_forward == "B" and winner_swapped == "A":
        return "B"
    return None


def dpo_margin(
    p_a_forward: float | None, p_a_swapped: float | None, margin: float
) -> Winner | None:
    """The DPO filter by probability margin: with P(y1 better) read in each order (`p_a_*`, in
    the pair's own labels, y1 = response A), 'A' when their mean is at least `margin` above 0.5,
    'B' when at least `margin` below, None when it is closer to 0.5 than that, exactly 0.5 (no
    side), or when either order recorded no probability (a one-order mean keeps that order's
    position bias). Averaging the two orders cancels a constant pull toward either position.
    """
    if p_a_forward is None or p_a_swapped is None:
        return None
    mean = 0.5 * (float(p_a_forward) + float(p_a_swapped))
    if mean == NEUTRAL_PROBABILITY or abs(mean - NEUTRAL_PROBABILITY) < margin - _MARGIN_SLACK:
        return None
    return "A" if mean > NEUTRAL_PROBABILITY else "B"
