"""RewardBench 2 (allenai/reward-bench-2): six subsets, best-of-4 with 1/k credit for k tied top
scores, the Ties formula, and the unweighted mean of the six subsets (BENCHMARKS.md).

Items are expanded into the grid of correct vs incorrect responses. Ties rows are judged only for
judges whose records yield per-response scores (their own, or win probabilities from P(A)).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rubric_arm.data.rows import (
    HubSource,
    MultiResponseItem,
    read_rows,
    row_id,
    text_list,
)
from rubric_arm.errors import InputError
from rubric_arm.harness import scoring
from rubric_arm.harness.benchmarks.base import EvalBenchmark, Metric, failures, metric
from rubric_arm.harness.benchmarks.grid import by_item, cell, grid_key, grid_pairs
from rubric_arm.harness.stats import Estimate
from rubric_arm.records import JudgeRecord
from rubric_arm.types import PreferencePair, text_field, validate_prompt

HUB = HubSource("allenai/reward-bench-2", None, "test")


def load_rewardbench2(
    source: str | Path | None = None, *, split: str = "test"
) -> list[MultiResponseItem]:
    """RewardBench 2: one item per row, id "subset/id" since ids restart in every subset."""
    cols = (
        "id",
        "prompt",
        "chosen",
        "rejected",
        "num_correct",
        "num_incorrect",
        "total_completions",
        "models",
        "subset",
        "additional_metadata",
    )
    rows, src = read_rows(source, HUB, "rewardbench2", cols, split)
    items: list[MultiResponseItem] = []
    seen: dict[str, int] = {}
    for i, (row, where) in enumerate(zip(rows, src, strict=True)):
        subset = text_field(row, "subset", where)
        item_id = f"{subset}/{row_id(row, 'id', where)}"
        if item_id in seen:
            raise InputError(f"{where}: item {item_id!r} repeats row {seen[item_id]}")
        seen[item_id] = i
        correct = text_list(row, "chosen", where)
        incorrect = text_list(row, "rejected", where)
        meta = {
            "source_id": row["id"],
            "models": row["models"],
            "num_correct": row["num_correct"],
            "num_incorrect": row["num_incorrect"],
            "total_completions": row["total_completions"],
            "additional_metadata": row["additional_metadata"],
        }
        prompt = validate_prompt(row["prompt"], f"{where}: field 'prompt'")
        items.append(MultiResponseItem(item_id, prompt, correct, incorrect, subset, meta))
    return items


def expand_rb2(items: Sequence[Any], *, with_scores: bool) -> list[PreferencePair]:
    """The correct x incorrect grid of every item; Ties items only `with_scores`: pairwise
    verdicts alone give no per-response scores for the Ties formula."""
    return grid_pairs("rewardbench2", items, lambda item: with_scores or item.subset != "Ties")


def _response_scores(recs: Sequence[JudgeRecord]) -> tuple[list[float], list[float]] | None:
    """Per-response scores of one item from its grid records, if the judge gave scores."""
    if not all(r.status == "ok" and isinstance(r.scores, dict) for r in recs):
        return None
    cells = {grid_key(r): r.scores for r in recs}
    n_c = 1 + max(i for i, _ in cells)
    n_i = 1 + max(j for _, j in cells)
    correct = [float(cells[(i, 0)]["A"]) for i in range(n_c)]
    incorrect = [float(cells[(0, j)]["B"]) for j in range(n_i)]
    return correct, incorrect


WIN_PROBABILITY = "mean pairwise win probability"
"""How score_rb2 names per-response scores derived from a pairwise judge's p_a."""
_SCORE_DECIMALS = 12


def _correct_win_probability(rec: JudgeRecord) -> float | None:
    """P(the grid record's correct response beats its incorrect one), from `p_a`, or None.

    `p_a` is P(response_a beats response_b) in the pair's own orientation (both shown orders
    already mapped back); the correct response is the labelled one: response_a when the label is
    "A" (as `expand` builds every grid pair), response_b when it is "B".
    """
    p = rec.p_a
    label = rec.label
    if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
        return None
    if label not in ("A", "B") or not 0.0 <= p <= 1.0:
        return None
    return float(p) if label == "A" else 1.0 - float(p)


