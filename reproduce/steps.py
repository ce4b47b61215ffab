"""A reproduction target as a list of `rubric-arm` commands, each skipped when its output is
already complete, run one at a time with their wall times recorded in the target's folder."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubric_arm.errors import RubricArmError


@dataclass
class Step:
    """One command of a plan; `done()` says whether its output is already complete."""

    name: str
    argv: list[str]
    done: Callable[[], bool] = field(repr=False)
    note: str = ""
    launcher: list[str] = field(default_factory=list)

    def command(self) -> str:
        return shlex.join([*(self.launcher or ["rubric-arm"]), *self.argv])

    def process_argv(self) -> list[str]:
        return [*(self.launcher or [sys.executable, "-m", "rubric_arm.cli"]), *self.argv]


def format_plan(steps: list[Step], title: str) -> str:
    lines = [title]
    for i, s in enumerate(steps, 1):
        state = "reuse" if s.done() else "run"
        lines.append(f"  {i:2d}. [{state}] {s.name}")
        if s.argv:
            lines.append(f"      {s.command()}")
        if s.note:
            lines.append(f"      ({s.note})")
    return "\n".join(lines)


def load_timings(root: Path) -> dict[str, Any]:
    path = root / "timings.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def run_steps(
    steps: list[Step], root: Path, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run every step that is not done, in order; stop at the first failure with its command.

    Wall seconds accumulate per step in root/timings.json across interrupted invocations."""
    root.mkdir(parents=True, exist_ok=True)
    timings = load_timings(root)
    path = root / "timings.json"
    for i, step in enumerate(steps, 1):
        if step.done():
            log(f"[{i}/{len(steps)}] reuse: {step.name}")
            continue
        log(f"[{i}/{len(steps)}] run: {step.name}\n  {step.command()}")
        start = time.perf_counter()
        proc = subprocess.run(step.process_argv(), check=False)
        seconds = time.perf_counter() - start
        entry = timings.setdefault(step.name, {"seconds": 0.0, "runs": 0})
        entry["seconds"] = round(entry["seconds"] + seconds, 1)
        entry["runs"] += 1
        path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if proc.returncode != 0 or not step.done():
            raise RubricArmError(
                f"step {step.name!r} failed (exit {proc.returncode}); rerun the same target to "
                f"resume from it. Command: {step.command()}"
            )
        log(f"  done in {seconds:.0f} s")
    return timings


def write_outputs(
    report: Path, markdown: str, draw: Callable[[Path], None], payload: dict[str, Any]
) -> Path:
    """A target's three outputs beside each other: report.md, report.png (drawn by `draw`) and
    report.json (every number in the Markdown)."""
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(markdown, encoding="utf-8")
    draw(report.with_suffix(".png"))
    report.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return report
