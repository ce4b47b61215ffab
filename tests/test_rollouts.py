"""GRPO rollouts through the engine (TRL's rollout_func contract) on the tiny model."""

from __future__ import annotations

import types

import pytest

from rubric_arm.errors import InputError
from rubric_arm.formats import judge_format
from rubric_arm.trainer.rollouts import EngineRollouts
from rubric_arm.types import Criterion, Rubric

RUBRIC = Rubric(
    [
        Criterion("The response is short.", "hard_rule"),
        Criterion("The response is polite.", "principle"),
    ]
)


def _trainer(model):
    return types.SimpleNamespace(
        model=model,
        accelerator=types.SimpleNamespace(unwrap_model=lambda m: m),
        state=types.SimpleNamespace(global_step=0),
    )


def _prompts(engine, texts, group):
    rendered = [engine.render([{"role": "user", "content": t}]) for t in texts]
    return [p for p in rendered for _ in range(group)]


def test_one_entry_per_prompt_row_in_order_with_the_tokens_sampled(tiny_engine):
    model = tiny_engine.model
    model.train()
    rollouts = EngineRollouts(tiny_engine, max_new_tokens=12, temperature=1.0, top_p=1.0, seed=3)
    prompts = _prompts(tiny_engine, ["first question", "second one"], 3)
    out = rollouts(prompts, _trainer(model))
    assert model.training, "the trainer's mode is restored after generating"
    assert set(out) == {"prompt_ids", "completion_ids", "logprobs", "env_mask"}
    assert len(out["completion_ids"]) == len(prompts) == 6
    for k, prompt in enumerate(prompts):
        ids = tiny_engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert out["prompt_ids"][k] == ids
        assert 0 < len(out["completion_ids"][k]) <= 12
        assert len(out["logprobs"][k]) == len(out["completion_ids"][k]) == len(out["env_mask"][k])
        assert all(m == 1 for m in out["env_mask"][k]), "free decoding forces nothing"
    assert len({tuple(c) for c in out["completion_ids"][:3]}) > 1, "a group's samples differ"
    again = rollouts(prompts, _trainer(model))
    assert again["completion_ids"] != out["completion_ids"], "each call draws new samples"
    fresh = EngineRollouts(tiny_engine, max_new_tokens=12, temperature=1.0, top_p=1.0, seed=3)
    assert fresh(prompts, _trainer(model))["completion_ids"] == out["completion_ids"]
    assert rollouts.stats.calls == 2 and rollouts.stats.completions == 12
    model.eval()


def test_constrained_rollouts_mask_the_forced_tokens(tiny_engine):
    prompts = _prompts(tiny_engine, ["judge these"], 2)
    grammar = judge_format(RUBRIC).constraint(160, tiny_engine.count_tokens)
    for mask_forced in (True, False):
        rollouts = EngineRollouts(
            tiny_engine,
            max_new_tokens=160,
            temperature=1.0,
            top_p=1.0,
            seed=1,
            constraint_for=lambda _p: grammar,
            mask_forced=mask_forced,
        )
        out = rollouts(prompts, _trainer(tiny_engine.model))
        for k in range(2):
            text = tiny_engine.tokenizer.decode(out["completion_ids"][k])
            assert "Winner: Response" in text
            assert out["completion_ids"][k][-1] == tiny_engine.tokenizer.eos_token_id
            assert out["logprobs"][k][-1] is None, "the EOS after the grammar's end is forced"
            forced = [lp is None for lp in out["logprobs"][k]]
            assert sum(forced) >= rollouts.stats.forced_tokens // 2 > 0
            if mask_forced:
                assert out["env_mask"][k] == [0 if f else 1 for f in forced]
            else:
                assert "env_mask" not in out
    tiny_engine.model.eval()


def test_greedy_rollouts_and_chat_prompts_are_refused(tiny_engine):
    with pytest.raises(InputError, match="temperature"):
        EngineRollouts(tiny_engine, max_new_tokens=4, temperature=0.0, top_p=1.0, seed=0)
    rollouts = EngineRollouts(tiny_engine, max_new_tokens=4, temperature=1.0, top_p=1.0, seed=0)
    with pytest.raises(InputError, match="text prompts"):
        rollouts([[{"role": "user", "content": "hi"}]], _trainer(tiny_engine.model))


def test_generation_time_is_added_to_the_phase_summary(tmp_path):
    from rubric_arm.trainer.diagnostics import PhaseDiagnostics
    from rubric_arm.trainer.phases import _time_generation

    diag = PhaseDiagnostics("cycle1-judge", "judge", tmp_path / "m.jsonl", None, None)
    trainer = types.SimpleNamespace(_generate=lambda prompts: ["done", len(prompts)])
    _time_generation(trainer, diag)
    assert trainer._generate(["a", "b"]) == ["done", 2]
    assert len(diag.generation_seconds) == 1 and diag.generation_seconds[0] >= 0
    assert diag.summary()["generation_seconds"] == [round(diag.generation_seconds[0], 3)]
