"""Published figures (PAPER.md section 7, Tables 1, 2, 7 and 13), in percent unless stated.

The tables are kept in the paper's column order. Which harness metric reproduces a column is
declared by its benchmark (`EvalBenchmark.paper_columns`); `paper_figure` looks it up. FollowBench,
InfoBench and IFBench pairs were built by the authors from their own samples: we rebuild them with
`rubric-arm data build-pairs` and score the file as the `pairs` benchmark, comparable in kind but
not item for item, so no benchmark declares those columns.
"""

from __future__ import annotations

COLUMNS: tuple[str, ...] = (
    "Chat",
    "ChatH",
    "FollowB",
    "PPE-IF",
    "InfoB",
    "IFBench",
    "RMB",
    "PIF",
    "Focus",
    "HS3",
)
COLUMN_TITLES: dict[str, str] = {
    "Chat": "RewardBench Chat",
    "ChatH": "RewardBench Chat-Hard",
    "FollowB": "FollowBench (pairs)",
    "PPE-IF": "PPE-IFEval",
    "InfoB": "InfoBench (pairs)",
    "IFBench": "IFBench (pairs)",
    "RMB": "RM-Bench Chat",
    "PIF": "RewardBench 2 Precise-IF",
    "Focus": "RewardBench 2 Focus",
    "HS3": "HelpSteer3",
}

# Each row: the ten columns above, then the paper's average.
TABLE1: dict[str, tuple[float, ...]] = {
    "Gemini-2.5-Flash": (95.0, 83.3, 86.0, 75.0, 85.6, 69.3, 78.5, 57.5, 84.1, 70.6, 78.5),
    "API Rubric+Judge (GPT-4.1-mini + Gemini-2.5-Flash-Lite)": (
        79.6,
        79.2,
        83.2,
        61.0,
        82.2,
        66.2,
        67.9,
        42.5,
        79.6,
        71.4,
        71.3,
    ),
    "API direct judge": (89.6, 71.2, 81.7, 59.2, 72.9, 60.4, 67.2, 13.2, 63.4, 70.3, 64.9),
    "RM-R1-32B (DeepSeek-Dist)": (95.3, 83.1, 89.2, 63.2, 85.0, 58.6, 74.2, 36.9, 79.2, 75.6, 74.0),
    "RRM-32B": (94.7, 81.1, 85.7, 60.2, 84.4, 60.8, 73.9, 34.4, 83.6, 75.4, 73.4),
    "RM-R1-7B (Qwen-2.5-Inst)": (83.0, 70.0, 56.3, 55.2, 71.3, 55.2, 64.2, 20.6, 76.2, 65.2, 61.7),
    "RRM-7B": (77.7, 69.5, 65.5, 51.0, 68.2, 53.2, 59.9, 10.0, 60.4, 62.4, 57.8),
    "JudgeLRM-7B": (92.1, 56.1, 79.8, 46.0, 62.7, 47.5, 55.4, 9.4, 29.1, 60.2, 53.8),
    "Qwen3-8B prompted Rubric+Judge": (
        73.9,
        63.6,
        63.0,
        53.8,
        74.6,
        55.6,
        64.2,
        21.9,
        56.6,
        61.8,
        58.9,
    ),
    "Rubric-RM (SFT only)": (88.2, 74.1, 76.1, 67.0, 80.8, 65.4, 65.7, 34.4, 82.2, 67.0, 70.1),
    "Rubric-RM voting@5": (89.9, 75.4, 81.5, 70.8, 83.8, 67.1, 67.0, 40.0, 86.5, 67.5, 73.0),
    "Rubric-ARM": (89.4, 79.6, 85.7, 70.8, 86.1, 65.9, 69.2, 41.9, 89.4, 69.8, 74.8),
    "Rubric-ARM voting@5": (90.3, 80.7, 87.4, 72.0, 87.7, 67.1, 69.1, 46.2, 90.3, 71.1, 76.2),
}

TABLE2: dict[str, tuple[float, ...]] = {
    "generator first": (93.2, 76.3, 85.9, 67.3, 84.1, 64.6, 69.5, 24.4, 86.1, 71.8, 72.4),
    "generator first, voting@5": (94.0, 76.5, 89.1, 67.8, 85.0, 64.6, 69.8, 39.4, 90.1, 72.4, 74.9),
    "without R_fmt": (89.8, 78.7, 87.1, 69.2, 86.1, 64.3, 69.5, 25.6, 84.8, 70.8, 72.6),
    "without R_fmt, voting@5": (91.5, 78.5, 88.2, 70.2, 87.7, 65.1, 69.7, 43.8, 88.9, 71.1, 75.5),
}

# Table 7: seconds to score 100 RewardBench 2 prompts with vLLM (ranges where the paper gives one).
TABLE7_SECONDS: dict[str, tuple[float, float]] = {
    "Rubric-ARM-8B (generator + judge)": (33.5, 33.5),
    "Rubric-RM-8B": (105.1, 105.1),
    "RRM-7B": (203.4, 203.4),
    "RM-R1-7B": (170.8, 260.4),
    "RM-R1-14B": (322.8, 382.0),
    "JudgeLRM-7B": (25.7, 25.7),
}

# Table 13: mean variation of accuracy across orderings (mixed / fixed order 1 / fixed order 2).
TABLE13_VARIATION: dict[str, tuple[float, float]] = {
    "Rubric-ARM": (1.27, 1.27),
    "Rubric-RM": (2.47, 2.47),
    "RM-R1-7B": (4.58, 6.15),
    "RRM-7B": (22.08, 22.08),
}


def paper_row(row: str) -> dict[str, float] | None:
    """A Table 1 or Table 2 row as {column: value, "Avg": value}, or None if the paper has none."""
    values = TABLE1.get(row) or TABLE2.get(row)
    if values is None:
        return None
    return dict(zip((*COLUMNS, "Avg"), values, strict=True))


def paper_figure(benchmark: str, metric: str, row: str = "Rubric-ARM") -> float | None:
    """The published Table 1 figure for a harness metric (the column its benchmark declares in
    `paper_columns`), or None where the paper has none."""
    from rubric_arm.harness.benchmarks import EVAL_BENCHMARKS

    bench = EVAL_BENCHMARKS.get(benchmark)
    column = bench.paper_columns.get(metric) if bench else None
    if column is None or row not in TABLE1:
        return None
    return TABLE1[row][COLUMNS.index(column)]


# Section 6 downstream (policy Qwen2.5-7B-Instruct): base -> DPO -> IterDPO with the Rubric-ARM
# reward, and the online GRPO averages. "~35.0" is given approximately in the paper.
DOWNSTREAM_DPO: dict[str, tuple[float, float, float]] = {
    "IFEval (avg)": (77.3, 80.4, 80.8),
    "InfoBench": (78.1, 83.7, 85.0),
    "IFBench": (28.2, 35.0, 35.4),
    "Arena-Hard + AlpacaEval (avg)": (41.0, 51.7, 53.4),
    "WildBench": (48.7, 53.7, 55.7),
    "Creative Writing v3": (37.4, 39.0, 39.3),
}
DOWNSTREAM_GRPO_AVG: dict[str, float] = {
    "base": 46.8,
    "RM-R1 reward": 52.3,
    "Rubric-ARM reward": 55.4,
}
