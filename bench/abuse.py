#!/usr/bin/env python
"""Abuse benchmark: one address floods run creation; does everyone else get served?

Targets, for each mode: while one address (127.0.0.1) asks for new runs as fast as
``--flooders`` threads can, each request with a fresh session (the page first, for
its cookies, then ``POST /api/runs/``), for ``--seconds`` seconds,

- a visitor from another address (127.0.0.2) watching a run of their own receives at
  least 9.5 frames a second of the 10 sent;
- the pages that visitor loads, one after another (the lesson list, the sandbox list,
  the cache sandbox), answer with a p99 under 500 ms;
- no request, from either address, is answered with a 5xx;
- once the flood's runs have stopped (no one watches them: they stop when
  ``SCALELAB_RUN_IDLE_S`` has passed, 15 s here) and their frames are retired, the
  memory of the web and worker processes is back within 10 % of its size before.

The app runs with its default limits (per address, per visitor, for the site); only
the idle time is shortened, so the bench does not wait a minute for the flood's runs
to end. Each mode gets its own stack on 127.0.0.1 (``bench/memory.py``'s: Daphne and,
distributed, one Celery worker on a Redis database of its own, emptied before and
after; SQLite).

    .venv/bin/python bench/abuse.py                  # both modes
    .venv/bin/python bench/abuse.py --mode embedded --seconds 10

It prints figures; it asserts nothing. Only loopback is a target; the flood is
bounded by ``--seconds`` and every request by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import MemStack, RssSampler, mib  # noqa: E402 - the sibling's stack
from stream import (  # noqa: E402
    UNLIMITED,
    api_headers,
    bench_parser,
    cookies_of,
    fmt,
    http_request,
    log,
    pct,
)

FLOODER = "127.0.0.1"
VISITOR = "127.0.0.2"
IDLE_S = 15
FPS_TARGET = 9.5
PAGE_P99_TARGET_MS = 500.0
MEMORY_TARGET = 1.10
PAGES = ("/", "/sandbox/", "/sandbox/cache/")


class AbuseStack(MemStack):
    """The memory benchmark's stack with the app's own limits, and a short idle."""

    def env(self) -> dict[str, str]:
        env = super().env()
        for name in UNLIMITED:
            env.pop(name)
        env["SCALELAB_RUN_IDLE_S"] = str(IDLE_S)
        return env


def request(
    port: int,
    method: str,
    path: str,
    source: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    return http_request(port, method, path, headers, body, timeout=15, source=source)


def new_visitor(port: int, source: str) -> dict[str, str]:
    """Open the sandbox page as a new visitor; the headers its API calls carry."""
    status, headers, _ = request(port, "GET", "/sandbox/cache/", source)
    if status != 200:
        raise RuntimeError(f"GET /sandbox/cache/ from {source} answered {status}")
    return api_headers(port, cookies_of(headers, {}), "/sandbox/cache/")


def start_run(port: int, source: str, head: dict[str, str], seed: int):
    body = json.dumps({"kind": "cache", "seed": seed})
    return request(port, "POST", "/api/runs/", source, head, body)


class Flood:
    """Threads that ask for runs with fresh sessions until told to stop."""

    def __init__(self, port: int, threads: int) -> None:
        self.port = port
        self.halt = threading.Event()
        self.codes: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.run_ids: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True)
            for n in range(threads)
        ]

    def _loop(self, n: int) -> None:
        seed = n * 1_000_000
        while not self.halt.is_set():
            seed += 1
            try:
                head = new_visitor(self.port, FLOODER)
                status, _, body = start_run(self.port, FLOODER, head, seed)
            except Exception as exc:  # noqa: BLE001 - counted, the flood goes on
                with self.lock:
                    self.errors[type(exc).__name__] += 1
                continue
            with self.lock:
                self.codes[status] += 1
                if status == 201:
                    self.run_ids.append(json.loads(body)["id"])

    def start(self) -> Flood:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.halt.set()
        for t in self.threads:
            t.join(20)


class Pages:
    """The other visitor loading pages, one after another, timing each."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.halt = threading.Event()
        self.ms: list[float] = []
        self.codes: Counter[int] = Counter()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        n = 0
        while not self.halt.wait(0.05):
            path = PAGES[n % len(PAGES)]
            n += 1
            t = time.perf_counter()
            try:
                status, _, _ = request(self.port, "GET", path, VISITOR)
            except Exception:  # noqa: BLE001 - a failed page counts as a failure
                status = 599
            self.ms.append(1000 * (time.perf_counter() - t))
            self.codes[status] += 1

    def start(self) -> Pages:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(20)


