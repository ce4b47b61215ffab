"""The reward judge of a policy run: any judge of the harness registry, used two ways - labelling
DPO pairs (both orders; kept when the verdicts agree, or by a probability margin) and scoring GRPO
completions against a greedy reference (`RubricARMReward`; a Rubric-ARM judge keeps its
one-rubric-per-prompt cache)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError
from rubric_arm.harness.judges import Judge, RubricARMJudge, make_judge
from rubric_arm.policy_reward import Comparison, RubricARMReward, Score, order_mean_p_a
from rubric_arm.records import JudgeRecord
from rubric_arm.rewards import dpo_agreement, dpo_margin
from rubric_arm.trainer.policy.config import RewardConfig
from rubric_arm.types import PreferencePair, Prompt, SamplingParams, Winner, flip


def build_judge(cfg: RewardConfig) -> Judge:
    return make_judge(cfg.judge, dict(cfg.args))


def order_verdicts(rec: JudgeRecord) -> tuple[Winner | None, Winner | None]:
    """(forward, swapped) winners, each in the order it was shown, of a record judged with
    order "both". A judge without per-order verdicts (scalar) gives its one winner for both."""
    by_order = {j.order: j.winner for j in rec.judgments if not j.vote}
    if by_order:
        forward, swapped = by_order.get("AB"), by_order.get("BA")
    else:
        forward = swapped = rec.winner
    return forward, flip(swapped)


def order_p_a(rec: JudgeRecord) -> tuple[float | None, float | None]:
    """(order AB, order BA) P(response_a better) of a record judged with order "both", each the
    mean over that order's samples, in the pair's own labels (the record's judgments store p_a
    so). None for an order without one: judges that read no verdict probabilities (scalar,
    random, direct-logprob, a remote record without them) give (None, None)."""
    return order_mean_p_a((j.order, j.p_a) for j in rec.judgments)


def record_comparison(rec: JudgeRecord) -> Comparison:
    """A record of the pair (candidate as response_a, reference as response_b) judged in both
    orders, as the Comparison the GRPO reward scores."""
    forward, swapped = order_verdicts(rec)
    p_first, p_second = order_p_a(rec)
    return Comparison(forward, swapped, p_first, p_second)


@dataclass
class LabelStats:
    """What happened to the sampled pairs: kept, or why they were dropped.

    Under the agreement rule (`margin` None) pairs are dropped as `unparsed` (an order without
    a verdict) or `disagreed`; under the margin rule as `no_probability` (an order without a
    verdict probability) or `below_margin` (|mean P(A) - 0.5| < margin, or exactly 0.5).
    """

    prompts: int = 0
    identical: int = 0
    judged: int = 0
    kept: int = 0
    disagreed: int = 0
    unparsed: int = 0
    invalid: int = 0
    below_margin: int = 0
    no_probability: int = 0
    margin: float | None = None

    @property
    def rule(self) -> str:
        """How pairs were kept, in words (for logs and the study report)."""
        return (
            "both orders agree" if self.margin is None else f"|mean P(A) - 0.5| >= {self.margin:g}"
        )

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.judged if self.judged else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rule": self.rule, "kept_fraction": round(self.kept_fraction, 4)}


def label_pairs(
    judge: Judge,
    prompts: Sequence[Prompt],
    first: Sequence[str],
    second: Sequence[str],
    seed: int,
    *,
    margin: float | None = None,
) -> tuple[list[dict[str, Any]], LabelStats]:
    """DPO rows {id, prompt, chosen, rejected, p_a} from two samples per prompt, judged in both
    orders. With `margin` None a pair is kept only when both verdicts pick the same response
    (PAPER.md section 6); with a margin in [0, 0.5] it is kept when the mean over the two
    orders of P(first sample better) is at least `margin` from 0.5, the side it leans to being
    chosen (`rubric_arm.rewards.dpo_margin`). `p_a` in a row is that mean (None without one)."""
    if margin is not None and not 0.0 <= margin <= 0.5:
        raise InputError(f"the DPO label margin must be in [0, 0.5], got {margin}")
    stats = LabelStats(prompts=len(prompts), margin=margin)
    pairs, keep_idx = [], []
    for k, (p, a, b) in enumerate(zip(prompts, first, second, strict=True)):
        if a.strip() == b.strip():
            stats.identical += 1
            continue
        pairs.append(PreferencePair(id=f"q{k}", prompt=p, response_a=a, response_b=b))
        keep_idx.append(k)
    if not pairs:
        return [], stats
    records = judge.judge_pairs(pairs, order="both", seed=seed, desc="label pairs")
    rows = []
    for pair, rec in zip(pairs, records, strict=True):
        if rec.status != "ok":
            stats.invalid += 1
            continue
        stats.judged += 1
        p_forward, p_swapped = order_p_a(rec)
        mean_p = None if p_forward is None or p_swapped is None else 0.5 * (p_forward + p_swapped)
        if margin is None:
            forward, swapped = order_verdicts(rec)
            if forward is None or swapped is None:
                stats.unparsed += 1
                continue
            winner = dpo_agreement(forward, swapped)
            if winner is None:
                stats.disagreed += 1
                continue
        else:
            if mean_p is None:
                stats.no_probability += 1
                continue
            winner = dpo_margin(p_forward, p_swapped, margin)
            if winner is None:
                stats.below_margin += 1
                continue
        stats.kept += 1
        chosen, rejected = (
            (pair.response_a, pair.response_b)
            if winner == "A"
            else (pair.response_b, pair.response_a)
        )
        rows.append(
            {
                "id": pair.id,
                "prompt": pair.prompt,
                "chosen": chosen,
                "rejected": rejected,
                "p_a": None if mean_p is None else round(mean_p, 6),
            }
        )
    return rows, stats


class HarnessJudgeReward(RubricARMReward):
    """RubricARMReward for judges that are not a Rubric-ARM pipeline (scalar RM, direct-logprob,
    random): same reference and bookkeeping, verdicts (and, where the records hold them, verdict
    probabilities) from the judge's `judge_pairs`."""

    __name__ = "judge_reward"

    def __init__(self, judge: Judge, policy: Engine | None = None, **kwargs: Any) -> None:
        super().__init__(None, policy, **kwargs)  # type: ignore[arg-type]
        self.judge = judge

    def judge_against(
        self, prompts: Sequence[Prompt], candidates: Sequence[str], references: Sequence[str]
    ) -> list[Comparison | None]:
        pairs = [
            PreferencePair(id=f"c{k}", prompt=p, response_a=c, response_b=r)
            for k, (p, c, r) in enumerate(zip(prompts, candidates, references, strict=True))
        ]
        records = self.judge.judge_pairs(pairs, order="both", seed=self.seed, desc="policy reward")
        return [record_comparison(r) if r.status == "ok" else None for r in records]


def make_reward(
    judge: Judge,
    policy: Engine | None,
    reference_max_tokens: int,
    seed: int,
    *,
    score: Score = "binary",
) -> RubricARMReward:
    """The GRPO reward for `judge` with reward form `score` ("binary" or "prob", see
    RubricARMReward): a Rubric-ARM pipeline directly (rubric cache per prompt), any other
    registry judge through its pairwise records."""
    ref = SamplingParams(temperature=0.0, max_new_tokens=reference_max_tokens)
    if isinstance(judge, RubricARMJudge):
        return RubricARMReward(judge.arm, policy, reference_sampling=ref, seed=seed, score=score)
    return HarnessJudgeReward(judge, policy, reference_sampling=ref, seed=seed, score=score)
