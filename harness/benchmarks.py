"""Evaluation view of the benchmarks: which pairs a judge sees, and how its records are scored.

Multi-response benchmarks are expanded into pairs (RewardBench 2: the correct response vs each
incorrect one; RM-Bench: the 3 x 3 chosen-vs-rejected style grid), judged pairwise, and folded
back per item with the official rules (harness.scoring). Every score comes with a bootstrap CI,
its n, the parse failures it absorbed and the policy that scored them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rubric_arm.data.benchmarks import (
    BENCHMARKS,
    MultiResponseItem,
    load_helpsteer3,
    load_judgebench,
    load_ppe_ifeval,
    load_rewardbench,
    load_rewardbench2,
    load_rm_bench,
    load_writing_preference,
)
from rubric_arm.errors import InputError
from rubric_arm.harness import scoring
from rubric_arm.harness.stats import Estimate, bootstrap_ci, grouped_bootstrap_ci
from rubric_arm.pipeline import random_order
from rubric_arm.records import JudgeRecord, Judgment
from rubric_arm.types import PreferencePair, flip

TIE_POLICIES: dict[str, float] = {"half": 0.5, "wrong": 0.0}
"""Credit for a pair the judge gave no winner for (unparsed verdict, vote tie, prompt too long)."""


@dataclass
class Metric:
    """One reported figure: an estimate with CI and n, and the failures it includes."""

    name: str
    estimate: Estimate
    parse_failures: int = 0
    not_judged: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **self.estimate.to_dict(),
            "parse_failures": self.parse_failures,
            "not_judged": self.not_judged,
            "note": self.note,
        }


@dataclass
class EvalBenchmark:
    """How one benchmark is loaded, expanded into pairs, and scored."""

    name: str
    load: Callable[..., list[Any]]
    description: str
    orders: str | None = None  # forced judging order (JudgeBench: both)
    multi: str | None = None  # "rb2" | "rmbench" for multi-response items
    hub_split: str | None = None
    sections: bool = False
    default_split: str | None = None
    data_note: str | None = None
    scorer: Callable[..., list[Metric]] | None = None
    """Official scoring of the records (a list of `rubric_arm.JudgeRecord`), called as
    scorer(records, tie_credit=, protocol=, seed=); None: accuracy over pairs, per subset when
    there are several."""


def _load_mini(source: str | Path | None = None, *, split: str | None = None) -> list[Any]:
    from rubric_arm.data.mini import load_mini

    return load_mini(split or "heldout", path=Path(source) if source else None)


def _with_split(loader: Callable[..., Any]) -> Callable[..., list[Any]]:
    def load(source: str | Path | None = None, *, split: str | None = None) -> list[Any]:
        return list(loader(source, split=split) if split else loader(source))

    return load


EVAL_BENCHMARKS: dict[str, EvalBenchmark] = {
    b.name: b
    for b in [
        EvalBenchmark(
            "mini",
            _load_mini,
            "offline mini suite (held-out split by default)",
            default_split="heldout",
            data_note="rubric_arm/data/mini (construction and label balance: CARD.md there)",
        ),
        EvalBenchmark(
            "rewardbench", _with_split(load_rewardbench), "RewardBench v1", sections=True
        ),
        EvalBenchmark("rewardbench2", _with_split(load_rewardbench2), "RewardBench 2", multi="rb2"),
        EvalBenchmark("rm-bench", _with_split(load_rm_bench), "RM-Bench", multi="rmbench"),
        EvalBenchmark("helpsteer3", _with_split(load_helpsteer3), "HelpSteer3 preference"),
        EvalBenchmark("ppe-ifeval", _with_split(load_ppe_ifeval), "PPE IFEval best-of-K pairs"),
        EvalBenchmark(
            "judgebench", _with_split(load_judgebench), "JudgeBench (both orders)", orders="both"
        ),
        EvalBenchmark(
            "writing-preference", _with_split(load_writing_preference), "WritingPreferenceBench"
        ),
        EvalBenchmark(
            "pairs", _with_split(lambda s, split=None: _load_pairs_file(s)), "a JSONL of pairs"
        ),
    ]
}


def _load_pairs_file(source: str | Path | None) -> list[PreferencePair]:
    from rubric_arm.data.jsonl import read_jsonl

    if source is None:
        raise InputError("the 'pairs' benchmark needs --data <file.jsonl>")
    pairs = []
    for i, row in read_jsonl(source):
        if isinstance(row, InputError):
            raise row
        pairs.append(PreferencePair.from_dict(row, i))
    return pairs


ENTRY_POINT_GROUP = "rubric_arm.benchmarks"
_plugins_loaded = False


def register_benchmark(bench: EvalBenchmark) -> EvalBenchmark:
    """Add a benchmark to the registry (`rubric-arm eval --benchmark NAME`, the Inspect task
    `rubric_arm/NAME`); a name already taken is an error, not a silent replacement."""
    if bench.name in EVAL_BENCHMARKS and EVAL_BENCHMARKS[bench.name] is not bench:
        raise InputError(f"a benchmark named {bench.name!r} is already registered")
    EVAL_BENCHMARKS[bench.name] = bench
    return bench


def load_benchmark_plugins() -> None:
    """Register the benchmarks other packages declare under the `rubric_arm.benchmarks` entry
    point group (each entry point names an EvalBenchmark); done once per process."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        bench = ep.load()
        if not isinstance(bench, EvalBenchmark):
            raise InputError(
                f"entry point {ep.name!r} ({ep.value}) of {ENTRY_POINT_GROUP} is not an "
                "EvalBenchmark"
            )
        register_benchmark(bench)


