#!/usr/bin/env python
"""Streaming benchmark: viewers per run, concurrent runs and a class, distributed mode.

Starts its own stack as real processes on 127.0.0.1 (a Redis database of its own on
the local Redis, a Postgres database or a SQLite file, one or more Daphne processes,
one or more Celery workers), creates runs through the HTTP API, watches them with
asyncio websocket clients that acknowledge frames (``seen`` every 5 frames) as the
browser does, and prints what it measured: delivered %, emitted-to-received latency,
the share of frames received within 250 ms of their schedule, and CPU per process,
also per run-second. It prints figures; it asserts nothing about timings.

    .venv/bin/python bench/stream.py                       # every scenario, fresh stack each
    .venv/bin/python bench/stream.py --scenario viewers --viewers 300
    .venv/bin/python bench/stream.py --scenario runs --runs 1000 --seconds 20 --json
    .venv/bin/python bench/stream.py --scenario class --class-runs 300 --class-viewers 300

Scenarios: ``viewers`` (one run, many viewers), ``runs`` (many runs, one viewer each),
``class`` (both at once on one stack: ``--class-runs`` runs with one viewer each plus
one run with ``--class-viewers`` viewers; the table has a row for each group, and the
CPU figures of both rows are the whole stack's), ``both`` (viewers, then runs) and
``all`` (viewers, runs, class). Each scenario gets a fresh stack.

A worker process drives all its runs from one scheduler thread (at most
``SCALELAB_WORKER_RUNS``, 1000 by default: ``--worker-runs`` to change it); its Celery
thread pool (``--concurrency``, 8 as the app's default) only runs short tasks.

Definitions (per scenario, over a steady window after a warm-up):

- published: the frames a run produced during the window, i.e. the seq range
  (last seq at window start, last seq at window end] read from the run's Redis stream;
- delivered %: frames of that range a viewer received (up to ``--grace`` s after the
  window), over published x viewers;
- latency: received wall time - the frame's ``ts`` (wall time the worker made it);
- schedule: frame k of a run is due at start + k / hz (the driver paces on a fixed
  tick); start is estimated per run as min over received frames of ts_k - k / hz;
  "within 250 ms" counts frames received at most 250 ms after they were due (a frame
  never received counts as late);
- CPU: user + system time of each process over the window, in % of one core; the
  machine total is in % of one core too (2 cores = 200 %), and "other" is the machine
  minus Daphne, workers and client: on a shared machine, read every figure beside it.
  The Redis server is the shared local one: its figure includes whatever else uses it;
- CPU per run-second: a process's CPU time over the window / (runs x window seconds),
  in ms (so 1 ms means one run costs that process 0.1 % of a core); Daphne, worker
  (each summed over its processes) and Redis, divided by every run of the stack.

Diagnosis options: ``--timeline`` (latency and CPU per second), ``--profile gc`` (time
the servers' garbage collections and match their pauses with late frames),
``--profile stacks`` (also sample their stacks), ``--gc freeze`` (try a GC setting in
Daphne), ``--join-after S`` and ``--after latest`` (late joiners, reconnects),
``--daphne N`` / ``--workers N`` (more processes), ``--db sqlite|postgres``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_DB = "scalelab_bench"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
# `manage.py serve ...` and `celery -A scalelab worker ...`, launched through `python -c`
# so that their command lines do not match a broad `pkill -f "manage.py serve"` run by
# someone restarting their own server (that once killed the bench's Daphne mid-window).
# With --profile or --gc, each child first runs ``child_hooks`` (below).
_PROFILE_HOOK = (
    "import os, sys\nif os.environ.get('SCALELAB_BENCH_PROFILE') or os.environ.get('SCALELAB_BENCH_GC'):\n"
    "    sys.path.insert(0, 'bench'); import stream; stream.child_hooks()\n"
)
SERVE = [
    PYTHON,
    "-c",
    _PROFILE_HOOK + "import runpy; sys.argv[0] = 'manage.py'; "
    "runpy.run_path('manage.py', run_name='__main__')",
    "serve",
]
CELERY = [
    PYTHON,
    "-c",
    _PROFILE_HOOK + "sys.argv[0] = 'celery'; from celery.__main__ import main; main()",
]
PROFILE_ENV = "SCALELAB_BENCH_PROFILE"
FRAME_PREFIX = '{"type":"frame","seq":'
SCHEDULE_S = 0.250

TARGETS = {
    "viewers": "100% delivered, p99 <= 200 ms",
    "runs": "100% delivered, >= 99% of frames within 250 ms of schedule",
}
APP_WORKER_RUNS = 1000  # SCALELAB_WORKER_RUNS's default: runs one worker process takes
RUNS_PER_VISITOR = 1000  # the most SCALELAB_RUNS_PER_VISITOR accepts
# These benchmarks measure the run service, not the abuse limits (bench/abuse.py
# does): every run comes from one address, so its limits are lifted.
UNLIMITED = {
    "SCALELAB_RUNS_PER_VISITOR": str(RUNS_PER_VISITOR),
    "SCALELAB_ADDRESS_LIVE_RUNS": "100000",
    "SCALELAB_ADDRESS_RUNS_PER_MIN": "100000",
    "SCALELAB_MAX_LIVE_RUNS": "100000",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_processes(procs: list[subprocess.Popen], grace: float) -> None:
    """Stop each process group (TERM, then KILL after ``grace`` s), bounded in time."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"process {proc.pid} did not exit")


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


# A poor man's sampling profiler for the server processes (py-spy is not available) --


