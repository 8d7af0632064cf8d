"""Bootstrap intervals: they cover the true mean about 95% of the time, and handle gaps."""

import numpy as np

from engine.analysis.bootstrap import bootstrap_stat, bootstrap_stats


def test_coverage_of_the_true_mean_is_about_95_percent():
    rng = np.random.default_rng(123)
    trials, n, true_mean = 400, 80, 0.3
    samples = true_mean + rng.normal(0.0, 1.0, size=(trials, n))
    stats = bootstrap_stats(samples, resamples=1000, seed=7)
    covered = np.mean([s.ci_low <= true_mean <= s.ci_high for s in stats])
    assert 0.91 <= covered <= 0.98, covered
    assert all(s.ci_low < s.mean < s.ci_high for s in stats)


def test_seeded_and_reproducible():
    values = np.random.default_rng(0).random(50)
    assert bootstrap_stat(values, seed=3) == bootstrap_stat(values, seed=3)


def test_missing_values_are_left_out():
    values = np.array([[1.0, np.nan, 3.0, np.nan], [np.nan] * 4, [np.nan, 2.0, np.nan, np.nan]])
    full, empty, single = bootstrap_stats(values, resamples=200)
    assert full.n == 2 and full.mean == 2.0 and 1.0 <= full.ci_low <= full.ci_high <= 3.0
    assert empty.n == 0 and empty.mean is None and empty.ci_low is None
    assert single.n == 1 and single.mean == single.ci_low == single.ci_high == 2.0