def get_benchmark(name: str) -> EvalBenchmark:
    if name not in EVAL_BENCHMARKS:
        load_benchmark_plugins()
    if name not in EVAL_BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(EVAL_BENCHMARKS)}")
    return EVAL_BENCHMARKS[name]


# ---- expansion ------------------------------------------------------------------------------


def expand(
    bench: EvalBenchmark,
    items: Sequence[Any],
    *,
    per_response: bool = False,
    win_probabilities: bool = False,
) -> list[PreferencePair]:
    """The pairs to judge: pairwise items as they are, multi-response items as their grid.

    Every grid pair shows correct response i as response_a and incorrect (RM-Bench: rejected)
    response j as response_b, label "A", id "ITEM|c{i}r{j}". RewardBench 2 Ties rows are
    expanded only for judges whose records yield per-response scores: scalar judges
    (`per_response`) and pairwise judges that record `p_a` (`win_probabilities`), whose scores
    are derived from the grid's win probabilities (score_rb2); pairwise verdicts alone give none.
    """
    if bench.multi is None:
        return list(items)
    with_ties = per_response or win_probabilities
    pairs = []
    for item in items:
        if not isinstance(item, MultiResponseItem):
            raise InputError(f"{bench.name}: expected multi-response items")
        if bench.multi == "rb2" and item.subset == "Ties" and not with_ties:
            continue
        for i, good in enumerate(item.correct):
            for j, bad in enumerate(item.incorrect):
                meta = {"item": item.id, "ci": i, "ri": j}
                pairs.append(
                    PreferencePair(
                        f"{item.id}|c{i}r{j}", item.prompt, good, bad, "A", item.subset, meta
                    )
                )
    return pairs


# ---- scoring --------------------------------------------------------------------------------


def scalar_tie(rec: JudgeRecord) -> bool:
    """Whether a judged record is an exact tie of per-response scores (a scalar judge's)."""
    scores = rec.scores
    return (
        rec.status == "ok"
        and isinstance(scores, dict)
        and scores.get("A") is not None
        and scores.get("A") == scores.get("B")
    )


def pair_credit(rec: JudgeRecord, tie_credit: float) -> float:
    """A pair record's score: 1 / 0 for a verdict, `tie_credit` for none (or not judged).

    An exact tie of a scalar judge's scores is wrong (0) whatever `tie_credit` is: the official
    classifier rule is strictly chosen > rejected."""
    if scalar_tie(rec):
        return 0.0
    if rec.status != "ok" or rec.winner is None:
        return tie_credit
    return 1.0 if rec.winner == rec.label else 0.0


def _failures(recs: Sequence[JudgeRecord]) -> tuple[int, int]:
    not_judged = sum(r.status != "ok" for r in recs)
    parse = sum(r.status == "ok" and r.winner is None and not scalar_tie(r) for r in recs)
    return parse, not_judged