async def watch(port: int, run_id: str, cookie: str, arrivals: list[float], halt):
    """Watch a run from the other address, acknowledging as the browser does."""
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://127.0.0.1:{port}/ws/runs/{run_id}/?after=0",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie},
        local_addr=(VISITOR, 0),
        proxy=None,
        compression=None,
        ping_interval=None,
        open_timeout=30,
        close_timeout=1,
        max_size=4 * 2**20,
    ) as ws:
        acked = 0
        while not halt.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                continue
            message = json.loads(text)
            if message.get("type") == "frame":
                arrivals.append(time.monotonic())
                if message["seq"] - acked >= 5:
                    acked = message["seq"]
                    await ws.send(json.dumps({"type": "seen", "seq": acked}))


def statuses(port: int, run_ids: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for run_id in run_ids:
        try:
            status, _, body = request(port, "GET", f"/api/runs/{run_id}/", VISITOR)
            counts[json.loads(body)["status"] if status == 200 else str(status)] += 1
        except Exception as exc:  # noqa: BLE001
            counts[type(exc).__name__] += 1
    return counts


async def measure(stack: AbuseStack, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    port = stack.port
    processes = stack.processes()
    sampler = RssSampler(processes).start()
    head = await loop.run_in_executor(None, new_visitor, port, VISITOR)
    status, _, body = await loop.run_in_executor(
        None, start_run, port, VISITOR, head, 7
    )
    if status != 201:
        raise RuntimeError(f"the visitor's run was refused: {status} {body[:200]!r}")
    watched = json.loads(body)["id"]
    arrivals: list[float] = []
    halt = threading.Event()
    watcher = asyncio.ensure_future(
        watch(port, watched, head["Cookie"], arrivals, halt)
    )
    await asyncio.sleep(5)
    start = sampler.sample()
    log(
        f"{stack.mode}: watching run {watched} from {VISITOR}; starting size "
        + ", ".join(f"{n} {mib(u['rss'])} MiB" for n, u in start.items())
    )

    pages = Pages(port).start()
    flood = Flood(port, args.flooders).start()
    t0 = time.monotonic()
    await asyncio.sleep(args.seconds)
    flood.stop()
    t1 = time.monotonic()
    await asyncio.sleep(2)
    pages.stop()
    during = [t for t in arrivals if t0 <= t < t1]
    fps = len(during) / (t1 - t0)
    log(
        f"{stack.mode}: flood over: {dict(flood.codes)} from {FLOODER} "
        f"({sum(flood.errors.values())} failed requests), the watched run "
        f"{fps:.2f} frames/s, pages p99 {fmt(pct(pages.ms, 0.99))} ms"
    )

    # The flood's runs stop on their own (nobody watches them); then their frames
    # are retired; then the size settles.
    deadline = time.monotonic() + IDLE_S + 60
    while True:
        stack.check_alive()
        counts = await loop.run_in_executor(None, statuses, port, flood.run_ids)
        if not any(counts[s] for s in ("running", "paused")):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    stopped_at = time.monotonic()
    log(f"{stack.mode}: the flood's runs: {dict(counts)}; waiting for retirement")
    await asyncio.sleep(args.retire)
    while time.monotonic() - stopped_at < args.retire + args.settle:
        recent = sampler.since(10)
        if len(recent) >= 10 and all(
            max(r[n] for r in recent) <= 1.01 * min(r[n] for r in recent)
            for n, _ in processes
        ):
            break
        await asyncio.sleep(1)
    end = sampler.sample()
    halt.set()
    await asyncio.wait([watcher], timeout=5)
    sampler.stop()
    rows = []
    for name, _ in processes:
        ratio = end[name]["rss"] / start[name]["rss"]
        rows.append(
            {
                "process": name,
                "rss_start": start[name]["rss"],
                "rss_peak": sampler.peak[name],
                "rss_end": end[name]["rss"],
                "ratio": ratio,
                "met": ratio <= MEMORY_TARGET,
            }
        )
    fivexx = sum(n for code, n in flood.codes.items() if code >= 500) + sum(
        n for code, n in pages.codes.items() if code >= 500
    )
    return {
        "mode": stack.mode,
        "seconds": round(t1 - t0, 1),
        "flooders": args.flooders,
        "flood_codes": dict(sorted(flood.codes.items())),
        "flood_failed_requests": dict(flood.errors),
        "flood_runs": len(flood.run_ids),
        "flood_runs_at_end": dict(counts),
        "watched_fps": fps,
        "watched_fps_met": fps >= FPS_TARGET,
        "pages": len(pages.ms),
        "page_codes": dict(sorted(pages.codes.items())),
        "page_p50_ms": pct(pages.ms, 0.5),
        "page_p99_ms": pct(pages.ms, 0.99),
        "page_p99_met": pct(pages.ms, 0.99) < PAGE_P99_TARGET_MS,
        "fivexx": fivexx,
        "processes": rows,
        "log_problems": stack.log_problems(),
    }


def table(results: list[dict[str, Any]], seconds: float) -> str:
    rows = [
        f"| mode | flood answers ({seconds:g} s) | runs it got | watched run | pages p99 | 5xx | process | memory start → end | end / start |",
        "|---|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['mode']} | FAILED: {r['error'][:200]} |||||||| ")
            continue
        codes = ", ".join(f"{n}×{c}" for c, n in r["flood_codes"].items())
        for i, p in enumerate(r["processes"]):
            lead = (
                f"| {r['mode']} | {codes} | {r['flood_runs']} | {fmt(r['watched_fps'], 2)} frames/s "
                f"| {fmt(r['page_p99_ms'])} ms | {r['fivexx']} "
                if i == 0
                else "| | | | | | "
            )
            rows.append(
                lead
                + f"| {p['process']} | {mib(p['rss_start'])} → {mib(p['rss_end'])} MiB "
                f"| {fmt(p['ratio'], 3)} |"
            )
    return "\n".join(rows)


def main() -> int:
    parser = bench_parser(__doc__, modes=True)
    parser.add_argument("--seconds", type=float, default=30.0, help="flood length")
    parser.add_argument("--flooders", type=int, default=4, help="flooding threads")
    parser.add_argument(
        "--retire",
        type=float,
        default=65.0,
        help="seconds to wait after the flood's runs stopped (their frames stay 60 s)",
    )
    parser.add_argument(
        "--settle", type=float, default=60.0, help="then at most this long to settle"
    )
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--hz", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = ["embedded", "distributed"] if args.mode == "both" else [args.mode]
    results = []
    for mode in modes:
        stack = AbuseStack(args, mode)
        try:
            stack.start()
            results.append(asyncio.run(measure(stack, args)))
        except Exception as exc:  # noqa: BLE001 - reported in the table
            log(f"{mode}: failed: {exc}")
            results.append({"mode": mode, "error": str(exc)})
        finally:
            stack.stop()
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print(table(results, args.seconds))
        for r in results:
            if r.get("log_problems"):
                print(f"\n{r['mode']}: log lines worth a look:")
                for name, lines in r["log_problems"].items():
                    print(f"  {name}: " + "\n    ".join(lines))
    ok = all(
        "error" not in r
        and r["watched_fps_met"]
        and r["page_p99_met"]
        and not r["fivexx"]
        and all(p["met"] for p in r["processes"])
        for r in results
    )
    print(
        "\nall targets met" if ok else "\nnot every target met",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
