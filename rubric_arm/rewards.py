"""The paper's rewards: judge, generator, policy-vs-reference, and the DPO agreement filter; plus
their probability forms, read from the verdict probabilities the judge records (P(A) at the
`Winner:` position), for a judge that decides under constrained decoding.

These are plain functions of parsed verdicts (no model calls). The callable reward for a policy-RL
run, with TRL's reward-function signature, is `rubric_arm.policy_reward.RubricARMReward`; it
judges completions and combines its verdicts with `reward_vs_reference` /
`prob_reward_vs_reference`.
"""

from __future__ import annotations

from rubric_arm.types import Verdict, Winner

# The probability that stands in for one a judgment did not record: no preference either way.
NEUTRAL_PROBABILITY = 0.5
# Slack of the margin test: probabilities are stored to 6 decimals, so a mean that should sit
# exactly on the margin may land a rounding step inside it.
_MARGIN_SLACK = 1e-9


def r_acc(winner: Winner | None, label: Winner | None) -> float:
    """R_acc = 1(o = o*): the accuracy reward of one judge verdict.

    Args:
        winner: The parsed winner, `"A"` or `"B"`; None when the output named no winner.
        label: The preferred response of the pair, `"A"` or `"B"`; None when unlabelled.

    Returns:
        1.0 if the verdict names the labelled response, else 0.0 (an unparsed winner or a missing
        label scores 0).

    Example:
        >>> r_acc("A", "A"), r_acc("B", "A"), r_acc(None, "A")
        (1.0, 0.0, 0.0)
    """
    return 1.0 if winner is not None and winner == label else 0.0


def r_fmt(verdict: Verdict) -> float:
    """R_fmt: the format reward of one judge trajectory.

    Args:
        verdict: The parsed judge output (`rubric_arm.verdict.parse_verdict`); its `format_ok`
            says whether every criterion was justified for both responses, then a final
            justification, then a winner.

    Returns:
        1.0 when the trajectory passed the format check, else 0.0.

    Example:
        >>> from rubric_arm.types import Verdict
        >>> r_fmt(Verdict(winner="A", format_ok=True)), r_fmt(Verdict(winner="A"))
        (1.0, 0.0)
    """
    return 1.0 if verdict.format_ok else 0.0


def judge_reward(verdict: Verdict, label: Winner, *, format_reward: bool = True) -> float:
    """R_j = R_acc + R_fmt: the judge's reward in its GRPO phase.

    Args:
        verdict: The parsed judge output.
        label: The preferred response of the pair, `"A"` or `"B"`, in the labels the judge saw.
        format_reward: Add R_fmt; False leaves it out (the ablation without the format reward).

    Returns:
        A reward in {0, 1, 2} (in {0, 1} without the format reward).

    Example:
        >>> from rubric_arm.types import Verdict
        >>> judge_reward(Verdict(winner="A", format_ok=True), "A")
        2.0
        >>> judge_reward(Verdict(winner="A", format_ok=True), "A", format_reward=False)
        1.0
    """
    return r_acc(verdict.winner, label) + (r_fmt(verdict) if format_reward else 0.0)


def generator_reward(greedy_winner: Winner | None, label: Winner) -> float:
    """R_r = 1(o = o*): the rubric generator's reward in its GRPO phase.

    Args:
        greedy_winner: The winner of one greedy rollout of the frozen judge on the generated
            rubric; None when that rollout named no winner.
        label: The preferred response of the pair, `"A"` or `"B"`.

    Returns:
        1.0 if the judge, using the rubric, picked the labelled response, else 0.0.

    Example:
        >>> generator_reward("B", "B"), generator_reward(None, "B")
        (1.0, 0.0)
    """
    return r_acc(greedy_winner, label)


def generator_probability_reward(
    p_a: float | None, greedy_winner: Winner | None, label: Winner
) -> float:
    """Graded R_r: the frozen judge's probability of the labelled winner given the rubric.

    The paper's R_r is binary; when every rubric sampled for a prompt leads the judge to the same
    verdict, the group has no spread and GRPO's advantage is 0. P(label) still separates a rubric
    whose checks push the judge firmly toward the right response from one that barely does.

    Args:
        p_a: The judge's P(response_a better), in the pair's own orientation; None when the
            judgment recorded no probability.
        greedy_winner: The judge's winner, used when `p_a` is None (the binary reward).
        label: The preferred response of the pair, `"A"` or `"B"`.

    Returns:
        P(label) in [0, 1], or `generator_reward(greedy_winner, label)` without a probability.

    Example:
        >>> generator_probability_reward(0.8, "A", "A"), generator_probability_reward(0.8, "A", "B")
        (0.8, 0.2)
        >>> generator_probability_reward(None, "B", "B")
        1.0
    """
    if p_a is None:
        return generator_reward(greedy_winner, label)
    return round(p_a if label == "A" else 1.0 - p_a, 6)