def record_clusters(recs: Sequence[JudgeRecord]) -> list[str] | None:
    """Each record's cluster (its source prompt) for a clustered bootstrap; None if none has one.

    A record without a cluster among clustered ones is a cluster of its own.
    """
    if not any(r.cluster is not None for r in recs):
        return None
    return [f"cluster:{r.cluster}" if r.cluster is not None else f"id:{r.id}" for r in recs]


def _metric(
    name: str, scores: Sequence[float], recs: Sequence[JudgeRecord], seed: int, **kw: Any
) -> Metric:
    parse, not_judged = _failures(recs)
    # Clusters apply where each score is one record's (per-item grids keep plain resampling).
    clusters = record_clusters(recs) if len(recs) == len(scores) else None
    est = bootstrap_ci(scores, seed=seed, clusters=clusters)
    return Metric(name, est, parse, not_judged, **kw)


def score_pairwise(
    records: Sequence[JudgeRecord], *, tie_credit: float, seed: int = 0
) -> list[Metric]:
    """Accuracy per subset and over all pairs (pooled)."""
    by_subset: dict[str, list[JudgeRecord]] = defaultdict(list)
    for r in records:
        by_subset[str(r.subset or "all")].append(r)
    metrics = []
    if len(by_subset) > 1 or "all" not in by_subset:
        for subset in sorted(by_subset):
            recs = by_subset[subset]
            metrics.append(_metric(subset, [pair_credit(r, tie_credit) for r in recs], recs, seed))
    metrics.append(_metric("overall", [pair_credit(r, tie_credit) for r in records], records, seed))
    metrics += position_metrics(records, tie_credit=tie_credit, seed=seed)
    return metrics


def _judgment_credit(j: Judgment | None, label: str, tie_credit: float) -> float:
    if j is None or j.winner is None:
        return tie_credit
    return 1.0 if j.winner == label else 0.0


def position_metrics(
    records: Sequence[JudgeRecord], *, tie_credit: float, seed: int = 0
) -> list[Metric]:
    """Position bias (the paper's Table 13) from a run judged in both orders.

    better first / better second: accuracy of the single judgments that showed the labelled
    better response as Response A / as Response B; mixed: one order per pair, drawn with the
    runner's seeded rule (the order a `random` run shows). Empty unless every judged record
    holds both orders.
    """
    judged = [r for r in records if r.status == "ok" and r.label in ("A", "B")]
    if not judged:
        return []
    first, second, mixed = [], [], []
    for r in judged:
        by_order = {j.order: j for j in r.judgments if j.vote == 0}
        if set(by_order) != {"AB", "BA"}:
            return []
        label = r.label
        better_first = "AB" if label == "A" else "BA"
        better_second = "BA" if label == "A" else "AB"
        first.append(_judgment_credit(by_order[better_first], label, tie_credit))
        second.append(_judgment_credit(by_order[better_second], label, tie_credit))
        shown = random_order(r.id, seed if r.seed is None else r.seed)
        mixed.append(_judgment_credit(by_order[shown], label, tie_credit))
    note = "single judgments of a both-order run"
    out = [
        _metric("position: better first", first, judged, seed, note=note),
        _metric("position: better second", second, judged, seed, note=note),
        _metric("position: mixed", mixed, judged, seed, note="seeded random order per pair"),
    ]
    bias = scoring.position_bias(
        out[2].estimate.value, out[0].estimate.value, out[1].estimate.value
    )
    columns = np.array([mixed, first, second], dtype=float)

    def variation(idx: np.ndarray) -> np.ndarray:
        accs = columns[:, idx.astype(int)].mean(axis=-1)  # (3, resamples)
        return np.abs(accs - accs.mean(axis=0)).mean(axis=0)

    # Resampling pair indices keeps each pair's three credits together.
    est = bootstrap_ci(np.arange(len(judged), dtype=float), statistic=variation, seed=seed)
    out.append(
        Metric(
            "position: variation",
            est,
            note=f"mean absolute deviation of the three; range {bias['range']:.3f}",
        )
    )
    return out


