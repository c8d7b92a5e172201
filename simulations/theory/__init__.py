"""Closed-form results the engines are checked against (pure Python).

Each function states the model it holds for; tests compare long seeded runs of
the engines with these figures.
"""

from __future__ import annotations

from .caching import (
    che_hit_ratio,
    fifo_hit_ratio,
    lfu_hit_ratio,
    ttl_hit_ratio,
    zipf_probabilities,
)

__all__ = [
    "che_hit_ratio",
    "fifo_hit_ratio",
    "lfu_hit_ratio",
    "ttl_hit_ratio",
    "zipf_probabilities",
]
