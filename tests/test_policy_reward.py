"""RubricARMReward: the paper's policy reward against a greedy reference, in both orders, with one
rubric per prompt for the whole group and one batched judge call per step; binary verdicts or
verdict probabilities (`score="prob"`)."""

from __future__ import annotations

import re
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


# ---- score="prob": the verdict probabilities ---------------------------------------------------
STRENGTH = re.compile(r"strength=(\d+)")


def bradley_terry(bias: float = 0.0, *, missing_when_first: int | None = None):
    """P(shown A) = s_A / (s_A + s_B) + `bias` from the `strength=N` markers of the two responses
    in the order shown (the template shows Response A first). `bias` is a pull toward the first
    position, the same whichever response is there. None (no probability) when a marker is
    missing, or when the response shown first has strength `missing_when_first`."""

    def probs(text: str, vote: int) -> float | None:
        found = [int(n) for n in STRENGTH.findall(text)]
        if len(found) != 2 or found[0] == missing_when_first:
            return None
        return found[0] / (found[0] + found[1]) + bias

    return probs


def _prob_setup(probs_fn, score: str = "prob", verdict: str = "A") -> RubricARMReward:
    """A reward whose scripted judge always writes `Winner: Response <verdict>` (the text) and
    reports P(A) from `probs_fn` (the probabilities), with the reference taken from the data."""
    judge = ScriptedEngine(
        "judge", judge_fn=lambda text, v: judge_output(verdict), probs_fn=probs_fn
    )
    arm = RubricARM(
        ScriptedEngine("generator"),
        judge,
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64),
        cache=False,
    )
    return RubricARMReward(arm, None, score=score)  # type: ignore[arg-type]


def test_prob_reward_is_the_mean_probability_of_beating_the_reference_over_both_orders() -> None:
    # The judge leans 0.125 toward whatever is shown first. Candidate strength 3 vs reference 1:
    # shown first P(A) = 3/4 + 1/8 = 0.875 is the candidate's; shown second P(A) = 1/4 + 1/8 is
    # the reference's, so the candidate's is 1 - 0.375 = 0.625; reward (0.875 + 0.625) / 2.
    # Strength 1: (0.625 + 0.375) / 2. Strength 7: (1.0 + 0.75) / 2. Reading the second order's
    # P(A) as the candidate's (no flip) would give 0.625, 0.625 and 0.625 instead.
    reward = _prob_setup(bradley_terry(bias=0.125))
    candidates = ["answer strength=3", "answer strength=1", "answer strength=7"]
    refs = ["reference strength=1"] * 3
    logged: dict[str, float] = {}
    out = reward(["p"] * 3, candidates, reference=refs, log_metric=logged.__setitem__)
    assert out == [0.75, 0.5, 0.875]
    assert reward.stats.prob_fallbacks == 0 and logged["rubric_arm/prob_fallbacks"] == 0.0
    assert logged["rubric_arm/reward"] == sum(out) / 3
    # The same judgments scored binary: the text always names the first response shown, so the
    # candidate wins exactly one order of two whatever the probabilities say.
    binary = _prob_setup(bradley_terry(bias=0.125), score="binary")
    assert binary(["p"] * 3, candidates, reference=refs) == [0.5, 0.5, 0.5]


def test_prob_reward_follows_the_candidate_to_whichever_side_it_is_shown_on() -> None:
    # A judge that only looks at the position (P(A) = 0.75 always) favours the candidate when it
    # is Response A and the reference when the candidate is Response B: exactly 0.5 overall.
    position_only = _prob_setup(lambda text, v: 0.75)
    assert position_only(["p", "p"], ["x", "y"], reference=["r", "r"]) == [0.5, 0.5]

    # A judge 7/8 sure of one side wherever it is shown: P(A) = 0.875 when that side is Response A,
    # 0.125 when it is Response B. Sure of the candidate: 0.875 in both orders; of the reference:
    # 0.125 in both orders.
    def sure_of(marker: str):
        def probs(text: str, vote: int) -> float:
            first = "CAND" if text.find("CAND") < text.find("REF") else "REF"
            return 0.875 if first == marker else 0.125

        return probs

    for marker, expected in (("CAND", 0.875), ("REF", 0.125)):
        reward = _prob_setup(sure_of(marker))
        assert reward(["p"], ["CAND text"], reference=["REF text"]) == [expected]


def test_missing_probabilities_count_as_neutral_and_are_counted() -> None:
    # No probability at all (a judge that records none): 0.5 per order, two fallbacks each.
    reward = _prob_setup(None)
    logged: dict[str, float] = {}
    out = reward(["p", "p"], ["a", "b"], reference=["r", "r"], log_metric=logged.__setitem__)
    assert out == [0.5, 0.5]
    assert reward.stats.prob_fallbacks == 4 and logged["rubric_arm/prob_fallbacks"] == 1.0
    assert reward.stats.to_dict()["prob_fallbacks"] == 4
    # One order without a probability: candidate strength 3 shown first records none (0.5); shown
    # second the reference's P(A) is 1/4, the candidate's 3/4: (0.5 + 0.75) / 2.
    partial = _prob_setup(bradley_terry(missing_when_first=3))
    assert partial(["p"], ["c strength=3"], reference=["r strength=1"]) == [0.625]
    assert partial.stats.prob_fallbacks == 1
    # Invalid prompts are still None, and not counted as fallbacks.
    assert partial(
        ["", "p"], ["c strength=3", "c strength=1"], reference=["x", "r strength=1"]
    ) == [
        None,
        0.5,
    ]
    assert partial.stats.prob_fallbacks == 1 and partial.stats.invalid == 1


def test_unknown_score_is_refused() -> None:
    arm = RubricARM(ScriptedEngine("generator"), ScriptedEngine("judge"), cache=False)
    with pytest.raises(InputError, match="score must be one of"):
        RubricARMReward(arm, score="logits")  # type: ignore[arg-type]
