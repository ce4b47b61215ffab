"""What a GPU / hub profile needs and this machine lacks, found before any step runs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rubric_arm.harness.benchmarks import get_benchmark


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def preflight(
    *,
    needs_gpu: bool,
    benchmarks: Iterable[tuple[str, str | None]],
    models: Iterable[str],
    built_later: Iterable[str] = (),
) -> list[str]:
    """Problems, each a line naming what is missing; empty when the plan can run.

    Data and models are only checked when the hub is off (HF_*_OFFLINE=1): online, the steps
    download what they need."""
    problems = []
    if needs_gpu:
        try:
            import torch

            if not torch.cuda.is_available():
                problems.append("no CUDA GPU visible (torch.cuda.is_available() is False)")
        except ImportError:
            problems.append("torch is not installed")
        try:
            import vllm  # noqa: F401
        except ImportError:
            problems.append("vLLM is not installed: pip install -e '.[vllm]' on the GPU machine")
    offline = "1" in (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("HF_DATASETS_OFFLINE"))
    if not offline:
        return problems
    later = set(built_later)
    for bench, data in benchmarks:
        if data:
            if not Path(data).is_file() and data not in later:
                problems.append(f"{bench}: local file {data} not found")
            continue
        try:
            get_benchmark(bench).load(None)
        except Exception as exc:  # noqa: BLE001 - any loader failure is a finding here
            problems.append(f"{bench}: not available offline ({_first_line(exc)})")
    from rubric_arm.models import resolve_model

    for name in sorted(set(models)):
        try:
            resolve_model(name)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"model {name}: not available offline ({_first_line(exc)})")
    return problems
