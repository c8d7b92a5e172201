"""Memory freed by ended runs goes back to the operating system."""

from __future__ import annotations

import gc

import psutil
import pytest

from simulations import memory

pytestmark = pytest.mark.skipif(
    memory._malloc_trim is None, reason="only glibc keeps freed memory from the OS"
)


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def test_memory_that_frames_held_goes_back_once_they_are_freed():
    memory.release_freed_memory(force=True)
    before = rss_mib()
    frames = [("x" * 1000) + str(i) for i in range(40_000)]  # about 40 MiB of frames
    grown = rss_mib() - before
    assert grown > 30
    del frames
    gc.collect()
    assert memory.release_freed_memory(force=True)
    assert rss_mib() - before < grown / 3


def test_memory_is_given_back_at_most_every_few_seconds():
    assert memory.release_freed_memory(force=True)
    assert not memory.release_freed_memory()
