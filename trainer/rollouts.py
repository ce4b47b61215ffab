"""GRPO rollouts through the project's engine, as TRL's `rollout_func` (TRL >= 1.16, experimental).

TRL's own generation runs `model.generate` on a padded batch of every completion. The engine
instead prefills each prompt once for its whole group (the group's samples share the prompt),
keeps its KV cache in place, drops finished rows, and can constrain the output to the role's
format grammar, feeding the text the grammar forces without sampling it.

Contract (checked in trl/trainer/grpo_trainer.py, 1.16): the function gets the prompts of the
generation batch (each prompt repeated `num_generations` times in a row, as TRL's sampler
yields them) and the trainer, and returns `prompt_ids`, `completion_ids` and `logprobs`, one
entry per prompt row; `env_mask` (1 = the policy's own token) is multiplied into the loss mask.
Tokens the grammar forced get mask 0 and logprob None when `mask_forced` is on: the policy did
not choose them, so they carry no credit for the reward; training on them would push template
text up or down with each group's advantage instead. A completion its grammar ended gets the
tokenizer's EOS appended as one more forced token, so TRL counts it as finished, not truncated
(TRL tells the two apart by EOS; without it every constrained judgment logged as clipped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.pipeline import stable_hash
from rubric_arm.types import Constraint, SamplingParams


@dataclass
class RolloutStats:
    """What the rollouts of one phase cost and produced (logged per phase)."""

    calls: int = 0
    seconds: float = 0.0
    completions: int = 0
    sampled_tokens: int = 0
    forced_tokens: int = 0
    prompt_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 2)}


class EngineRollouts:
    """A TRL `rollout_func` sampling each GRPO group with a TransformersEngine.

    `constraint_for(prompt)` gives the output grammar of a prompt (None: free decoding); the
    engine serves the trainer's live model (no copy), in eval mode while it generates.
    """

    def __init__(
        self,
        engine: Any,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
        constraint_for: Callable[[str], Constraint | None] | None = None,
        mask_forced: bool = True,
    ) -> None:
        if temperature <= 0:
            raise InputError("GRPO rollouts need temperature > 0 (a greedy group has one answer)")
        self.engine = engine
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.constraint_for = constraint_for
        self.mask_forced = mask_forced
        self.stats = RolloutStats()
        self._step, self._within = -1, 0

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        if any(not isinstance(p, str) for p in prompts):
            raise InputError("engine rollouts take text prompts (chat-templated by the trainer)")
        started = time.perf_counter()
        groups: list[tuple[str, int]] = []
        for p in prompts:
            if groups and groups[-1][0] == p:
                groups[-1] = (p, groups[-1][1] + 1)
            else:
                groups.append((p, 1))
        model = trainer.accelerator.unwrap_model(trainer.model)
        self.engine.use_weights(model)
        tokenizer = self.engine.tokenizer
        ids = tokenizer([g for g, _ in groups], add_special_tokens=False)["input_ids"]
        constraints = [self.constraint_for(g) if self.constraint_for else None for g, _ in groups]
        # seeded by the optimiser step (restored on resume) and the call within that step
        step = int(trainer.state.global_step)
        self._within = self._within + 1 if step == self._step else 0
        self._step = step
        per_group: list[list[Any]] = [[] for _ in groups]
        was_training = model.training
        model.eval()
        try:
            for size in sorted({n for _, n in groups}):
                rows = [i for i, (_, n) in enumerate(groups) if n == size]
                params = SamplingParams(
                    temperature=self.temperature,
                    top_p=self.top_p,
                    max_new_tokens=self.max_new_tokens,
                    n=size,
                    seed=stable_hash(self.seed, step, self._within, size),
                    logprobs=True,
                )
                results = self.engine.generate_ids(
                    [ids[i] for i in rows],
                    params,
                    constraints=[constraints[i] for i in rows] if any(constraints) else None,
                )
                for i, completions in zip(rows, results, strict=True):
                    per_group[i] = completions
        finally:
            model.train(was_training)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": []}
        masks: list[list[int]] = []
        for i, completions in enumerate(per_group):
            for c in completions:
                self._add(out, masks, ids[i], c)
        if self.mask_forced:
            out["env_mask"] = masks
        self.stats.calls += 1
        self.stats.seconds += time.perf_counter() - started
        return out

    def _add(self, out: dict[str, list], masks: list[list[int]], prompt: list[int], c: Any) -> None:
        out["prompt_ids"].append(list(prompt))
        tokens = list(c.token_ids)
        lps = list(c.token_logprobs or [None] * len(tokens))
        ended = c.finish_reason == "stop" and not (
            tokens and tokens[-1] in self.engine.stop_token_ids
        )
        eos = self.engine.tokenizer.eos_token_id
        if ended and eos is not None:
            tokens.append(eos)
            lps.append(None)
            self.stats.forced_tokens += 1
        out["completion_ids"].append(tokens)
        if self.mask_forced:
            masks.append([0 if lp is None else 1 for lp in lps])
        out["logprobs"].append(lps)  # None where forced: TRL reads it as "not scored"
        self.stats.completions += 1
        self.stats.prompt_tokens += len(prompt)
        self.stats.forced_tokens += c.forced_tokens
        self.stats.sampled_tokens += c.completion_tokens - c.forced_tokens
