"""The accelerate launch configs, checked without a GPU: accelerate parses each one, and the
multi-GPU ones agree with the paper recipe that names them (processes, sharding, precision,
batch sizes that divide into GRPO groups)."""

from __future__ import annotations

from pathlib import Path

import pytest

accelerate_config = pytest.importorskip("accelerate.commands.config.config_args")

from rubric_arm.trainer.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_accelerate_parses_every_launch_config(path: Path) -> None:
    config = accelerate_config.load_config_from_file(str(path))
    assert config.num_processes >= 1 and config.num_machines == 1
    assert str(config.distributed_type).split(".")[-1] in {"MULTI_CPU", "FSDP", "DEEPSPEED"}


def test_the_zero3_config_matches_the_paper_recipe() -> None:
    launch = accelerate_config.load_config_from_file(
        str(ROOT / "configs/accelerate/zero3-8gpu.yaml")
    )
    recipe = load_config(ROOT / "configs" / "paper.yaml")
    hw = recipe.hardware
    assert "zero3-8gpu.yaml" in (ROOT / "configs" / "paper.yaml").read_text()
    assert launch.deepspeed_config["zero_stage"] == 3 and hw.zero3
    assert launch.num_processes == hw.num_processes
    assert (launch.mixed_precision == "bf16") == hw.bf16
    # GRPO gathers per_device x accumulation x processes completions per step; every group of
    # num_generations must fit whole (what TRL checks at start-up, checked here without GPUs).
    for role in ("generator", "judge"):
        g = getattr(recipe.grpo, role)
        per_step = g.per_device_train_batch_size * g.gradient_accumulation_steps * hw.num_processes
        assert per_step % g.num_generations == 0, role
        assert g.rollouts != "engine", "engine rollouts cannot run on ZeRO-3-sharded weights"


def test_the_fsdp_config_wraps_a_layer_class_that_exists() -> None:
    launch = accelerate_config.load_config_from_file(
        str(ROOT / "configs/accelerate/fsdp-8gpu.yaml")
    )
    name = launch.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]
    from transformers.models.qwen3 import modeling_qwen3

    assert isinstance(getattr(modeling_qwen3, name), type)
    assert launch.mixed_precision == "bf16" and launch.num_processes == 8
