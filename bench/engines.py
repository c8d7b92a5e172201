#!/usr/bin/env python
"""Engine speed benchmark: simulated happenings per CPU second, and queue vs SimPy.

Every registered engine (``simulations.engines.REGISTRY``, so engines added later
are included) runs fast-forward, as ``manage.py simulate`` does, with a busy preset
and a fixed seed, for a budget of CPU time; its speed is ``engine.processed`` (the
arrivals, completions, probes... it simulated one by one) per CPU second
(``time.process_time``). An engine whose class sets ``bench_unit = "queries"`` runs
real SQL: its unit is printed and the 200,000 events per CPU second target does not
apply to it.

Then the ``queue`` engine and SimPy simulate the same M/M/c queue (same arrival and
service rates, same number of workers, same number of customers) in this process;
both speeds, their ratio and both mean waits are printed, beside Erlang C's.

It prints figures and asserts nothing (timings are noisy); run it from the
repository root:

    .venv/bin/python bench/engines.py                    # every engine, then SimPy
    .venv/bin/python bench/engines.py --only queue --seconds 5
    .venv/bin/python bench/engines.py --customers 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulations.engines import REGISTRY  # noqa: E402
from simulations.engines.base import Engine  # noqa: E402
from simulations.theory.caching import curve_sizes, lru_curve, zipf_stream  # noqa: E402
from simulations.theory.erlang import mmc_mean_wait  # noqa: E402

SEED = 1
CHUNK_S = 1.0  # simulated seconds per advance, as ``simulate`` runs
TARGET = 200_000  # simulated events per CPU second, for every event engine
SIMPY_TARGET = 10.0  # the queue engine against SimPy on the same model

# A busy but ordinary setting per kind; a kind missing here runs its defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "cache": {"keys": 100_000, "capacity": 10_000, "read_rate": 5_000},
    "deploy": {
        "servers": 20,
        "strategy": "rolling",
        "batch_size": 4,
        "incompatible": True,
        "request_rate": 5_000,
    },
    "prerender": {
        "mode": "prerendered",
        "request_rate": 2_000,
        "pages": 5_000,
        "regen_interval_s": 60,
        "regen_workers": 8,
    },
    "queue": {"arrival_rate": 800.0, "service_rate": 100.0, "workers": 10},
}
# The M/M/c queue both the queue engine and SimPy simulate: load 0.8 on 10 workers.
MMC = {"arrival_rate": 800.0, "service_rate": 100.0, "workers": 10}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(
    cls: type[Engine], params: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """Run ``cls`` fast-forward for about ``seconds`` of CPU; return what it did."""
    engine = cls(params, seed=SEED)
    engine.advance(CHUNK_S)  # first allocations and caches out of the timing
    start_cpu = time.process_time()
    start_count, start_t = engine.processed, engine.now
    cpu = 0.0
    while cpu < seconds:
        engine.advance_to(engine.now + CHUNK_S)
        cpu = time.process_time() - start_cpu
    count = engine.processed - start_count
    return {
        "simulated_s": engine.now - start_t,
        "count": count,
        "cpu_s": cpu,
        "speed": count / cpu if cpu > 0 else 0.0,
    }


def simpy_mmc(
    customers: int, arrival_rate: float, service_rate: float, workers: int, seed: int
) -> tuple[float, float]:
    """Simulate the M/M/c queue in SimPy; return (CPU seconds, mean wait)."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=workers)
    waits = [0.0, 0]

    def customer():  # noqa: ANN202 - a SimPy process
        arrived = env.now
        with servers.request() as turn:
            yield turn
            waits[0] += env.now - arrived
            waits[1] += 1
            yield env.timeout(rng.expovariate(service_rate))

    def source():  # noqa: ANN202 - a SimPy process
        for _ in range(customers):
            env.process(customer())
            yield env.timeout(rng.expovariate(arrival_rate))

    env.process(source())
    start = time.process_time()
    env.run()
    return time.process_time() - start, waits[0] / waits[1]


def engine_mmc(customers: int) -> tuple[float, int, int, float]:
    """Run the queue engine until ``customers`` arrived; return CPU s, arrivals, events, wait."""
    engine = REGISTRY["queue"](MMC, seed=SEED)
    start = time.process_time()
    # Whole seconds first, then a tenth of a second at a time to land close to
    # the customer count (within about 80 customers).
    per_second = MMC["arrival_rate"]
    while engine.arrived + per_second * 1.5 < customers:
        engine.advance_to(engine.now + 1.0)
    while engine.arrived < customers:
        engine.advance_to(engine.now + 0.1)
    cpu = time.process_time() - start
    return cpu, engine.arrived, engine.processed, engine.metrics()["mean_wait_s"]


def lru_per_size(stream, sizes: list[int]) -> list[float]:
    """Simulate one LRU cache per size over ``stream``: the slow way, for comparison."""
    from collections import OrderedDict

    ratios = []
    for size in sizes:
        cache: OrderedDict[int, None] = OrderedDict()
        hits = 0
        for key in stream:
            if key in cache:
                cache.move_to_end(key)
                hits += 1
            else:
                cache[key] = None
                if len(cache) > size:
                    cache.popitem(last=False)
        ratios.append(hits / len(stream))
    return ratios