class Sampler:
    """Sample the stacks of busy threads every few ms, and time garbage collections.

    Runs inside Daphne or a worker when ``--profile`` is given; writes a JSON summary
    at exit: the functions seen on top of the stack (self) and anywhere in it
    (inclusive), counted over samples where the thread was not idle, the longest gaps
    between samples (the sampler could not get the GIL: something held it), and the
    time spent in each GC generation.
    """

    IDLE = {
        "select",
        "poll",
        "epoll",
        "wait",
        "sleep",
        "_worker",
        "accept",
        "recv_into",
        "readline",
        "_read_from_socket",
        "acquire",
        "get",
        "_wait_for_tstate_lock",
        "_select",
        "run_forever",
        "block",
        "read",
        "drain_events",
        "_brpop_read",
        "sock_recv",
    }

    def __init__(self, out: str, interval: float = 0.004) -> None:
        import threading

        self.out = out
        self.interval = interval
        self.self_counts: dict[str, int] = {}
        self.incl_counts: dict[str, int] = {}
        self.samples = 0
        self.busy = 0
        self.gaps: list[tuple[float, float, str]] = []
        self.gc: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_t0 = 0.0
        self.pauses: list[tuple[float, float]] = []
        self.me = None
        self.thread = threading.Thread(
            target=self.loop, name="bench-sampler", daemon=True
        )

    @classmethod
    def start_from_env(cls) -> None:
        import atexit
        import gc

        mode, _, out = os.environ[PROFILE_ENV].partition(":")
        sampler = cls(out.replace("%p", str(os.getpid())))
        gc.callbacks.append(sampler.on_gc)
        atexit.register(sampler.dump)
        if mode == "stacks":
            sampler.thread.start()

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            took = time.perf_counter() - self._gc_t0
            self.gc[info["generation"]].append(took)
            if info["generation"] == 2 or took > 0.005:
                # wall time it started, and how long it held the GIL
                self.pauses.append((time.time() - took, took))

    @staticmethod
    def where(code) -> str:
        path = code.co_filename
        for cut in ("site-packages/", "/work/main/", "python3.11/"):
            if cut in path:
                path = path.split(cut, 1)[1]
                break
        return f"{path}:{code.co_name}"

    def loop(self) -> None:
        import threading

        self.me = threading.get_ident()
        last = time.perf_counter()
        while True:
            time.sleep(self.interval)
            now = time.perf_counter()
            frames = sys._current_frames()
            top_of_gap = ""
            for ident, frame in frames.items():
                if ident == self.me:
                    continue
                if frame.f_code.co_name in self.IDLE:
                    continue
                self.busy += 1
                stack = []
                f = frame
                while f is not None:
                    stack.append(self.where(f.f_code))
                    f = f.f_back
                self.self_counts[stack[0]] = self.self_counts.get(stack[0], 0) + 1
                for name in set(stack):
                    self.incl_counts[name] = self.incl_counts.get(name, 0) + 1
                if not top_of_gap:
                    top_of_gap = " < ".join(stack[:6])
            self.samples += 1
            gap = now - last - self.interval
            if gap > 0.02:
                self.gaps.append(
                    (round(gap * 1000, 1), round(time.time(), 3), top_of_gap)
                )
            last = now

    def dump(self) -> None:
        top = lambda d: sorted(d.items(), key=lambda kv: -kv[1])[:40]  # noqa: E731
        gc_summary = {
            g: {
                "count": len(v),
                "total_ms": round(sum(v) * 1000, 1),
                "max_ms": round(max(v, default=0) * 1000, 1),
            }
            for g, v in self.gc.items()
        }
        import gc

        gc_summary["tracked_objects_at_exit"] = len(gc.get_objects())
        gc_summary["frozen"] = gc.get_freeze_count()
        gc_summary["threshold"] = gc.get_threshold()
        with open(self.out, "w") as fh:
            json.dump(
                {
                    "pid": os.getpid(),
                    "samples": self.samples,
                    "busy": self.busy,
                    "self": top(self.self_counts),
                    "inclusive": top(self.incl_counts),
                    "gaps": sorted(self.gaps, reverse=True)[:15],
                    "gc": gc_summary,
                    "gc_pauses": self.pauses,
                },
                fh,
                indent=1,
            )


def child_hooks() -> None:
    """In a server process: start the sampler (--profile) and/or try a GC setting (--gc)."""
    if os.environ.get(PROFILE_ENV):
        Sampler.start_from_env()
    mode = os.environ.get("SCALELAB_BENCH_GC", "")
    if mode:
        # Experiment only, to measure a proposed fix without editing the app: once Daphne
        # has imported everything, move the objects that live for good out of the
        # collector's way (freeze) and/or make full collections rarer (threshold).
        import gc

        from daphne.server import Server

        run = Server.run

        def run_after_gc_setup(self, *a, **k):
            if "freeze" in mode:
                gc.collect()
                gc.freeze()
            if "threshold" in mode:
                gc.set_threshold(10_000, 50, 100)
            return run(self, *a, **k)

        Server.run = run_after_gc_setup


def print_profile(path: Path, name: str, limit: int = 18) -> None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log(f"no profile from {name} ({path})")
        return
    busy = max(1, data["busy"])
    lines = [
        f"profile of {name} (pid {data['pid']}): {data['samples']} sampler ticks, {data['busy']} busy thread samples"
    ]
    lines.append("  self (top of stack), % of busy samples:")
    lines += [f"    {100 * n / busy:5.1f}  {fn}" for fn, n in data["self"][:limit]]
    lines.append("  inclusive, % of busy samples:")
    lines += [f"    {100 * n / busy:5.1f}  {fn}" for fn, n in data["inclusive"][:limit]]
    lines.append(f"  GC: {data['gc']}")
    lines.append(
        "  longest sampler gaps (ms, wall time, stack of the busy thread after the gap):"
    )
    lines += [f"    {g[0]:7.1f}  {g[1]}  {g[2]}" for g in data["gaps"][:8]]
    print("\n".join(lines), file=sys.stderr, flush=True)


# The stack ---------------------------------------------------------------------


