"""Rubric-ARM as the reward of a policy-RL run: a reward function with TRL's signature that scores
each completion against a greedy reference response of the policy, in both orders, with one rubric
per prompt (PAPER.md section 6). Plain Python: TRL calls it, nothing here imports TRL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError
from rubric_arm.pipeline import RubricARM, RubricResult, prompt_key
from rubric_arm.rewards import reward_vs_reference
from rubric_arm.types import Chat, Prompt, SamplingParams, Winner, validate_prompt


def completion_text(completion: Any) -> str:
    """The text of a TRL completion, conversational (a message list) or plain."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def as_chat(prompt: Prompt) -> Chat:
    """A prompt as a chat: a plain string becomes one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


@dataclass
class RewardStats:
    """Counters of everything the reward function has done, for logs and tests."""

    calls: int = 0
    completions: int = 0
    rubrics_generated: int = 0
    references_generated: int = 0
    judge_calls: int = 0
    unparsed_verdicts: int = 0
    invalid: int = 0
    rewards: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rewards"}


class RubricARMReward:
    """r(a_k) = 1/2 [1(a_k beats a0 shown first) + 1(a_k beats a0 shown second)], in {0, 0.5, 1}.

    a0 is the policy's greedy response to the prompt, taken from a `reference` dataset column when
    there is one, else generated with `policy` (an Engine serving the current policy weights).
    Generated references are made once per prompt per policy version: the version is
    `trainer_state.global_step` (or `version_fn()`), so a group of K completions, and every
    num_iterations pass over the same batch, share one reference. The rubric depends only on the
    prompt: it is generated once and kept in the pipeline's rubric cache for every later group and
    epoch. All 2 x len(completions) judge calls of a step go to the judge engine in one call.
    A completion whose verdicts cannot be parsed gets the half credit of each unparsed order
    (`unparsed_credit`, default 0), counted in `stats.unparsed_verdicts`.
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
    ) -> None:
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
    ) -> list[tuple[Winner | None, Winner | None] | None]:
        """(forward, swapped) verdicts per candidate, in the order each was shown: "A" forward and
        "B" swapped mean the candidate won. None when the pair could not be judged. Both orders
        of every candidate use the prompt's one rubric and go to the judge in one engine call."""
        rubrics = self.rubrics_for(prompts)
        pairs = [
            {"id": f"c{k}", "prompt": p, "response_a": c, "response_b": r}
            for k, (p, c, r) in enumerate(zip(prompts, candidates, references, strict=True))
        ]
        records = self.arm.judge(
            pairs, order="both", seed=self.seed, votes=1, rubrics=rubrics, desc="policy reward"
        )
        out: list[tuple[Winner | None, Winner | None] | None] = []
        for rec in records:
            if rec.status != "ok":
                out.append(None)
                continue
            by_order = {j.order: j.winner for j in rec.judgments}
            out.append((by_order.get("AB"), _shown(by_order.get("BA"))))
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
        verdicts = self.judge_against(good_prompts, texts, refs)
        unparsed_now = 0
        for k, verdict in zip(ok, verdicts, strict=True):
            if verdict is None:
                self.stats.invalid += 1
                continue
            forward, swapped = verdict
            unparsed = (forward is None) + (swapped is None)
            unparsed_now += unparsed
            rewards[k] = (
                reward_vs_reference(forward, swapped) + 0.5 * unparsed * self.unparsed_credit
            )
        self.stats.unparsed_verdicts += unparsed_now
        scored = [r for r in rewards if r is not None]
        self.stats.rewards.extend(scored)
        if log_metric is not None and scored:
            log_metric("rubric_arm/reward", sum(scored) / len(scored))
            log_metric("rubric_arm/unparsed_verdicts", unparsed_now / (2 * len(scored)))
        return rewards


def _shown(winner: Winner | None) -> Winner | None:
    """A swapped-order verdict mapped back to original labels, put in the order it was shown."""
    if winner is None:
        return None
    return "B" if winner == "A" else "A"
