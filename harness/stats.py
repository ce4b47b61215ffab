"""Seeded, vectorised bootstrap confidence intervals for every reported figure.

Plain, stratified (grouped) and paired bootstraps share one resampling routine, so a
given seed draws the same indices whichever entry point is used. Where items come in clusters
(several pairs built from one source prompt), the plain and paired bootstraps of a mean take
`clusters=` and resample whole clusters instead of items, so the CI does not treat correlated
pairs as independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps a (resamples, n) array to a (resamples,) array, reducing along the last axis."""

DEFAULT_RESAMPLES = 10_000
METHODS = ("percentile", "basic", "bca")
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


def _resample(
    x: np.ndarray, statistic: Statistic, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Statistic over ``resamples`` resamples of ``x``, drawn in chunks to bound memory."""
    n = x.size
    chunk = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(resamples, dtype=float)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = statistic(x[idx])
    return out


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


def _resample_clusters(
    sums: np.ndarray, counts: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Item-weighted means over ``resamples`` draws of whole clusters (with replacement)."""

    def ratio(idx: np.ndarray) -> np.ndarray:
        return sums[idx].sum(axis=-1) / counts[idx].sum(axis=-1)

    return _resample(np.arange(sums.size), ratio, resamples, rng)


def _interval(
    value: float, boot: np.ndarray, confidence: float, method: str
) -> tuple[float, float]:
    alpha = 1 - confidence
    q_low, q_high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    if method == "basic":
        q_low, q_high = 2 * value - q_high, 2 * value - q_low
    # A point value that equals every resample must not fall outside by rounding.
    return float(min(q_low, value)), float(max(q_high, value))


def _jackknife(x: np.ndarray, statistic: Statistic) -> np.ndarray:
    """Leave-one-out values of the statistic (closed form for the mean, chunked otherwise)."""
    n = x.size
    if statistic is _NAMED_STATISTICS["mean"]:
        return (x.sum() - x) / (n - 1)
    out = np.empty(n, dtype=float)
    cols = np.arange(n - 1)[None, :]
    chunk = max(1, _CHUNK_ELEMENTS // (n - 1))
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))[:, None]
        out[start : start + rows.shape[0]] = statistic(x[cols + (cols >= rows)])
    return out


def _bca_interval(
    value: float, boot: np.ndarray, x: np.ndarray, statistic: Statistic, confidence: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated (Efron's BCa) interval; percentile when z0 is undefined."""
    normal = NormalDist()
    below = (np.count_nonzero(boot < value) + 0.5 * np.count_nonzero(boot == value)) / boot.size
    if not 0 < below < 1:
        return _interval(value, boot, confidence, "percentile")
    z0 = normal.inv_cdf(below)
    jack = _jackknife(x, statistic)
    d = jack.mean() - jack
    denom = 6 * float(np.sum(d**2)) ** 1.5
    accel = float(np.sum(d**3)) / denom if denom > 0 else 0.0
    alpha = 1 - confidence
    levels = []
    for z in (normal.inv_cdf(alpha / 2), normal.inv_cdf(1 - alpha / 2)):
        levels.append(normal.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))))
    q_low, q_high = np.quantile(boot, levels)
    return float(min(q_low, value)), float(max(q_high, value))


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
    rng = np.random.default_rng(seed)
    if totals is not None:
        boot = _resample_clusters(*totals, resamples, rng)
        low, high = _interval(value, boot, confidence, method)
        return Estimate(value, low, high, x.size, confidence, resamples, method, n_clusters)
    boot = _resample(x, fn, resamples, rng)
    if method == "bca":
        low, high = _bca_interval(value, boot, x, fn, confidence)
    else:
        low, high = _interval(value, boot, confidence, method)
    return Estimate(value, low, high, x.size, confidence, resamples, method)


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
    rng = np.random.default_rng(seed)
    mean = _NAMED_STATISTICS["mean"]
    boot_means = {g: _resample(p, mean, resamples, rng) for g, p in parts.items()}
    boot = np.asarray(combine(boot_means), dtype=float)
    if boot.shape != (resamples,):
        raise ValueError(f"combine must return shape ({resamples},), got {boot.shape}")
    low, high = _interval(value, boot, confidence, method)
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
        rng = np.random.default_rng(seed)
        if totals is not None:
            boot = _resample_clusters(*totals, resamples, rng)
        else:
            boot = _resample(diff, _NAMED_STATISTICS["mean"], resamples, rng)
        low, high = _interval(value, boot, confidence, "percentile")
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