class Stack:
    """Redis db, database, Daphne(s) and Celery worker(s), all started and stopped here."""

    def __init__(self, args: argparse.Namespace, label: str, runs: int = 1) -> None:
        self.args = args
        self.runs = runs
        # Not one per run any more: a worker's runs share its store thread's connection,
        # plus its supervisor's and a task thread's or two; Daphne's sync threads each
        # hold one; and a few for migrate and this script.
        self.need_connections = 10 * args.daphne + 4 * args.workers + 5
        self.label = label
        self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        self.redis = redis.Redis.from_url(
            self.redis_url, socket_timeout=10, socket_connect_timeout=3
        )
        self.scratch = Path(tempfile.mkdtemp(prefix=f"scalelab-bench-{label}-"))
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.ports: list[int] = []
        self.pg = False
        self.database_url = ""
        self.viewers: list[Viewer] = []
        self.window: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self.window_wall = (0.0, 0.0)

    # database

    def _pg_admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql)

    def _pg_room(self) -> int:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            used = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()[0]
            limit = int(conn.execute("SHOW max_connections").fetchone()[0])
            reserved = int(
                conn.execute("SHOW superuser_reserved_connections").fetchone()[0]
            )
        return limit - reserved - used

    def _database(self) -> None:
        choice = self.args.db
        if choice in ("auto", "postgres"):
            try:
                room = self._pg_room()
                if choice == "auto" and room < self.need_connections:
                    log(
                        f"Postgres at 127.0.0.1:5432 has room for {room} more connection(s) and this stack "
                        f"needs about {self.need_connections} (about 10 per Daphne, 4 per worker however "
                        "many runs it drives); falling back to SQLite (--db postgres to use it anyway)"
                    )
                    raise LookupError("no room")
                self._pg_admin(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
                self._pg_admin(f"CREATE DATABASE {PG_DB}")
                self.pg = True
                self.database_url = f"postgres://postgres@127.0.0.1:5432/{PG_DB}"
                return
            except LookupError:
                pass
            except Exception as exc:  # noqa: BLE001 - any failure means: no usable Postgres
                if choice == "postgres":
                    raise
                log(
                    f"Postgres at 127.0.0.1:5432 is not usable ({exc.__class__.__name__}: {exc}); "
                    "falling back to SQLite (Daphne writes runs and sessions while each worker "
                    "writes batches of checkpoints: expect some lock waits)"
                )
        self.database_url = f"sqlite:///{self.scratch / 'bench.sqlite3'}"

    # processes

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SCALELAB_", "DJANGO_"))
        }
        env.update(
            {
                "REDIS_URL": self.redis_url,
                "DATABASE_URL": self.database_url,
                "SECRET_KEY": "bench-" + os.urandom(16).hex(),
                "DEBUG": "0",
                "ALLOWED_HOSTS": "127.0.0.1",
                **UNLIMITED,
                "SCALELAB_RUN_IDLE_S": "3600",
                "SCALELAB_FRAME_HZ": str(self.args.hz),
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.args.worker_runs:
            env["SCALELAB_WORKER_RUNS"] = str(self.args.worker_runs)
        if self.args.profile:
            env[PROFILE_ENV] = f"{self.args.profile}:{self.scratch / 'profile-%p.json'}"
        if self.args.gc:
            env["SCALELAB_BENCH_GC"] = self.args.gc
        return env

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str]
    ) -> subprocess.Popen:
        proc = spawn_logged(self.scratch, name, argv, env)
        self.procs.append((name, proc))
        return proc

    def start(self) -> None:
        self.redis.flushdb()
        self._database()
        env = self.env()
        log(
            f"stack {self.label}: Redis db {self.args.redis_db}, "
            f"{'Postgres ' + PG_DB if self.pg else 'SQLite'}, logs in {self.scratch}"
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
        for i in range(self.args.daphne):
            port = free_port()
            self.ports.append(port)
            self._spawn(
                f"daphne{i}", [*SERVE, "--host", "127.0.0.1", "--port", str(port)], env
            )
        for i in range(self.args.workers):
            self._spawn(
                f"worker{i}",
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
                    f"bench{i}@%h",
                ],
                env,
            )
        deadline = time.monotonic() + 60
        for port in self.ports:
            while True:
                self.check_alive()
                try:
                    status, _, _ = http_get(port, "/api/engines/", timeout=2)
                    if status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Daphne on port {port} did not answer within 60 s"
                    )
                time.sleep(0.2)
        if self.args.nice:
            # Shield the measurement from other people's jobs on a shared machine.
            for _, proc in self.procs:
                for p in [
                    psutil.Process(proc.pid),
                    *psutil.Process(proc.pid).children(recursive=True),
                ]:
                    p.nice(self.args.nice)
            psutil.Process().nice(self.args.nice)
        log(
            f"stack {self.label}: Daphne on {', '.join(map(str, self.ports))}; {self.args.workers} worker(s) "
            f"of {self.args.concurrency} task thread(s)"
            + (f"; nice {self.args.nice}" if self.args.nice else "")
        )

    def pg_connections(self) -> dict[str, int]:
        """Connections to the bench database, to the server in all, and the server's maximum."""
        if not self.pg:
            return {}
        import psycopg

        try:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                mine, total = conn.execute(
                    "SELECT count(*) FILTER (WHERE datname = %s), count(*) FROM pg_stat_activity",
                    (PG_DB,),
                ).fetchone()
                limit = int(conn.execute("SHOW max_connections").fetchone()[0])
        except Exception:  # noqa: BLE001 - e.g. no slot left for this very query
            return {"mine": -1, "total": -1, "max": -1}
        return {"mine": mine, "total": total, "max": limit}

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.scratch / (name + '.log')}"
                )

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {"daphne": [], "worker": []}
        for name, proc in self.procs:
            out["daphne" if name.startswith("daphne") else "worker"].append(proc.pid)
        try:
            out["redis"] = [int(self.redis.info("server")["process_id"])]
        except Exception:  # noqa: BLE001
            out["redis"] = []
        out["client"] = [os.getpid()]
        return out

    def stop(self) -> None:
        """Stop every process started here (TERM, then KILL), bounded in time."""
        stop_processes([proc for _, proc in self.procs], grace=10)
        try:
            self.redis.flushdb()
        except Exception as exc:  # noqa: BLE001
            log(f"could not flush Redis db {self.args.redis_db}: {exc}")
        if self.pg:
            try:
                self._pg_admin(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
                self.pg = False
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop database {PG_DB}: {exc}")

    def log_problems(self, limit: int = 12) -> dict[str, list[str]]:
        """Lines of the server logs that look like errors or warnings."""
        words = (
            "Traceback",
            "Error",
            "ERROR",
            "CRITICAL",
            "WARNING",
            "Exception",
            "exception",
        )
        return problems_in_logs(self.scratch, self.procs, words, limit)


# HTTP ---------------------------------------------------------------------------


def problems_in_logs(
    scratch: Path, procs: list[tuple[str, Any]], words: tuple[str, ...], limit: int
) -> dict[str, list[str]]:
    """The lines of each process's ``scratch/name.log`` with one of ``words``: a count
    and at most ``limit`` of them, by process name."""
    found: dict[str, list[str]] = {}
    for name, _ in procs:
        path = scratch / f"{name}.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        bad = [line for line in lines if any(w in line for w in words)]
        if bad:
            found[name] = [f"{len(bad)} line(s) in {path}"] + bad[:limit]
    return found


def spawn_logged(
    scratch: Path, name: str, argv: list[str], env: dict[str, str]
) -> subprocess.Popen:
    """Start a server in its own session, its output in ``scratch/name.log``."""
    out = open(scratch / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    return proc


def lag_probe(lags: list[float]) -> asyncio.Future:
    """Start measuring how late this client's event loop wakes up (its share of the
    latency): every 10 ms, the lateness in ms is appended to ``lags``; cancel to stop."""

    async def probe() -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((time.monotonic() - t - 0.01) * 1000)

    return asyncio.ensure_future(probe())


def http_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    timeout: float = 10,
    source: str | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request to 127.0.0.1:port (from the address ``source``, if given)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1",
        port,
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10
):
    return http_request(port, "GET", path, headers, timeout=timeout)


def cookies_of(headers: list[tuple[str, str]], into: dict[str, str]) -> dict[str, str]:
    """Add the cookies a response's Set-Cookie headers set to ``into``."""
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            into[key.strip()] = rest.split(";", 1)[0]
    return into


def api_headers(port: int, cookies: dict[str, str], page: str) -> dict[str, str]:
    """What the site's pages send with their API calls: CSRF token, origin, cookies."""
    origin = f"http://127.0.0.1:{port}"
    return {
        "Content-Type": "application/json",
        "X-CSRFToken": cookies.get("csrftoken", ""),
        "Origin": origin,
        "Referer": origin + page,
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
    }


def visitor(port: int, kind: str) -> dict[str, str]:
    """Open the sandbox page as a new visitor; return the headers its API calls send.

    The ``Cookie`` header carries the visitor's session: a websocket opened with it
    is the runs' owner (it may send controls such as ``stop``).
    """
    status, headers, _ = http_get(port, f"/sandbox/{kind}/")
    if status != 200:
        raise RuntimeError(f"GET /sandbox/{kind}/ answered {status}")
    cookies = cookies_of(headers, {})
    if "csrftoken" not in cookies:
        raise RuntimeError(f"no csrftoken cookie from /sandbox/{kind}/: {headers}")
    return api_headers(port, cookies, f"/sandbox/{kind}/")


def create_runs(
    port: int,
    count: int,
    kind: str,
    deadline: float,
    head: dict[str, str] | None = None,
    seed0: int = 1000,
) -> list[str]:
    """Create ``count`` runs the way the sandbox page does, as few visitors as can be.

    The stack raises the quota to ``RUNS_PER_VISITOR`` live runs per visitor; past it,
    another visitor creates the rest. With ``head`` (from ``visitor``), that visitor
    creates them all (at most the quota).
    """
    ids: list[str] = []
    own = head is None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        for i in range(count):
            if own and i % RUNS_PER_VISITOR == 0:
                head = visitor(port, kind)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"created only {i} of {count} runs before the deadline"
                )
            body = json.dumps({"kind": kind, "seed": seed0 + i})
            try:
                conn.request("POST", "/api/runs/", body=body, headers=head)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                conn.request("POST", "/api/runs/", body=body, headers=head)
                resp = conn.getresponse()
                data = resp.read()
            if resp.status != 201:
                raise RuntimeError(
                    f"POST /api/runs/ answered {resp.status}: {data[:500]!r}"
                )
            ids.append(json.loads(data)["id"])
    finally:
        conn.close()
    return ids


