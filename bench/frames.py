#!/usr/bin/env python
"""What the live picture and the theory cost a frame: bytes and CPU time.

For every engine, with the busy presets of ``bench/engines.py``, a world is warmed
up for 30 simulated seconds, then 100 frames of 0.1 s are made as a live run makes
them (``driver.engine_frame``) and sent to JSON. Each engine runs twice in this one
process: once as it is, and once with ``picture()`` and ``theory()`` answering
nothing (the frame as it was before pictures and theory), so the two columns
compare like with like on the same machine at the same moment. The theory cache is
cleared first, so the one computation per setting is counted too. It prints the
median frame size and the mean CPU time per frame; it asserts nothing.

    .venv/bin/python bench/frames.py
    .venv/bin/python bench/frames.py --only cache --frames 300
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalelab.settings")

import django  # noqa: E402

django.setup()

from engines import PRESETS, SEED  # noqa: E402

from simulations.engines import REGISTRY, base  # noqa: E402
from simulations.runs.driver import engine_frame  # noqa: E402

WARMUP_S = 30.0
PERIOD_S = 0.1


def measure(kind: str, frames: int, *, bare: bool) -> tuple[float, float]:
    engine = REGISTRY[kind](PRESETS.get(kind, {}), seed=SEED)
    if bare:
        engine.picture = lambda: None  # type: ignore[method-assign]
        engine.theory = lambda: ({}, {})  # type: ignore[method-assign]
        engine.theory_names = lambda: {}  # type: ignore[method-assign]
    base._theory_cache.clear()
    engine.advance(WARMUP_S)
    sizes = []
    spent = 0.0
    for _ in range(frames):
        events = engine.advance(PERIOD_S)
        start = time.process_time()
        text = json.dumps(engine_frame(engine, events), separators=(",", ":"))
        spent += time.process_time() - start
        sizes.append(len(text))
    return statistics.median(sizes), spent / frames * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    print(
        "| engine | frame bytes before | after | CPU ms a frame before | after |\n"
        "|---|---:|---:|---:|---:|"
    )
    for kind in args.only or sorted(REGISTRY):
        size0, cpu0 = measure(kind, args.frames, bare=True)
        size1, cpu1 = measure(kind, args.frames, bare=False)
        print(f"| {kind} | {size0:,.0f} | {size1:,.0f} | {cpu0:.3f} | {cpu1:.3f} |")


if __name__ == "__main__":
    main()
