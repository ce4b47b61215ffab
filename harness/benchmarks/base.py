"""What every benchmark shares: the benchmark object, the reported metric, and the pairwise scoring
that a benchmark without its own rule gets (accuracy with the tie policy's credit, per subset,
with clustered bootstrap CIs, and position bias when both orders were judged)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rubric_arm.data.rows import HubSource
from rubric_arm.harness import scoring
from rubric_arm.harness.stats import Estimate, bootstrap_ci
from rubric_arm.pipeline import random_order
from rubric_arm.records import JudgeRecord, Judgment
from rubric_arm.types import PreferencePair

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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        """Read back what `to_dict` wrote (a scores.json entry)."""
        rest = {k: d[k] for k in ("parse_failures", "not_judged", "note") if k in d}
        return cls(str(d["name"]), Estimate.from_dict(d), **rest)


Loader = Callable[..., Sequence[Any]]
Expander = Callable[..., list[PreferencePair]]
Scorer = Callable[..., list["Metric"]]


@dataclass
class EvalBenchmark:
    """One reward-model benchmark: its data, the pairs a judge sees, and its official scoring.

    Each built-in benchmark is one module of this package defining `BENCHMARK`; a third party's
    is one module of its own, declared under the `rubric_arm.benchmarks` entry point group.
    """

    name: str
    load: Loader
    """load(source=None, *, split=...): the items, from a local file (`source`) or the hub."""
    description: str
    scorer: Scorer | None = None
    """Official scoring of the judged pairs (a list of `rubric_arm.JudgeRecord`), called as
    scorer(records, tie_credit=, protocol=, seed=) -> [Metric]; None: accuracy over pairs, per
    subset when there are several (score_pairwise)."""
    expand: Expander | None = None
    """For multi-response items: expand(items, with_scores=bool) -> the pairs to judge, where
    with_scores says the judge's records yield per-response scores; None: the items are pairs."""
    orders: str | None = None
    """A judging order the benchmark's rule needs ("both" for JudgeBench), else the run's."""
    hub: HubSource | None = None
    """The hub dataset read when no local file is given (id, config, default split)."""
    default_split: str | None = None
    """The split shown in reports when none is given (default: the hub's)."""
    data_note: str | None = None
    """Where the data comes from, for reports, when it is not the hub."""
    protocol: bool = False
    """Whether `--protocol` applies (multi-response items scored on pairwise verdicts)."""
    paper_columns: dict[str, str] = field(default_factory=dict)
    """Metric name -> the paper's Table 1 column it reproduces (harness.paper.COLUMNS)."""

    @property
    def multi_response(self) -> bool:
        return self.expand is not None

    @property
    def split(self) -> str | None:
        return self.default_split or (self.hub.split if self.hub else None)

    def load_items(self, source: str | Path | None = None, split: str | None = None) -> list[Any]:
        """The benchmark's items; `split` None leaves the loader's default."""
        return list(self.load(source, split=split) if split else self.load(source))

    def pairs(
        self, items: Sequence[Any], *, per_response: bool = False, win_probabilities: bool = False
    ) -> list[PreferencePair]:
        """The pairs to judge. `per_response`: the judge gives per-response scores (scalar
        judges); `win_probabilities`: its records hold P(A), from which they are derived."""
        if self.expand is None:
            return list(items)
        return self.expand(items, with_scores=per_response or win_probabilities)

    def score(
        self, records: Sequence[JudgeRecord], *, tie_credit: float, protocol: str, seed: int
    ) -> list[Metric]:
        """All metrics of this benchmark from its judged pairs."""
        if self.scorer is None:
            return score_pairwise(records, tie_credit=tie_credit, seed=seed)
        return self.scorer(records, tie_credit=tie_credit, protocol=protocol, seed=seed)


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


def failures(recs: Sequence[JudgeRecord]) -> tuple[int, int]:
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


def metric(
    name: str, scores: Sequence[float], recs: Sequence[JudgeRecord], seed: int, **kw: Any
) -> Metric:
    parse, not_judged = failures(recs)
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
            metrics.append(metric(subset, [pair_credit(r, tie_credit) for r in recs], recs, seed))
    metrics.append(metric("overall", [pair_credit(r, tie_credit) for r in records], records, seed))
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
        metric("position: better first", first, judged, seed, note=note),
        metric("position: better second", second, judged, seed, note=note),
        metric("position: mixed", mixed, judged, seed, note="seeded random order per pair"),
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
