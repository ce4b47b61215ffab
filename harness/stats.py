"""Seeded bootstrap confidence intervals for every reported figure, on `scipy.stats.bootstrap`.

Plain (percentile, basic, BCa), stratified (each group resampled on its own: scipy's independent
samples) and paired bootstraps, all reported as an `Estimate`. Where items come in clusters
(several pairs built from one source prompt), the plain and paired bootstraps of a mean take
`clusters=` and resample whole clusters (scipy's paired resampling of per-cluster sums and
counts), so the CI does not treat correlated pairs as independent. scipy is within 1.3x of the
hand-written resampler this replaced on percentile CIs and 2.6x on BCa (3,000 items, 10,000
resamples: 0.13 s and 0.23 s), and gives the same percentile bounds for the same seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from scipy.stats import DegenerateDataWarning

Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps a (resamples, n) array to a (resamples,) array, reducing along the last axis."""

DEFAULT_RESAMPLES = 10_000
METHODS = ("percentile", "basic", "bca")
_SCIPY_METHODS = {"percentile": "percentile", "basic": "basic", "bca": "BCa"}
_CHUNK_ELEMENTS = 4_000_000

_NAMED_STATISTICS: dict[str, Statistic] = {
    "mean": lambda x: np.mean(x, axis=-1),
    "median": lambda x: np.median(x, axis=-1),
}


@dataclass
class Estimate:
    """A point value with its bootstrap CI and the n it rests on."""

    value: float
    low: float
    high: float
    n: int
    confidence: float
    resamples: int
    method: str
    clusters: int | None = None
    """How many clusters were resampled (None: items were resampled one by one)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict; NaN becomes None since JSON has no NaN (no `clusters` if None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
            if not (k == "clusters" and v is None)
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Estimate:
        """Read back what `to_dict` wrote (None values as NaN); other keys are ignored."""

        def number(key: str) -> float:
            value = d.get(key)
            return math.nan if value is None else float(value)

        return cls(
            number("value"),
            number("low"),
            number("high"),
            int(d["n"]),
            float(d.get("confidence", 0.95)),
            int(d.get("resamples", 0)),
            str(d.get("method", "percentile")),
            d.get("clusters"),
        )

    def fmt(self, scale: float = 100, digits: int = 1) -> str:
        """Render as e.g. ``71.3 [68.1, 74.4] (n=512)``, values multiplied by ``scale``."""
        if math.isnan(self.value):
            return f"n/a (n={self.n})"
        v, lo, hi = (f"{x * scale:.{digits}f}" for x in (self.value, self.low, self.high))
        return f"{v} [{lo}, {hi}] (n={self.n})"

    def __str__(self) -> str:
        return self.fmt()


def _as_scores(scores: Sequence[float] | np.ndarray, name: str = "scores") -> np.ndarray:
    """1-D float array; a non-finite score is an error naming its index, never dropped."""
    x = np.asarray(scores, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is not finite ({x[bad[0]]!r})")
    return x


def _check(confidence: float, resamples: int, method: str) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _resolve(statistic: str | Statistic) -> Statistic:
    if callable(statistic):
        return statistic
    try:
        return _NAMED_STATISTICS[statistic]
    except KeyError:
        raise ValueError(
            f"unknown statistic {statistic!r}; use one of {sorted(_NAMED_STATISTICS)} or a callable"
        ) from None


def _scipy_bootstrap(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    paired: bool,
    method: str,
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[float, float, np.ndarray]:
    """CI bounds and bootstrap distribution from `scipy.stats.bootstrap` (vectorised, in batches
    that bound memory). A BCa interval scipy cannot form (every resample on one side of the
    point value: z0 undefined) falls back to the percentile interval of the same resamples."""
    n = max(s.size for s in samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = scipy_stats.bootstrap(
            samples,
            statistic,
            n_resamples=resamples,
            batch=max(1, _CHUNK_ELEMENTS // n),
            vectorized=True,
            paired=paired,
            axis=-1,
            confidence_level=confidence,
            method=_SCIPY_METHODS[method],
            rng=np.random.default_rng(seed),
        )
    boot = np.asarray(res.bootstrap_distribution, dtype=float)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isnan(low) or math.isnan(high):
        alpha = 1 - confidence
        low, high = (float(q) for q in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    return low, high, boot


def _bounded(value: float, low: float, high: float) -> tuple[float, float]:
    """A point value that equals every resample must not fall outside its CI by rounding."""
    return min(low, value), max(high, value)


def _cluster_totals(
    x: np.ndarray, clusters: Sequence[Hashable] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(sum of scores, item count) per cluster in order of first appearance; None if no clusters."""
    if clusters is None:
        return None
    labels = list(clusters)
    if len(labels) != x.size:
        raise ValueError(f"scores and clusters differ in length: {x.size} != {len(labels)}")
    index: dict[Hashable, int] = {}
    ids = np.fromiter((index.setdefault(c, len(index)) for c in labels), dtype=np.int64)
    return np.bincount(ids, weights=x), np.bincount(ids).astype(float)


def _difference_of_means(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) - b.mean(axis=axis)


