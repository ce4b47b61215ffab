"""The reward judge of a policy run: any judge of the harness registry, used two ways - labelling
DPO pairs (both orders, agreeing verdicts only) and scoring GRPO completions against a greedy
reference (`RubricARMReward`; a Rubric-ARM judge keeps its one-rubric-per-prompt cache)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.harness.judges import Judge, Record, RubricARMJudge, make_judge
from rubric_arm.policy_reward import RubricARMReward
from rubric_arm.rewards import dpo_agreement
from rubric_arm.trainer.policy.config import RewardConfig
from rubric_arm.types import PreferencePair, Prompt, SamplingParams, Winner


def build_judge(cfg: RewardConfig) -> Judge:
    return make_judge(cfg.judge, dict(cfg.args))


def order_verdicts(rec: Record) -> tuple[Winner | None, Winner | None]:
    """(forward, swapped) winners, each in the order it was shown, of a record judged with
    order "both". A judge without per-order verdicts (scalar) gives its one winner for both."""
    by_order = {j["order"]: j["winner"] for j in rec.get("judgments") or [] if not j.get("vote")}
    if by_order:
        forward, swapped = by_order.get("AB"), by_order.get("BA")
    else:
        forward = swapped = rec.get("winner")
    if swapped is not None:
        swapped = "B" if swapped == "A" else "A"
    return forward, swapped


@dataclass
class LabelStats:
    """What happened to the sampled pairs: kept (both orders agree), or why they were dropped."""

    prompts: int = 0
    identical: int = 0
    judged: int = 0
    kept: int = 0
    disagreed: int = 0
    unparsed: int = 0
    invalid: int = 0

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.judged if self.judged else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "kept_fraction": round(self.kept_fraction, 4)}


def label_pairs(
    judge: Judge, prompts: Sequence[Prompt], first: Sequence[str], second: Sequence[str], seed: int
) -> tuple[list[dict[str, Any]], LabelStats]:
    """DPO rows {prompt, chosen, rejected} from two samples per prompt, judged in both orders;
    a pair is kept only when both verdicts pick the same response (PAPER.md section 6)."""
    stats = LabelStats(prompts=len(prompts))
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
        if rec.get("status") != "ok":
            stats.invalid += 1
            continue
        stats.judged += 1
        forward, swapped = order_verdicts(rec)
        if forward is None or swapped is None:
            stats.unparsed += 1
            continue
        winner = dpo_agreement(forward, swapped)
        if winner is None:
            stats.disagreed += 1
            continue
        stats.kept += 1
        chosen, rejected = (
            (pair.response_a, pair.response_b)
            if winner == "A"
            else (pair.response_b, pair.response_a)
        )
        rows.append({"id": pair.id, "prompt": pair.prompt, "chosen": chosen, "rejected": rejected})
    return rows, stats


class HarnessJudgeReward(RubricARMReward):
    """RubricARMReward for judges that are not a Rubric-ARM pipeline (scalar RM, direct-logprob,
    random): same reference and bookkeeping, verdicts from the judge's `judge_pairs`."""

    __name__ = "judge_reward"

    def __init__(self, judge: Judge, policy: Engine | None = None, **kwargs: Any) -> None:
        super().__init__(None, policy, **kwargs)  # type: ignore[arg-type]
        self.judge = judge

    def judge_against(
        self, prompts: Sequence[Prompt], candidates: Sequence[str], references: Sequence[str]
    ) -> list[tuple[Winner | None, Winner | None] | None]:
        pairs = [
            PreferencePair(id=f"c{k}", prompt=p, response_a=c, response_b=r)
            for k, (p, c, r) in enumerate(zip(prompts, candidates, references, strict=True))
        ]
        records = self.judge.judge_pairs(pairs, order="both", seed=self.seed, desc="policy reward")
        return [order_verdicts(r) if r.get("status") == "ok" else None for r in records]


def make_reward(
    judge: Judge, policy: Engine | None, reference_max_tokens: int, seed: int
) -> RubricARMReward:
    """The GRPO reward for `judge`: a Rubric-ARM pipeline directly (rubric cache per prompt),
    any other registry judge through its pairwise records."""
    ref = SamplingParams(temperature=0.0, max_new_tokens=reference_max_tokens)
    if isinstance(judge, RubricARMJudge):
        return RubricARMReward(judge.arm, policy, reference_sampling=ref, seed=seed)
    return HarnessJudgeReward(judge, policy, reference_sampling=ref, seed=seed)
