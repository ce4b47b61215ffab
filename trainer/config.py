"""Trainer configuration: dataclasses loaded from YAML recipes, with `--key value` overrides.

Follows TRL's style: one recipe file per setting (`configs/paper.yaml`, `mini.yaml`, `tiny.yaml`),
and any field can be overridden on the command line with its dotted path
(`--grpo.judge.learning_rate 1e-5`, `--order generator_first`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rubric_arm.errors import InputError

Order = Literal["judge_first", "generator_first"]
Schedule = Literal["alternating", "joint"]


@dataclass
class DataConfig:
    """Where the preference pairs come from, and how many go to training and held-out eval."""

    source: Literal["synthetic", "mini", "openrubric-v2", "file"] = "synthetic"
    path: str | None = None  # local file for openrubric-v2 / file (jsonl, json or parquet)
    train_size: int | None = None  # None = everything the source gives
    heldout_size: int = 64
    sft_size: int | None = None  # pairs used for the SFT warm-up (None = the whole train set)
    # mini only: each warm-up judge row appears twice, once with the responses exchanged (and the
    # verdict with them), so the only thing that predicts the verdict is the responses' content.
    sft_both_orders: bool = False
    # mini only: each warm-up judgment also as a row whose completion is the verdict letter alone
    # (the rest of the trajectory is part of its prompt): in a 300-token trajectory the one token
    # that decides the judgment otherwise carries 1/300 of the loss, and after one epoch SmolLM2
    # gives the right letter only 0.5-0.7 of the probability even on its training rows.
    # "add": these rows as well as the trajectories; "only": instead of them (for a judge that
    # already had its warm-up, given as judge.model).
    sft_verdict_rows: Literal["none", "add", "only"] = "none"
    # mini only: short compliance-check rows added to the judge's warm-up, one per (verifiable
    # instruction, response): "Requirement ... Response ... Meets or Fails?" answered by the
    # official verifier (trainer/rule_rows.py). The per-rule claim is the step the judge audit
    # found untrained; these rows give it the whole loss of a row. "pairs": both responses of
    # each warm-up pair; "candidates": every cached candidate of the train-split prompts (the
    # mini build's cache, ~4x the rows; responses of held-out pairs left out).
    # "edits": the "pairs" rows plus minimal edits of the train responses toward meeting or failing
    # one of the 19 IFEval instructions, labelled by its checker (trainer/rule_edits.py; no cache).
    sft_rule_rows: Literal["none", "pairs", "candidates", "edits"] = "none"
    # With sft_rule_rows "edits": at most this many edit rows per IFEval instruction (19), as
    # many meeting it as failing it.
    sft_edit_rows: int = 30
    # With sft_rule_rows set: at most this many check rows per IFBench instruction of the warm-up
    # pairs, as many meeting it as failing it: the instruction (parameters drawn as the mini build
    # draws them) checked by the official IFBench checker against the warm-up responses, most
    # written for other prompts (trainer/rule_edits.py transfer_rule_rows). 0: none.
    sft_ifbench_rows: int = 0
    # mini only: keep the written warm-up judgments in the judge's SFT. false leaves only the
    # compliance-check rows (needs sft_rule_rows), the one thing explicit aggregation asks of the
    # judge; the 320 long trajectories are most of the warm-up's tokens.
    sft_judge_trajectories: bool = True
    # mini only: extra generator warm-up rows, this many per train-split MT-Bench question: the
    # question with 1-3 constraint sentences written by the IFEval / IFBench checkers, the rubric's
    # hard rules stating them (trainer/warmup_mini.py drawn_rubric_rows). The held-out generator
    # named half of the prompts' constraints after 129 rows; naming them is most of its job.
    sft_generator_draws: int = 0
    keywords: int = 8  # synthetic task only
    words: int = 2  # synthetic task only
    judge_column: str | None = None  # OpenRubric-v2's judge-trajectory column (name undocumented)


@dataclass
class ModelConfig:
    """One of the two models: its starting weights and its prompt template."""

    model: str = "smollm2-135m-instruct"  # model name, folder, hub id, or "synthetic"
    template: str = "generator"
    # Train only the top N decoder layers (and the final norm); the embeddings and the layers
    # below stay frozen, so backward stops early. None trains everything. The CPU recipe's
    # speed-up: with bf16, a 1,400-token SmolLM2 row takes 2.6 s with 10 of 30 layers trained
    # against 5.2 s with all.
    trainable_layers: int | None = None
    # Shape of a random-init model when model is "synthetic" (the tiny task).
    hidden_size: int = 128
    layers: int = 4
    vocab_size: int = 400


@dataclass
class SFTPhaseConfig:
    """Stage I for one model (TRL SFTTrainer)."""

    enabled: bool = True  # False: this model starts Stage II from its own weights (no warm-up)
    max_steps: int = -1
    num_train_epochs: float = 1.0
    learning_rate: float = 1e-5
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 3072
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.05
    # batch rows of similar length together (transformers' LengthGroupedSampler, shuffled in
    # groups of 50 batches): on the mini judge's check rows, 52% of a random batch of 4 is real
    # tokens, 90% of a grouped one (README, Performance, has the step times). Off by default:
    # where length goes with the answer (the synthetic tiny task), grouped batches are one-sided
    # and the tiny judge's warm-up fell from 96.9% to 62.5% held-out accuracy
    group_by_length: bool = False
    # keep each row's output of the frozen lower layers (`trainable_layers`) from its first pass
    # and reuse it in later epochs (trainer/frozen_cache.py): the same values up to the last bits,
    # held in memory (fp32, hidden size x real tokens per row); no effect in the first epoch
    cache_frozen_layers: bool = False


@dataclass
class GRPOPhaseConfig:
    """Stage II for one model (TRL GRPOTrainer); batch sizes count completions, as in TRL."""

    num_generations: int = 6
    max_completion_length: int = 512
    per_device_train_batch_size: int = 6
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-6
    temperature: float = 1.0
    top_p: float = 0.95
    num_iterations: int = 2
    epsilon: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.001
    loss_type: str = "grpo"
    max_steps: int = -1  # -1: one epoch over the cycle's slice
    max_prompt_tokens: int = (
        4096  # judge prompts: responses truncated to fit; longer generator prompts left out
    )
    # who samples the groups: "engine" (the project's engine, one prefill per group; CPU or one
    # GPU) or "trl" (TRL's own generation: model.generate, or vLLM with hardware.use_vllm)
    rollouts: Literal["engine", "trl"] = "engine"
    # engine rollouts only: "constrained" samples inside the role's output grammar
    rollout_decoding: Literal["free", "constrained"] = "free"
    # constrained engine rollouts: leave grammar-forced tokens out of the loss (see rollouts.py)
    mask_forced_tokens: bool = True


_POSITIVE = ("learning_rate", "num_train_epochs", "temperature", "top_p")
_AT_LEAST_ONE = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "max_completion_length",
    "max_prompt_tokens",
)
_NON_NEGATIVE = ("warmup_ratio", "epsilon", "epsilon_high", "beta")


def check_phase_numbers(phase: Any, where: str) -> None:
    """Numbers a phase cannot run with (a negative learning rate, a batch of 0, NaN) fail here,
    naming the field, before any folder or model is touched."""
    for name in (*_POSITIVE, *_AT_LEAST_ONE, *_NON_NEGATIVE):
        if not hasattr(phase, name):
            continue
        value = getattr(phase, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}.{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{where}.{name} must be finite, got {value}")
        if name in _POSITIVE and value <= 0:
            raise InputError(f"{where}.{name} must be > 0, got {value}")
        if name in _AT_LEAST_ONE and value < 1:
            raise InputError(f"{where}.{name} must be >= 1, got {value}")
        if name in _NON_NEGATIVE and value < 0:
            raise InputError(f"{where}.{name} must be >= 0, got {value}")
    steps = getattr(phase, "max_steps", -1)
    if isinstance(steps, bool) or not isinstance(steps, int) or (steps < 1 and steps != -1):
        raise InputError(f"{where}.max_steps must be -1 (not set) or >= 1, got {steps!r}")


@dataclass
class SFTStageConfig:
    enabled: bool = True
    generator: SFTPhaseConfig = field(default_factory=SFTPhaseConfig)
    judge: SFTPhaseConfig = field(default_factory=SFTPhaseConfig)


@dataclass
class GRPOStageConfig:
    generator: GRPOPhaseConfig = field(default_factory=GRPOPhaseConfig)
    judge: GRPOPhaseConfig = field(
        default_factory=lambda: GRPOPhaseConfig(
            num_generations=7,
            max_completion_length=1024,
            per_device_train_batch_size=7,
            epsilon_high=0.28,
        )
    )


@dataclass
class HardwareConfig:
    """Precision, memory savers and rollout engine; the GPU settings of the paper recipe."""

    use_cpu: bool = False
    # Mixed precision: bf16 weights on GPU; on CPU fp32 weights with bf16 autocast in training
    # (forward + backward of a 1,400-token SmolLM2 row: 5.2 s vs 10.3 s in fp32, 2 cores).
    bf16: bool = True
    gradient_checkpointing: bool = True
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    gpu_memory_gb: float = 80.0  # for the dry-run memory plan
    num_processes: int = 1  # for the dry-run plan; a real run reads the accelerate world size
    zero3: bool = False  # parameters, gradients and optimizer state sharded over processes
    judge_batch_size: int = 64  # engine batch for the frozen model's greedy rollouts
    save_steps: int = 25  # Trainer checkpoint interval inside a phase (for resume after a kill)


@dataclass
class HeldoutEvalConfig:
    """The held-out check after training (`--eval`): greedy rubric and judge on pairs the trainer
    never saw, for the starting, the SFT-only and the trained models."""

    max_new_tokens: int = 512  # the judge's new-token budget per judgment
    seed: int = 0  # seeds the order each pair is shown in and the bootstrap
    tie_policy: Literal["half", "wrong"] = "half"  # credit of a pair without a winner: 0.5 or 0
    # constrained: rubric and judgment follow the templates' output grammars (both templates
    # must declare one), so every judgment ends in a verdict and records P(A) there; free: the
    # published, unconstrained decoding. The mini and tiny recipes use constrained, paper free.
    decoding: Literal["constrained", "free"] = "free"
    # How a pair's winner is decided: vote, the parsed verdict (majority over samples); prob,
    # the side of the mean P(A) read at the verdict (no winner without one: needs constrained
    # decoding, or a free-decoding judge that reaches its Winner line).
    verdict: Literal["vote", "prob"] = "vote"
    # The rubric's new-token budget at evaluation; None: the run's rubric_max_tokens. Under
    # constrained decoding each free-text line gets an even share of what the budget leaves after
    # the forced text of max_rubric_items items, so a tight budget cuts every criterion short.
    rubric_max_tokens: int | None = None
    # The most criteria the constrained rubric grammar allows (ignored under free decoding).
    max_rubric_items: int = 8
    # implicit: the judge writes the verdict (the paper); explicit: the judge answers one
    # Meets / Fails check per hard rule and response and the verdict is computed from those
    # (rubric_arm/checklist.py; pairs whose rubric has no hard rule check every criterion).
    aggregation: Literal["implicit", "explicit"] = "implicit"


@dataclass
class TrainConfig:
    """A whole Rubric-ARM training run: SFT warm-up, then `cycles` of alternating GRPO."""

    name: str = "run"
    output_dir: str = "runs/train"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    generator: ModelConfig = field(default_factory=ModelConfig)
    judge: ModelConfig = field(default_factory=lambda: ModelConfig(template="judge"))
    sft: SFTStageConfig = field(default_factory=SFTStageConfig)
    grpo: GRPOStageConfig = field(default_factory=GRPOStageConfig)
    cycles: int = 3
    order: Order = "judge_first"
    schedule: Schedule = "alternating"
    format_reward: bool = True
    # The generator's GRPO reward. "verdict": the paper's R_r = 1 when the frozen judge, given the
    # rubric, picks the labelled winner. "probability": the judge's P(labelled winner) instead (under
    # explicit aggregation, the sigmoid of the check margin), so the 4 rubrics of a group differ in
    # reward even when they lead to the same verdict; a verdict without a probability falls back to
    # the binary reward.
    generator_reward: Literal["verdict", "probability"] = "verdict"
    # Targets of the judge's GRPO checks under explicit aggregation. "label": the paper's R_acc,
    # each check answered toward the labelled winner (Meets for it, Fails for the other response,
    # on every hard rule). "verifier": a hard rule that names one of the pair's verifiable
    # constraints (warmup_mini.names_constraint) is answered as that constraint's official checker
    # judged the response, so a rule both responses meet is not trained toward Fails for the
    # loser; other rules, and chat pairs, keep the label target.
    check_targets: Literal["label", "verifier"] = "label"
    rubric_cache: bool = True
    rubric_temperature: float = 1.0
    rubric_max_tokens: int = 512
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    eval: HeldoutEvalConfig = field(default_factory=HeldoutEvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def validate(self) -> TrainConfig:
        """Fail at once, naming the field, on settings that cannot run."""
        if self.cycles < 1:
            raise InputError(f"cycles must be >= 1, got {self.cycles}")
        for role in ("generator", "judge"):
            check_phase_numbers(getattr(self.sft, role), f"sft.{role}")
            check_phase_numbers(getattr(self.grpo, role), f"grpo.{role}")
        if self.data.sft_edit_rows < 2:
            raise InputError(
                f"data.sft_edit_rows must be >= 2 (half meet, half fail), got "
                f"{self.data.sft_edit_rows}"
            )
        if self.data.sft_ifbench_rows < 0:
            raise InputError(
                f"data.sft_ifbench_rows must be >= 0, got {self.data.sft_ifbench_rows}"
            )
        if self.data.sft_ifbench_rows and self.data.sft_rule_rows == "none":
            raise InputError("data.sft_ifbench_rows adds check rows: set data.sft_rule_rows too")
        if self.data.sft_generator_draws < 0:
            raise InputError(
                f"data.sft_generator_draws must be >= 0, got {self.data.sft_generator_draws}"
            )
        if self.data.sft_generator_draws and self.data.source != "mini":
            raise InputError(
                "data.sft_generator_draws draws on the mini suite: set data.source mini"
            )
        if (
            self.eval.aggregation == "explicit"
            and not self.rubric_cache
            and self.schedule != "joint"
        ):
            raise InputError(
                "eval.aggregation explicit rolls the judge out on single checks of cached rubrics: "
                "set rubric_cache true"
            )
        if not self.data.sft_judge_trajectories and self.data.sft_rule_rows == "none":
            raise InputError(
                "data.sft_judge_trajectories false leaves the judge no warm-up rows: set "
                "data.sft_rule_rows too"
            )
        for name in ("sft_both_orders", "sft_verdict_rows", "sft_rule_rows"):
            if getattr(self.data, name) not in (False, "none") and self.data.source != "mini":
                raise InputError(f"data.{name} is for data.source mini, not {self.data.source!r}")
        for role in ("generator", "judge"):
            g: GRPOPhaseConfig = getattr(self.grpo, role)
            where = f"grpo.{role}"
            if g.num_generations < 2:
                raise InputError(f"{where}.num_generations must be >= 2 (GRPO compares a group)")
            completions = g.per_device_train_batch_size * g.gradient_accumulation_steps
            if (completions * self.hardware.num_processes) % g.num_generations:
                raise InputError(
                    f"{where}: per_device_train_batch_size x gradient_accumulation_steps x "
                    f"processes ({completions} x {self.hardware.num_processes}) must be a "
                    f"multiple of num_generations ({g.num_generations}): TRL generates whole groups"
                )
            if g.num_iterations < 1:
                raise InputError(f"{where}.num_iterations must be >= 1")
            if g.rollouts == "engine" and self.hardware.use_vllm:
                raise InputError(
                    f"{where}.rollouts is engine but hardware.use_vllm is on: set rollouts: trl "
                    "to sample with TRL's vLLM generation"
                )
            if g.rollouts == "engine" and self.hardware.zero3:
                raise InputError(
                    f"{where}.rollouts is engine but hardware.zero3 shards the weights: set "
                    "rollouts: trl"
                )
            if g.rollout_decoding == "constrained":
                if g.rollouts != "engine":
                    raise InputError(f"{where}.rollout_decoding constrained needs rollouts: engine")
                self._require_grammar(role, f"{where}.rollout_decoding")
        if self.data.source == "file" and not self.data.path:
            raise InputError("data.path is required when data.source is 'file'")
        if self.data.heldout_size < 0:
            raise InputError("data.heldout_size must be >= 0")
        if self.eval.max_rubric_items < 1:
            raise InputError(
                f"eval.max_rubric_items must be >= 1, got {self.eval.max_rubric_items}"
            )
        if self.eval.rubric_max_tokens is not None and self.eval.rubric_max_tokens < 1:
            raise InputError("eval.rubric_max_tokens must be >= 1 (or null: rubric_max_tokens)")
        if self.eval.decoding == "constrained":
            for role in ("generator", "judge"):
                self._require_grammar(role, "eval.decoding")
        return self

    def _require_grammar(self, role: str, setting: str) -> None:
        """`setting` asks for constrained decoding: `role`'s template must declare a grammar."""
        from rubric_arm.templates import load_template

        name = getattr(self, role).template
        if load_template(name).grammar is None:
            raise InputError(
                f"{setting} is constrained but {role}.template {name!r} declares no output "
                f"grammar: add one (`grammar:`) or set {setting} free"
            )


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check (and gently convert) a YAML or command-line value against a field's type."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return _materialise(hint, value, where)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise InputError(
                f"{where}: must be one of {list(typing.get_args(hint))}, got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{where}: bad value {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`--a.b value` pairs (or `--a.b=value`) into a nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise InputError(f"expected --key value, got {arg!r}")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise InputError(f"{arg} needs a value")
            key, raw = arg[2:], args[i + 1]
            i += 2
        key = key.replace("-", "_")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return out


