"""The synthetic keyword task behind `configs/tiny.yaml`: small enough for a ~1M-parameter model
to learn in minutes on 2 CPU cores, and built so that the rubric matters.

Each prompt asks for a line that mentions a thing described by a riddle ("the colour of grass");
the riddle is never the word itself. Both responses contain one keyword: the chosen one the
riddle's answer, the rejected one a distractor. The generator has to turn the riddle into the
criterion "The response mentions the word green"; with that rubric the judge only has to match
a word it can read, without it the judge must know every riddle itself.
"""

from __future__ import annotations

import random
from typing import Any

from rubric_arm.templates import load_template
from rubric_arm.types import PreferencePair

RIDDLES: tuple[tuple[str, str], ...] = (
    ("the colour of grass", "green"),
    ("the colour of a clear sky", "blue"),
    ("the colour of snow", "white"),
    ("the colour of blood", "red"),
    ("a yellow fruit that monkeys like", "banana"),
    ("a red fruit that keeps the doctor away", "apple"),
    ("an animal that barks", "dog"),
    ("an animal that purrs", "cat"),
    ("a bird that hoots at night", "owl"),
    ("the star we orbit", "sun"),
    ("what lights the night sky", "moon"),
    ("frozen water", "ice"),
    ("a large body of salt water", "sea"),
    ("what bees make", "honey"),
    ("a vehicle with two wheels and pedals", "bicycle"),
    ("the season after spring", "summer"),
)
FILLER: tuple[str, ...] = (
    "we", "saw", "a", "the", "big", "small", "old", "new", "near", "far", "today", "again",
    "and", "with", "very", "quite", "happy", "quiet", "bright", "slow", "fast", "house",
    "road", "hill", "park", "river", "town", "day", "night", "friend",
)  # fmt: skip


def gold_rubric(keyword: str) -> str:
    """The rubric a perfect generator writes for a riddle whose answer is `keyword`."""
    return f"1. The response mentions the word {keyword}. [Hard Rule]"


def gold_judgment(keyword: str, a_has: bool, b_has: bool) -> str:
    """A judge trajectory in the published format (one criterion) that ends with the winner."""

    def line(has: bool) -> str:
        return f"mentions {keyword}." if has else f"does not mention {keyword}."

    winner = "A" if a_has else "B"
    return (
        "--- Compliance Check ---\n"
        f"Identified Gatekeeper Criterion: The response mentions the word {keyword}.\n\n"
        "--- Analysis ---\n"
        "**Response A:**\n"
        f"- Criterion 1 [Hard Rule]: Justification: {line(a_has)}\n"
        "**Response B:**\n"
        f"- Criterion 1 [Hard Rule]: Justification: {line(b_has)}\n\n"
        "--- Final Judgment ---\n"
        f"Justification: Response {winner} meets criterion 1.\n"
        f"Winner: Response {winner}"
    )


def _response(rng: random.Random, keyword: str, words: int) -> str:
    parts = [rng.choice(FILLER) for _ in range(words - 1)]
    parts.insert(rng.randrange(words), keyword)
    return " ".join(parts)


def make_pairs(
    n: int, seed: int, *, keywords: int = 8, words: int = 4, split: str = "train"
) -> list[PreferencePair]:
    """`n` labelled pairs over the first `keywords` riddles, labels balanced between A and B."""
    if not 2 <= keywords <= len(RIDDLES):
        raise ValueError(f"keywords must be in [2, {len(RIDDLES)}], got {keywords}")
    riddles = RIDDLES[:keywords]
    rng = random.Random(f"synthetic-{split}-{seed}")
    pairs = []
    for i in range(n):
        riddle, keyword = riddles[rng.randrange(keywords)]
        distractor = rng.choice([w for _, w in riddles if w != keyword])
        chosen = _response(rng, keyword, words)
        rejected = _response(rng, distractor, words)
        label = "A" if i % 2 == 0 else "B"
        a, b = (chosen, rejected) if label == "A" else (rejected, chosen)
        pairs.append(
            PreferencePair(
                id=f"synthetic-{split}/{i}",
                prompt=f"Write a short line that mentions {riddle}.",
                response_a=a,
                response_b=b,
                label=label,
                subset="synthetic",
                metadata={"keyword": keyword, "distractor": distractor},
            )
        )
    return pairs


def warmup_rows(pairs: list[PreferencePair]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Gold rubrics (generator SFT, one per prompt) and gold judge trajectories (judge SFT)."""
    rubrics: dict[str, dict[str, str]] = {}
    judgments = []
    for p in pairs:
        kw = p.metadata["keyword"]
        prompt = str(p.prompt)
        rubrics.setdefault(prompt, {"id": p.id, "prompt": prompt, "rubric": gold_rubric(kw)})
        judgments.append(
            {
                "id": p.id,
                "prompt": prompt,
                "rubric": gold_rubric(kw),
                "response_a": p.response_a,
                "response_b": p.response_b,
                "judgment": gold_judgment(
                    kw, kw in p.response_a.split(), kw in p.response_b.split()
                ),
            }
        )
    return list(rubrics.values()), judgments


CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def corpus(seed: int = 0, n: int = 400) -> list[str]:
    """Text the task's tokenizer is trained on: templates, prompts, rubrics and trajectories."""
    texts = [load_template(n).user for n in ("tiny-generator", "tiny-judge")]
    for p in make_pairs(n, seed, keywords=len(RIDDLES), split="corpus"):
        kw = p.metadata["keyword"]
        texts += [
            str(p.prompt),
            p.response_a,
            p.response_b,
            gold_rubric(kw),
            gold_judgment(kw, True, False),
            gold_judgment(kw, False, True),
        ]
    return texts


def build_model(dest: Any, shape: Any, seed: int) -> None:
    """A random-init model for the task (tokenizer trained on `corpus()`, ChatML template) with
    the shape of a ModelConfig (`vocab_size`, `hidden_size`, `layers`), saved to `dest`."""
    from rubric_arm.models import build_random_model

    build_random_model(
        dest,
        corpus(),
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        layers=shape.layers,
        intermediate_size=3 * shape.hidden_size,
        seed=seed,
        chat_template=CHATML_TEMPLATE,
    )