def curve_comparison(requests: int, keys: int = 10_000, zipf_s: float = 0.9) -> None:
    """Print the one-pass curve against one LRU simulation per size, same 20 sizes."""
    sizes = curve_sizes(keys)
    stream = zipf_stream(keys, zipf_s, requests, SEED)
    start = time.process_time()
    one_pass = lru_curve(stream, sizes)
    one_pass_cpu = time.process_time() - start
    start = time.process_time()
    per_size = lru_per_size(stream, sizes)
    per_size_cpu = time.process_time() - start
    worst = max(abs(a - b) for a, b in zip(one_pass, per_size))
    print(
        f"\nHit ratio for {len(sizes)} cache sizes (1 to {keys:,}) over {requests:,} Zipf({zipf_s:g}) "
        f"reads of {keys:,} keys, seed {SEED}.\n"
    )
    print("| method | CPU s | reads per CPU second | largest difference |")
    print("|---|---:|---:|---:|")
    print(
        f"| one pass (stack distances) | {one_pass_cpu:.2f} | {fmt(requests / one_pass_cpu)} | |"
    )
    print(
        f"| one LRU simulation per size | {per_size_cpu:.2f} | {fmt(requests * len(sizes) / per_size_cpu)} | "
        f"{worst:.1e} |"
    )
    ratio = per_size_cpu / one_pass_cpu
    print(
        f"\none pass vs one simulation per size, {len(sizes)} sizes: {ratio:.1f}x the speed, same hit ratios"
    )
    every = per_size_cpu / len(sizes) * keys
    print(
        f"for every size from 1 to {keys:,} the one pass costs the same {one_pass_cpu:.2f} CPU s; one "
        f"simulation per size would take about {every:,.0f} CPU s ({every / one_pass_cpu:,.0f}x)"
    )


def fmt(value: float) -> str:
    return f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="KIND", help="Measure one engine kind only.")
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="CPU seconds to run each engine (default 2).",
    )
    parser.add_argument(
        "--curve-requests",
        type=int,
        default=500_000,
        help="Reads in the one-pass curve comparison (default 500,000; 0 skips it).",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=400_000,
        help="Customers in the queue vs SimPy comparison (default 400,000).",
    )
    args = parser.parse_args(argv)
    if args.only and args.only not in REGISTRY:
        parser.error(
            f"--only: unknown kind {args.only!r}; kinds: {', '.join(sorted(REGISTRY))}"
        )
    if not args.seconds > 0:
        parser.error("--seconds must be more than 0")
    if args.customers < 1000:
        parser.error("--customers must be at least 1000")
    kinds = [args.only] if args.only else sorted(REGISTRY)

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}"
    )
    print(
        f"Command: .venv/bin/python bench/engines.py {' '.join(sys.argv[1:])}".rstrip()
    )
    print(
        f"Seed {SEED}; each engine runs fast-forward in {CHUNK_S:g} s steps for "
        f"{args.seconds:g} CPU s.\n"
    )
    print(
        "| engine | preset | simulated s | happenings | CPU s | per CPU second | target |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    missed = []
    for kind in kinds:
        cls = REGISTRY[kind]
        params = PRESETS.get(kind, {})
        result = measure(cls, params, args.seconds)
        unit = getattr(cls, "bench_unit", "events")
        preset = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        if unit == "events":
            met = result["speed"] >= TARGET
            verdict = f"{'met' if met else 'MISSED'} (>= {TARGET:,} {unit}/s)"
            if not met:
                missed.append(kind)
        else:
            verdict = f"n/a ({unit})"
        print(
            f"| {kind} | {preset} | {result['simulated_s']:,.0f} | {fmt(result['count'])} "
            f"{unit} | {result['cpu_s']:.2f} | {fmt(result['speed'])} {unit}/s | {verdict} |"
        )

    if "queue" in kinds:
        lam, mu, c = MMC["arrival_rate"], MMC["service_rate"], MMC["workers"]
        print(
            f"\nM/M/c: arrival rate {lam:g}/s, service rate {mu:g}/s per worker, {c} workers "
            f"(load {lam / (c * mu):.2f}), {args.customers:,} customers, seed {SEED}.\n"
        )
        engine_cpu, arrived, events, engine_wait = engine_mmc(args.customers)
        simpy_cpu, simpy_wait = simpy_mmc(args.customers, lam, mu, c, SEED)
        engine_speed = arrived / engine_cpu
        simpy_speed = args.customers / simpy_cpu
        ratio = engine_speed / simpy_speed
        print(
            "| simulator | customers | CPU s | customers per CPU second | mean wait (s) |"
        )
        print("|---|---:|---:|---:|---:|")
        print(
            f"| queue engine | {arrived:,} | {engine_cpu:.2f} | {fmt(engine_speed)} "
            f"({fmt(events / engine_cpu)} events/s) | {engine_wait:.6f} |"
        )
        print(
            f"| SimPy | {args.customers:,} | {simpy_cpu:.2f} | {fmt(simpy_speed)} | "
            f"{simpy_wait:.6f} |"
        )
        print(f"| Erlang C (theory) | | | | {mmc_mean_wait(lam, mu, c):.6f} |")
        verdict = "met" if ratio >= SIMPY_TARGET else "MISSED"
        print(
            f"\nqueue engine / SimPy: {ratio:.1f}x ({verdict}; target >= {SIMPY_TARGET:g}x)"
        )
        if ratio < SIMPY_TARGET:
            missed.append("queue vs SimPy")
    if args.curve_requests and (not args.only or args.only == "cache"):
        curve_comparison(args.curve_requests)
    if missed:
        print(f"\nTargets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
