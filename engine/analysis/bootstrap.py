"""95% percentile-bootstrap confidence intervals for means, vectorised and seeded.

Images are resampled with replacement; a resample is a row of counts (how often each image
was drawn), so the resampled means of *every* metric of an analysis are two matrix products
(counts @ values, counts @ present). A value may be missing (NaN: a degenerate map, an image
outside a split); a resample's mean is then taken over the images present in it — the usual
bootstrap of a subgroup mean. One pass over the resamples serves the whole analysis.
"""

from __future__ import annotations

import warnings

import numpy as np

from engine.api.results import Stat

RESAMPLES = 2000
CONFIDENCE = 0.95
_CHUNK_ELEMENTS = 1 << 20  # count-matrix elements built at once (8 MB as int64): bounds peak memory


def _resample_counts(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``rows`` multinomial resamples of n items, as a rows x n matrix of draw counts."""
    picks = rng.integers(0, n, size=(rows, n))
    picks += n * np.arange(rows)[:, None]
    return np.bincount(picks.ravel(), minlength=rows * n).reshape(rows, n)


def bootstrap_stats(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                    confidence: float = CONFIDENCE) -> list[Stat]:
    """One ``Stat`` per row of ``values`` (K x n, NaN = missing), all rows resampled together."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    present = np.isfinite(values)
    counts_present = present.sum(axis=1)
    sums = np.where(present, values, 0.0).sum(axis=1)
    means = np.where(counts_present > 0, sums / np.maximum(counts_present, 1), np.nan)
    n = values.shape[1]
    lows = highs = means
    if n > 1 and resamples > 0:
        totals = np.where(present, values, 0.0).T.astype(np.float32)  # n x K; counts are exact in float32
        weights = present.T.astype(np.float32)
        rng = np.random.default_rng(seed)
        chunk = max(1, min(resamples, _CHUNK_ELEMENTS // n))
        resampled = np.empty((resamples, len(values)))
        for start in range(0, resamples, chunk):
            rows = min(chunk, resamples - start)
            counts = _resample_counts(rng, rows, n).astype(np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                resampled[start:start + rows] = (counts @ totals) / (counts @ weights)
        tail = (1 - confidence) / 2 * 100
        lows, highs = means.copy(), means.copy()
        some = counts_present > 0
        with warnings.catch_warnings():  # a tiny subgroup may be absent from some resamples
            warnings.simplefilter("ignore", RuntimeWarning)
            lows[some], highs[some] = np.nanpercentile(resampled[:, some], [tail, 100 - tail], axis=0)
    return [
        Stat(None, None, None, 0) if k == 0 else Stat(float(m), float(lo), float(hi), int(k))
        for m, lo, hi, k in zip(means, lows, highs, counts_present, strict=True)
    ]


def bootstrap_stat(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> Stat:
    """The ``Stat`` of one vector of values (NaNs left out)."""
    return bootstrap_stats(np.asarray(values)[None, :], resamples, seed)[0]
