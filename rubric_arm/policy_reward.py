"""Rubric-ARM as the reward of a policy-RL run: a reward function with TRL's signature that scores
each completion against a greedy reference response of the policy, in both orders, with one rubric
per prompt (PAPER.md section 6), from the parsed verdicts (`score="binary"`, the paper's) or from
the verdict probabilities (`score="prob"`). Plain Python: TRL calls it, nothing here imports TRL."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError
from rubric_arm.pipeline import RubricARM, prompt_key
from rubric_arm.records import RubricResult
from rubric_arm.rewards import prob_reward_vs_reference, reward_vs_reference
from rubric_arm.types import Chat, Prompt, SamplingParams, Winner, flip, validate_prompt


def completion_text(completion: Any) -> str:
    """The text of a TRL completion, conversational (a message list) or plain."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def as_chat(prompt: Prompt) -> Chat:
    """A prompt as a chat: a plain string becomes one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


Score = Literal["binary", "prob"]
SCORES: tuple[str, ...] = ("binary", "prob")


@dataclass(frozen=True)
class Comparison:
    """One candidate judged against the reference in both orders.

    `forward` / `swapped`: the parsed verdict with the candidate shown as Response A / as
    Response B, each in the labels it was shown with ("A" forward and "B" swapped mean the
    candidate won; None: unparsed). `p_first` / `p_second`: P(candidate better) read at the
    verdict with the candidate shown first / second, already in the candidate's terms (None:
    the judge recorded no probability for that order).
    """

    forward: Winner | None = None
    swapped: Winner | None = None
    p_first: float | None = None
    p_second: float | None = None


def order_mean_p_a(
    judgments: Iterable[tuple[str, float | None]],
) -> tuple[float | None, float | None]:
    """(order AB, order BA) means of P(response_a better) over the samples of each order that
    recorded one, from (order, p_a) items whose p_a is already in the pair's own labels (as
    `Judgment.p_a` is). None for an order without any."""
    seen: dict[str, list[float]] = {"AB": [], "BA": []}
    for order, p_a in judgments:
        if p_a is not None and order in seen:
            seen[order].append(float(p_a))
    forward, swapped = (sum(seen[o]) / len(seen[o]) if seen[o] else None for o in ("AB", "BA"))
    return forward, swapped


@dataclass
class RewardStats:
    """Counters of everything the reward function has done, for logs and tests.

    `prob_fallbacks` counts the orders scored with the neutral 0.5 under `score="prob"` because
    the judge recorded no verdict probability for them (a judge under free decoding that never
    reached its `Winner:` line, or one that reads no probabilities at all).
    """

    calls: int = 0
    completions: int = 0
    rubrics_generated: int = 0
    references_generated: int = 0
    judge_calls: int = 0
    unparsed_verdicts: int = 0
    prob_fallbacks: int = 0
    invalid: int = 0
    rewards: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rewards"}


class RubricARMReward:
    """The reward of completion a_k against the policy's greedy reference a0, judged in both
    orders with the prompt's one rubric; `score` picks the form:

    - `binary` (the paper's): r = 1/2 [1(a_k beats a0 shown first) + 1(a_k beats a0 shown
      second)], in {0, 0.5, 1}, from the parsed verdicts.
    - `prob`: r = 1/2 [P(a_k better | shown first) + P(a_k better | shown second)], in [0, 1],
      from the probability of each label the judge recorded at its verdict (`Judgment.p_a`,
      mapped to a_k whichever side it was shown on). An order without a probability counts
      0.5 and is counted in `stats.prob_fallbacks`. Dense where binary is flat: two completions
      that both win get different rewards when the judge is surer of one.

    a0 is the policy's greedy response to the prompt, taken from a `reference` dataset column when
    there is one, else generated with `policy` (an Engine serving the current policy weights).
    Generated references are made once per prompt per policy version: the version is
    `trainer_state.global_step` (or `version_fn()`), so a group of K completions, and every
    num_iterations pass over the same batch, share one reference. The rubric depends only on the
    prompt: it is generated once and kept in the pipeline's rubric cache for every later group and
    epoch. All 2 x len(completions) judge calls of a step go to the judge engine in one call.
    Under `binary` a completion whose verdicts cannot be parsed gets the half credit of each
    unparsed order (`unparsed_credit`, default 0); unparsed verdicts are counted in
    `stats.unparsed_verdicts` under both scores.
    """

    __name__ = "rubric_arm"

    def __init__(
        self,
        arm: RubricARM,
        policy: Engine | None = None,
        *,
        reference_sampling: SamplingParams | None = None,
        version_fn: Callable[[], Any] | None = None,
        unparsed_credit: float = 0.0,
        seed: int = 0,
        score: Score = "binary",
    ) -> None:
        if score not in SCORES:
            raise InputError(f"score must be one of {SCORES}, got {score!r}")
        self.arm = arm
        self.policy = policy
        self.reference_sampling = reference_sampling or SamplingParams(
            temperature=0.0, max_new_tokens=512
        )
        if not self.reference_sampling.greedy:
            raise InputError("the reference response a0 is greedy: use temperature 0")
        self.version_fn = version_fn
        self.unparsed_credit = unparsed_credit
        self.seed = seed
        self.score: Score = score
        self.stats = RewardStats()
        self._references: dict[str, str] = {}
        self._reference_version: Any = None
        self._rubrics: dict[str, RubricResult] = {}

    # ---- the pieces ------------------------------------------------------------------------
    def rubrics_for(self, prompts: Sequence[Prompt]) -> list[RubricResult]:
        """One rubric per distinct prompt, generated in one batch the first time it is seen."""
        keys = [prompt_key(p) for p in prompts]
        missing: dict[str, Prompt] = {}
        for key, prompt in zip(keys, prompts, strict=True):
            if key not in self._rubrics and key not in missing:
                missing[key] = prompt
        if missing:
            made = self.arm.rubrics(list(missing.values()), desc="policy reward: rubrics")
            self.stats.rubrics_generated += sum(not r.cached for r in made)
            self._rubrics.update(zip(missing, made, strict=True))
        return [self._rubrics[k] for k in keys]

    def references_for(self, prompts: Sequence[Prompt], version: Any) -> list[str]:
        """The greedy reference of each distinct prompt under policy `version`."""
        if self.policy is None:
            raise InputError(
                "RubricARMReward needs a `reference` column in the dataset or a policy engine "
                "to generate the greedy reference response"
            )
        if version != self._reference_version:
            self._references.clear()
            self._reference_version = version
        keys = [prompt_key(p) for p in prompts]
        missing: dict[str, Prompt] = {}
        for key, prompt in zip(keys, prompts, strict=True):
            if key not in self._references and key not in missing:
                missing[key] = prompt
        if missing:
            chats = [as_chat(p) for p in missing.values()]
            outs = self.policy.generate(chats, self.reference_sampling, desc="reference a0")
            self.stats.references_generated += len(chats)
            self._references.update((k, out[0].text) for k, out in zip(missing, outs, strict=True))
        return [self._references[k] for k in keys]

    def judge_against(
        self, prompts: Sequence[Prompt], candidates: Sequence[str], references: Sequence[str]
    ) -> list[Comparison | None]:
        """One Comparison per candidate (None when the pair could not be judged). Each candidate
        is response_a of its pair, so P(candidate better) in either order is the judgment's p_a
        (already mapped to the pair's labels). Both orders of every candidate use the prompt's
        one rubric and go to the judge in one engine call."""
        rubrics = self.rubrics_for(prompts)
        pairs = [
            {"id": f"c{k}", "prompt": p, "response_a": c, "response_b": r}
            for k, (p, c, r) in enumerate(zip(prompts, candidates, references, strict=True))
        ]
        records = self.arm.judge(
            pairs, order="both", seed=self.seed, votes=1, rubrics=rubrics, desc="policy reward"
        )
        out: list[Comparison | None] = []
        for rec in records:
            if rec.status != "ok":
                out.append(None)
                continue
            by_order = {j.order: j.winner for j in rec.judgments}
            p_first, p_second = order_mean_p_a((j.order, j.p_a) for j in rec.judgments)
            out.append(
                Comparison(by_order.get("AB"), _shown(by_order.get("BA")), p_first, p_second)
            )
        return out

    def _version(self, trainer_state: Any) -> Any:
        if self.version_fn is not None:
            return self.version_fn()
        return getattr(trainer_state, "global_step", None)

    # ---- TRL's reward-function call --------------------------------------------------------
    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        reference: list[str] | None = None,
        trainer_state: Any = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        """One reward per completion, in TRL's order: in {0, 0.5, 1} under `score="binary"`, in
        [0, 1] under `score="prob"`; None for a completion whose prompt is not a valid prompt
        or whose pair could not be judged (TRL leaves None out of the group's statistics).
        `reference` is the dataset's reference column when it has one; `log_metric` receives
        the mean reward and the per-order rates of unparsed verdicts and (prob) fallbacks."""
        self.stats.calls += 1
        self.stats.completions += len(completions)
        if len(prompts) != len(completions):
            raise InputError(f"got {len(prompts)} prompts for {len(completions)} completions")
        checked: list[Prompt | None] = []
        for k, p in enumerate(prompts):
            try:
                checked.append(validate_prompt(p, f"prompts[{k}]"))
            except InputError:
                checked.append(None)
        ok = [k for k, p in enumerate(checked) if p is not None]
        self.stats.invalid += len(prompts) - len(ok)
        rewards: list[float | None] = [None] * len(prompts)
        if not ok:
            return rewards
        good_prompts = [checked[k] for k in ok]
        if reference is not None:
            refs = [str(reference[k]) for k in ok]
        else:
            refs = self.references_for(good_prompts, self._version(trainer_state))
        texts = [completion_text(completions[k]) for k in ok]
        self.stats.judge_calls += 1
        comparisons = self.judge_against(good_prompts, texts, refs)
        unparsed_now = fallbacks_now = 0
        for k, comparison in zip(ok, comparisons, strict=True):
            if comparison is None:
                self.stats.invalid += 1
                continue
            unparsed = (comparison.forward is None) + (comparison.swapped is None)
            unparsed_now += unparsed
            if self.score == "prob":
                fallbacks_now += (comparison.p_first is None) + (comparison.p_second is None)
                rewards[k] = prob_reward_vs_reference(comparison.p_first, comparison.p_second)
            else:
                rewards[k] = (
                    reward_vs_reference(comparison.forward, comparison.swapped)
                    + 0.5 * unparsed * self.unparsed_credit
                )
        self.stats.unparsed_verdicts += unparsed_now
        self.stats.prob_fallbacks += fallbacks_now
        scored = [r for r in rewards if r is not None]
        self.stats.rewards.extend(scored)
        if log_metric is not None and scored:
            log_metric("rubric_arm/reward", sum(scored) / len(scored))
            log_metric("rubric_arm/unparsed_verdicts", unparsed_now / (2 * len(scored)))
            if self.score == "prob":
                log_metric("rubric_arm/prob_fallbacks", fallbacks_now / (2 * len(scored)))
        return rewards


def _shown(winner: Winner | None) -> Winner | None:
    """A swapped-order verdict mapped back to original labels, put in the order it was shown."""
    return flip(winner)
