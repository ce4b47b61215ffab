"""Policy-training recipes (PAPER.md section 6): which policy, which prompts, which reward judge,
and the DPO / IterDPO / online-GRPO / evaluation settings. Loaded like the trainer's recipes:
`rubric-arm policy <command> --config configs/policy-X.yaml --dotted.key value`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rubric_arm.errors import InputError
from rubric_arm.trainer.config import GRPOPhaseConfig, HardwareConfig, ModelConfig


@dataclass
class PolicyDataConfig:
    """Training prompts and held-out verifiable prompts."""

    source: Literal["mini", "synthetic", "file"] = "mini"
    path: str | None = None  # file: jsonl with a `prompt` column
    train_size: int | None = None  # prompts for DPO sampling / GRPO (None = all)
    eval_size: int | None = None  # held-out verifiable prompts (None = all)
    # mini: the suite's held-out IFBench + IFEval-constraint prompts; ifbench: the 294 shipped
    # IFBench test prompts; ifeval: google/IFEval (hub, or eval_path). Training prompts are
    # removed from the evaluation set and counted.
    eval_source: Literal["mini", "ifbench", "ifeval"] = "mini"
    eval_path: str | None = None


@dataclass
class RewardConfig:
    """The reward: any judge of the harness registry; Rubric-ARM by default."""

    judge: str = "rubric-arm"
    args: dict[str, Any] = field(default_factory=lambda: {"preset": "mini"})
    seed: int = 0


@dataclass
class PolicySamplingConfig:
    """How the policy samples the two DPO candidates and writes its greedy reference a0."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    batch_size: int = 16


@dataclass
class PolicyDPOConfig:
    """Offline DPO; IterDPO is `iterations > 1` (sample -> label -> DPO, from the last model)."""

    iterations: int = 1
    beta: float = 0.1
    sft_weight: float = 0.2  # SFT-loss mix (TRL loss_type ["sigmoid", "sft"])
    learning_rate: float = 8e-7
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 8
    max_length: int = 2048
    # Which sampled pairs are kept for DPO. None: the paper's rule, both orders' verdicts pick the
    # same response. A number m in [0, 0.5]: keep a pair when the mean over the two orders of
    # P(first sample better), read at the judge's verdict, is at least m from 0.5 (the side it
    # leans to is chosen); needs a judge that records verdict probabilities (rubric-arm under
    # constrained decoding), others drop every pair as `no_probability`.
    label_margin: float | None = None


@dataclass
class PolicyGRPOConfig(GRPOPhaseConfig):
    """Online GRPO with the reward against a greedy reference (PAPER.md: K 6, lr 5e-7, beta
    0.001); the same fields as a trainer GRPO phase, prompts over `max_prompt_tokens` left out."""

    max_completion_length: int = 256
    learning_rate: float = 5e-7
    top_p: float = 1.0
    num_iterations: int = 1
    reward_url: str | None = None  # a `rubric-arm serve` address; None = judge in-process
    # The reward's form (RubricARMReward). binary: half a point per order the completion beats
    # the greedy reference (parsed verdicts, {0, 0.5, 1}, the paper's). prob: the mean over both
    # orders of P(completion better) read at the verdict ([0, 1]); an order without a
    # probability counts 0.5 and is logged as rubric_arm/prob_fallbacks.
    score: Literal["binary", "prob"] = "binary"


@dataclass
class PolicyEvalConfig:
    """Held-out instruction following, scored by the official IFBench / IFEval verifiers."""

    max_new_tokens: int = 320
    batch_size: int = 16
    seed: int = 0
    # AlpacaEval / Arena-Hard style win rate vs reference answers, judged by an Inspect model
    # (e.g. openai/gpt-4o); None skips it with a message. winrate_data: AlpacaEval-schema jsonl
    # (None: MT-Bench first turns with GPT-4 references, offline).
    api_judge: str | None = None
    winrate_data: str | None = None
    winrate_limit: int | None = None


@dataclass
class PolicyConfig:
    """One policy study: a base policy, its prompts, a reward judge, and the training settings."""

    name: str = "policy"
    output_dir: str = "runs/policy"
    seed: int = 0
    policy: ModelConfig = field(default_factory=ModelConfig)
    data: PolicyDataConfig = field(default_factory=PolicyDataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    sampling: PolicySamplingConfig = field(default_factory=PolicySamplingConfig)
    dpo: PolicyDPOConfig = field(default_factory=PolicyDPOConfig)
    grpo: PolicyGRPOConfig = field(default_factory=PolicyGRPOConfig)
    eval: PolicyEvalConfig = field(default_factory=PolicyEvalConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def validate(self) -> PolicyConfig:
        """Fail at once, naming the field, on settings that cannot run."""
        if not isinstance(self.reward.args, dict):
            raise InputError(f"reward.args: expected a mapping, got {self.reward.args!r}")
        if self.dpo.iterations < 1:
            raise InputError(f"dpo.iterations must be >= 1, got {self.dpo.iterations}")
        if self.dpo.sft_weight < 0:
            raise InputError("dpo.sft_weight must be >= 0")
        margin = self.dpo.label_margin
        if margin is not None and not 0.0 <= margin <= 0.5:
            raise InputError(f"dpo.label_margin must be in [0, 0.5] (or null), got {margin}")
        g = self.grpo
        if g.num_generations < 2:
            raise InputError("grpo.num_generations must be >= 2 (GRPO compares a group)")
        if (g.per_device_train_batch_size * g.gradient_accumulation_steps) % g.num_generations:
            raise InputError(
                "grpo: per_device_train_batch_size x gradient_accumulation_steps must be a "
                f"multiple of num_generations ({g.num_generations})"
            )
        if self.data.source == "file" and not self.data.path:
            raise InputError("data.path is required when data.source is 'file'")
        return self


def load_policy_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None, *, smoke: bool = False
) -> PolicyConfig:
    """A PolicyConfig from a YAML recipe, with `--key value` overrides and the `smoke:` section."""
    from rubric_arm.trainer.config import load_config

    return load_config(path, overrides, smoke=smoke, cls=PolicyConfig)
