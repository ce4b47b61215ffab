"""lm-eval helpers for the rubric-arm tasks: datasets from the harness loaders, the direct-judge
prompt, and scoring by the core's winner parser (0.5 credit for no verdict, as RewardBench)."""

from __future__ import annotations

import json
from typing import Any

from rubric_arm.pipeline import random_order
from rubric_arm.templates import load_template
from rubric_arm.types import PreferencePair, prompt_text
from rubric_arm.verdict import parse_winner

TIE_CREDIT = 0.5


def _rows(pairs: list[PreferencePair], seed: int) -> Any:
    import datasets

    rows = []
    for pair in pairs:
        order = random_order(pair.id, seed)
        shown = pair if order == "AB" else pair.swapped()
        rows.append(
            {
                "id": pair.id,
                "subset": pair.subset or "all",
                "order": order,
                "label": shown.label or "",
                "pair_json": json.dumps(shown.to_dict(), ensure_ascii=False),
            }
        )
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def load_mini(seed: int = 0, split: str = "heldout", **_: Any) -> Any:
    """The mini suite's split, each pair in its seeded order (the runner's rule)."""
    from rubric_arm.data.mini import load_mini as load

    return _rows(load(split), int(seed))


def load_rewardbench(data: str | None = None, seed: int = 0, **_: Any) -> Any:
    """RewardBench pairs from a local file (`--metadata '{"data": "rb.jsonl"}'`) or the hub."""
    from rubric_arm.harness.benchmarks.rewardbench import load_rewardbench as load

    return _rows(list(load(data)), int(seed))


def doc_to_text(doc: dict[str, Any]) -> str:
    pair = json.loads(doc["pair_json"])
    chat = load_template("direct").render(
        prompt=prompt_text(pair["prompt"]),
        response_a=pair["response_a"],
        response_b=pair["response_b"],
    )
    return chat[-1]["content"]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    winner, _ = parse_winner(results[0])
    credit = TIE_CREDIT if winner is None else float(winner == doc["label"])
    return {"acc": credit}