def score_rewardbench(
    records: Sequence[JudgeRecord], *, tie_credit: float, seed: int = 0
) -> list[Metric]:
    """Subset accuracies, then the official weighted section scores and their mean (CIs resample
    within subsets)."""
    metrics = score_pairwise(records, tie_credit=tie_credit, seed=seed)
    metrics = [m for m in metrics if m.name != "overall"]
    scores = np.array([pair_credit(r, tie_credit) for r in records])
    subsets = [str(r.subset) for r in records]
    section_of = {s: sec for sec, ws in scoring.REWARDBENCH_SECTIONS.items() for s in ws}
    present = {
        sec: [s for s in ws if s in subsets] for sec, ws in scoring.REWARDBENCH_SECTIONS.items()
    }
    present = {sec: ss for sec, ss in present.items() if ss}
    section_values = []
    for sec, ss in present.items():
        weights = scoring.REWARDBENCH_SECTIONS[sec]
        idx = [i for i, s in enumerate(subsets) if s in ss]

        def combine(
            means: dict[Any, np.ndarray], ss: list[str] = ss, w: dict[str, int] = weights
        ) -> np.ndarray:
            total = sum(w[s] for s in ss)
            return sum(means[s] * w[s] for s in ss) / total

        est = grouped_bootstrap_ci(scores[idx], [subsets[i] for i in idx], combine, seed=seed)
        recs = [records[i] for i in idx]
        parse, nj = _failures(recs)
        metrics.append(Metric(f"section: {sec}", est, parse, nj, note="official subset weights"))
        section_values.append((sec, ss, weights))
    if section_values:
        idx = [i for i, s in enumerate(subsets) if s in section_of]

        def overall(means: dict[Any, np.ndarray]) -> np.ndarray:
            per = [
                sum(means[s] * w[s] for s in ss) / sum(w[s] for s in ss)
                for _, ss, w in section_values
            ]
            return sum(per) / len(per)

        est = grouped_bootstrap_ci(scores[idx], [subsets[i] for i in idx], overall, seed=seed)
        recs = [records[i] for i in idx]
        parse, nj = _failures(recs)
        note = f"mean of {len(section_values)} section(s) present"
        metrics.append(Metric("overall", est, parse, nj, note=note))
    return metrics


def _by_item(records: Sequence[JudgeRecord]) -> dict[str, list[JudgeRecord]]:
    items: dict[str, list[JudgeRecord]] = defaultdict(list)
    for r in records:
        items[r.id.split("|", 1)[0]].append(r)
    return items


def _cell(rec: JudgeRecord, yes: str, no: str) -> str | None:
    if rec.status != "ok" or rec.winner is None:
        return None
    return yes if rec.winner == rec.label else no


def _grid_key(rec: JudgeRecord) -> tuple[int, int]:
    tail = rec.id.split("|", 1)[1]  # "c{i}r{j}"
    i, j = tail[1:].split("r")
    return int(i), int(j)


def _response_scores(recs: Sequence[JudgeRecord]) -> tuple[list[float], list[float]] | None:
    """Per-response scores of one item from its grid records, if the judge gave scores."""
    if not all(r.status == "ok" and isinstance(r.scores, dict) for r in recs):
        return None
    cells = {_grid_key(r): r.scores for r in recs}
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
        cells[_grid_key(rec)] = p
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
    for item, recs in sorted(_by_item(records).items()):
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
        outcomes = {_grid_key(r): _cell(r, "correct", "incorrect") for r in recs}
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
            metrics.append(Metric("Ties", est, *_failures(recs_by_subset["Ties"]), note=note))
        elif subset in credits:
            x = np.asarray(credits[subset])
            boots[subset] = x[rng.integers(0, x.size, (10_000, x.size))].mean(axis=1)
            note = _rule_note(rules[subset])
            if nan_items[subset]:
                note += f"; {nan_items[subset]} items with a NaN score got 0"
            metrics.append(_metric(subset, x, recs_by_subset[subset], seed, note=note))
    if len(boots) == len(scoring.RB2_SUBSETS):
        value = scoring.rb2_overall({m.name: m.estimate.value for m in metrics})
        size = min(b.size for b in boots.values())
        combined = np.mean([b[:size] for b in boots.values()], axis=0)
        low, high = (float(np.quantile(combined, q)) for q in (0.025, 0.975))
        est = Estimate(value, low, high, len(_by_item(records)), 0.95, size, "percentile")
        used = sorted({rule for counts in rules.values() for rule in counts})
        note = "unweighted mean of six subsets; " + "; ".join(used)
        metrics.append(Metric("overall", est, *_failures(records), note=note))
    return metrics