def _ratio_of_sums(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    """The item-weighted mean of resampled clusters."""
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def _nan_estimate(n: int, confidence: float, resamples: int, method: str) -> Estimate:
    nan = float("nan")
    return Estimate(nan, nan, nan, n, confidence, resamples, method)


def bootstrap_ci(
    scores: Sequence[float] | np.ndarray,
    *,
    statistic: str | Statistic = "mean",
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    method: str = "percentile",
    clusters: Sequence[Hashable] | None = None,
) -> Estimate:
    """Bootstrap CI of ``statistic`` over per-item scores (0/1, 0.5 for ties, or graded).

    A callable statistic must reduce a (resamples, n) array along its last axis. With
    ``clusters`` (one label per item) whole clusters are resampled; the statistic must then be
    the mean and the method percentile or basic.
    """
    _check(confidence, resamples, method)
    x = _as_scores(scores)
    totals = _cluster_totals(x, clusters)
    if totals is not None and (statistic != "mean" or method == "bca"):
        raise ValueError("a clustered bootstrap supports the mean with percentile or basic CIs")
    n_clusters = None if totals is None else totals[0].size
    if x.size == 0:
        return _nan_estimate(0, confidence, resamples, method)
    fn = _resolve(statistic)
    value = float(fn(x[None, :])[0])
    if x.size == 1 or np.all(x == x[0]) or n_clusters == 1:
        return Estimate(value, value, value, x.size, confidence, resamples, method, n_clusters)
    if totals is not None:
        samples, stat, paired = totals, _ratio_of_sums, True
    else:
        samples, stat, paired = (x,), (lambda s, axis=-1: fn(s)), False
    low, high, _ = _scipy_bootstrap(
        samples,
        stat,
        paired=paired,
        method=method,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )
    low, high = _bounded(value, low, high)
    return Estimate(value, low, high, x.size, confidence, resamples, method, n_clusters)


def grouped_bootstrap_ci(
    scores: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable],
    combine: Callable[[Mapping[Hashable, np.ndarray]], np.ndarray],
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    method: str = "percentile",
) -> Estimate:
    """CI of a statistic built from per-group means, resampling within each group.

    ``combine`` maps {group: array of means} to an array of the same length, e.g. a weighted
    mean of subset accuracies (RewardBench section scores). Groups are resampled in order
    of first appearance, so results are reproducible for a given seed.
    """
    _check(confidence, resamples, method)
    if method == "bca":
        raise ValueError("grouped_bootstrap_ci supports 'percentile' and 'basic', not 'bca'")
    x = _as_scores(scores)
    labels = list(groups)
    if len(labels) != x.size:
        raise ValueError(f"scores and groups differ in length: {x.size} != {len(labels)}")
    if x.size == 0:
        return _nan_estimate(0, confidence, resamples, method)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(labels):
        members.setdefault(g, []).append(i)
    parts = {g: x[idx] for g, idx in members.items()}
    value = float(np.asarray(combine({g: np.array([p.mean()]) for g, p in parts.items()}))[0])
    if all(p.size == 1 or np.all(p == p[0]) for p in parts.values()):
        return Estimate(value, value, value, x.size, confidence, resamples, method)
    # scipy resamples groups of two or more items; a one-item group's mean never changes.
    varying = [g for g, p in parts.items() if p.size > 1]

    def combined(*means_of: np.ndarray, axis: int = -1) -> np.ndarray:
        drawn = {g: m.mean(axis=axis) for g, m in zip(varying, means_of, strict=True)}
        shape = next(iter(drawn.values())).shape
        fixed = {g: np.full(shape, p[0]) for g, p in parts.items() if g not in drawn}
        return np.asarray(combine({g: {**drawn, **fixed}[g] for g in parts}), dtype=float)

    probe = combined(*(parts[g][None, :] for g in varying))
    if probe.shape != (1,):
        raise ValueError(f"combine must return one value per resample, got shape {probe.shape}")
    low, high, _ = _scipy_bootstrap(
        tuple(parts[g] for g in varying),
        combined,
        paired=False,
        method=method,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )
    low, high = _bounded(value, low, high)
    return Estimate(value, low, high, x.size, confidence, resamples, method)


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
    clusters: Sequence[Hashable] | None = None,
) -> dict[str, Any]:
    """Paired bootstrap of mean(a) - mean(b) for two judges scored on the same items.

    The two-sided p-value is twice the smaller share of resampled differences on either
    side of 0 (add-one smoothed, capped at 1). With ``clusters`` whole clusters of items are
    resampled.
    """
    _check(confidence, resamples, "percentile")
    xa, xb = _as_scores(a, "a"), _as_scores(b, "b")
    if xa.size != xb.size:
        raise ValueError(
            f"paired bootstrap needs scores on the same items: len(a)={xa.size} != len(b)={xb.size}"
        )
    diff = xa - xb
    n = diff.size
    totals = _cluster_totals(diff, clusters)
    nan = float("nan")
    if n == 0:
        value = low = high = p_value = nan
    elif np.all(diff == diff[0]) or (totals is not None and totals[0].size == 1):
        value = float(diff.mean())
        low = high = value
        p_value = 1.0 if value == 0 else min(1.0, 2 / (resamples + 1))
    else:
        value = float(diff.mean())
        if totals is not None:
            samples, stat = totals, _ratio_of_sums
        else:
            samples, stat = (xa, xb), _difference_of_means
        low, high, boot = _scipy_bootstrap(
            samples,
            stat,
            paired=True,
            method="percentile",
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
        low, high = _bounded(value, low, high)
        below = (np.count_nonzero(boot <= 0) + 1) / (resamples + 1)
        above = (np.count_nonzero(boot >= 0) + 1) / (resamples + 1)
        p_value = min(1.0, 2 * min(below, above))
    return {
        "difference": None if n == 0 else value,
        "low": None if n == 0 else low,
        "high": None if n == 0 else high,
        "p_value": None if n == 0 else p_value,
        "n": n,
        "confidence": confidence,
        "resamples": resamples,
        "mean_a": float(xa.mean()) if n else None,
        "mean_b": float(xb.mean()) if n else None,
        **({} if totals is None else {"clusters": int(totals[0].size)}),
    }
