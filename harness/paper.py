"""Published figures (PAPER.md section 7, Table 1) for the report's "paper" columns.

Keyed by (benchmark, metric name as the harness reports it); values in percent.
"""

from __future__ import annotations

PAPER_ROWS: tuple[str, ...] = (
    "Rubric-ARM",
    "Rubric-ARM voting@5",
    "Qwen3-8B prompted Rubric+Judge",
    "API direct judge",
)

# Columns of Table 1 that a harness metric reproduces exactly; FollowBench, InfoBench and
# IFBench pairs were built by the authors from their own samples, so no harness metric
# matches them one to one.
PAPER_TABLE1: dict[tuple[str, str], dict[str, float]] = {
    ("rewardbench", "section: Chat"): {
        "Rubric-ARM": 89.4,
        "Rubric-ARM voting@5": 90.3,
        "Qwen3-8B prompted Rubric+Judge": 73.9,
        "API direct judge": 89.6,
    },
    ("rewardbench", "section: Chat Hard"): {
        "Rubric-ARM": 79.6,
        "Rubric-ARM voting@5": 80.7,
        "Qwen3-8B prompted Rubric+Judge": 63.6,
        "API direct judge": 71.2,
    },
    ("ppe-ifeval", "overall"): {
        "Rubric-ARM": 70.8,
        "Rubric-ARM voting@5": 72.0,
        "Qwen3-8B prompted Rubric+Judge": 53.8,
        "API direct judge": 59.2,
    },
    ("rm-bench", "chat"): {
        "Rubric-ARM": 69.2,
        "Rubric-ARM voting@5": 69.1,
        "Qwen3-8B prompted Rubric+Judge": 64.2,
        "API direct judge": 67.2,
    },
    ("rewardbench2", "Precise IF"): {
        "Rubric-ARM": 41.9,
        "Rubric-ARM voting@5": 46.2,
        "Qwen3-8B prompted Rubric+Judge": 21.9,
        "API direct judge": 13.2,
    },
    ("rewardbench2", "Focus"): {
        "Rubric-ARM": 89.4,
        "Rubric-ARM voting@5": 90.3,
        "Qwen3-8B prompted Rubric+Judge": 56.6,
        "API direct judge": 63.4,
    },
    ("helpsteer3", "overall"): {
        "Rubric-ARM": 69.8,
        "Rubric-ARM voting@5": 71.1,
        "Qwen3-8B prompted Rubric+Judge": 61.8,
        "API direct judge": 70.3,
    },
}


def paper_figure(benchmark: str, metric: str, row: str = "Rubric-ARM") -> float | None:
    """The published figure for a harness metric, or None where the paper has none."""
    return PAPER_TABLE1.get((benchmark, metric), {}).get(row)
