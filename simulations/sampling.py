"""Sampling tables shared by engines and the theory they are checked against (pure Python)."""

from __future__ import annotations

from array import array
from functools import lru_cache


@lru_cache(maxsize=8)
def zipf_cdf(keys: int, s: float) -> array:
    """Return the cumulative Zipf(s) popularity of keys 0..keys-1 (shared, read-only).

    Key ``i`` is drawn with ``bisect_right(cdf, u)`` for a uniform ``u``; engines and
    the one-pass curve use this one table, so their request streams agree bit for bit.
    """
    cdf = array("d", bytes(8 * keys))
    total = 0.0
    for i in range(keys):
        total += 1.0 / (i + 1) ** s
        cdf[i] = total
    for i in range(keys):
        cdf[i] /= total
    cdf[keys - 1] = 1.0
    return cdf
