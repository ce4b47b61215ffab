"""Per-phase diagnostics: TRL's logs plus our reward statistics and a gradient-variance estimate,
written as JSONL and TensorBoard scalars.

The gradient variance (the quantity behind the paper's Theorem 5.5) is estimated from the
optimizer-step gradients of one phase: their norm, and their projection on a fixed random
Rademacher direction over a seeded subset of coordinates (the same direction for every phase of
a model, so phases and schedules are comparable). Variance across steps is variance across
mini-batches. The Trainer calls us after it has clipped the gradient to `max_grad_norm`; the
clipping factor is undone with the pre-clip norm it logs for the same step, so the figures are
those of the raw policy gradient.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

_PROBE_COORDS = 65536


class GradientProbe:
    """A fixed random projection of a model's gradient: `g . r / sqrt(k)` over k seeded coordinates."""

    def __init__(self, model: torch.nn.Module, seed: int = 0) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        total = sum(p.numel() for p in params)
        gen = torch.Generator().manual_seed(seed)
        share = min(1.0, _PROBE_COORDS / max(total, 1))
        self.picks: list[tuple[torch.Tensor, torch.Tensor]] = []
        for p in params:
            k = max(1, round(p.numel() * share))
            idx = torch.randperm(p.numel(), generator=gen)[:k]
            signs = torch.randint(0, 2, (k,), generator=gen).float() * 2 - 1
            self.picks.append((idx, signs))
        self.params = params
        self.k = sum(len(i) for i, _ in self.picks)

    def measure(self) -> tuple[float, float] | None:
        """(gradient norm, projection) of the gradients now held, or None if there are none."""
        sq, proj, seen = 0.0, 0.0, False
        for p, (idx, signs) in zip(self.params, self.picks, strict=True):
            if p.grad is None:
                continue
            seen = True
            g = p.grad.detach().float().reshape(-1)
            sq += float(g.pow(2).sum())
            proj += float((g[idx.to(g.device)] * signs.to(g.device)).sum())
        if not seen:
            return None
        return math.sqrt(sq), proj / math.sqrt(self.k)


def _variance(values: list[float]) -> float | None:
    return statistics.variance(values) if len(values) > 1 else None


class PhaseDiagnostics(TrainerCallback):
    """Writes one JSONL line per logging step and a summary line per phase; mirrors to TensorBoard."""

    def __init__(
        self,
        phase: str,
        role: str,
        log_path: Path,
        tb_dir: Path | None,
        probe: GradientProbe | None,
        step_offset: int = 0,
        is_main: bool = True,
    ) -> None:
        self.phase, self.role = phase, role
        self.log_path = log_path
        self.probe = probe
        self.step_offset = step_offset
        self.is_main = is_main
        self.norms: list[float] = []
        self.projections: list[float] = []
        self.rows: list[dict[str, Any]] = []
        self.generation_seconds: list[float] = []  # GRPO: per generation batch (phases.py)
        self.writer = None
        if tb_dir is not None and is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(tb_dir))

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.probe is None:
            return
        m = self.probe.measure()
        if m is not None:
            self.norms.append(m[0])
            self.projections.append(m[1])

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any
    ) -> None:
        if not logs or "train_runtime" in logs:
            return
        row: dict[str, Any] = {"phase": self.phase, "role": self.role, "step": state.global_step}
        row.update({k: v for k, v in logs.items() if isinstance(v, int | float)})
        raw = logs.get("grad_norm")
        if (
            self.norms
            and isinstance(raw, int | float)
            and math.isfinite(raw)
            and self.norms[-1] > 0
        ):
            # clipping scaled every coordinate by clipped/raw: undo it for norm and projection
            scale = raw / self.norms[-1]
            self.norms[-1] = float(raw)
            self.projections[-1] *= scale
        if self.norms:
            row["grad/norm"] = self.norms[-1]
            row["grad/projection"] = self.projections[-1]
        self.rows.append(row)
        self._write(row)

    def summary(self) -> dict[str, Any]:
        """Phase-level figures: means of the logged metrics and the gradient variances."""
        keys = sorted({k for r in self.rows for k in r if k not in ("phase", "role", "step")})
        means = {}
        for k in keys:
            vals = [r[k] for r in self.rows if isinstance(r.get(k), int | float)]
            if vals:
                means[k] = sum(vals) / len(vals)
        return {
            "phase": self.phase,
            "role": self.role,
            "summary": True,
            "steps": len(self.norms),
            "grad/norm_mean": sum(self.norms) / len(self.norms) if self.norms else None,
            "grad/norm_variance": _variance(self.norms),
            "grad/projection_variance": _variance(self.projections),
            "means": means,
            "generation_seconds": [round(t, 3) for t in self.generation_seconds],
        }

    def record(self, **figures: Any) -> None:
        """One extra metrics.jsonl line for the phase (e.g. a cache's hit counts)."""
        self._write({"phase": self.phase, "role": self.role, **figures})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._write(self.summary())
        if self.writer is not None:
            self.writer.flush()

    def _write(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        if self.writer is not None:
            step = self.step_offset + int(row.get("step", 0) or 0)
            for k, v in row.items():
                if isinstance(v, int | float) and k != "step":
                    self.writer.add_scalar(f"{self.role}/{k}", v, step)
