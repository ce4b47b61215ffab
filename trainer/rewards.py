"""TRL reward functions of Stage II: the judge's R_acc + R_fmt and the generator's reward from
one greedy rollout of the frozen judge (all of a step's judge calls in one engine call)."""

from __future__ import annotations

import json
from typing import Any

from rubric_arm.checklist import CHECK_ANSWERS, check_reward
from rubric_arm.policy_reward import completion_text
from rubric_arm.rewards import (
    generator_probability_reward,
    generator_reward,
    judge_reward,
    r_acc,
    r_fmt,
)
from rubric_arm.rubric import parse_rubric
from rubric_arm.types import PreferencePair
from rubric_arm.verdict import parse_verdict


class JudgeReward:
    """R_j = R_acc + R_fmt on the judge's completion; `label` is the winner in the shown order."""

    __name__ = "judge_reward"

    def __init__(self, format_reward: bool = True) -> None:
        self.format_reward = format_reward

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        label: list[str],
        n_criteria: list[int],
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float]:
        rewards = []
        acc = fmt = unparsed = 0.0
        for completion, lab, n in zip(completions, label, n_criteria, strict=True):
            verdict = parse_verdict(completion_text(completion), int(n))
            rewards.append(judge_reward(verdict, lab, format_reward=self.format_reward))
            acc += r_acc(verdict.winner, lab)
            fmt += r_fmt(verdict)
            unparsed += verdict.winner is None
        if log_metric is not None and rewards:
            n = len(rewards)
            log_metric("judge/accuracy", acc / n)
            log_metric("judge/format_pass", fmt / n)
            log_metric("judge/parse_failures", unparsed / n)
        return rewards


class CheckReward:
    """R_acc of an explicitly aggregating judge, one sampled check at a time: 1 when the answer
    ("Meets" / "Fails") is the one that moves the pair's margin toward the labelled winner
    (`checklist.check_target`). The check grammar fixes the form, so there is no R_fmt."""

    __name__ = "check_reward"

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        target: list[str],
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float]:
        answers = [completion_text(c) for c in completions]
        rewards = [check_reward(a, t) for a, t in zip(answers, target, strict=True)]
        if log_metric is not None and rewards:
            log_metric("judge/accuracy", sum(rewards) / len(rewards))
            meets = sum(check_reward(a, CHECK_ANSWERS[0]) for a in answers)
            log_metric("judge/meets_share", meets / len(rewards))
        return rewards


class GeneratorReward:
    """R_r = 1 if one greedy rollout of the frozen judge, given the sampled rubric, picks the
    labelled winner. `arm` is a RubricARM whose judge engine serves the frozen judge; pairs are
    shown in a seeded random order (the same for every rubric of a group). The winner is the
    record's, decided by the arm's verdict rule (the trainer's arm: vote, the parsed text).
    With `graded`, the reward is instead the record's P(labelled winner)
    (`generator_probability_reward`), so a group whose rubrics all lead to the same verdict
    still has spread."""

    __name__ = "generator_reward"

    def __init__(self, arm: Any, seed: int, graded: bool = False) -> None:
        self.arm = arm
        self.seed = seed
        self.graded = graded

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        pair_json: list[str],
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float]:
        pairs = [PreferencePair.from_dict(json.loads(p)) for p in pair_json]
        texts = [completion_text(c) for c in completions]
        rubrics = [parse_rubric(t) for t in texts]
        records = self.arm.judge(
            pairs, rubrics=rubrics, order="random", seed=self.seed, votes=1, desc="frozen judge"
        )
        verdicts = [
            generator_reward(rec.winner, pair.label) if pair.label else 0.0
            for rec, pair in zip(records, pairs, strict=True)
        ]
        rewards = verdicts
        if self.graded:
            rewards = [
                generator_probability_reward(rec.p_a, rec.winner, pair.label) if pair.label else 0.0
                for rec, pair in zip(records, pairs, strict=True)
            ]
        if log_metric is not None and rewards:
            n = len(rewards)
            log_metric("generator/judge_accuracy", sum(verdicts) / n)
            log_metric("generator/valid_rubrics", sum(bool(r.criteria) for r in rubrics) / n)
            log_metric("generator/criteria", sum(len(r.criteria) for r in rubrics) / n)
            log_metric("generator/rubric_chars", sum(len(t) for t in texts) / n)
            log_metric(
                "generator/judge_parse_failures", sum(rec.winner is None for rec in records) / n
            )
        return rewards
