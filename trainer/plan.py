"""`rubric-arm train --dry-run`: the run's plan (slices, steps per phase, effective batch sizes)
and a per-GPU memory estimate, computed without loading any weights."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rubric_arm.trainer.config import GRPOPhaseConfig, TrainConfig

# Shapes of hub models a plan may name without a local config (params, hidden, layers, kv width).
KNOWN_SHAPES: dict[str, tuple[float, int, int, int, int]] = {
    "Qwen/Qwen3-8B": (8.19e9, 4096, 36, 8 * 128, 151936),
    "Qwen/Qwen3-4B": (4.02e9, 2560, 36, 8 * 128, 151936),
    "Qwen/Qwen3-0.6B": (0.60e9, 1024, 28, 8 * 128, 151936),
    "OpenRubrics/RubricRM-8B-Rubric": (8.19e9, 4096, 36, 8 * 128, 151936),
    "OpenRubrics/RubricRM-8B-Judge": (8.19e9, 4096, 36, 8 * 128, 151936),
}


@dataclass
class Shape:
    params: float
    hidden: int
    layers: int
    kv_width: int  # kv heads x head dim
    vocab: int
    source: str


def model_shape(name: str, cfg_model: Any) -> Shape:
    """Parameter count and widths from a local config.json, the known table, or the synthetic
    shape; weights are never loaded."""
    if name == "synthetic":
        h, layers, v = cfg_model.hidden_size, cfg_model.layers, cfg_model.vocab_size
        per_layer = 4 * h * h * 3 // 4 + 3 * h * 3 * h
        return Shape(layers * per_layer + v * h, h, layers, h // 2, v, "synthetic shape")
    if name in KNOWN_SHAPES:
        p, h, layers, kv, v = KNOWN_SHAPES[name]
        return Shape(p, h, layers, kv, v, "known shape")
    try:
        from transformers import AutoConfig

        from rubric_arm.models import resolve_model

        path = resolve_model(name)
        c = AutoConfig.from_pretrained(path).get_text_config(decoder=True)
        head = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        kv = (getattr(c, "num_key_value_heads", None) or c.num_attention_heads) * head
        inter = getattr(c, "intermediate_size", 4 * c.hidden_size)
        params = c.num_hidden_layers * (
            2 * c.hidden_size**2 + 2 * c.hidden_size * kv + 3 * c.hidden_size * inter
        )
        params += c.vocab_size * c.hidden_size
        return Shape(float(params), c.hidden_size, c.num_hidden_layers, kv, c.vocab_size, str(path))
    except Exception as exc:  # noqa: BLE001 - the plan still prints, with the gap named
        return Shape(float("nan"), 0, 0, 0, 0, f"unknown ({type(exc).__name__}: {exc})")


def grpo_steps(examples: int, g: GRPOPhaseConfig, processes: int) -> dict[str, int]:
    """TRL's arithmetic: one optimizer step consumes per_device x accumulation x processes
    completions; each generation batch is reused num_iterations times."""
    completions = g.per_device_train_batch_size * g.gradient_accumulation_steps * processes
    prompts = max(1, completions // g.num_generations)
    steps = math.ceil(examples / prompts) * g.num_iterations
    if g.max_steps > 0:
        steps = min(steps, g.max_steps)
    return {"completions_per_step": completions, "prompts_per_step": prompts, "steps": steps}


def memory_gb(cfg: TrainConfig, role: str, shapes: dict[str, Shape]) -> dict[str, float]:
    """Per-GPU estimate while `role` trains: weights, grads and Adam of the trained model
    (16 bytes/param in mixed precision, sharded under ZeRO-3), the frozen model in bf16, a
    reference copy when beta > 0, checkpointed activations, fp32 logits and the rollout KV cache.
    """
    hw = cfg.hardware
    n = hw.num_processes if hw.zero3 else 1
    trained = shapes[role]
    other = shapes["judge" if role == "generator" else "generator"]
    g: GRPOPhaseConfig = getattr(cfg.grpo, role)
    bytes_w = 2 if hw.bf16 else 4
    seq = g.max_prompt_tokens + g.max_completion_length
    micro = g.per_device_train_batch_size
    tokens = micro * seq
    states = trained.params * 16 / n
    frozen = other.params * bytes_w
    ref = trained.params * bytes_w / n if g.beta > 0 else 0.0
    layers_saved = 1 if hw.gradient_checkpointing else 12
    activations = tokens * trained.hidden * trained.layers * bytes_w * layers_saved
    logits = tokens * trained.vocab * 4
    kv = 2 * trained.layers * trained.kv_width * bytes_w * tokens
    parts = {
        "trained_model_states": states,
        "frozen_model": frozen,
        "reference_model": ref,
        "activations": activations,
        "logits_fp32": logits,
        "rollout_kv_cache": kv,
    }
    out = {k: v / 2**30 for k, v in parts.items()}
    out["total"] = sum(out.values())
    return out


def build_plan(cfg: TrainConfig) -> dict[str, Any]:
    """The whole plan as a dict (printed by the CLI; also written by a real run)."""
    from rubric_arm.cli import heap_malloc_active
    from rubric_arm.trainer.loop import phase_names

    data_note = None
    try:
        from rubric_arm.trainer.data import load_train_data

        data = load_train_data(cfg)
        n_train, n_heldout = len(data.train), len(data.heldout)
        sft_rows = {"generator": len(data.sft_rubrics), "judge": len(data.sft_judgments)}
    except Exception as exc:  # noqa: BLE001 - a plan is still useful without the data here
        data_note = f"data not available here ({type(exc).__name__}: {exc}); sizes from the config"
        n_train = cfg.data.train_size or 0
        n_heldout = cfg.data.heldout_size
        sft_rows = {"generator": cfg.data.sft_size or 0, "judge": cfg.data.sft_size or 0}
    per_slice = n_train // cfg.cycles
    procs = cfg.hardware.num_processes
    shapes = {
        r: model_shape(getattr(cfg, r).model, getattr(cfg, r)) for r in ("generator", "judge")
    }
    phases = []
    for name, role in phase_names(cfg):
        if name.startswith("sft-"):
            s = getattr(cfg.sft, role)
            batch = s.per_device_train_batch_size * s.gradient_accumulation_steps * procs
            steps = (
                s.max_steps
                if s.max_steps > 0
                else math.ceil(sft_rows[role] * s.num_train_epochs / batch)
            )
            phases.append(
                {
                    "phase": name,
                    "role": role,
                    "examples": sft_rows[role],
                    "batch": batch,
                    "steps": steps,
                }
            )
            continue
        roles = ("generator", "judge") if role == "both" else (role,)
        for r in roles:
            # an explicitly aggregating judge's prompts are checks, 2 per hard rule of each pair:
            # its steps are planned for the most rules a rubric may have
            checks = r == "judge" and cfg.eval.aggregation == "explicit"
            n = per_slice * 2 * cfg.eval.max_rubric_items if checks else per_slice
            info = grpo_steps(n, getattr(cfg.grpo, r), procs)
            phases.append(
                {"phase": name, "role": r, "examples": per_slice, "checks": checks, **info}
            )
    return {
        "name": cfg.name,
        "run_dir": str(cfg.run_dir),
        "schedule": cfg.schedule,
        "order": cfg.order,
        "format_reward": cfg.format_reward,
        "rubric_cache": cfg.rubric_cache,
        "data": {
            "source": cfg.data.source,
            "train_pairs": n_train,
            "cycles": cfg.cycles,
            "slice_sizes": [per_slice] * cfg.cycles,
            "heldout_pairs": n_heldout,
            "sft_rows": sft_rows,
            "note": data_note,
        },
        "processes": procs,
        "malloc": "glibc heap (GLIBC_TUNABLES)" if heap_malloc_active() else "default",
        "models": {
            r: {"model": getattr(cfg, r).model, "params": s.params, "shape_from": s.source}
            for r, s in shapes.items()
        },
        "phases": phases,
        "memory_gb_per_gpu": {r: memory_gb(cfg, r, shapes) for r in ("generator", "judge")},
    }


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as readable text."""
    d = plan["data"]
    lines = [
        f"run {plan['name']} -> {plan['run_dir']}",
        f"schedule {plan['schedule']}, order {plan['order']}, format_reward {plan['format_reward']}, "
        f"rubric_cache {plan['rubric_cache']}, processes {plan['processes']}, "
        f"malloc {plan['malloc']}",
        f"data {d['source']}: {d['train_pairs']} RL pairs in {d['cycles']} disjoint slices of "
        f"{d['slice_sizes'][0]}; held-out {d['heldout_pairs']}; SFT rows generator "
        f"{d['sft_rows']['generator']}, judge {d['sft_rows']['judge']}",
    ]
    if d["note"]:
        lines.append(f"  note: {d['note']}")
    for r, m in plan["models"].items():
        p = m["params"]
        size = f"{p / 1e9:.2f}B" if p == p and p >= 1e8 else (f"{p / 1e6:.2f}M" if p == p else "?")
        lines.append(f"{r}: {m['model']} ({size} params; {m['shape_from']})")
    lines.append("phases:")
    for ph in plan["phases"]:
        if "completions_per_step" in ph:
            examples, unit = ("pairs", "checks") if ph.get("checks") else ("prompts", "prompts")
            lines.append(
                f"  {ph['phase']:<22} {ph['role']:<9} {ph['examples']:>6} {examples}  "
                f"{ph['prompts_per_step']} {unit} x G = {ph['completions_per_step']} completions/step  "
                f"{ph['steps']} steps"
            )
        else:
            lines.append(
                f"  {ph['phase']:<22} {ph['role']:<9} {ph['examples']:>6} rows     "
                f"batch {ph['batch']}  {ph['steps']} steps"
            )
    lines.append("memory per GPU while each model trains (estimate, GiB):")
    for r, mem in plan["memory_gb_per_gpu"].items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in mem.items() if k != "total")
        lines.append(f"  {r}: total {mem['total']:.1f} ({parts})")
    return "\n".join(lines)
