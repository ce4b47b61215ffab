"""The Inspect win-rate task: both orders judged by the grader role, {0, 0.5, 1} credit, and a
clear stop when no grader is configured."""

from __future__ import annotations

import pytest

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from rubric_arm.harness.winrate_task import parse_letter, winrate_samples, winrate_task  # noqa: E402


def test_offline_samples_are_mtbench_turns_with_gpt4_references() -> None:
    samples = winrate_samples(limit=5)
    assert len(samples) == 5 and all(s.target for s in samples)
    assert parse_letter("B is better") == "B" and parse_letter("neither") is None


def _mock(texts: list[str]):
    """A mock model with canned outputs; usage is set so that Inspect does not fetch a tiktoken
    encoding to count tokens (no network here)."""
    outputs = []
    for x in texts:
        out = ModelOutput.from_content(model="mockllm", content=x)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        outputs.append(out)
    return get_model("mockllm/model", custom_outputs=outputs, memoize=False)


def test_win_credit_over_both_orders(tmp_path) -> None:
    # per sample: forward (policy shown as A), then swapped (policy shown as B)
    grader = _mock(["A", "B", "A", "A", "B", "A"])
    log = inspect_eval(
        winrate_task(limit=3),
        model=_mock(["answer one", "answer two", "answer three"]),
        model_roles={"grader": grader},
        max_samples=1,  # one sample at a time, so the canned verdicts pair up in order
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success"
    values = sorted(s.scores["winrate_vs_reference"].value for s in log.samples)
    assert values == [0.0, 0.5, 1.0]


def test_no_grader_stops_with_a_clear_message(tmp_path) -> None:
    log = inspect_eval(
        winrate_task(limit=1), model=_mock(["an answer"]), log_dir=str(tmp_path), display="none"
    )[0]
    assert log.status == "error" and "no API judge is configured" in str(log.error)
