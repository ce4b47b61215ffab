"""Bootstrap CIs: coverage of a known case, seeding, edge cases, grouped and paired forms."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from rubric_arm.harness.stats import (
    DEFAULT_RESAMPLES,
    Estimate,
    bootstrap_ci,
    grouped_bootstrap_ci,
    paired_bootstrap,
)


def _bernoulli(p: float, n: int, seed: int = 1) -> np.ndarray:
    """Exactly round(p * n) ones, shuffled, so the sample mean is p."""
    x = np.zeros(n)
    x[: round(p * n)] = 1.0
    return np.random.default_rng(seed).permutation(x)


def test_known_case_matches_normal_approximation() -> None:
    p, n = 0.7, 1000
    est = bootstrap_ci(_bernoulli(p, n))
    assert est.value == pytest.approx(p)
    assert est.low < p < est.high
    normal_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
    assert (est.high - est.low) == pytest.approx(normal_width, rel=0.15)
    assert (est.n, est.confidence, est.method) == (n, 0.95, "percentile")


def test_basic_method_and_callable_statistic() -> None:
    x = _bernoulli(0.7, 500)
    basic = bootstrap_ci(x, method="basic", resamples=2000)
    assert basic.low < 0.7 < basic.high and basic.method == "basic"
    est = bootstrap_ci(x, statistic=lambda s: s.sum(axis=-1) / s.shape[-1], resamples=2000)
    assert est == bootstrap_ci(x, resamples=2000)


def test_seeded_reproducibility() -> None:
    x = _bernoulli(0.6, 300)
    a, b = bootstrap_ci(x, seed=7), bootstrap_ci(x, seed=7)
    assert a == b
    c = bootstrap_ci(x, seed=8)
    assert (c.low, c.high) != (a.low, a.high)
    assert c.low == pytest.approx(a.low, abs=0.02) and c.high == pytest.approx(a.high, abs=0.02)


def test_default_resamples_at_least_ten_thousand() -> None:
    assert DEFAULT_RESAMPLES >= 10_000
    assert bootstrap_ci([0.0, 1.0]).resamples >= 10_000
    assert paired_bootstrap([0.0, 1.0], [1.0, 1.0])["resamples"] >= 10_000


def test_edge_cases_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = bootstrap_ci([])
        one = bootstrap_ci([0.5])
        const = bootstrap_ci([1.0] * 50)
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.low)
    assert empty.to_dict()["value"] is None and str(empty) == "n/a (n=0)"
    assert (one.value, one.low, one.high, one.n) == (0.5, 0.5, 0.5, 1)
    assert (const.value, const.low, const.high, const.n) == (1.0, 1.0, 1.0, 50)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"scores\[1\] is not finite"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 0.0], confidence=1.5)
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci([1.0, 0.0], method="studentized")
    with pytest.raises(ValueError, match="unknown statistic"):
        bootstrap_ci([1.0, 0.0], statistic="mode")


def test_format_and_dict() -> None:
    est = Estimate(0.7134, 0.6812, 0.7441, 512, 0.95, 10_000, "percentile")
    assert str(est) == "71.3 [68.1, 74.4] (n=512)"
    assert est.fmt(scale=1, digits=3) == "0.713 [0.681, 0.744] (n=512)"
    assert json.loads(json.dumps(est.to_dict()))["n"] == 512


def test_grouped_single_group_equals_plain() -> None:
    x = _bernoulli(0.65, 400)
    grouped = grouped_bootstrap_ci(x, ["all"] * x.size, lambda m: 1.0 * m["all"], seed=3)
    assert grouped == bootstrap_ci(x, seed=3)


def test_grouped_weighted_combination() -> None:
    a, b = _bernoulli(0.9, 100), _bernoulli(0.5, 300, seed=2)
    scores = np.concatenate([a, b])
    groups = ["a"] * a.size + ["b"] * b.size
    weights = {"a": 0.25, "b": 0.75}

    def combine(means: dict) -> np.ndarray:
        return sum(weights[g] * m for g, m in means.items())

    est = grouped_bootstrap_ci(scores, groups, combine, resamples=2000)
    assert est.value == pytest.approx(0.25 * 0.9 + 0.75 * 0.5)
    assert est.low < est.value < est.high and est.n == 400
    assert est == grouped_bootstrap_ci(scores, groups, combine, resamples=2000)
    with pytest.raises(ValueError, match="differ in length"):
        grouped_bootstrap_ci(scores, groups[:-1], combine)


def test_paired_identical_judges() -> None:
    x = _bernoulli(0.7, 200)
    res = paired_bootstrap(x, x)
    assert res["difference"] == 0.0 and res["p_value"] == 1.0 and res["n"] == 200
    y = _bernoulli(0.7, 200, seed=5)
    res = paired_bootstrap(x, y, resamples=2000)
    assert res["difference"] == pytest.approx(0.0) and res["p_value"] > 0.5


def test_paired_always_right_vs_always_wrong() -> None:
    res = paired_bootstrap(np.ones(50), np.zeros(50))
    assert res["difference"] == 1.0 and res["p_value"] < 1e-3
    x = _bernoulli(0.9, 300)
    res = paired_bootstrap(x, 1 - x, resamples=2000)
    assert res["difference"] == pytest.approx(0.8) and res["p_value"] < 1e-3
    assert res["low"] < 0.8 < res["high"]


def test_paired_length_mismatch_and_empty() -> None:
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1.0, 0.0], [1.0])
    res = paired_bootstrap([], [])
    assert res["n"] == 0 and res["difference"] is None and res["p_value"] is None


def test_large_n_memory_bounded() -> None:
    est = bootstrap_ci(_bernoulli(0.5, 100_000), resamples=200)
    assert est.low < 0.5 < est.high


def test_bca_matches_percentile_on_symmetric_data_and_shifts_on_skewed_data():
    sym = _bernoulli(0.5, 2000)
    pct = bootstrap_ci(sym, seed=3)
    bca = bootstrap_ci(sym, seed=3, method="bca")
    assert abs(bca.low - pct.low) < 0.01 and abs(bca.high - pct.high) < 0.01
    skewed = np.random.default_rng(5).exponential(size=300)
    pct = bootstrap_ci(skewed, seed=3)
    bca = bootstrap_ci(skewed, seed=3, method="bca")
    assert bca.low <= bca.value <= bca.high
    assert bca.high > pct.high and bca.low > pct.low, (pct, bca)


def test_bca_with_a_callable_statistic_uses_the_generic_jackknife():
    x = np.random.default_rng(2).normal(size=120)
    est = bootstrap_ci(x, statistic=lambda a: np.mean(a, axis=-1), seed=1, method="bca")
    ref = bootstrap_ci(x, seed=1, method="bca")
    assert est.low == pytest.approx(ref.low) and est.high == pytest.approx(ref.high)


def test_grouped_bca_is_refused():
    with pytest.raises(ValueError, match="bca"):
        grouped_bootstrap_ci([1.0, 0.0], ["a", "a"], lambda m: m["a"], method="bca")


def test_clustered_bootstrap_of_copies_equals_plain_bootstrap_of_originals() -> None:
    # Four identical copies of each item, clustered, carry the information of one item: the
    # clustered CI must equal the plain CI of the originals (same seed, same draws).
    x = _bernoulli(0.6, 80)
    copies = np.repeat(x, 4)
    labels = np.repeat(np.arange(80), 4).tolist()
    plain = bootstrap_ci(x, seed=3)
    clustered = bootstrap_ci(copies, clusters=labels, seed=3)
    naive = bootstrap_ci(copies, seed=3)
    assert clustered.clusters == 80 and clustered.n == 320
    assert clustered.value == pytest.approx(plain.value)
    assert (clustered.low, clustered.high) == pytest.approx((plain.low, plain.high))
    assert naive.high - naive.low < 0.6 * (clustered.high - clustered.low)


def test_clustered_bootstrap_weights_clusters_by_size() -> None:
    # The point value is the item mean, and resampled means weight clusters by their size.
    x = np.array([1.0, 1.0, 1.0, 0.0])
    est = bootstrap_ci(x, clusters=["a", "a", "a", "b"], seed=0)
    assert est.value == 0.75 and est.clusters == 2
    assert est.low == 0.0 and est.high == 1.0
    single = bootstrap_ci(x, clusters=["a"] * 4)
    assert (single.low, single.high, single.clusters) == (0.75, 0.75, 1)


def test_clustered_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_ci([1.0, 0.0], clusters=["a"])
    with pytest.raises(ValueError, match="clustered bootstrap"):
        bootstrap_ci([1.0, 0.0], clusters=["a", "b"], method="bca")
    with pytest.raises(ValueError, match="clustered bootstrap"):
        bootstrap_ci([1.0, 0.0], clusters=["a", "b"], statistic="median")
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0, 0.0], [0.0, 0.0], clusters=["a"])


def test_estimate_dict_has_clusters_only_when_clustered() -> None:
    assert "clusters" not in bootstrap_ci([1.0, 0.0, 1.0]).to_dict()
    assert bootstrap_ci([1.0, 0.0, 1.0], clusters=["a", "b", "b"]).to_dict()["clusters"] == 2


def test_paired_clustered_bootstrap_of_copies_equals_plain() -> None:
    a, b = _bernoulli(0.7, 60, seed=1), _bernoulli(0.5, 60, seed=2)
    labels = np.repeat(np.arange(60), 3).tolist()
    plain = paired_bootstrap(a, b, seed=5)
    clustered = paired_bootstrap(np.repeat(a, 3), np.repeat(b, 3), seed=5, clusters=labels)
    assert clustered["clusters"] == 60 and clustered["n"] == 180
    assert "clusters" not in plain
    for key in ("difference", "low", "high", "p_value"):
        assert clustered[key] == pytest.approx(plain[key])