def win_probability_scores(
    recs: Sequence[JudgeRecord],
) -> tuple[list[float], list[float]] | None:
    """Per-response scores of one item from a pairwise judge's win probabilities.

    With W[i, j] = P(correct i beats incorrect j) from grid record "c{i}r{j}", each response
    scores its mean win probability over the grid comparisons it takes part in: correct i scores
    mean_j W[i, j], incorrect j scores mean_i (1 - W[i, j]). The grid only pairs a correct with an
    incorrect response, so correct responses are compared with each other through their win
    rates against the same incorrect set (and incorrect ones against the same correct set),
    never head to head. Scores are rounded to 12 decimals so that equal win rates averaged over
    different numbers of comparisons tie exactly for the 1/k rule (p_a carries 6 decimals, far
    coarser than float noise). None unless every record of a complete grid has a usable `p_a`:
    such items keep the verdict-based protocol.
    """
    if not recs:
        return None
    cells: dict[tuple[int, int], float] = {}
    for rec in recs:
        p = _correct_win_probability(rec)
        if p is None:
            return None
        cells[grid_key(rec)] = p
    n_c = 1 + max(i for i, _ in cells)
    n_i = 1 + max(j for _, j in cells)
    if len(cells) != n_c * n_i:
        return None
    wins = np.empty((n_c, n_i))
    for (i, j), p in cells.items():
        wins[i, j] = p
    correct = np.round(wins.mean(axis=1), _SCORE_DECIMALS)
    incorrect = np.round((1.0 - wins).mean(axis=0), _SCORE_DECIMALS)
    return correct.tolist(), incorrect.tolist()


def _item_scores(
    recs: Sequence[JudgeRecord],
) -> tuple[tuple[list[float], list[float]], str] | None:
    """(correct scores, incorrect scores) of one item and what they are, or None.

    A judge's own per-response scores come first; otherwise they are derived from `p_a`.
    """
    scores = _response_scores(recs)
    if scores is not None:
        return scores, "the judge's per-response scores"
    scores = win_probability_scores(recs)
    if scores is not None:
        return scores, f"per-response scores ({WIN_PROBABILITY})"
    return None


def _rule_note(rules: Counter[str]) -> str:
    """One rule, or every rule used with its item count when a subset mixes them."""
    if len(rules) == 1:
        return next(iter(rules))
    return "; ".join(
        f"{rule} ({n} item{'' if n == 1 else 's'})" for rule, n in sorted(rules.items())
    )