def reward_vs_reference(winner_forward: Winner | None, winner_swapped: Winner | None) -> float:
    """Online-GRPO reward of a candidate judged against a reference response in both orders:
    half a point per order the candidate wins.

    Args:
        winner_forward: The verdict with the candidate shown as Response A (in the shown labels:
            `"A"` means the candidate won); None when unparsed.
        winner_swapped: The verdict with the candidate shown as Response B (`"B"` means the
            candidate won); None when unparsed.

    Returns:
        1.0 if the candidate wins both orders, 0.5 if the orders split, 0.0 if it loses both; an
        unparsed order counts as a loss.

    Example:
        >>> reward_vs_reference("A", "B"), reward_vs_reference("A", "A"), reward_vs_reference(None, "A")
        (1.0, 0.5, 0.0)
    """
    return 0.5 * (winner_forward == "A") + 0.5 * (winner_swapped == "B")


def prob_reward_vs_reference(p_first: float | None, p_second: float | None) -> float:
    """Online-GRPO reward from verdict probabilities: the mean over the two orders of
    P(candidate better than the reference).

    With probabilities of exactly 0 or 1 it equals `reward_vs_reference` of the same verdicts;
    in between it separates a narrow win from a confident one, which a binary verdict cannot.

    Args:
        p_first: P(candidate better) read with the candidate shown as Response A.
        p_second: P(candidate better) read with the candidate shown as Response B.
            Both are already in the candidate's terms, not the shown label's. A missing
            probability (None) counts as NEUTRAL_PROBABILITY (0.5), so an order the judge recorded
            nothing for pulls the reward to neither side; callers count those.

    Returns:
        A reward in [0, 1].

    Example:
        >>> prob_reward_vs_reference(0.9, 0.7)
        0.8
        >>> prob_reward_vs_reference(0.9, None)
        0.7
    """
    first = NEUTRAL_PROBABILITY if p_first is None else float(p_first)
    second = NEUTRAL_PROBABILITY if p_second is None else float(p_second)
    return 0.5 * (first + second)


def dpo_agreement(winner_forward: Winner | None, winner_swapped: Winner | None) -> Winner | None:
    """The DPO filter by agreement: keep a pair (y1, y2) only when the judge prefers the same
    response in both orders.

    Args:
        winner_forward: The verdict with y1 shown as Response A, in the shown labels (`"A"`: y1).
        winner_swapped: The verdict with y1 shown as Response B, in the shown labels (`"B"`: y1).

    Returns:
        `"A"` if y1 wins both orders, `"B"` if y2 does, None when the orders disagree or either
        is unparsed (the pair is dropped).

    Example:
        >>> dpo_agreement("A", "B"), dpo_agreement("B", "A"), dpo_agreement("A", "A")
        ('A', 'B', None)
    """
    if winner_forward == "A" and winner_swapped == "B":
        return "A"
    if winner_forward == "B" and winner_swapped == "A":
        return "B"
    return None


def dpo_margin(
    p_a_forward: float | None, p_a_swapped: float | None, margin: float
) -> Winner | None:
    """The DPO filter by probability margin: keep a pair (y1, y2) only when the judge's P(y1
    better), averaged over the two orders, is at least `margin` away from 0.5. Averaging the two
    orders cancels a constant pull toward either position.

    Args:
        p_a_forward: P(y1 better) read with y1 shown as Response A, in the pair's own labels
            (y1 = response A).
        p_a_swapped: P(y1 better) read with y1 shown as Response B, mapped back to the pair's own
            labels.
        margin: The least distance of the mean from 0.5 for the pair to be kept.

    Returns:
        `"A"` when the mean is at least `margin` above 0.5, `"B"` when at least `margin` below,
        None when it is closer to 0.5 than that, exactly 0.5 (no side), or when either order
        recorded no probability (a one-order mean keeps that order's position bias).

    Example:
        >>> dpo_margin(0.9, 0.7, 0.2), dpo_margin(0.6, 0.5, 0.2), dpo_margin(0.9, None, 0.2)
        ('A', None, None)
    """
    if p_a_forward is None or p_a_swapped is None:
        return None
    mean = 0.5 * (float(p_a_forward) + float(p_a_swapped))
    if mean == NEUTRAL_PROBABILITY or abs(mean - NEUTRAL_PROBABILITY) < margin - _MARGIN_SLACK:
        return None
    return "A" if mean > NEUTRAL_PROBABILITY else "B"
