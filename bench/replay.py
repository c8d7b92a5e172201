#!/usr/bin/env python
"""Replay speed: how long a moment link waits before the visitor's run goes on live.

A moment link replays the named run's timeline to a frame in the worker that takes
the new run (``simulations.runs.replay``). For every engine, a timeline of ``--frames``
frames at ``--speed`` (defaults, seed 1, no controls) is replayed and timed in CPU
seconds; the figure per simulated minute says how long a link into a run of a given
age waits. It prints figures and asserts nothing.

    .venv/bin/python bench/replay.py
    .venv/bin/python bench/replay.py --only queue --frames 6000 --speed 8
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scalelab.settings")

import django  # noqa: E402

django.setup()

from simulations.engines import REGISTRY  # noqa: E402
from simulations.runs.replay import check_timeline, replay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args()
    kinds = args.only or sorted(REGISTRY)
    print(
        f"{args.frames} frames at {args.speed:g}x, 10 frames a second, defaults, seed 1"
    )
    print(
        "| engine | simulated s | CPU s | frames per CPU s | CPU s per simulated minute |"
    )
    print("|---|---:|---:|---:|---:|")
    for kind in kinds:
        timeline = check_timeline(
            {
                "kind": kind,
                "seed": 1,
                "params": {},
                "speed": args.speed,
                "frame_hz": 10,
                "controls": [],
                "last_seq": args.frames,
            },
            limit=args.frames,
        )
        start = time.process_time()
        engine = replay(timeline)
        spent = time.process_time() - start
        simulated = engine.now
        print(
            f"| {kind} | {simulated:,.0f} | {spent:.2f} | {args.frames / spent:,.0f} "
            f"| {spent / simulated * 60:.2f} |"
        )


if __name__ == "__main__":
    main()