# Redis side: what the runs published ---------------------------------------------


def last_seqs(r: redis.Redis, run_ids: list[str]) -> dict[str, int]:
    pipe = r.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.xrevrange(f"sl:run:{run_id}:frames", count=1)
    out = {}
    for run_id, entries in zip(run_ids, pipe.execute()):
        out[run_id] = int(entries[0][0].split(b"-")[0]) if entries else 0
    return out


# CPU ------------------------------------------------------------------------------


class CpuMeter:
    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.procs: dict[str, list[psutil.Process]] = {}
        for role, ids in pids.items():
            self.procs[role] = []
            for pid in ids:
                with contextlib.suppress(psutil.Error):
                    self.procs[role].append(psutil.Process(pid))

    def sample(self) -> tuple[float, dict[str, float], float, float]:
        per = {}
        for role, procs in self.procs.items():
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
                except psutil.Error:
                    pass
            per[role] = total
        m = psutil.cpu_times()
        busy = (
            m.user
            + m.nice
            + m.system
            + getattr(m, "irq", 0)
            + getattr(m, "softirq", 0)
            + getattr(m, "steal", 0)
        )
        return time.monotonic(), per, busy, sum(m)

    @staticmethod
    def between(a, b) -> dict[str, float]:
        wall = b[0] - a[0]
        out = {role: 100.0 * (b[1][role] - a[1][role]) / wall for role in a[1]}
        out["machine"] = (
            100.0 * psutil.cpu_count() * (b[2] - a[2]) / max(1e-9, b[3] - a[3])
        )
        # Everything else on the machine (other people's tests...), Redis included as it is shared.
        out["other"] = out["machine"] - sum(
            out[r] for r in ("daphne", "worker", "client") if r in out
        )
        return out


# Viewers --------------------------------------------------------------------------


@dataclass(slots=True)
class Viewer:
    run_id: str
    port: int
    seqs: list[int] = field(default_factory=list)
    recv: list[float] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    connected: bool = False
    error: str = ""
    snapshots: int = 0
    others: int = 0


async def watch(v: Viewer, full_json: bool, ack_every: int, after: int = 0) -> None:
    """Watch one run until cancelled, recording (seq, received, ts) of every frame.

    Acknowledges like static/js/client.js: ``seen`` once the newest frame is
    ``ack_every`` past the last acknowledged one, and after every snapshot.
    """
    from websockets.asyncio.client import connect

    origin = f"http://127.0.0.1:{v.port}"
    url = f"ws://127.0.0.1:{v.port}/ws/runs/{v.run_id}/?after={after}"
    seqs, recv, tss = v.seqs, v.recv, v.ts
    now = time.time
    loads = json.loads
    acked = 0
    try:
        async with connect(
            url,
            origin=origin,
            compression=None,
            proxy=None,
            open_timeout=30,
            ping_interval=None,
            close_timeout=1,
            max_size=4 * 2**20,
            max_queue=64,
        ) as ws:
            v.connected = True
            async for text in ws:
                t = now()
                snapshot = False
                if not full_json and text.startswith(FRAME_PREFIX):
                    seq = int(text[22 : text.index(",", 22)])
                    ts = float(text[text.rindex('"ts":') + 5 : -1])
                else:
                    msg = loads(text)
                    kind = msg.get("type")
                    if kind == "frame":
                        seq, ts = msg["seq"], msg["ts"]
                    elif kind == "snapshot":
                        v.snapshots += 1
                        snapshot = True
                        seq, ts = msg["frame"]["seq"], msg["frame"]["ts"]
                    else:
                        v.others += 1
                        continue
                seqs.append(seq)
                recv.append(t)
                tss.append(ts)
                if seq - acked >= ack_every or (snapshot and seq > acked):
                    acked = seq
                    await ws.send(f'{{"type":"seen","seq":{seq}}}')
            v.error = f"closed by the server: code {ws.close_code} {ws.close_reason!r}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported per viewer
        v.error = f"{exc.__class__.__name__}: {exc}"


# A scenario -----------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Runs of one scenario watched alike, measured and reported together."""

    label: str  # "runs", "viewers"
    runs: int
    per_run: int  # viewers of each run
    target: str  # a key of TARGETS