def score_rmbench(records: Sequence[JudgeRecord], *, seed: int = 0, **_: Any) -> list[Metric]:
    """Per-domain hard / normal / easy / total from the 3 x 3 grid (a missing verdict counts 0)."""
    rows = []
    recs_by_domain: dict[str, list[JudgeRecord]] = defaultdict(list)
    for _item, recs in sorted(_by_item(records).items()):
        outcomes = {_grid_key(r): _cell(r, "chosen", "rejected") for r in recs}
        matrix = scoring.rmbench_matrix_from_pairwise(outcomes)
        domain = str(recs[0].subset)
        rows.append(
            (scoring._RMBENCH_POOL.get(domain, domain), scoring.rmbench_matrix_scores(matrix))
        )
        recs_by_domain[scoring._RMBENCH_POOL.get(domain, domain)] += recs
    metrics = []
    for domain in scoring.RMBENCH_DOMAINS:
        items = [s for d, s in rows if d == domain]
        if not items:
            continue
        for level in ("total", "hard", "normal", "easy"):
            name = domain if level == "total" else f"{domain} ({level})"
            metrics.append(_metric(name, [s[level] for s in items], recs_by_domain[domain], seed))
    for level in ("total", "hard", "normal", "easy"):
        domains = [d for d in scoring.RMBENCH_DOMAINS if any(dd == d for dd, _ in rows)]
        if not domains:
            break
        groups = [d for d, _ in rows]
        scores = [s[level] for _, s in rows]

        def combine(means: dict[Any, np.ndarray], ds: list[str] = domains) -> np.ndarray:
            return sum(means[d] for d in ds) / len(ds)

        est = grouped_bootstrap_ci(scores, groups, combine, seed=seed)
        name = "overall" if level == "total" else f"overall ({level})"
        parse, nj = _failures(records)
        metrics.append(Metric(name, est, parse, nj, note="mean over domains"))
    return metrics


def score_judgebench(records: Sequence[JudgeRecord], *, seed: int = 0, **_: Any) -> list[Metric]:
    """JudgeBench's both-order rule per pair, per source and overall."""
    by_source: dict[str, list[float]] = defaultdict(list)
    for r in records:
        verdicts = {j.order: j.winner for j in r.judgments}
        fwd = verdicts.get("AB")
        swapped_raw = verdicts.get("BA")
        # judgments store winners in the pair's own labels; judgebench_item wants the raw
        # verdict of the swapped prompt, i.e. mapped back.
        swapped = flip(swapped_raw)
        label = "A>B" if r.label == "A" else "B>A"
        by_source[str(r.subset)].append(scoring.judgebench_item(fwd, swapped, label))
    metrics = [
        _metric(s, v, [r for r in records if str(r.subset) == s], seed)
        for s, v in sorted(by_source.items())
    ]
    all_scores = [x for v in by_source.values() for x in v]
    metrics.append(_metric("overall", all_scores, records, seed, note="both orders, +1/-1 rule"))
    return metrics


def score(
    bench: EvalBenchmark,
    records: Sequence[JudgeRecord],
    *,
    tie_policy: str = "half",
    protocol: str = "all_pairs",
    seed: int = 0,
) -> list[Metric]:
    """All metrics of one benchmark from its per-pair records."""
    if tie_policy not in TIE_POLICIES:
        raise InputError(f"tie policy must be one of {', '.join(TIE_POLICIES)}, got {tie_policy!r}")
    credit = TIE_POLICIES[tie_policy]
    if not records:
        return []
    if bench.scorer is not None:
        return bench.scorer(records, tie_credit=credit, protocol=protocol, seed=seed)
    if bench.multi == "rb2":
        return score_rb2(records, protocol=protocol, seed=seed)
    if bench.multi == "rmbench":
        return score_rmbench(records, seed=seed)
    if bench.orders == "both":
        return score_judgebench(records, seed=seed)
    if bench.sections:
        return score_rewardbench(records, tie_credit=credit, seed=seed)
    return score_pairwise(records, tie_credit=credit, seed=seed)


__all__ = [
    "BENCHMARKS",
    "EVAL_BENCHMARKS",
    "ENTRY_POINT_GROUP",
    "register_benchmark",
    "load_benchmark_plugins",
    "Metric",
    "TIE_POLICIES",
    "expand",
    "get_benchmark",
    "score",
]