def _ties_estimate(
    rows: list[dict[str, Any]], seed: int, resamples: int = 10_000
) -> tuple[Estimate, np.ndarray, scoring.TiesScore]:
    """The Ties formula with a bootstrap over prompts K (ref:K and tied:K resampled together)."""
    full = scoring.rb2_ties(rows)
    by_key: dict[int | str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for row in rows:
        kind, key = scoring.ties_key(row["id"])
        by_key[key].append((kind, row))
    keys = sorted(by_key, key=str)
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    for b in range(resamples):
        picked = rng.integers(0, len(keys), len(keys))
        sample = [
            {**row, "id": f"{kind}:{n}"}
            for n, k in enumerate(picked)
            for kind, row in by_key[keys[k]]
        ]
        boot[b] = scoring.rb2_ties_score(sample)  # NaN: no K present as both ref and tied
    boot = boot[~np.isnan(boot)]
    low, high = (
        (float(np.quantile(boot, q)) for q in (0.025, 0.975))
        if boot.size and not math.isnan(full.value)
        else (math.nan, math.nan)
    )
    return Estimate(full.value, low, high, len(rows), 0.95, resamples, "percentile"), boot, full


def score_rb2(
    records: Sequence[JudgeRecord], *, protocol: str = "all_pairs", seed: int = 0, **_: Any
) -> list[Metric]:
    """Per-subset RewardBench 2 scores (and the overall mean when all six subsets are scored).

    Items with per-response scores get the official rules (best-of-4 with 1/k for ties, the Ties
    formula). Scores come from the judge itself (scalar judges) or, for a pairwise judge whose
    every grid record of the item holds `p_a`, from win probabilities: each response's mean
    win probability over the grid comparisons it takes part in (win_probability_scores). Other
    best-of-4 items get `protocol` over their grid verdicts; Ties rows without scores are left
    out (counted in the note). Every metric's note names the rule(s) that scored it.
    """
    credits: dict[str, list[float]] = defaultdict(list)
    recs_by_subset: dict[str, list[JudgeRecord]] = defaultdict(list)
    rules: dict[str, Counter[str]] = defaultdict(Counter)
    ties_rows: list[dict[str, Any]] = []
    ties_left_out = 0
    nan_items: Counter[str] = Counter()
    for item, recs in sorted(by_item(records).items()):
        subset = str(recs[0].subset)
        recs_by_subset[subset] += recs
        found = _item_scores(recs)
        if subset == "Ties":
            if found is None:
                ties_left_out += 1
                continue
            (correct, incorrect), source = found
            ties_rows.append(
                {"id": item.split("/", 1)[-1], "correct": correct, "incorrect": incorrect}
            )
            rules[subset][f"official Ties formula on {source}"] += 1
            continue
        if found is not None:
            nan_items[subset] += any(math.isnan(x) for x in (*found[0][0], *found[0][1]))
            credits[subset].append(scoring.rb2_best_of_n_item(*found[0]))
            rules[subset][f"official best-of-4 on {found[1]}"] += 1
            continue
        outcomes = {grid_key(r): cell(r, "correct", "incorrect") for r in recs}
        n_c = 1 + max(k[0] for k in outcomes)
        n_i = 1 + max(k[1] for k in outcomes)
        credits[subset].append(
            scoring.pairwise_multi_response_item(outcomes, n_c, n_i, protocol=protocol)  # type: ignore[arg-type]
        )
        rules[subset][f"pairwise protocol {protocol}"] += 1
    metrics: list[Metric] = []
    boots: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    for subset in scoring.RB2_SUBSETS:
        if subset == "Ties" and ties_rows:
            note = _rule_note(rules[subset])
            est, boot, ties = _ties_estimate(ties_rows, seed)
            if math.isnan(ties.value):
                note += "; undefined: needs ref and tied rows with some K present as both"
            else:
                boots[subset] = boot
            if ties.dropped_single_correct:
                note += (
                    f"; {ties.dropped_single_correct} tied rows with one correct answer dropped "
                    "(as release 0.1.4)"
                )
            if any(WIN_PROBABILITY in r for r in rules[subset]):
                note += (
                    "; the spread between correct answers compares their win rates against the "
                    "same incorrect answers (the grid never pairs two correct answers)"
                )
            if ties_left_out:
                total = ties_left_out + len(ties_rows)
                note += f"; {ties_left_out} of {total} rows without per-response scores left out"
            metrics.append(Metric("Ties", est, *failures(recs_by_subset["Ties"]), note=note))
        elif subset in credits:
            x = np.asarray(credits[subset])
            boots[subset] = x[rng.integers(0, x.size, (10_000, x.size))].mean(axis=1)
            note = _rule_note(rules[subset])
            if nan_items[subset]:
                note += f"; {nan_items[subset]} items with a NaN score got 0"
            metrics.append(metric(subset, x, recs_by_subset[subset], seed, note=note))
    if len(boots) == len(scoring.RB2_SUBSETS):
        value = scoring.rb2_overall({m.name: m.estimate.value for m in metrics})
        size = min(b.size for b in boots.values())
        combined = np.mean([b[:size] for b in boots.values()], axis=0)
        low, high = (float(np.quantile(combined, q)) for q in (0.025, 0.975))
        est = Estimate(value, low, high, len(by_item(records)), 0.95, size, "percentile")
        used = sorted({rule for counts in rules.values() for rule in counts})
        note = "unweighted mean of six subsets; " + "; ".join(used)
        metrics.append(Metric("overall", est, *failures(records), note=note))
    return metrics


BENCHMARK = EvalBenchmark(
    "rewardbench2",
    load_rewardbench2,
    "RewardBench 2",
    scorer=score_rb2,
    expand=expand_rb2,
    hub=HUB,
    protocol=True,
    paper_columns={"Precise IF": "PIF", "Focus": "Focus"},
)