def plan_of(args) -> list[tuple[str, list[Group]]]:
    """The scenarios to run, in order, each on a fresh stack."""
    chosen = {
        "viewers": ["viewers"],
        "runs": ["runs"],
        "class": ["class"],
        "both": ["viewers", "runs"],
        "all": ["viewers", "runs", "class"],
    }[args.scenario]
    groups = {
        "viewers": [Group("viewers", 1, args.viewers, "viewers")],
        "runs": [Group("runs", args.runs, 1, "runs")],
        # A class at once: a run each for the students, and the teacher's run on
        # the projector... watched by every student too.
        "class": [
            Group("runs", args.class_runs, 1, "runs"),
            Group("viewers", 1, args.class_viewers, "viewers"),
        ],
    }
    return [(name, groups[name]) for name in chosen]


async def run_scenario(
    stack: Stack, name: str, groups: list[Group], args
) -> list[dict[str, Any]]:
    """Run one scenario on ``stack``: every group at once, one measured window."""
    hz = args.hz
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    port0 = stack.ports[0]
    n_runs = sum(g.runs for g in groups)
    run_ids = await loop.run_in_executor(
        None,
        create_runs,
        port0,
        n_runs,
        args.kind,
        time.monotonic() + 120 + 0.2 * n_runs,
    )
    group_ids: list[list[str]] = []
    at = 0
    for g in groups:
        group_ids.append(run_ids[at : at + g.runs])
        at += g.runs
    log(f"{name}: created {len(run_ids)} run(s) in {time.monotonic() - t0:.1f} s")

    # Wait until every run has published (the worker picked it up).
    wait_s = 60 + 0.05 * n_runs
    deadline = time.monotonic() + wait_s
    while True:
        seqs = last_seqs(stack.redis, run_ids)
        started = sum(1 for s in seqs.values() if s > 0)
        if started == len(run_ids):
            break
        stack.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {started} of {len(run_ids)} runs published a frame within {wait_s:.0f} s"
            )
        await asyncio.sleep(0.2)
    log(
        f"{name}: every run is publishing ({time.monotonic() - t0:.1f} s after the first POST)"
    )

    if args.join_after > 0:
        # Late joiners: let the runs get older first (they still connect with after=0).
        want = int(args.join_after * hz)
        deadline = time.monotonic() + args.join_after * 3 + 30
        while (
            min(last_seqs(stack.redis, run_ids).values()) < want
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.2)
        log(f"{name}: runs are {args.join_after:g} s old; connecting viewers")
    group_viewers: list[list[Viewer]] = []
    k = 0
    for g, ids in zip(groups, group_ids):
        vs = []
        for run_id in ids:
            for _ in range(g.per_run):
                vs.append(Viewer(run_id, stack.ports[k % len(stack.ports)]))
                k += 1
        group_viewers.append(vs)
    viewers = [v for vs in group_viewers for v in vs]
    # Open in batches: at most connect_concurrency handshakes in flight. Interleave
    # the groups, so that none is connected long before the other.
    order: list[Viewer] = []
    for i in range(max(map(len, group_viewers), default=0)):
        order.extend(vs[i] for vs in group_viewers if i < len(vs))
    tasks: list[asyncio.Task] = []
    t_conn = time.monotonic()
    conn_deadline = t_conn + 90 + 0.05 * len(viewers)
    for start in range(0, len(order), args.connect_concurrency):
        batch = order[start : start + args.connect_concurrency]
        after = {}
        if args.after == "latest":
            after = last_seqs(stack.redis, sorted({v.run_id for v in batch}))
        tasks.extend(
            asyncio.ensure_future(watch(v, args.full_json, 5, after.get(v.run_id, 0)))
            for v in batch
        )
        while not all(v.connected or v.error for v in batch):
            if time.monotonic() > conn_deadline:
                break
            await asyncio.sleep(0.02)
    while (
        not all(v.connected or v.error for v in viewers)
        and time.monotonic() < conn_deadline
    ):
        await asyncio.sleep(0.05)
    connected = sum(v.connected for v in viewers)
    failed = [v.error for v in viewers if v.error]
    log(
        f"{name}: {connected}/{len(viewers)} viewers connected in {time.monotonic() - t_conn:.1f} s"
        + (f"; {len(failed)} failed, e.g. {failed[0]}" if failed else "")
    )

    meter = CpuMeter(stack.pids())
    await asyncio.sleep(args.warmup)
    stack.check_alive()
    cpu0 = meter.sample()
    w0 = time.time()
    cmd0 = stack.redis.info("commandstats")
    s0 = last_seqs(stack.redis, run_ids)
    log(f"{name}: measuring for {args.seconds:g} s")
    samples = [cpu0]
    lags: list[float] = []

    probe = lag_probe(lags)
    end = time.monotonic() + args.seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, left))
        samples.append(meter.sample())
    probe.cancel()
    s1 = last_seqs(stack.redis, run_ids)
    w1 = time.time()
    stack.window_wall = (w0, w1)
    cmd1 = stack.redis.info("commandstats")
    cpu1 = meter.sample()
    pg = await loop.run_in_executor(None, stack.pg_connections)
    await asyncio.sleep(args.grace)
    stack.check_alive()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=10)
    cpu = CpuMeter.between(cpu0, cpu1)

    # Stack-wide figures: the same for every group of the scenario.
    calls = {
        k.removeprefix("cmdstat_"): (v["calls"] - cmd0.get(k, {}).get("calls", 0))
        / (w1 - w0)
        for k, v in cmd1.items()
    }
    shared = {
        "pg_connections": pg,
        # Redis commands per second over the window (server-wide: the Redis is shared).
        "redis_calls_per_s": {
            k: round(v)
            for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
            if v >= 1
        },
        "client_loop_lag_ms": {
            "p50": round(pct(lags, 0.5), 1),
            "p99": round(pct(lags, 0.99), 1),
            "max": round(max(lags, default=math.nan), 1),
        },
    }
    results = []
    for i, (g, ids, vs) in enumerate(zip(groups, group_ids, group_viewers)):
        res = analyse(name, hz, ids, vs, s0, s1, w1 - w0, cpu, args, stack, g, n_runs)
        res.update(shared)
        res["timeline"] = timeline(vs, s0, s1, w0, samples)
        res["stack_groups"] = len(groups)
        res["shared_with_previous"] = i > 0  # stack-wide lines printed once
        results.append(res)
    # for gc_attribution once the stack stopped
    stack.viewers, stack.window = viewers, (s0, s1)
    return results


