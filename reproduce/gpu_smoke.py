"""`make gpu-smoke`: the GPU path in minutes, on random weights of the paper's real shapes.

A Qwen3 of a shipped shape (configs/gpu-smoke/*.json: qwen3-8b, qwen3-0.6b, or tiny for the CPU
dry run) is initialised at random on the device (no download), then:

1. engine throughput at a judge workload: the project's transformers engine, greedy, prompts of
   about 700 tokens and up to 256 new ones (random weights rarely stop early), generated tokens
   per second and MFU = tok/s x 2 x params / the device's measured matmul peak in that dtype;
2. the trainer itself on the synthetic task for one SFT step per model and one GRPO judge step
   (TRL under accelerate), bf16 and gradient checkpointing, the top `--train-layers` layers
   trained; seconds per phase;
3. peak memory (CUDA allocator peak, or the process's peak RSS on CPU).

Everything goes to one JSON file. The same script dry-runs on CPU at the tiny shape in `make
test` (tests/test_gpu_smoke.py), so a GPU session only has to run it:

    python -m rubric_arm.reproduce.gpu_smoke --shape qwen3-8b --out reports/gpu-smoke.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rubric_arm.trainer.config import recipes_dir

SHAPES_DIR = "gpu-smoke"


def shape_config(name: str) -> dict[str, Any]:
    """A shipped model shape (Qwen3Config fields) by name, or from a JSON file path."""
    path = Path(name)
    if not path.is_file():
        path = recipes_dir() / SHAPES_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in (recipes_dir() / SHAPES_DIR).glob("*.json"))
        raise SystemExit(f"unknown shape {name!r}: one of {', '.join(known)} or a JSON file")
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def build_model(dest: Path, shape: dict[str, Any], device: str, dtype: torch.dtype) -> int:
    """A random-init Qwen3 of `shape` saved to `dest` with a small local tokenizer (the chat
    markers of the templates); returns its parameter count."""
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from rubric_arm.models import _tiny_corpus, build_random_model

    build_random_model(
        dest, _tiny_corpus(), vocab_size=1024, hidden_size=32, layers=1, intermediate_size=64
    )  # the tokenizer; its placeholder weights are replaced below
    tok = AutoTokenizer.from_pretrained(dest)
    im_end, pad = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen3Config(
        **{**shape, "vocab_size": max(int(shape["vocab_size"]), len(tok))},
        bos_token_id=None,
        eos_token_id=im_end,
        pad_token_id=pad,
    )
    for f in dest.glob("*.safetensors"):
        f.unlink()
    with torch.device(device):
        model = Qwen3ForCausalLM._from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig(eos_token_id=im_end, pad_token_id=pad)
    model.save_pretrained(dest)
    params = sum(p.numel() for p in model.parameters())
    del model
    return params


def matmul_peak(device: str, dtype: torch.dtype, size: int = 4096, seconds: float = 2.0) -> float:
    """Sustained matmul FLOP/s of the device in `dtype` (the MFU denominator)."""
    size = size if device != "cpu" else 512
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    _sync(device)
    return 2 * size**3 * n / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def engine_throughput(
    folder: Path, device: str, dtype: str, chats: int, new_tokens: int, params: int, peak: float
) -> dict[str, Any]:
    from rubric_arm.engines.transformers_engine import TransformersEngine
    from rubric_arm.models import _tiny_corpus
    from rubric_arm.types import SamplingParams

    engine = TransformersEngine(folder, dtype=dtype, device=device, progress=False)
    corpus = _tiny_corpus(seed=1)
    prompts = [
        [{"role": "user", "content": " ".join(corpus[k * 70 : k * 70 + 70])}] for k in range(chats)
    ]
    prompt_tokens = sum(engine.chat_tokens(c) for c in prompts)
    engine.generate(prompts[:2], SamplingParams(max_new_tokens=4))  # warm-up
    _sync(device)
    start = time.perf_counter()
    out = engine.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=new_tokens))
    _sync(device)
    seconds = time.perf_counter() - start
    generated = sum(c[0].completion_tokens for c in out)
    tok_s = generated / seconds
    return {
        "chats": chats,
        "prompt_tokens_per_chat": round(prompt_tokens / chats),
        "generated_tokens": generated,
        "seconds": round(seconds, 2),
        "tok_s": round(tok_s, 1),
        "mfu": round(tok_s * 2 * params / peak, 4),
    }


def train_steps(folder: Path, out_dir: Path, device: str, layers: int) -> dict[str, Any]:
    """One SFT step per model and one GRPO judge step of the real trainer (synthetic task)."""
    from rubric_arm.trainer.config import load_config
    from rubric_arm.trainer.loop import RubricARMTrainer, StopRequested

    overrides = {
        "output_dir": str(out_dir),
        "name": "gpu-smoke",
        "cycles": 1,
        "data": {"train_size": 8, "heldout_size": 4, "sft_size": 16},
        "generator": {"model": str(folder), "trainable_layers": layers},
        "judge": {"model": str(folder), "trainable_layers": layers},
        "sft": {
            "generator": {"max_steps": 1, "per_device_train_batch_size": 4},
            "judge": {"max_steps": 1, "per_device_train_batch_size": 4},
        },
        "grpo": {
            "judge": {"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 4},
        },
        "hardware": {
            "use_cpu": device == "cpu",
            "bf16": True,
            "gradient_checkpointing": True,
            "judge_batch_size": 16,
        },
    }
    cfg = load_config(recipes_dir() / "tiny.yaml", overrides)
    trainer = RubricARMTrainer(cfg, progress=False, stop_after="cycle1-judge")
    with contextlib.suppress(StopRequested):
        trainer.run()
    state = json.loads(trainer.state_path.read_text())["phases"]
    return {name: state[name]["seconds"] for name in ("sft-generator", "sft-judge", "cycle1-judge")}


def peak_memory_gb(device: str) -> float:
    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # KiB -> GiB


def run_smoke(
    shape: str,
    out: Path,
    *,
    device: str | None = None,
    chats: int = 32,
    new_tokens: int = 256,
    train_layers: int = 4,
) -> dict[str, Any]:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    start = time.perf_counter()
    result: dict[str, Any] = {
        "shape": shape,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.machine(),
        "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
    }
    import transformers
    import trl

    result["transformers"], result["trl"] = transformers.__version__, trl.__version__
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        folder = Path(tmp) / "model"
        t = time.perf_counter()
        result["params"] = build_model(folder, shape_config(shape), device, dtype)
        result["build_seconds"] = round(time.perf_counter() - t, 1)
        peak = matmul_peak(device, dtype)
        result["matmul_tflop_s"] = round(peak / 1e12, 3)
        engine_dtype = "bfloat16" if dtype == torch.bfloat16 else "float32"
        result["engine"] = engine_throughput(
            folder, device, engine_dtype, chats, new_tokens, result["params"], peak
        )
        result["train_phase_seconds"] = train_steps(
            folder, Path(tmp) / "runs", device, train_layers
        )
        result["train_layers"] = train_layers
    result["peak_memory_gb"] = peak_memory_gb(device)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="qwen3-8b", help="qwen3-8b, qwen3-0.6b, tiny or a JSON")
    parser.add_argument("--out", type=Path, default=Path("reports/gpu-smoke.json"))
    parser.add_argument("--device", help="cuda or cpu (default: cuda when there is one)")
    parser.add_argument("--chats", type=int, default=32, help="judge-workload prompts")
    parser.add_argument("--new-tokens", type=int, default=256, help="new tokens per prompt")
    parser.add_argument("--train-layers", type=int, default=4, help="top layers trained")
    args = parser.parse_args(argv)
    result = run_smoke(
        args.shape,
        args.out,
        device=args.device,
        chats=args.chats,
        new_tokens=args.new_tokens,
        train_layers=args.train_layers,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
