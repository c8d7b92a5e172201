#!/usr/bin/env python
"""Memory benchmark: do the web and worker processes give back what runs took?

Target: the memory (RSS) of the web and worker processes is back within 20 % of its
starting size after 500 runs have started and stopped, in both modes.

For each mode it starts its own stack as real processes on 127.0.0.1:

- distributed: Daphne (``manage.py serve``) and one Celery worker process, on a Redis
  database of its own on the local Redis (emptied before and after) and a SQLite file;
- embedded: ``manage.py serve`` without ``REDIS_URL``: one process, the web and the
  worker (its scheduler, on a thread), a SQLite file.

Then: the RSS of each process (with its children, if any) once it answers ("boot");
one warm-up run started, watched and stopped, and the RSS again: the **starting
size**. Then ``--runs`` runs in waves of ``--wave``: each wave is created by a new
visitor through the HTTP API, each of its runs watched by one websocket viewer that
carries the visitor's session (so it is the run's owner) and acknowledges frames as
the browser does, for ``--watch`` seconds; then every viewer sends
``{"type": "stop"}`` and waits for the run's ``stopped`` status. Once every wave is
done, it waits for the stopped runs to be retired (a stopped run's frames stay 60 s
after it ends, in the web process in embedded mode, in Redis in distributed mode)
and for the RSS to settle, bounded by ``--settle`` seconds, and records the **end**
size. The peak is the largest RSS sampled (every 0.5 s) from boot to end.

    .venv/bin/python bench/memory.py                       # 500 runs, waves of 50, both modes
    .venv/bin/python bench/memory.py --runs 40 --wave 20 --mode embedded
    .venv/bin/python bench/memory.py --json

It prints figures; it asserts nothing. RSS is what the kernel counts resident: memory
Python has freed but not given back to the system (a fragmented arena) counts, as it
does for the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream import (  # noqa: E402 - the sibling benchmark's stack helpers
    CELERY,
    PYTHON,
    ROOT,
    RUNS_PER_VISITOR,
    SERVE,
    UNLIMITED,
    add_shared,
    bench_parser,
    create_runs,
    fmt,
    free_port,
    http_get,
    interrupt_on_sigterm,
    keep_or_clean,
    log,
    print_results,
    problems_in_logs,
    run_stack,
    spawn_logged,
    stop_processes,
    visitor,
)

try:
    sys.path.insert(0, str(ROOT))
    from simulations.transport import RETIRED_TTL  # noqa: E402
except Exception:  # noqa: BLE001 - the app's value when this was written
    RETIRED_TTL = 60

TARGET_RATIO = 1.2
# What the resident size is made of (Linux): private memory, mapped files, shared memory.
RSS_KINDS = ("RssAnon", "RssFile", "RssShmem")
MiB = 2**20
SAMPLE_S = 0.5


def mib(n: float | None) -> str:
    return fmt(None if n is None else n / MiB)


# The stack ---------------------------------------------------------------------


class MemStack:
    """Daphne (and, distributed, one Celery worker), started and stopped here."""

    def __init__(self, args: argparse.Namespace, mode: str) -> None:
        self.args = args
        self.mode = mode
        self.scratch = Path(tempfile.mkdtemp(prefix=f"scalelab-memory-{mode}-"))
        self.port = free_port()
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.redis: redis.Redis | None = None
        if mode == "distributed":
            self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
            self.redis = redis.Redis.from_url(
                self.redis_url, socket_timeout=10, socket_connect_timeout=3
            )

    def env(self) -> dict[str, str]:
        drop = ("REDIS_URL", "DATABASE_URL")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SCALELAB_", "DJANGO_", "CELERY_")) and k not in drop
        }
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.scratch / 'memory.sqlite3'}",
                "SECRET_KEY": "bench-" + os.urandom(16).hex(),
                "DEBUG": "0",
                "ALLOWED_HOSTS": "127.0.0.1",
                **UNLIMITED,
                "SCALELAB_RUN_IDLE_S": "3600",
                "SCALELAB_FRAME_HZ": str(self.args.hz),
                "SCALELAB_WORKER_THREADS": str(self.args.concurrency),
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.redis is not None:
            env["REDIS_URL"] = self.redis_url
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.procs.append((name, spawn_logged(self.scratch, name, argv, env)))

    def start(self) -> None:
        if self.redis is not None:
            self.redis.flushdb()
        env = self.env()
        log(
            f"{self.mode}: "
            + (f"Redis db {self.args.redis_db}, " if self.redis is not None else "")
            + f"SQLite, logs in {self.scratch}"
        )
        done = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode:
            raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")
        self._spawn(
            "web", [*SERVE, "--host", "127.0.0.1", "--port", str(self.port)], env
        )
        if self.redis is not None:
            self._spawn(
                "worker",
                [
                    *CELERY,
                    "-A",
                    "scalelab",
                    "worker",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(self.args.concurrency),
                    "--loglevel",
                    "WARNING",
                    "-n",
                    "benchmem@%h",
                ],
                env,
            )
        deadline = time.monotonic() + 60
        while True:
            self.check_alive()
            try:
                status, _, _ = http_get(self.port, "/api/engines/", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the web process on port {self.port} did not answer within 60 s"
                )
            time.sleep(0.2)
        log(f"{self.mode}: serving on 127.0.0.1:{self.port}")

    def processes(self) -> list[tuple[str, int]]:
        """(what it is, pid) of every process measured."""
        if self.mode == "embedded":
            return [("web + worker (one process)", self.procs[0][1].pid)]
        names = {"web": "web (Daphne)", "worker": "worker (Celery)"}
        return [(names[name], proc.pid) for name, proc in self.procs]

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.scratch / (name + '.log')}"
                )

    def stop(self) -> None:
        """Stop every process started here (TERM, then KILL), bounded in time."""
        stop_processes([proc for _, proc in self.procs], grace=15)
        if self.redis is not None:
            try:
                self.redis.flushdb()
            except Exception as exc:  # noqa: BLE001
                log(f"could not flush Redis db {self.args.redis_db}: {exc}")

    def log_problems(self, limit: int = 12) -> dict[str, list[str]]:
        words = ("Traceback", "Error", "ERROR", "CRITICAL", "WARNING", "Exception")
        return problems_in_logs(self.scratch, self.procs, words, limit)


# RSS -------------------------------------------------------------------------------


def tree_usage(pid: int) -> dict[str, int]:
    """RSS of a process and its children, and its threads and open files."""
    try:
        top = psutil.Process(pid)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return {"rss": 0, "threads": 0, "fds": 0, "processes": 0}
    rss = threads = fds = 0
    kinds = dict.fromkeys(RSS_KINDS, 0)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            rss += p.memory_info().rss
            threads += p.num_threads()
            fds += p.num_fds()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in kinds:
                    kinds[name] += int(value.split()[0]) * 1024
    return {
        "rss": rss,
        "threads": threads,
        "fds": fds,
        "processes": len(procs),
        **kinds,
    }


class RssSampler:
    """Sample every measured process every 0.5 s on a thread: the peak and a trace."""

    def __init__(self, processes: list[tuple[str, int]]) -> None:
        self.processes = processes
        self.t0 = time.monotonic()
        self.peak = dict.fromkeys((name for name, _ in processes), 0)
        self.trace: list[tuple[float, dict[str, int]]] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rss", daemon=True)

    def sample(self) -> dict[str, dict[str, int]]:
        now = {name: tree_usage(pid) for name, pid in self.processes}
        with self.lock:
            for name, usage in now.items():
                self.peak[name] = max(self.peak[name], usage["rss"])
            self.trace.append(
                (time.monotonic() - self.t0, {n: u["rss"] for n, u in now.items()})
            )
        return now

    def _loop(self) -> None:
        while not self.halt.wait(SAMPLE_S):
            self.sample()

    def start(self) -> RssSampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(5)

    def since(self, seconds: float) -> list[dict[str, int]]:
        cut = time.monotonic() - self.t0 - seconds
        with self.lock:
            return [rss for t, rss in self.trace if t >= cut]


# Owners: one websocket per run, its creator's session ------------------------------


@dataclass(slots=True)
class Owner:
    run_id: str
    connected: bool = False
    can_control: bool = False
    frames: int = 0
    accepted: bool = False
    status: str = ""
    ended: bool = False
    error: str = ""


async def own(o: Owner, port: int, cookie: str, stop: asyncio.Event) -> None:
    """Watch a run as its owner, acknowledging frames; on ``stop``, stop it.

    Returns once the run says it has ended (or the socket closed).
    """
    from websockets.asyncio.client import connect

    origin = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/runs/{o.run_id}/?after=0"
    acked = 0
    try:
        async with connect(
            url,
            origin=origin,
            additional_headers={"Cookie": cookie},
            compression=None,
            proxy=None,
            open_timeout=30,
            ping_interval=None,
            close_timeout=1,
            max_size=4 * 2**20,
        ) as ws:
            o.connected = True

            async def stopper() -> None:
                await stop.wait()
                await ws.send('{"type":"stop","ref":"bench"}')

            sending = asyncio.ensure_future(stopper())
            try:
                async for text in ws:
                    msg = json.loads(text)
                    kind = msg.get("type")
                    if kind == "hello":
                        o.can_control = bool(msg.get("can_control"))
                        o.status = msg["run"]["status"]
                    elif kind in ("frame", "snapshot"):
                        o.frames += 1
                        seq = msg["seq"] if kind == "frame" else msg["frame"]["seq"]
                        if seq - acked >= 5 or kind == "snapshot":
                            acked = seq
                            await ws.send(f'{{"type":"seen","seq":{seq}}}')
                    elif kind == "status":
                        o.status = msg.get("status", o.status)
                        if o.status in ("stopped", "failed"):
                            o.ended = True
                            return
                    elif kind == "accepted":
                        o.accepted = True
                    elif kind == "error":
                        o.error = f"{msg.get('field')}: {msg.get('message')}"
            finally:
                sending.cancel()
            o.error = o.error or f"closed by the server: code {ws.close_code}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported per run
        o.error = f"{exc.__class__.__name__}: {exc}"


async def wave(
    stack: MemStack, n: int, seed0: int, args: argparse.Namespace
) -> list[Owner]:
    """Start ``n`` runs as a new visitor, watch them as their owner, stop them."""
    loop = asyncio.get_running_loop()
    port = stack.port
    head = await loop.run_in_executor(None, visitor, port, args.kind)
    ids = await loop.run_in_executor(
        None,
        create_runs,
        port,
        n,
        args.kind,
        time.monotonic() + 60 + 0.5 * n,
        head,
        seed0,
    )
    owners = [Owner(run_id) for run_id in ids]
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(own(o, port, head["Cookie"], stop)) for o in owners]
    # Watch: until every run has sent a frame and then --watch seconds (bounded).
    deadline = time.monotonic() + 30
    while not all(o.frames or o.error for o in owners):
        if time.monotonic() > deadline or all(t.done() for t in tasks):
            break
        stack.check_alive()
        await asyncio.sleep(0.1)
    await asyncio.sleep(args.watch)
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    for o in owners:
        if not o.ended and not o.error:
            o.error = "no stopped status within 30 s of the stop"
    return owners


def statuses(port: int, run_ids: list[str], deadline: float) -> dict[str, int]:
    """Count the runs by the status the API gives (bounded in time)."""
    import http.client

    counts: dict[str, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for run_id in run_ids:
            if time.monotonic() > deadline:
                counts["unread"] = counts.get("unread", 0) + 1
                continue
            try:
                conn.request("GET", f"/api/runs/{run_id}/")
                resp = conn.getresponse()
                body = resp.read()
                status = json.loads(body)["status"] if resp.status == 200 else "?"
            except (OSError, ValueError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status = "?"
            counts[status] = counts.get(status, 0) + 1
    finally:
        conn.close()
    return counts


# One mode ---------------------------------------------------------------------------


async def measure(stack: MemStack, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    processes = stack.processes()
    sampler = RssSampler(processes)
    boot = sampler.sample()
    sampler.start()
    t0 = time.monotonic()
    try:
        warm = await wave(stack, args.warm, 1, args)
        if not all(o.ended for o in warm):
            bad = next(o for o in warm if not o.ended)
            raise RuntimeError(f"a warm-up run did not stop: {bad.error}")
        await asyncio.sleep(2)
        first = sampler.sample()
        if args.warm > 1:
            # What the first wave left is the process's working set coming up (thread
            # pools and connections opened, caches filled), not what the runs kept:
            # measure from after it, as from a server that has served a class.
            log(
                f"{stack.mode}: after the warm-up wave of {args.warm}: "
                + ", ".join(f"{n} {mib(u['rss'])} MiB" for n, u in first.items())
                + f"; waiting {RETIRED_TTL + 5} s for its runs to be retired"
            )
            await asyncio.sleep(RETIRED_TTL + 5)
        start = sampler.sample()
        log(
            f"{stack.mode}: starting size "
            + ", ".join(f"{n} {mib(u['rss'])} MiB" for n, u in start.items())
        )

        owners: list[Owner] = []
        waves = math.ceil(args.runs / args.wave)
        for i in range(waves):
            n = min(args.wave, args.runs - len(owners))
            t = time.monotonic()
            got = await wave(stack, n, 1000 + len(owners), args)
            owners += got
            now = sampler.sample()
            log(
                f"{stack.mode}: wave {i + 1}/{waves}: {n} run(s), "
                f"{sum(o.ended for o in got)} stopped, {sum(o.frames for o in got)} frame(s), "
                f"{time.monotonic() - t:.1f} s; "
                + ", ".join(f"{k} {mib(u['rss'])} MiB" for k, u in now.items())
                + (
                    f"; {sum(bool(o.error) for o in got)} error(s), e.g. "
                    + next(o.error for o in got if o.error)
                    if any(o.error for o in got)
                    else ""
                )
            )
        last_stop = time.monotonic()

        # Retirement, then a settled RSS.
        min_wait = (
            args.min_wait
            if args.min_wait is not None
            else (RETIRED_TTL + 5 if stack.mode == "embedded" else 10)
        )
        min_wait = min(min_wait, args.settle)
        log(
            f"{stack.mode}: every run stopped; "
            + (
                f"in embedded mode a stopped run's frames stay in this process {RETIRED_TTL} s "
                "after it ends: "
                if stack.mode == "embedded"
                else f"a stopped run's frames stay in Redis {RETIRED_TTL} s after it ends; "
            )
            + f"waiting at least {min_wait:g} s, then until the RSS settles "
            f"(within 1 % over 10 s), at most {args.settle:g} s"
        )
        settled = False
        while True:
            stack.check_alive()
            waited = time.monotonic() - last_stop
            if waited >= min_wait:
                recent = sampler.since(10)
                if len(recent) >= 10 and all(
                    max(r[name] for r in recent) <= 1.01 * min(r[name] for r in recent)
                    for name, _ in processes
                ):
                    settled = True
                    break
            if waited >= args.settle:
                break
            await asyncio.sleep(1)
        waited = time.monotonic() - last_stop
        end = sampler.sample()
        poked = None
        if args.poke:
            # Diagnosis: a tick with a run in it is what sweeps retired runs away (in
            # embedded mode); one more run shows what the end held for want of one.
            extra = await wave(stack, 1, 999_999, args)
            warm += extra
            await asyncio.sleep(3)
            poked = sampler.sample()
        counts = await loop.run_in_executor(
            None,
            statuses,
            stack.port,
            [o.run_id for o in warm + owners],
            time.monotonic() + 60,
        )
    finally:
        sampler.stop()
    rows = []
    for name, pid in processes:
        s, e, peak = start[name]["rss"], end[name]["rss"], sampler.peak[name]
        ratio = e / s if s else math.nan
        rows.append(
            {
                "process": name,
                "pid": pid,
                "rss_boot": boot[name]["rss"],
                "rss_start": s,
                "rss_peak": peak,
                "rss_end": e,
                "ratio": ratio,
                "target": f"<= {TARGET_RATIO:g}",
                "met": bool(ratio <= TARGET_RATIO),
                "threads": [start[name]["threads"], end[name]["threads"]],
                "fds": [start[name]["fds"], end[name]["fds"]],
                "child_processes": end[name]["processes"] - 1,
                "rss_after_poke": poked[name]["rss"] if poked else None,
                "kinds": {k: [start[name][k], end[name][k]] for k in RSS_KINDS},
            }
        )
    return {
        "mode": stack.mode,
        "runs": len(owners),
        "waves": waves,
        "wave": args.wave,
        "watch_s": args.watch,
        "runs_stopped_seen": sum(o.ended for o in owners),
        "owner_errors": sorted({o.error for o in owners if o.error})[:5],
        "owner_error_count": sum(1 for o in owners if o.error),
        "not_owner": sum(1 for o in owners if o.connected and not o.can_control),
        "frames_received": sum(o.frames for o in owners),
        "statuses_at_end": counts,
        "settle_wait_s": round(waited, 1),
        "settled": settled,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "processes": rows,
        "trace_mib": [
            [round(t, 1), {k: round(v / MiB, 1) for k, v in rss.items()}]
            for t, rss in sampler.trace[:: max(1, int(2 / SAMPLE_S))]
        ],
        "log_problems": stack.log_problems(),
    }


# Output -----------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| mode | process | RSS start | RSS peak | RSS end | end/start | target | met |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['mode']} | FAILED: {r['error'][:200]} | | | | | | |")
            continue
        for p in r["processes"]:
            rows.append(
                f"| {r['mode']} | {p['process']} | {mib(p['rss_start'])} MiB | {mib(p['rss_peak'])} MiB "
                f"| {mib(p['rss_end'])} MiB | {fmt(p['ratio'], 3)} | {p['target']} "
                f"| {'yes' if p['met'] else 'NO'} |"
            )
    return "\n".join(rows)


def details(r: dict[str, Any]) -> str:
    lines = [
        f"{r['mode']}: {r['runs']} run(s) in {r['waves']} wave(s) of {r['wave']}, each watched "
        f"{r['watch_s']:g} s by its owner; {r['runs_stopped_seen']} stopped status(es) seen, "
        f"{r['frames_received']} frame(s) received; statuses at the end (warm-up run included): "
        f"{r['statuses_at_end']}; waited {r['settle_wait_s']} s after the last stop "
        f"({'RSS settled' if r['settled'] else 'RSS still moving at the bound'}); {r['elapsed_s']} s in all",
    ]
    for p in r["processes"]:
        lines.append(
            f"  {p['process']} (pid {p['pid']}): RSS boot {mib(p['rss_boot'])} MiB, start "
            f"{mib(p['rss_start'])}, peak {mib(p['rss_peak'])}, end {mib(p['rss_end'])}; "
            f"threads {p['threads'][0]} -> {p['threads'][1]}, open files {p['fds'][0]} -> {p['fds'][1]}"
            + (
                f"; after one more run (--poke) {mib(p['rss_after_poke'])} MiB"
                if p.get("rss_after_poke")
                else ""
            )
            + "; of which "
            + ", ".join(f"{k} {mib(a)} -> {mib(b)}" for k, (a, b) in p["kinds"].items())
        )
    if r["not_owner"]:
        lines.append(f"  {r['not_owner']} viewer(s) were not told they own their run")
    for e in r["owner_errors"]:
        lines.append(f"  owner error: {e}")
    for name, bad in r["log_problems"].items():
        lines.append(f"  log {name}: " + bad[0])
        lines.extend(f"    {line}" for line in bad[1:])
    return "\n".join(lines)


# Main -------------------------------------------------------------------------------


def main() -> int:
    parser = bench_parser(__doc__, modes=True)
    parser.add_argument(
        "--runs", type=int, default=500, help="runs started and stopped"
    )
    parser.add_argument(
        "--wave", type=int, default=50, help="runs started (and stopped) at a time"
    )
    parser.add_argument(
        "--watch",
        type=float,
        default=3.0,
        help="seconds each wave is watched before it is stopped",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=90.0,
        help="at most this many seconds after the last stop for the RSS to settle",
    )
    parser.add_argument(
        "--min-wait",
        type=float,
        default=None,
        help=f"at least this many seconds after the last stop (default: {RETIRED_TTL + 5} "
        "in embedded mode, the time a stopped run's frames stay, 10 in distributed mode)",
    )
    parser.add_argument(
        "--poke",
        action="store_true",
        help="diagnosis: after the end, start and stop one more run and sample the RSS "
        "again (in embedded mode, retired runs are swept by a tick that has a run in it)",
    )
    parser.add_argument(
        "--warm",
        type=int,
        default=1,
        help="runs in the warm-up wave, started and stopped before the starting size",
    )
    add_shared(parser, "--hz", "--kind")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="task threads of the worker (SCALELAB_WORKER_THREADS in embedded mode)",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=13,
        help="Redis database number, distributed mode (flushed before and after)",
    )
    add_shared(parser, "--keep-logs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not 1 <= args.wave <= RUNS_PER_VISITOR or args.runs < 1:
        parser.error(f"--runs must be at least 1 and --wave 1 to {RUNS_PER_VISITOR}")
    if not 1 <= args.concurrency <= 200:
        parser.error("--concurrency must be 1 to 200 (SCALELAB_WORKER_THREADS)")

    interrupt_on_sigterm()
    modes = ["distributed", "embedded"] if args.mode == "both" else [args.mode]
    results: list[dict[str, Any]] = []
    for mode in modes:
        stack = MemStack(args, mode)
        try:
            failed = run_stack(stack, mode, results, measure, args, key="mode")
        except KeyboardInterrupt:
            return 130
        if not args.json and not failed:
            print(details(results[-1]), file=sys.stderr, flush=True)
        keep_or_clean(
            mode,
            stack,
            bool(failed or results[-1].get("log_problems") or args.keep_logs),
        )
    cmd = " ".join(["bench/memory.py", *sys.argv[1:]])
    header = (
        f"\n`{cmd}` on {psutil.cpu_count()} CPU(s); RSS of each process with its "
        "children; start = after one warm-up run started and stopped, end = after "
        "every run stopped and was retired\n"
    )
    print_results(args, cmd, results, header, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