def gc_attribution(stack: Stack, late_ms: float = 100.0) -> dict[str, Any]:
    """How many late frames had a garbage collection pause of a server process in flight."""
    pauses: dict[str, list[tuple[float, float]]] = {}
    for proc_name, proc in stack.procs:
        try:
            data = json.loads((stack.scratch / f"profile-{proc.pid}.json").read_text())
        except (OSError, ValueError):
            continue
        pauses[proc_name] = [tuple(p) for p in data.get("gc_pauses", [])]
    s0, s1 = stack.window
    late = 0
    hit = dict.fromkeys(pauses, 0)
    any_hit = 0
    for v in stack.viewers:
        lo, hi = s0[v.run_id], s1[v.run_id]
        for seq, rt, ts in zip(v.seqs, v.recv, v.ts):
            if not lo < seq <= hi or (rt - ts) * 1000 <= late_ms:
                continue
            late += 1
            found = False
            for name, ps in pauses.items():
                if any(start < rt and start + took > ts for start, took in ps):
                    hit[name] += 1
                    found = True
            any_hit += found
    in_window = {
        name: sorted(
            round(took * 1000, 1)
            for start, took in ps
            if start > stack.window_wall[0] and start < stack.window_wall[1]
        )
        for name, ps in pauses.items()
    }
    return {
        "late_ms": late_ms,
        "late_frames": late,
        "late_frames_with_gc_pause_in_flight": any_hit,
        "by_process": hit,
        "gc_pauses_in_window_ms": in_window,
    }


def timeline(viewers, s0, s1, w0, samples) -> list[dict[str, Any]]:
    """Per second of the window: frames received, their latency, and CPU (to spot stalls)."""
    bins: dict[int, list[float]] = {}
    for v in viewers:
        lo, hi = s0[v.run_id], s1[v.run_id]
        for seq, rt, ts in zip(v.seqs, v.recv, v.ts):
            if lo < seq <= hi:
                bins.setdefault(int(rt - w0), []).append((rt - ts) * 1000)
    out = []
    for i in range(len(samples) - 1):
        cpu = CpuMeter.between(samples[i], samples[i + 1])
        lat = bins.get(i, [])
        out.append(
            {
                "second": i,
                "frames": len(lat),
                "p50_ms": round(pct(lat, 0.5), 1),
                "p99_ms": round(pct(lat, 0.99), 1),
                "max_ms": round(max(lat, default=math.nan), 1),
                "cpu": {k: round(x) for k, x in cpu.items()},
            }
        )
    return out


def analyse(
    name, hz, run_ids, viewers, s0, s1, window_s, cpu, args, stack, group, stack_runs
) -> dict[str, Any]:
    period = 1.0 / hz
    by_run: dict[str, list[Viewer]] = {}
    for v in viewers:
        by_run.setdefault(v.run_id, []).append(v)
    latencies: list[float] = []
    emit_late: list[float] = []  # ts - schedule: how late the worker made the frame
    sched_late: list[float] = []  # received - schedule
    published_total = 0
    expected = 0
    delivered = 0
    within = 0
    duplicates = 0
    out_of_order = 0
    published_rates = []
    for run_id, vs in by_run.items():
        lo, hi = s0[run_id], s1[run_id]
        published = hi - lo
        published_total += published
        published_rates.append(published / window_s)
        # Schedule origin: min over every frame any viewer of this run received.
        start = min(
            (ts - seq * period for v in vs for seq, ts in zip(v.seqs, v.ts)),
            default=math.nan,
        )
        emitted_seen: set[int] = set()
        for v in vs:
            expected += published
            got: set[int] = set()
            last = -1
            for seq, rt, ts in zip(v.seqs, v.recv, v.ts):
                if seq <= last:
                    out_of_order += 1
                last = max(last, seq)
                if not lo < seq <= hi:
                    continue
                if seq in got:
                    duplicates += 1
                    continue
                got.add(seq)
                latencies.append(rt - ts)
                due = start + seq * period
                sched_late.append(rt - due)
                if rt - due <= SCHEDULE_S:
                    within += 1
                if seq not in emitted_seen:
                    emitted_seen.add(seq)
                    emit_late.append(ts - due)
            delivered += len(got)
    lat_ms = [x * 1000 for x in latencies]
    stalled = [
        v for v in viewers if v.connected and not any(s0[v.run_id] < q for q in v.seqs)
    ]
    res = {
        "scenario": name,
        "group": group.label,
        "runs": len(run_ids),
        "stack_runs": stack_runs,
        "viewers_per_run": len(viewers) // max(1, len(run_ids)),
        "viewers_connected": sum(v.connected for v in viewers),
        "viewer_errors": sorted({v.error for v in viewers if v.error})[:5],
        "viewer_error_count": sum(1 for v in viewers if v.error),
        "hz": hz,
        "window_s": round(window_s, 2),
        "published_fps_per_run": round(
            sum(published_rates) / max(1, len(published_rates)), 2
        ),
        "published_fps_per_run_min": round(min(published_rates, default=math.nan), 2),
        "frames_published": published_total,
        "frames_expected": expected,
        "frames_delivered": delivered,
        "delivered_pct": 100.0 * delivered / expected if expected else math.nan,
        "p50_ms": pct(lat_ms, 0.50),
        "p90_ms": pct(lat_ms, 0.90),
        "p99_ms": pct(lat_ms, 0.99),
        "max_ms": max(lat_ms, default=math.nan),
        "within_schedule_pct": 100.0 * within / expected if expected else math.nan,
        "emit_late_p50_ms": pct([x * 1000 for x in emit_late], 0.50),
        "emit_late_p99_ms": pct([x * 1000 for x in emit_late], 0.99),
        "emit_late_max_ms": max((x * 1000 for x in emit_late), default=math.nan),
        "sched_late_p99_ms": pct([x * 1000 for x in sched_late], 0.99),
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "snapshots": sum(v.snapshots for v in viewers),
        "stalled_viewers": len(stalled),
        # how many viewers stopped at each (frames received, last seq, messages that were
        # not frames, error): e.g. (0, 0, 1, "") = hello only, (50, 50, 1, "") = hello + 50
        "stalled_viewers_received": [
            [*key, n]
            for key, n in Counter(
                (len(v.seqs), max(v.seqs, default=0), v.others, v.error[:80])
                for v in stalled
            ).most_common(5)
        ],
        "cpu_pct_of_core": {k: round(x, 1) for k, x in cpu.items()},
        # CPU s over the window / (runs x window s) x 1000 = % of a core x 10 / runs;
        # every run of the stack, as the CPU is the whole stack's.
        "cpu_ms_per_run_s": {
            k: round(cpu[k] * 10 / max(1, stack_runs), 3)
            for k in ("daphne", "worker", "redis")
            if k in cpu
        },
        "database": "postgres" if stack.pg else "sqlite",
        "daphne": args.daphne,
        "workers": args.workers,
        "client_parse": "json" if args.full_json else "prefix",
        "nice": args.nice,
        "gc_mode": args.gc or "",
        "after": args.after,
        "log_problems": stack.log_problems(),
    }
    res["target"] = TARGETS[group.target]
    if group.target == "viewers":
        res["target_met"] = bool(
            expected and delivered == expected and res["p99_ms"] <= 200
        )
    else:
        res["target_met"] = bool(
            expected and delivered == expected and res["within_schedule_pct"] >= 99.0
        )
    return res


