"""`make gpu-smoke` dry-runs on CPU: the script the GPU machine runs, at the tiny shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")


def test_the_gpu_smoke_script_runs_end_to_end_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    cmd = [
        sys.executable, "-m", "rubric_arm.reproduce.gpu_smoke", "--shape", "tiny",
        "--device", "cpu", "--chats", "4", "--new-tokens", "16", "--train-layers", "1",
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["shape"] == "tiny" and result["params"] > 0
    engine = result["engine"]
    assert engine["chats"] == 4 and engine["generated_tokens"] > 0 and 0 < engine["mfu"] < 1
    assert engine["prompt_tokens_per_chat"] > 500
    assert set(result["train_phase_seconds"]) == {"sft-generator", "sft-judge", "cycle1-judge"}
    assert result["peak_memory_gb"] > 0 and result["matmul_tflop_s"] > 0


def test_the_shipped_shapes_are_qwen3_configs() -> None:
    from transformers import Qwen3Config

    from rubric_arm.reproduce.gpu_smoke import shape_config

    eight = Qwen3Config(**shape_config("qwen3-8b"))
    assert (eight.num_hidden_layers, eight.hidden_size, eight.num_key_value_heads) == (36, 4096, 8)
    params = 36 * (2 * 4096 * 32 * 128 + 2 * 4096 * 8 * 128 + 3 * 4096 * 12288) + 2 * 151936 * 4096
    assert 8.0e9 < params < 8.4e9  # the published 8.2B
    with pytest.raises(SystemExit, match="unknown shape"):
        shape_config("qwen9-1t")
