"""One training phase = one TRL trainer run on one model: SFT (Stage I) or GRPO (Stage II).

The model object and its optimizer live across phases (the loop owns them); each phase builds a
fresh TRL trainer around them, checkpoints into its own folder so a killed phase resumes from
its last Trainer checkpoint, and exports an ordinary HF model folder at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

from rubric_arm.templates import Template
from rubric_arm.trainer.config import GRPOPhaseConfig, HardwareConfig, SFTPhaseConfig
from rubric_arm.trainer.diagnostics import GradientProbe, PhaseDiagnostics
from rubric_arm.trainer.frozen_cache import FrozenLayerCache


@dataclass
class Phase:
    """Where one phase writes: Trainer checkpoints, the exported model, the diagnostics log."""

    name: str  # e.g. "sft-judge", "cycle1-judge"
    role: str  # "generator" | "judge"
    run_dir: Path
    seed: int

    @property
    def work_dir(self) -> Path:
        return self.run_dir / "work" / self.name

    @property
    def export_dir(self) -> Path:
        return self.run_dir / "models" / self.name

    @property
    def log_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def tb_dir(self) -> Path:
        return self.run_dir / "tensorboard" / self.name


def last_checkpoint(work_dir: Path) -> str | None:
    """The newest complete `checkpoint-N` folder a killed phase left behind."""
    if not work_dir.is_dir():
        return None
    found = []
    for d in work_dir.glob("checkpoint-*"):
        step = d.name.split("-")[-1]
        if step.isdigit() and (d / "trainer_state.json").is_file():
            found.append((int(step), d))
    return str(max(found)[1]) if found else None


def sft_dataset(
    rows: list[dict[str, str]], template: Template, role: str, render: Callable[[Any], str]
) -> Dataset:
    """Prompt/completion text for TRL's SFTTrainer (loss on the completion only); `render` turns
    the chat into the model's prompt exactly as the engines do, so training and inference match.
    A row's optional `prefix` (the start of its own output) follows the rendered prompt."""
    out = []
    for r in rows:
        if role == "generator":
            chat = template.render(prompt=r["prompt"])
            target = r["rubric"]
        elif "chat" in r:  # a row with its own chat (data.sft_rule_rows)
            chat = r["chat"]
            target = r["judgment"]
        else:
            chat = template.render(
                prompt=r["prompt"],
                rubric=r["rubric"],
                response_a=r["response_a"],
                response_b=r["response_b"],
            )
            target = r["judgment"]
        out.append({"prompt": render(chat) + r.get("prefix", ""), "completion": target})
    return Dataset.from_list(out)


def _checkpointing_arg() -> str:
    """transformers >= 5.24 renamed `gradient_checkpointing` (the old name warns on every run)."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    new = "activation_checkpointing"
    return new if new in names else "gradient_checkpointing"


def length_grouping_args(enabled: bool) -> dict[str, Any]:
    """TrainingArguments that batch rows of similar length together (or not): recent
    transformers call it `train_sampling_strategy`, older releases `group_by_length`."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length" if enabled else "random"}
    return {"group_by_length": enabled}