# Output --------------------------------------------------------------------------


def fmt(x: float, nd: int = 1) -> str:
    return (
        "n/a"
        if x is None or (isinstance(x, float) and math.isnan(x))
        else f"{x:.{nd}f}"
    )


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | frames/s target (got) | delivered % | p50 ms | p99 ms | within 250 ms % "
        "| CPU daphne | CPU worker | CPU redis | CPU client | CPU machine "
        "| CPU ms per run-s daphne / worker / redis | target | met |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            rows.append(
                f"| {r['scenario']} | FAILED: {r['error'][:200]} |"
                + " |" * (head.count("|") - 3)
            )
            continue
        c = r["cpu_pct_of_core"]
        per = r["cpu_ms_per_run_s"]
        grouped = r.get("stack_groups", 1) > 1
        label = (
            f"{r['scenario']}"
            + (f" ({r['group']})" if grouped else "")
            + f": {r['runs']} run(s) x {r['viewers_per_run']} viewer(s)"
            f" ({r['daphne']} daphne, {r['workers']} worker, {r['database']}"
            + (f"; {r['stack_runs']} runs on the stack" if grouped else "")
            + (f", nice {r['nice']}" if r.get("nice") else "")
            + (f", gc {r['gc_mode']}" if r.get("gc_mode") else "")
            + ")"
        )
        rows.append(
            f"| {label} | {r['hz']} ({fmt(r['published_fps_per_run'])}) | {fmt(r['delivered_pct'], 2)} "
            f"| {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['within_schedule_pct'], 2)} "
            f"| {fmt(c.get('daphne'))} % | {fmt(c.get('worker'))} % | {fmt(c.get('redis'))} % "
            f"| {fmt(c.get('client'))} % | {fmt(c.get('machine'))} % "
            f"| {fmt(per.get('daphne'), 3)} / {fmt(per.get('worker'), 3)} / {fmt(per.get('redis'), 3)} "
            f"| {r['target']} | {'yes' if r['target_met'] else 'NO'} |"
        )
    return "\n".join(rows)


def details(r: dict[str, Any], show_timeline: bool = False) -> str:
    grouped = r.get("stack_groups", 1) > 1
    lines = [
        f"{r['scenario']}"
        + (
            f" ({r['group']}: {r['runs']} run(s) x {r['viewers_per_run']})"
            if grouped
            else ""
        )
        + f": window {r['window_s']} s; published {r['frames_published']} frame(s) "
        f"({r['published_fps_per_run']} /s per run on average, slowest run {r['published_fps_per_run_min']} /s); "
        f"expected {r['frames_expected']}, delivered {r['frames_delivered']}; "
        f"viewers connected {r['viewers_connected']} (errors {r['viewer_error_count']})",
        f"  latency emitted->received: p50 {fmt(r['p50_ms'])} ms, p90 {fmt(r['p90_ms'])} ms, "
        f"p99 {fmt(r['p99_ms'])} ms, max {fmt(r['max_ms'])} ms",
        f"  worker lateness (ts - schedule): p50 {fmt(r['emit_late_p50_ms'])} ms, p99 {fmt(r['emit_late_p99_ms'])} ms, "
        f"max {fmt(r['emit_late_max_ms'])} ms; received - schedule p99 {fmt(r['sched_late_p99_ms'])} ms",
        f"  duplicates {r['duplicates']}, out of order {r['out_of_order']}, snapshots {r['snapshots']}, "
        f"viewers that received no frame of the window: {r['stalled_viewers']}"
        + (
            " (frames received, last seq, other messages, error, how many viewers: "
            f"{r['stalled_viewers_received']})"
            if r["stalled_viewers"]
            else ""
        ),
    ]
    if not r.get("shared_with_previous"):
        lines += [
            f"  CPU % of one core{' (whole stack)' if grouped else ''}: {r['cpu_pct_of_core']}; "
            f"client event loop lag ms {r['client_loop_lag_ms']}",
            f"  CPU ms per run-second ({r['stack_runs']} run(s)): {r['cpu_ms_per_run_s']}",
        ]
    if show_timeline:
        lines.append(
            "  per second: frames received, latency p50/p99/max ms, CPU daphne/worker/client/machine/other %"
        )
        for row in r["timeline"]:
            c = row["cpu"]
            lines.append(
                f"    {row['second']:3d}: {row['frames']:6d}  {fmt(row['p50_ms'])}/{fmt(row['p99_ms'])}/"
                f"{fmt(row['max_ms'])}  {c.get('daphne')}/{c.get('worker')}/{c.get('client')}/"
                f"{c.get('machine')}/{c.get('other')}"
            )
    if r.get("gc"):
        g = r["gc"]
        lines.append(
            f"  GC: {g['late_frames_with_gc_pause_in_flight']} of {g['late_frames']} frames later than "
            f"{g['late_ms']:g} ms had a GC pause of a server process in flight {g['by_process']}; "
            f"pauses (gen 2, or > 5 ms) in the window, ms: {g['gc_pauses_in_window_ms']}"
        )
    for e in r["viewer_errors"]:
        lines.append(f"  viewer error: {e}")
    if r.get("shared_with_previous"):
        return "\n".join(lines)
    if r.get("redis_calls_per_s"):
        lines.append(f"  Redis calls/s (whole server): {r['redis_calls_per_s']}")
    if r.get("pg_connections"):
        lines.append(f"  Postgres connections at window end: {r['pg_connections']}")
    for name, bad in r["log_problems"].items():
        lines.append(f"  log {name}: " + bad[0])
        lines.extend(f"    {line}" for line in bad[1:])
    return "\n".join(lines)


# Main ------------------------------------------------------------------------------


def bench_parser(doc: str, modes: bool = False) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as help and, with ``modes``, --mode."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if modes:
        parser.add_argument(
            "--mode", choices=("distributed", "embedded", "both"), default="both"
        )
    return parser


# Options more than one benchmark takes, as they take them.
SHARED_OPTIONS: dict[str, dict[str, Any]] = {
    "--grace": {
        "type": float,
        "default": 2.0,
        "help": "seconds after the window for late frames",
    },
    "--hz": {"type": int, "default": 10, "help": "SCALELAB_FRAME_HZ"},
    "--kind": {"default": "cache", "help": "engine kind of the runs"},
    "--workers": {"type": int, "default": 1, "help": "Celery worker processes"},
    "--keep-logs": {
        "action": "store_true",
        "help": "keep the servers' logs even when they show no problem",
    },
}


