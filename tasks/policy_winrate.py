"""Inspect task: AlpacaEval / Arena-Hard style win rate of a policy against reference answers,
judged by an API model in both orders (the {0, 0.5, 1} credit of PAPER.md section 6).

inspect eval tasks/policy_winrate.py --model hf/<policy folder> --model-role grader=openai/gpt-4o
inspect eval tasks/policy_winrate.py ... -T data=alpaca_eval.jsonl     # instruction + output rows
Without -T data: the MT-Bench first turns that have a GPT-4 reference answer (offline).
Without a grader role the task stops with a message saying how to configure one.
"""

from __future__ import annotations

from inspect_ai import Task, task

from rubric_arm.harness.winrate_task import winrate_task


@task
def policy_winrate(
    data: str | None = None, limit: int | None = None, max_tokens: int = 512
) -> Task:
    return winrate_task(data=data, limit=limit, max_tokens=max_tokens)