def recipes_dir() -> Path:
    """The folder of packaged recipes (the checkout's configs/, or its copy in a wheel)."""
    import rubric_arm.recipes

    return Path(rubric_arm.recipes.__file__).parent


def recipe_names() -> list[str]:
    """The names `--config` takes besides a path: `mini`, `policy-tiny`, `reproduce/table2-mini`."""
    root = recipes_dir()
    names = (p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))
    return sorted(n for n in names if not n.startswith("accelerate/"))


def resolve_recipe(path: str | Path) -> Path:
    """A recipe file: `path` itself when it exists, else the packaged recipe of that name
    (`mini`, `mini.yaml`, `configs/mini.yaml` from outside the checkout)."""
    p = Path(path)
    if p.is_file():
        return p
    name = p.as_posix().removeprefix("configs/").removesuffix(".yaml")
    packaged = recipes_dir() / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    raise InputError(
        f"config file {p} not found, and no packaged recipe is named {name!r} "
        f"(packaged: {', '.join(recipe_names())})"
    )


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    smoke: bool = False,
    cls: type | None = None,
) -> Any:
    """A TrainConfig (or another recipe dataclass `cls` with a `validate()`) from a YAML recipe
    (or the defaults) with overrides applied and validated.

    A recipe's top-level `smoke:` section holds overrides for a minutes-long version of the same
    run; `smoke=True` applies them (under the run name `<name>-smoke` unless one is given)."""
    data: dict[str, Any] = {}
    if path is not None:
        p = resolve_recipe(path)
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InputError(f"{p}: the top level must be a mapping")
        data = loaded
    section = data.pop("smoke", None)
    if smoke:
        if not isinstance(section, dict):
            raise InputError(f"{path or 'the defaults'}: no smoke: section to apply")
        data = _merge(data, {"name": f"{data.get('name', 'run')}-smoke", **section})
    if overrides:
        data = _merge(data, overrides)
    return _from_dict(data, cls or TrainConfig).validate()


def _from_dict(data: dict[str, Any], cls: type) -> Any:
    """Nested dataclasses built field by field so defaults of sub-configs are kept."""
    defaults = dataclasses.asdict(cls())
    return _materialise(cls, _merge(defaults, data), "")


def _materialise(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise InputError(
            f"unknown setting(s) {', '.join(prefix + u for u in unknown)}; "
            f"known under {where or 'the top level'}: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)
