"""`rubric-arm bench summary`: the sub-benchmarks' figures in one JSON and one Markdown file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PARTS = {
    "engine": "bench_engine",
    "decoding": "bench_decoding",
    "bootstrap": "bench_stats",
    "harness": "bench_harness",
    "serve": "bench_serve",
    "training": "bench_train",
    "rollouts": "bench_rollouts",
}


def gpu_line() -> str:
    """What the summary can say about GPU figures on the machine that writes it."""
    import torch

    if not torch.cuda.is_available():
        return (
            "No CUDA GPU on the machine that wrote this file: the GPU smoke figures (vLLM "
            "engine, ZeRO-3 / FSDP training) are not measured here."
        )
    return (
        f"CUDA GPU present ({torch.cuda.get_device_name(0)}), but every figure above ran the "
        "transformers engine; `make bench` has no vLLM or ZeRO-3 / FSDP part yet."
    )


def write_summary(reports: Path = Path("reports")) -> dict[str, Any]:
    """reports/bench.json + bench.md from the bench_*.json / .md files present; a missing part
    is named as not run."""
    from rubric_arm.reproduce.evalset import hardware_line

    hardware = hardware_line()
    merged: dict[str, Any] = {"hardware": hardware, "gpu": gpu_line(), "missing": []}
    lines = ["# Benchmarks (`make bench`)", "", f"Hardware: {hardware}.", ""]
    for key, stem in PARTS.items():
        js, md = reports / f"{stem}.json", reports / f"{stem}.md"
        if not js.is_file():
            merged["missing"].append(key)
            continue
        merged[key] = json.loads(js.read_text(encoding="utf-8"))
        if md.is_file():
            body = md.read_text(encoding="utf-8").strip().splitlines()
            lines += ["#" + line if line.startswith("#") else line for line in body]
            lines.append("")
    lines += ["## GPU", "", merged["gpu"], ""]
    if merged["missing"]:
        lines.append(f"Not run: {', '.join(merged['missing'])}.")
    (reports / "bench.json").write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    (reports / "bench.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return merged