def score_labelled_positions_on_cpu() -> bool:
    """Make TRL's fused LM head score only the positions that carry a label on CPU, as it does on
    CUDA (True when TRL has the switch; idempotent).

    Off CUDA/XPU, TRL 1.16 projects every position through the LM head and masks afterwards, to
    keep tile shapes fixed for compiled devices. In eager CPU runs that is pure waste: a judge row
    of 1,300 tokens has ~200 completion tokens. Measured on SmolLM2 (2 x 1,300-token rows x 2
    accumulation steps, 10 layers trained, bf16): 31 s per SFT step before, 17 s after; the loss is
    the same (tests/test_trainer.py checks it)."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        return False
    if getattr(original, "rubric_arm_patch", False):
        return True

    def compact_on_cpu(device: Any) -> bool:
        return device.type == "cpu" or original(device)

    compact_on_cpu.rubric_arm_patch = True  # type: ignore[attr-defined]
    trl_utils._use_triton = compact_on_cpu
    return True


def common_args(hw: HardwareConfig, phase: Phase) -> dict[str, Any]:
    return {
        "output_dir": str(phase.work_dir),
        "seed": phase.seed,
        "data_seed": phase.seed,
        "use_cpu": hw.use_cpu,
        # On CPU bf16 is autocast over fp32 weights (2x faster on one row of SmolLM2 here).
        "bf16": hw.bf16,
        _checkpointing_arg(): hw.gradient_checkpointing,
        "report_to": [],
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": hw.save_steps,
        "save_total_limit": 1,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }


def finish_phase(trainer: Any, phase: Phase, tokenizer: Any, diag: PhaseDiagnostics) -> Path:
    """Export the phase's model as a plain HF folder, then drop its Trainer checkpoints."""
    tmp = phase.export_dir.with_name(phase.export_dir.name + ".partial")
    trainer.save_model(str(tmp))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(tmp)
        (tmp / "rubric_arm_phase.json").write_text(
            json.dumps({"phase": phase.name, "role": phase.role, **diag.summary()}, indent=2)
        )
        if phase.export_dir.exists():
            shutil.rmtree(phase.export_dir)
        tmp.rename(phase.export_dir)
        shutil.rmtree(phase.work_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return phase.export_dir


def sft_args(cfg: SFTPhaseConfig, hw: HardwareConfig, phase: Phase) -> Any:
    """TRL's SFTConfig for one warm-up phase: the loss on the completion only."""
    from trl import SFTConfig

    return SFTConfig(
        **common_args(hw, phase),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_train_epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,
        max_length=cfg.max_length,
        completion_only_loss=True,
        **length_grouping_args(cfg.group_by_length),
    )


def run_sft(
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    cfg: SFTPhaseConfig,
    hw: HardwareConfig,
    phase: Phase,
) -> Path:
    """Stage I for one model with TRL's SFTTrainer (its own optimizer and schedule); returns the
    exported folder."""
    from trl import SFTTrainer

    score_labelled_positions_on_cpu()
    args = sft_args(cfg, hw, phase)
    diag = PhaseDiagnostics(
        phase.name, phase.role, phase.log_path, phase.tb_dir, None, is_main=_is_main()
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[diag],
    )
    cache = FrozenLayerCache() if cfg.cache_frozen_layers else None
    with cache.attach(model) if cache is not None else contextlib.nullcontext():
        trainer.train(resume_from_checkpoint=last_checkpoint(phase.work_dir))
    if cache is not None:
        diag.record(
            frozen_cache_rows=len(cache.rows),
            frozen_cache_mb=round(cache.cached_bytes / 2**20, 1),
            frozen_cache_hits=cache.hits,
            frozen_cache_misses=cache.misses,
        )
    return finish_phase(trainer, phase, tokenizer, diag)


def run_grpo(
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    reward: Any,
    cfg: GRPOPhaseConfig,
    hw: HardwareConfig,
    phase: Phase,
    optimizers: tuple[Any, Any],
    probe: GradientProbe | None,
    max_steps: int | None = None,
    step_offset: int = 0,
    rollout_func: Any = None,
) -> Path:
    """Stage II for one model with TRL's GRPOTrainer; returns the exported folder.

    `rollout_func` (trainer/rollouts.py) samples the groups instead of TRL's generation."""
    from trl import GRPOConfig, GRPOTrainer

    score_labelled_positions_on_cpu()
    extra: dict[str, Any] = {}
    if rollout_func is not None:  # experimental in TRL; the contract we rely on is in rollouts.py
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if hw.use_vllm:
        extra = {"use_vllm": True, "vllm_mode": hw.vllm_mode}
    args = GRPOConfig(
        **common_args(hw, phase),
        max_steps=cfg.max_steps if max_steps is None else max_steps,
        num_train_epochs=1,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        num_iterations=cfg.num_iterations,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        lr_scheduler_type="constant",
        **extra,
    )
    diag = PhaseDiagnostics(
        phase.name,
        phase.role,
        phase.log_path,
        phase.tb_dir,
        probe,
        step_offset=step_offset,
        is_main=_is_main(),
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[diag],
        optimizers=optimizers,
        **({"rollout_func": rollout_func} if rollout_func is not None else {}),
    )
    _time_generation(trainer, diag)
    trainer.train(resume_from_checkpoint=last_checkpoint(phase.work_dir))
    return finish_phase(trainer, phase, tokenizer, diag)


def _time_generation(trainer: Any, diag: PhaseDiagnostics) -> None:
    """Add the seconds TRL spends sampling each generation batch (its `_generate`, either path:
    its own generation or our rollout_func) to the phase summary, so the two can be compared.
    A measurement hook on a private method: skipped when TRL no longer has it."""
    generate = getattr(trainer, "_generate", None)
    if generate is None:
        return

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return generate(*args, **kwargs)
        finally:
            diag.generation_seconds.append(time.perf_counter() - started)

    trainer._generate = timed


def _is_main() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process