def add_shared(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add these of SHARED_OPTIONS to the parser, in this order."""
    for name in names:
        parser.add_argument(name, **SHARED_OPTIONS[name])


def report_failure(name: str, exc: Exception, stack: Any) -> tuple[str, dict]:
    """Log a failed scenario (or mode) and its servers' log problems; return both."""
    failed = f"{exc.__class__.__name__}: {exc}"
    log(f"{name}: FAILED: {failed}")
    problems = stack.log_problems()
    for proc_name, bad in problems.items():
        log(f"  log {proc_name}: " + "\n    ".join(bad))
    return failed, problems


def interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that the stack is stopped either way."""

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def run_stack(
    stack: Any,
    name: str,
    results: list[dict[str, Any]],
    play: Any,
    *play_args: Any,
    key: str = "scenario",
) -> str | None:
    """Start the stack, run ``play(stack, *play_args)``, add its row(s) to ``results``.

    The stack is stopped after. On a failure, log it and add an error row (``key``:
    ``name``); return the failure, or None. A KeyboardInterrupt is passed on once the
    stack is stopped.
    """
    try:
        stack.start()
        rows = asyncio.run(play(stack, *play_args))
        results.extend(rows if isinstance(rows, list) else [rows])
    except KeyboardInterrupt:
        log("interrupted: stopping the stack")
        stack.stop()
        raise
    except Exception as exc:  # noqa: BLE001 - report it, go on with the next one
        failed, problems = report_failure(name, exc, stack)
        results.append({key: name, "error": failed, "log_problems": problems})
        return failed
    finally:
        stack.stop()
    return None


def keep_or_clean(name: str, stack: Any, keep: bool) -> None:
    """Keep the stack's scratch folder (and say where) or remove it."""
    if keep:
        log(f"{name}: logs kept in {stack.scratch}")
    else:
        shutil.rmtree(stack.scratch, ignore_errors=True)


def print_results(
    args: argparse.Namespace,
    cmd: str,
    results: list[dict[str, Any]],
    header: str,
    table_of: Any,
    **extra: Any,
) -> None:
    """Print the results as JSON (with --json) or as the header and the table."""
    if args.json:
        print(
            json.dumps(
                {
                    "command": cmd,
                    "cpus": psutil.cpu_count(),
                    **extra,
                    "results": results,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(header)
        print(table_of(results))


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--scenario",
        choices=("viewers", "runs", "class", "both", "all"),
        default="all",
        help="both: viewers then runs; all: viewers, runs, then class (default)",
    )
    parser.add_argument(
        "--viewers",
        type=int,
        default=300,
        help="viewers of the one run (scenario viewers)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1000,
        help="concurrent runs, one viewer each (scenario runs)",
    )
    parser.add_argument(
        "--class-runs",
        type=int,
        default=300,
        help="runs with one viewer each (scenario class)",
    )
    parser.add_argument(
        "--class-viewers",
        type=int,
        default=300,
        help="viewers of the one shared run, at the same time (scenario class)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds after all viewers connected"
    )
    add_shared(parser, "--grace", "--hz", "--kind")
    parser.add_argument(
        "--daphne",
        type=int,
        default=1,
        help="Daphne processes (viewers spread round robin)",
    )
    add_shared(parser, "--workers")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="task threads per Celery worker (the runs are driven by its one scheduler "
        "thread, not by these)",
    )
    parser.add_argument(
        "--worker-runs",
        type=int,
        default=0,
        help=f"SCALELAB_WORKER_RUNS, the runs one worker process takes (default: the app's, {APP_WORKER_RUNS})",
    )
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto")
    parser.add_argument(
        "--redis-db",
        type=int,
        default=12,
        help="Redis database number (flushed before and after)",
    )
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=25,
        help="websocket handshakes in flight",
    )
    parser.add_argument(
        "--full-json", action="store_true", help="parse every message with json.loads"
    )
    parser.add_argument(
        "--profile",
        choices=("gc", "stacks"),
        help="gc: time the garbage collections of Daphne and the workers and match their pauses "
        "with late frames; stacks: also sample their stacks every 4 ms (costly with many threads)",
    )
    parser.add_argument(
        "--gc",
        choices=("freeze", "threshold", "freeze+threshold"),
        help="experiment: tune Daphne's garbage collector at start (not what the app does)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of Daphne, workers and client (e.g. -5 as root, to shield them from "
        "other jobs on a shared machine; report it with the figures)",
    )
    parser.add_argument(
        "--after",
        choices=("0", "latest"),
        default="0",
        help="what viewers pass as ?after=: 0 (a fresh page) or the run's latest seq (a reconnect)",
    )
    parser.add_argument(
        "--join-after",
        type=float,
        default=0.0,
        help="connect the viewers only once the runs are this many seconds old",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print latency and CPU per second of the window",
    )
    add_shared(parser, "--keep-logs")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON instead of a table",
    )
    args = parser.parse_args()

    interrupt_on_sigterm()
    plan = plan_of(args)
    capacity = args.workers * (args.worker_runs or APP_WORKER_RUNS)
    for name, groups in plan:
        n_runs = sum(g.runs for g in groups)
        if n_runs > capacity:
            log(
                f"{name}: {n_runs} runs for {args.workers} worker(s) of "
                f"{args.worker_runs or APP_WORKER_RUNS} runs each: the rest would wait; "
                "use --workers or --worker-runs"
            )
            return 2
    results: list[dict[str, Any]] = []
    for name, groups in plan:
        n_runs = sum(g.runs for g in groups)
        stack = Stack(args, name, n_runs)
        first = len(results)
        try:
            failed = run_stack(stack, name, results, run_scenario, name, groups, args)
        except KeyboardInterrupt:
            return 130
        mine = results[first:]
        if args.profile:
            if args.profile == "stacks":
                for proc_name, proc in stack.procs:
                    print_profile(stack.scratch / f"profile-{proc.pid}.json", proc_name)
            if not failed:
                gc_found = gc_attribution(stack)  # over every viewer of the stack
                for r in mine:
                    r["gc"] = gc_found
        if not args.json and not failed:
            for r in mine:
                print(details(r, args.timeline), file=sys.stderr, flush=True)
        keep_or_clean(
            name,
            stack,
            bool(failed or any(r.get("log_problems") for r in mine) or args.keep_logs),
        )
    cmd = " ".join(["bench/stream.py", *sys.argv[1:]])
    header = (
        f"\n`{cmd}` on {psutil.cpu_count()} CPU(s); CPU in % of one core, averaged over the window; "
        "CPU ms per run-s = a process's CPU ms over the window / (runs on the stack x window s)"
        + (
            ". In the class rows both groups ran at once on one stack: their CPU figures "
            "are the whole stack's"
            if any(r.get("stack_groups", 1) > 1 for r in results)
            else ""
        )
        + "\n"
    )
    print_results(args, cmd, results, header, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
