"""RubricARMReward: the paper's policy reward against a greedy reference, in both orders, with one
rubric per prompt for the whole group and one batched judge call per step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scripted_engine import ScriptedEngine, judge_output

from rubric_arm.errors import InputError
from rubric_arm.pipeline import RubricARM
from rubric_arm.policy_reward import RubricARMReward
from rubric_arm.types import SamplingParams

RANK = {"GOOD": 2, "MEDIUM": 1, "BAD": 0}


def ranked(text: str, vote: int) -> str:
    """Prefers GOOD over MEDIUM over BAD, whichever position they are shown in."""
    first, second = (w for _, w in sorted((text.find(w), w) for w in RANK if w in text))
    return judge_output("A" if RANK[first] > RANK[second] else "B")


def _setup(judge_fn=ranked, reference: str = "a MEDIUM reference"):
    gen = ScriptedEngine("generator")
    judge = ScriptedEngine("judge", judge_fn=judge_fn)
    policy = ScriptedEngine("policy", judge_fn=lambda text, v: reference)
    arm = RubricARM(
        gen, judge, judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64), cache=False
    )
    return RubricARMReward(arm, policy), gen, judge, policy


def _group(prompts: list[str], completions: list[str]) -> tuple[list[str], list[str]]:
    """TRL's layout: each prompt repeated once per completion of its group."""
    g = len(completions)
    return [p for p in prompts for _ in range(g)], completions * len(prompts)


def test_one_rubric_per_prompt_for_the_whole_group_and_later_steps() -> None:
    reward, gen, judge, policy = _setup()
    prompts, completions = _group(["write a poem", "count to 3"], ["GOOD", "BAD", "GOOD", "BAD"])
    state = SimpleNamespace(global_step=0)
    reward(prompts, completions, trainer_state=state)
    assert len(gen.calls) == 1 and len(gen.calls[0][0]) == 2
    assert reward.stats.rubrics_generated == 2
    reward(prompts, completions, trainer_state=SimpleNamespace(global_step=1))
    assert len(gen.calls) == 1 and reward.stats.rubrics_generated == 2
    # every judge call of a step is one engine call: 8 completions x 2 orders
    assert [len(c[0]) for c in judge.calls] == [16, 16]


def test_reference_is_generated_once_per_prompt_per_policy_version() -> None:
    reward, _, _, policy = _setup()
    prompts, completions = _group(["p1", "p2"], ["GOOD"] * 3)
    reward(prompts, completions, trainer_state=SimpleNamespace(global_step=0))
    reward(prompts, completions, trainer_state=SimpleNamespace(global_step=0))
    assert reward.stats.references_generated == 2 and len(policy.calls) == 1
    assert policy.calls[0][1].greedy
    reward(prompts, completions, trainer_state=SimpleNamespace(global_step=1))
    assert reward.stats.references_generated == 4 and len(policy.calls) == 2


def test_rewards_are_half_a_point_per_order_won() -> None:
    reward, *_ = _setup()
    prompts, completions = _group(["p"], ["GOOD answer", "BAD answer"])
    assert reward(prompts, completions) == [1.0, 0.0]
    # a judge that always picks the first response shown: the candidate wins one order of two
    biased, *_ = _setup(judge_fn=lambda text, v: judge_output("A"))
    assert biased(prompts, completions) == [0.5, 0.5]


def test_reference_column_is_used_without_a_policy() -> None:
    reward, _, _, policy = _setup()
    reward.policy = None
    out = reward(["p", "p"], ["GOOD", "MEDIUM"], reference=["BAD ref", "GOOD ref"])
    assert out == [1.0, 0.0] and not policy.calls
    with pytest.raises(InputError, match="reference"):
        reward(["p"], ["GOOD"])


def test_bad_prompts_and_unparsed_verdicts_are_counted_not_fatal() -> None:
    reward, *_ = _setup(judge_fn=lambda text, v: "no verdict at all")
    out = reward(["", "p"], ["GOOD", "GOOD"], reference=["x", "BAD"])
    assert out == [None, 0.0]
    assert reward.stats.invalid == 1 and reward.stats.unparsed_verdicts == 2
    lenient = RubricARMReward(reward.arm, unparsed_credit=0.5)
    assert lenient(["p"], ["GOOD"], reference=["BAD"]) == [0.5]


def test_conversational_completions_and_prompts() -> None:
    reward, _, _, policy = _setup()
    prompt = [{"role": "user", "content": "say hi"}]
    completion = [{"role": "assistant", "content": "GOOD hi"}]
    assert reward([prompt], [completion]) == [1.0]
    assert policy.calls[0][0][0] == prompt


def test_sampled_reference_is_refused() -> None:
    arm = RubricARM(ScriptedEngine("generator"), ScriptedEngine("judge"), cache=False)
    with pytest.raises(InputError, match="greedy"):
        RubricARMReward(arm, reference_sampling=SamplingParams(temperature=0.7))
