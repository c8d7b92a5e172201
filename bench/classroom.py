#!/usr/bin/env python
"""Class sessions benchmark: a class of students joins, watches, answers a poll, distributed mode.

Starts ``bench/stream.py``'s stack (a Redis database of its own on the local Redis, a
Postgres database of its own or a SQLite file, Daphne and a Celery worker, all on
127.0.0.1), loads the lessons, makes an instructor and signs them in through the
admin's sign-in form, starts a class, and plays it with asyncio clients: each
student opens the join page (its CSRF cookie), joins with ``POST
/api/classes/<code>/join`` as a visitor of its own, then opens the class socket and a
run socket, as the lesson page does. It prints figures; it asserts nothing about
timings.

    .venv/bin/python bench/classroom.py                          # both scenarios, fresh stack each
    .venv/bin/python bench/classroom.py --scenario teacher --students 50 --seconds 10
    .venv/bin/python bench/classroom.py --students 300 --json --db postgres

Scenarios, each on a fresh stack:

- ``teacher`` (a teacher-paced class): the teacher starts a run of the lesson's engine
  and makes it the class's shared run; ``--students`` students join (their joins
  spread evenly over ``--join-over`` s), each opens the class socket and the shared
  run's socket; over a ``--seconds`` window the teacher moves to a step that asks a
  prediction and opens its poll, and every student answers once, at a random moment
  of the ``--answer-over`` s after the poll opened (as soon as it sees the poll open,
  if that is later);
- ``student`` (a student-paced class): the class is started in ``student`` mode; the
  teacher's run is the projector's (the teacher watches it); each student joins,
  starts a run of their own (``POST /api/runs/`` with their session) and watches it,
  and reports its progress on the class socket ``--progress`` times over the window
  (0: never), predicting step 0 at its own pace with its first report;
- ``all``: teacher, then student.

Definitions:

- join: the round trip of ``POST /api/classes/<code>/join`` (the join page's GET, which
  gives the CSRF cookie, is timed apart);
- frames: as ``bench/stream.py`` measures them over the window: latency = received
  wall time - the frame's ``ts``; delivered % of the frames published in the window;
  "within 250 ms of schedule" with frame k due at start + k / hz, start taken from
  the run's first frame received (so a run that stalled once before the window is
  late for good: the driver skips ahead after a stall); "against the window's own
  schedule" is the same share with start taken from the frames of the window;
- poll, to the teacher: the time from the last answer sent to the first
  ``poll.results`` on the teacher's class socket whose ``answers`` is the number of
  answers accepted; an answer's round trip: sent to its ``accepted`` on that
  student's socket; "saw the poll": ``poll.open`` accepted to the student's
  ``class.state`` with the poll open;
- CPU: as ``bench/stream.py``'s (% of one core, 2 cores = 200 %; "other" is the
  machine minus Daphne, worker and this client): read every figure beside it.

Limits: the app's own, except that the stack keeps runs alive with no viewer, and in
the ``student`` scenario the site's live runs (``SCALELAB_MAX_LIVE_RUNS``, 300 by
default) are raised to make room for the class's runs; when the app has no class
allowance (live class members counted per class for run limits), the per-address
caps are raised too, as every student comes from 127.0.0.1 (``--caps``).

Postgres (``--db postgres``): a database of its own, dropped after, reached through a
role of its own whose connections are capped (``--pg-connections``, 40), so that the
stack cannot take every connection of the shared server; a request past the cap fails
and is counted. Diagnosis: ``--profile gc|stacks`` as ``bench/stream.py``'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import random
import re
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stream  # noqa: E402 - the sibling's stack
from stream import (  # noqa: E402
    PYTHON,
    ROOT,
    UNLIMITED,
    CpuMeter,
    Group,
    Stack,
    Viewer,
    add_shared,
    analyse,
    api_headers,
    bench_parser,
    cookies_of,
    fmt,
    http_request,
    interrupt_on_sigterm,
    keep_or_clean,
    lag_probe,
    last_seqs,
    log,
    pct,
    print_profile,
    print_results,
    run_stack,
    watch,
)

# A database of its own (stream.py's Stack reads the name from its module).
stream.PG_DB = "scalelab_bench_classroom"
PG_ROLE = "scalelab_bench_classroom"
REDIS_DB = 9  # not 0, nor the tests' 13 and 14, nor the other benches' 12 and 13
LESSON = "caching-and-eviction"  # engine "cache"; step 0 asks a choice prediction
POLL_STEP = 0
TEACHER = "bench-teacher"
PASSWORD = "bench-" + "x" * 12
MAX_STUDENTS = 1000
TARGETS = {
    "join": "join p99 <= 300 ms",
    "frames": "shared run: frames p99 <= 200 ms",
    "poll": "every answer counted by the teacher within 1 s of the last one sent",
    "schedule": ">= 99 % of frames within 250 ms of schedule",
}


# The stack ------------------------------------------------------------------------


class ClassStack(Stack):
    """stream.py's stack with the app's limits (``limits`` overrides), lessons and a teacher."""

    def __init__(self, args, label: str, runs: int, limits: dict[str, str]) -> None:
        super().__init__(args, label, runs)
        self.limits = limits
        self._env: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        if self._env is None:  # one secret key for every process and command
            env = super().env()
            for name in UNLIMITED:
                env.pop(name, None)
            env.update(self.limits)
            env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
            self._env = env
        return self._env

    def _database(self) -> None:
        """SQLite as stream.py's; Postgres: a database of its own, reached through a
        role of its own whose connections are capped (``--pg-connections``), so that
        the stack cannot take every connection of the shared server."""
        if self.args.db != "postgres":
            return super()._database()
        role, cap = PG_ROLE, self.args.pg_connections
        self._pg_admin(f"DROP DATABASE IF EXISTS {stream.PG_DB} WITH (FORCE)")
        self._pg_admin(f"DROP ROLE IF EXISTS {role}")
        room = self._pg_room()
        if room < cap + 5:
            raise RuntimeError(
                f"Postgres has room for {room} more connection(s); this stack is capped "
                f"at {cap}: use --pg-connections or --db sqlite"
            )
        self._pg_admin(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {cap}")
        self._pg_admin(f"CREATE DATABASE {stream.PG_DB} OWNER {role}")
        self.pg = True
        self.database_url = f"postgres://{role}@127.0.0.1:5432/{stream.PG_DB}"

    def stop(self) -> None:
        pg = self.pg
        super().stop()
        if pg:
            try:
                self._pg_admin(f"DROP ROLE IF EXISTS {PG_ROLE}")
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop role {PG_ROLE}: {exc}")

    def manage(self, *argv: str) -> None:
        done = subprocess.run(
            [PYTHON, "manage.py", *argv],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode:
            raise RuntimeError(
                f"manage.py {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
            )

    def start(self) -> None:
        super().start()
        self.manage("loadlessons")
        self.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            TEACHER,
            "--email",
            "teacher@example.org",
        )


# HTTP -------------------------------------------------------------------------------


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    timeout: float = 20,
) -> tuple[int, list[tuple[str, str]], bytes]:
    return http_request(port, method, path, headers, body, timeout)


def sign_in(port: int) -> dict[str, str]:
    """The instructor signs in with the admin's form; their cookies."""
    cookies: dict[str, str] = {}
    status, headers, _ = request(port, "GET", "/admin/login/")
    if status != 200:
        raise RuntimeError(f"GET /admin/login/ answered {status}")
    cookies_of(headers, cookies)
    form = urllib.parse.urlencode(
        {
            "username": TEACHER,
            "password": PASSWORD,
            "csrfmiddlewaretoken": cookies.get("csrftoken", ""),
            "next": "/admin/",
        }
    )
    head = api_headers(port, cookies, "/admin/login/")
    head["Content-Type"] = "application/x-www-form-urlencoded"
    status, headers, body = request(port, "POST", "/admin/login/", head, form)
    cookies_of(headers, cookies)
    if status != 302 or "sessionid" not in cookies:
        raise RuntimeError(f"signing in answered {status}: {body[:300]!r}")
    return cookies


def start_class(port: int, cookies: dict[str, str], mode: str) -> dict[str, Any]:
    head = api_headers(port, cookies, f"/lessons/{LESSON}/")
    body = json.dumps({"lesson": LESSON, "mode": mode})
    status, _, data = request(port, "POST", "/api/classes/", head, body)
    if status != 201:
        raise RuntimeError(f"POST /api/classes/ answered {status}: {data[:300]!r}")
    return json.loads(data)


def start_run(
    port: int, cookies: dict[str, str], kind: str, seed: int
) -> tuple[int, dict[str, Any], float]:
    head = api_headers(port, cookies, f"/lessons/{LESSON}/")
    t = time.perf_counter()
    status, _, data = request(
        port, "POST", "/api/runs/", head, json.dumps({"kind": kind, "seed": seed})
    )
    took = time.perf_counter() - t
    try:
        body = json.loads(data)
    except ValueError:
        body = {"raw": data[:300].decode(errors="replace")}
    return status, body, took


# Clients ----------------------------------------------------------------------------


@dataclass(slots=True)
class Member:
    """A student (or the teacher): their cookies, timings and class socket."""

    name: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    page_s: float = math.nan
    join_s: float = math.nan
    join_status: int = 0
    join_error: str = ""
    run_id: str = ""  # the student's own run (student-paced)
    run_s: float = math.nan
    run_status: int = 0
    ws: Any = None
    connected: bool = False
    error: str = ""
    hello: str = ""
    states: int = 0
    poll_open_seen: float = 0.0  # wall time the class.state with the poll open came
    poll_open_event: asyncio.Event | None = None
    results: list[tuple[float, int]] = field(default_factory=list)  # teacher's
    members_msgs: int = 0
    errors: list[str] = field(default_factory=list)
    waiters: list[tuple[str, asyncio.Future]] = field(default_factory=list)
    answered: float = 0.0  # wall time the answer was sent
    answer_rtt: float = math.nan
    answer_error: str = ""
    progress_sent: int = 0
    progress_ok: int = 0
    progress_errors: list[str] = field(default_factory=list)


def join_one(m: Member, code: str) -> None:
    """In a thread: the join page (its CSRF cookie), then the join, as a new visitor."""
    try:
        t = time.perf_counter()
        status, headers, _ = request(m.port, "GET", f"/join/{code}/")
        m.page_s = time.perf_counter() - t
        if status != 200:
            m.join_error = f"GET /join/{code}/ answered {status}"
            return
        cookies_of(headers, m.cookies)
        head = api_headers(m.port, m.cookies, f"/join/{code}/")
        t = time.perf_counter()
        status, headers, data = request(
            m.port,
            "POST",
            f"/api/classes/{code}/join",
            head,
            json.dumps({"name": m.name}),
        )
        m.join_s = time.perf_counter() - t
        m.join_status = status
        cookies_of(headers, m.cookies)
        if status not in (200, 201):
            m.join_error = f"join answered {status}: {data[:200]!r}"
    except Exception as exc:  # noqa: BLE001 - reported per student
        m.join_error = f"{exc.__class__.__name__}: {exc}"


async def join_all(
    members: list[Member], code: str, over: float, concurrency: int
) -> dict[str, Any]:
    """Join every student, their starts spread evenly over ``over`` s; at most
    ``concurrency`` requests in flight (a start that waits for room is counted)."""
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=concurrency, thread_name_prefix="join"
    )
    t0 = time.monotonic()
    step = over / max(1, len(members))
    late: list[float] = []

    async def one(i: int, m: Member) -> None:
        await asyncio.sleep(max(0.0, t0 + i * step - time.monotonic()))
        due = time.monotonic()

        def go() -> None:
            late.append(time.monotonic() - due)
            join_one(m, code)

        await loop.run_in_executor(pool, go)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(one(i, m) for i, m in enumerate(members))),
            timeout=over + 60 + 0.5 * len(members),
        )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    took = time.monotonic() - t0
    ok = [m for m in members if not m.join_error]
    joins = [m.join_s * 1000 for m in ok]
    pages = [m.page_s * 1000 for m in members if not math.isnan(m.page_s)]
    return {
        "students": len(members),
        "joined": len(ok),
        "created_201": sum(m.join_status == 201 for m in members),
        "join_errors": sorted({m.join_error[:160] for m in members if m.join_error})[
            :5
        ],
        "join_over_s": over,
        "join_took_s": round(took, 2),
        "join_p50_ms": pct(joins, 0.5),
        "join_p90_ms": pct(joins, 0.9),
        "join_p99_ms": pct(joins, 0.99),
        "join_max_ms": max(joins, default=math.nan),
        "join_page_p50_ms": pct(pages, 0.5),
        "join_page_p99_ms": pct(pages, 0.99),
        # how long a start waited for a free thread of this client (0 if never)
        "client_start_lag_max_ms": round(max(late, default=0.0) * 1000, 1),
    }


async def class_socket(m: Member, code: str) -> None:
    """The class socket of ``m`` until cancelled: records what the bench measures."""
    from websockets.asyncio.client import connect

    origin = f"http://127.0.0.1:{m.port}"
    url = f"ws://127.0.0.1:{m.port}/ws/classes/{code}/"
    cookie = "; ".join(f"{k}={v}" for k, v in m.cookies.items())
    m.poll_open_event = asyncio.Event()
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
            max_size=2**20,
            max_queue=256,
        ) as ws:
            m.ws = ws
            m.connected = True
            async for text in ws:
                t = time.time()
                msg = json.loads(text)
                kind = msg.get("type")
                if kind == "hello":
                    m.hello = msg.get("role", "")
                elif kind == "class.state":
                    m.states += 1
                    poll = msg.get("poll") or {}
                    if (
                        poll.get("state") == "open"
                        and poll.get("step") == POLL_STEP
                        and not m.poll_open_seen
                    ):
                        m.poll_open_seen = t
                        m.poll_open_event.set()
                elif kind == "poll.results":
                    m.results.append((t, int(msg.get("answers", 0))))
                elif kind == "class.members":
                    m.members_msgs += 1
                elif kind in ("accepted", "error"):
                    if kind == "error":
                        m.errors.append(f"{msg.get('field')}: {msg.get('message')}")
                    if m.waiters:
                        _, fut = m.waiters.pop(0)
                        if not fut.done():
                            fut.set_result((t, msg))
            m.error = f"closed by the server: code {ws.close_code} {ws.close_reason!r}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported per member
        m.error = f"{exc.__class__.__name__}: {exc}"


async def send(
    m: Member, message: dict[str, Any], timeout: float = 15
) -> tuple[float, float, dict[str, Any]]:
    """Send a message on the class socket; (sent, answered wall time, the answer)."""
    fut = asyncio.get_running_loop().create_future()
    m.waiters.append((message["type"], fut))
    sent = time.time()
    await m.ws.send(json.dumps(message))
    try:
        t, answer = await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        return sent, math.nan, {"type": "error", "message": "no answer in time"}
    return sent, t, answer


async def control(m: Member, message: dict[str, Any]) -> float:
    """A teacher's message that must be accepted; its round trip in s."""
    sent, t, answer = await send(m, message)
    if answer.get("type") != "accepted":
        raise RuntimeError(f"{message} was refused: {answer}")
    return t - sent


async def open_sockets(
    members: list[Member],
    viewers: list[Viewer],
    code: str,
    concurrency: int,
    deadline_s: float,
) -> tuple[list[asyncio.Task], dict[str, Any]]:
    """Class sockets and run sockets, ``concurrency`` handshakes in flight at most."""
    tasks: list[asyncio.Task] = []
    t0 = time.monotonic()
    deadline = t0 + deadline_s
    pairs = list(zip(members, viewers)) if viewers else [(m, None) for m in members]
    per = max(1, concurrency // 2)
    for start in range(0, len(pairs), per):
        batch = pairs[start : start + per]
        for m, v in batch:
            tasks.append(asyncio.ensure_future(class_socket(m, code)))
            if v is not None:
                tasks.append(asyncio.ensure_future(watch(v, False, 5, 0)))
        while not all(
            (m.hello or m.error) and (v is None or v.connected or v.error)
            for m, v in batch
        ):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
    took = time.monotonic() - t0
    return tasks, {
        "class_sockets": sum(bool(m.hello) for m in members),
        "run_sockets": sum(v.connected for v in viewers),
        "socket_errors": sorted(
            {m.error[:160] for m in members if m.error}
            | {v.error[:160] for v in viewers if v.error}
        )[:5],
        "sockets_open_s": round(took, 2),
    }


# Scenarios --------------------------------------------------------------------------


def limits_for(scenario: str, args, students: int) -> dict[str, str]:
    if scenario == "teacher":
        return {}
    need = students + 50
    out = {"SCALELAB_MAX_LIVE_RUNS": str(max(400, need))}
    if args.caps == "raised":
        out["SCALELAB_ADDRESS_LIVE_RUNS"] = str(max(400, need))
        out["SCALELAB_ADDRESS_RUNS_PER_MIN"] = str(max(1000, 4 * need))
    return out


async def measure_window(
    stack: ClassStack,
    run_ids: list[str],
    seconds: float,
    during,
) -> dict[str, Any]:
    """The window: CPU and the runs' seq ranges around it, ``during`` played inside."""
    meter = CpuMeter(stack.pids())
    cpu0 = meter.sample()
    s0 = last_seqs(stack.redis, run_ids)
    w0 = time.time()
    end = time.monotonic() + seconds
    lags: list[float] = []

    probe = lag_probe(lags)
    # The window is ``seconds`` long whatever ``during`` does; what it plays and has
    # not finished by then is waited for after (at most a minute).
    played_task = asyncio.ensure_future(during())
    await asyncio.wait([played_task], timeout=max(0.0, end - time.monotonic()))
    left = end - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)
    probe.cancel()
    s1 = last_seqs(stack.redis, run_ids)
    w1 = time.time()
    cpu1 = meter.sample()
    played = await asyncio.wait_for(played_task, timeout=60)
    played["window_over_before_done"] = time.time() > w1 + 0.5
    pg = await asyncio.get_running_loop().run_in_executor(None, stack.pg_connections)
    return {
        "s0": s0,
        "s1": s1,
        "w0": w0,
        "w1": w1,
        "cpu": CpuMeter.between(cpu0, cpu1),
        "played": played,
        "pg": pg,
        "lag": {
            "p50": round(pct(lags, 0.5), 1),
            "p99": round(pct(lags, 0.99), 1),
            "max": round(max(lags, default=math.nan), 1),
        },
    }


def frame_figures(
    name, stack, args, group, run_ids, viewers, window, stack_runs
) -> dict[str, Any]:
    res = analyse(
        name,
        args.hz,
        run_ids,
        viewers,
        window["s0"],
        window["s1"],
        window["w1"] - window["w0"],
        window["cpu"],
        args,
        stack,
        group,
        stack_runs,
    )
    keep = (
        "runs",
        "viewers_per_run",
        "viewers_connected",
        "viewer_error_count",
        "viewer_errors",
        "window_s",
        "published_fps_per_run",
        "published_fps_per_run_min",
        "frames_expected",
        "frames_delivered",
        "delivered_pct",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "within_schedule_pct",
        "emit_late_p99_ms",
        "sched_late_p99_ms",
        "stalled_viewers",
        "snapshots",
    )
    out = {k: res[k] for k in keep}
    # The schedule as stream.py defines it starts at the run's first frame, so a run
    # that stalled once (the driver skips ahead after a stall of over a second) is
    # late for good. The same share against a schedule taken from the frames of the
    # window itself tells a stall before the window from lateness within it.
    period = 1.0 / args.hz
    s0, s1 = window["s0"], window["s1"]
    by_run: dict[str, list[Viewer]] = {}
    for v in viewers:
        by_run.setdefault(v.run_id, []).append(v)
    within = expected = 0
    for run_id, vs in by_run.items():
        lo, hi = s0[run_id], s1[run_id]
        start = min(
            (
                ts - seq * period
                for v in vs
                for seq, ts in zip(v.seqs, v.ts)
                if lo < seq <= hi
            ),
            default=math.nan,
        )
        for v in vs:
            expected += hi - lo
            got = {
                seq
                for seq, rt in zip(v.seqs, v.recv)
                if lo < seq <= hi and rt - (start + seq * period) <= stream.SCHEDULE_S
            }
            within += len(got)
    out["within_window_schedule_pct"] = (
        100.0 * within / expected if expected else math.nan
    )
    # Holes in what each viewer received of the window: how many, and how long.
    holes: list[int] = []
    for v in viewers:
        lo, hi = s0[v.run_id], s1[v.run_id]
        got = sorted({q for q in v.seqs if lo < q <= hi})
        prev = lo
        for q in [*got, hi + 1]:
            if q - prev > 1:
                holes.append(q - prev - 1)
            prev = q
    out["holes"] = len(holes)
    out["hole_frames_p50"] = pct(holes, 0.5)
    out["hole_frames_max"] = max(holes, default=0)
    return out


async def open_class(stack: ClassStack, args, mode: str, what: str):
    """Sign the teacher in, start a class of ``mode`` with a run of the teacher's as
    its shared run, and have every student join: (teacher, students, joins, tasks)."""
    port = stack.ports[0]
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    cookies = await loop.run_in_executor(None, sign_in, port)
    info = await loop.run_in_executor(None, start_class, port, cookies, mode)
    code = info["code"]
    status, run, _ = await loop.run_in_executor(
        None, start_run, port, cookies, args.kind, 1
    )
    if status != 201:
        raise RuntimeError(f"{what}: POST /api/runs/ answered {status}: {run}")
    teacher = Member("teacher", port, cookies)
    tasks = [asyncio.ensure_future(class_socket(teacher, code))]
    while not (teacher.hello or teacher.error):
        await asyncio.sleep(0.02)
    if teacher.hello != "teacher":
        raise RuntimeError(
            f"the teacher's class socket: {teacher.hello or teacher.error}"
        )
    await control(teacher, {"type": "run", "run": run["id"]})
    log(f"{mode}: class {code}, {what} {run['id']} ({time.monotonic() - t0:.1f} s)")
    students = [
        Member(f"student {i + 1}", stack.ports[i % len(stack.ports)])
        for i in range(args.students)
    ]
    joins = await join_all(students, code, args.join_over, args.join_concurrency)
    return code, run["id"], teacher, students, joins, tasks


async def teacher_scenario(stack: ClassStack, args) -> dict[str, Any]:
    code, run_id, teacher, students, joins, tasks = await open_class(
        stack, args, "teacher", "shared run"
    )
    log(
        f"teacher: {joins['joined']}/{len(students)} joined in {joins['join_took_s']} s; "
        f"join p99 {fmt(joins['join_p99_ms'])} ms"
    )
    joined = [m for m in students if not m.join_error]
    viewers = [Viewer(run_id, m.port) for m in joined]
    more, sockets = await open_sockets(
        joined, viewers, code, args.connect_concurrency, 60 + 0.1 * len(joined)
    )
    tasks += more
    log(
        f"teacher: {sockets['class_sockets']} class and {sockets['run_sockets']} run sockets "
        f"open in {sockets['sockets_open_s']} s"
        + (
            f"; errors e.g. {sockets['socket_errors'][0]}"
            if sockets["socket_errors"]
            else ""
        )
    )
    await asyncio.sleep(args.warmup)
    stack.check_alive()
    live = [m for m in joined if m.hello == "student"]
    rng = random.Random(7)

    async def poll() -> dict[str, Any]:
        await asyncio.sleep(args.poll_at)
        step_rtt = await control(teacher, {"type": "step", "step": POLL_STEP})
        open_sent = time.time()
        open_rtt = await control(teacher, {"type": "poll.open", "step": POLL_STEP})
        opened = open_sent + open_rtt

        async def answer(m: Member) -> None:
            at = opened + rng.uniform(0, args.answer_over)
            try:
                await asyncio.wait_for(m.poll_open_event.wait(), 30)
            except TimeoutError:
                m.answer_error = "never saw the poll open"
                return
            await asyncio.sleep(max(0.0, at - time.time()))
            sent, t, reply = await send(
                m, {"type": "poll.answer", "step": POLL_STEP, "value": rng.randrange(4)}
            )
            m.answered = sent
            if reply.get("type") == "accepted":
                m.answer_rtt = t - sent
            else:
                m.answer_error = str(reply.get("message", reply))[:160]

        await asyncio.gather(*(answer(m) for m in live))
        accepted = [m for m in live if not math.isnan(m.answer_rtt)]
        last_sent = max((m.answered for m in live if m.answered), default=math.nan)
        want = len(accepted)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            n >= want for _, n in teacher.results
        ):
            await asyncio.sleep(0.02)
        full = next((t for t, n in teacher.results if n >= want), math.nan)
        rtts = [m.answer_rtt * 1000 for m in accepted]
        seen = [(m.poll_open_seen - opened) * 1000 for m in live if m.poll_open_seen]
        return {
            "poll_students": len(live),
            "answers_accepted": want,
            "answer_errors": sorted({m.answer_error for m in live if m.answer_error})[
                :5
            ],
            "answers_spread_s": round(
                last_sent - min(m.answered for m in live if m.answered), 2
            )
            if want
            else math.nan,
            "teacher_full_after_last_ms": (full - last_sent) * 1000,
            "teacher_max_answers_seen": max((n for _, n in teacher.results), default=0),
            "answer_rtt_p50_ms": pct(rtts, 0.5),
            "answer_rtt_p99_ms": pct(rtts, 0.99),
            "answer_rtt_max_ms": max(rtts, default=math.nan),
            "saw_poll_open_p50_ms": pct(seen, 0.5),
            "saw_poll_open_p99_ms": pct(seen, 0.99),
            "teacher_step_rtt_ms": round(step_rtt * 1000, 1),
            "teacher_poll_open_rtt_ms": round(open_rtt * 1000, 1),
            "poll_window": (opened, full if not math.isnan(full) else time.time()),
        }

    log(
        f"teacher: measuring for {args.seconds:g} s, the poll opens at +{args.poll_at:g} s"
    )
    window = await measure_window(stack, [run_id], args.seconds, poll)
    await asyncio.sleep(args.grace)
    stack.check_alive()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=10)
    played = window["played"]
    frames = frame_figures(
        "teacher",
        stack,
        args,
        Group("viewers", 1, len(viewers), "viewers"),
        [run_id],
        viewers,
        window,
        1,
    )
    # Frames of the shared run received while the poll was being answered.
    p0, p1 = played.pop("poll_window")
    during = [
        (rt - ts) * 1000
        for v in viewers
        for rt, ts in zip(v.recv, v.ts)
        if p0 <= rt <= p1 + 1
    ]
    frames["poll_p99_ms"] = pct(during, 0.99)
    res = {
        "scenario": "teacher",
        "code": code,
        **joins,
        **sockets,
        **played,
        "frames": frames,
        "cpu_pct_of_core": {k: round(x, 1) for k, x in window["cpu"].items()},
        "client_loop_lag_ms": window["lag"],
        "pg_connections": window["pg"],
        "teacher_socket_errors": teacher.errors[:5],
    }
    res["met"] = {
        "join": joins["joined"] == args.students and joins["join_p99_ms"] <= 300,
        "frames": bool(frames["frames_expected"])
        and frames["frames_delivered"] == frames["frames_expected"]
        and frames["p99_ms"] <= 200,
        "poll": played["answers_accepted"] == len(live) == args.students
        and played["teacher_full_after_last_ms"] <= 1000,
    }
    return res


async def student_scenario(stack: ClassStack, args) -> dict[str, Any]:
    code, projector, teacher, students, joins, tasks = await open_class(
        stack, args, "student", "projector run"
    )
    loop = asyncio.get_running_loop()
    joined = [m for m in students if not m.join_error]
    log(f"student: {len(joined)}/{len(students)} joined; starting their runs")

    # Each student starts a run of their own, as the lesson page does on "Start".
    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=min(8, args.join_concurrency), thread_name_prefix="run"
    )
    t_runs = time.monotonic()

    def own_run(i: int, m: Member) -> None:
        try:
            m.run_status, body, m.run_s = start_run(
                m.port, m.cookies, args.kind, 100 + i
            )
            if m.run_status == 201:
                m.run_id = body["id"]
            else:
                m.error = f"POST /api/runs/ answered {m.run_status}: {body}"[:200]
        except Exception as exc:  # noqa: BLE001
            m.error = f"{exc.__class__.__name__}: {exc}"

    try:
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    loop.run_in_executor(pool, own_run, i, m)
                    for i, m in enumerate(joined)
                )
            ),
            timeout=120 + 0.5 * len(joined),
        )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    with_run = [m for m in joined if m.run_id]
    run_create_ms = [m.run_s * 1000 for m in with_run]
    refused = sorted({m.error for m in joined if not m.run_id})
    log(
        f"student: {len(with_run)}/{len(joined)} runs started in {time.monotonic() - t_runs:.1f} s"
        + (f"; refused e.g. {refused[0]}" if refused else "")
    )
    run_ids = [projector] + [m.run_id for m in with_run]
    deadline = time.monotonic() + 60 + 0.05 * len(run_ids)
    while True:
        seqs = last_seqs(stack.redis, run_ids)
        started = sum(1 for s in seqs.values() if s > 0)
        if started == len(run_ids) or time.monotonic() > deadline:
            break
        stack.check_alive()
        await asyncio.sleep(0.2)
    viewers = [Viewer(m.run_id, m.port) for m in with_run]
    more, sockets = await open_sockets(
        with_run, viewers, code, args.connect_concurrency, 60 + 0.1 * len(with_run)
    )
    tasks += more
    teacher_view = Viewer(projector, teacher.port)
    tasks.append(asyncio.ensure_future(watch(teacher_view, False, 5, 0)))
    log(
        f"student: {started}/{len(run_ids)} runs publishing; {sockets['class_sockets']} class and "
        f"{sockets['run_sockets']} run sockets open in {sockets['sockets_open_s']} s"
    )
    await asyncio.sleep(args.warmup)
    stack.check_alive()
    live = [m for m in with_run if m.hello == "student"]
    rng = random.Random(11)
    reports = args.progress

    async def progress() -> dict[str, Any]:
        # Each student reports reaching steps 1, 2 and 3 at random moments of the window.
        async def one(m: Member) -> None:
            times = sorted(rng.uniform(0, args.seconds * 0.8) for _ in range(reports))
            start = time.monotonic()
            for k, at in enumerate(times, start=1):
                await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                m.progress_sent += 1
                _, _, reply = await send(m, {"type": "progress", "step": k})
                if reply.get("type") == "accepted":
                    m.progress_ok += 1
                else:
                    m.progress_errors.append(str(reply.get("message", reply))[:160])
                    return  # the app refused it: no use sending more
                if k == 1:
                    # At their own pace, a student predicts step 0 with no poll open.
                    sent, t, reply = await send(
                        m,
                        {
                            "type": "poll.answer",
                            "step": POLL_STEP,
                            "value": rng.randrange(4),
                        },
                    )
                    m.answered = sent
                    if reply.get("type") == "accepted":
                        m.answer_rtt = t - sent
                    else:
                        m.answer_error = str(reply.get("message", reply))[:160]

        await asyncio.gather(*(one(m) for m in live))
        errors = sorted({e for m in live for e in m.progress_errors})
        rtts = [m.answer_rtt * 1000 for m in live if not math.isnan(m.answer_rtt)]
        return {
            "own_pace_answers_sent": sum(bool(m.answered) for m in live),
            "own_pace_answers_accepted": len(rtts),
            "own_pace_answer_errors": sorted(
                {m.answer_error for m in live if m.answer_error}
            )[:3],
            "own_pace_answer_rtt_p99_ms": pct(rtts, 0.99),
            "progress_sent": sum(m.progress_sent for m in live),
            "progress_accepted": sum(m.progress_ok for m in live),
            "progress_errors": errors[:3],
            "teacher_class_members_msgs": teacher.members_msgs,
        }

    log(f"student: measuring for {args.seconds:g} s")
    window = await measure_window(stack, run_ids, args.seconds, progress)
    await asyncio.sleep(args.grace)
    stack.check_alive()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=10)
    all_viewers = [teacher_view, *viewers]
    frames = frame_figures(
        "student",
        stack,
        args,
        Group("runs", len(run_ids), 1, "runs"),
        run_ids,
        all_viewers,
        window,
        len(run_ids),
    )
    res = {
        "scenario": "student",
        "code": code,
        **joins,
        "runs_started": len(with_run) + 1,
        "run_refusals": refused[:3],
        "run_create_p50_ms": pct(run_create_ms, 0.5),
        "run_create_p99_ms": pct(run_create_ms, 0.99),
        "caps": args.caps,
        "limits": stack.limits,
        **sockets,
        **window["played"],
        "frames": frames,
        "cpu_pct_of_core": {k: round(x, 1) for k, x in window["cpu"].items()},
        "client_loop_lag_ms": window["lag"],
        "pg_connections": window["pg"],
        "teacher_socket_errors": teacher.errors[:5],
    }
    res["met"] = {
        "schedule": len(run_ids) == args.students + 1
        and bool(frames["frames_expected"])
        and frames["frames_delivered"] == frames["frames_expected"]
        and frames["within_schedule_pct"] >= 99.0,
    }
    return res


# Output --------------------------------------------------------------------------


def yes(x: bool) -> str:
    return "met" if x else "NOT met"


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| scenario | target | figure | met |", "|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['scenario']} | FAILED: {r['error'][:200]} | | |")
            continue
        f = r["frames"]
        if r["scenario"] == "teacher":
            rows += [
                f"| teacher: {r['students']} students join | {TARGETS['join']} "
                f"| p99 {fmt(r['join_p99_ms'])} ms (p50 {fmt(r['join_p50_ms'])}, max "
                f"{fmt(r['join_max_ms'])}; {r['joined']} joined, over {r['join_over_s']:g} s) "
                f"| {yes(r['met']['join'])} |",
                f"| teacher: {f['viewers_connected']} watch the shared run | {TARGETS['frames']} "
                f"| p99 {fmt(f['p99_ms'])} ms (p50 {fmt(f['p50_ms'])}; delivered "
                f"{fmt(f['delivered_pct'], 2)} %; p99 while the poll ran {fmt(f['poll_p99_ms'])} ms) "
                f"| {yes(r['met']['frames'])} |",
                f"| teacher: {r['poll_students']} answer a poll in {r['answers_spread_s']} s "
                f"| {TARGETS['poll']} | {fmt(r['teacher_full_after_last_ms'], 0)} ms after the last "
                f"({r['answers_accepted']} accepted); answer round trip p99 "
                f"{fmt(r['answer_rtt_p99_ms'])} ms | {yes(r['met']['poll'])} |",
            ]
        else:
            rows.append(
                f"| student: {r['runs_started']} runs ({r['students']} students + projector) "
                f"| {TARGETS['schedule']} | {fmt(f['within_schedule_pct'], 2)} % (delivered "
                f"{fmt(f['delivered_pct'], 2)} %, p99 {fmt(f['p99_ms'])} ms; against the window's "
                f"own schedule {fmt(f['within_window_schedule_pct'], 2)} %) "
                f"| {yes(r['met']['schedule'])} |"
            )
    return "\n".join(rows)


def details(r: dict[str, Any]) -> str:
    f = r["frames"]
    c = r["cpu_pct_of_core"]
    lines = [
        f"{r['scenario']}: class {r['code']}: {r['joined']}/{r['students']} joined in "
        f"{r['join_took_s']} s (join p50/p90/p99/max {fmt(r['join_p50_ms'])}/{fmt(r['join_p90_ms'])}/"
        f"{fmt(r['join_p99_ms'])}/{fmt(r['join_max_ms'])} ms; join page p50/p99 "
        f"{fmt(r['join_page_p50_ms'])}/{fmt(r['join_page_p99_ms'])} ms; client start lag max "
        f"{r['client_start_lag_max_ms']} ms)"
        + (f"; errors {r['join_errors']}" if r["join_errors"] else ""),
        f"  sockets: {r['class_sockets']} class, {r['run_sockets']} run, open in {r['sockets_open_s']} s"
        + (f"; errors {r['socket_errors']}" if r["socket_errors"] else ""),
        f"  frames ({f['runs']} run(s) x {f['viewers_per_run']}): window {f['window_s']} s, "
        f"{f['published_fps_per_run']} /s per run (slowest {f['published_fps_per_run_min']}); "
        f"delivered {f['frames_delivered']}/{f['frames_expected']} ({fmt(f['delivered_pct'], 2)} %); "
        f"latency p50/p90/p99/max {fmt(f['p50_ms'])}/{fmt(f['p90_ms'])}/{fmt(f['p99_ms'])}/"
        f"{fmt(f['max_ms'])} ms; within 250 ms of schedule {fmt(f['within_schedule_pct'], 2)} %; "
        f"against the window's own schedule {fmt(f['within_window_schedule_pct'], 2)} %; "
        f"worker lateness p99 {fmt(f['emit_late_p99_ms'])} ms; snapshots {f['snapshots']}; "
        f"holes {f['holes']} (frames p50 {fmt(f['hole_frames_p50'], 0)}, max {f['hole_frames_max']}); "
        f"stalled viewers {f['stalled_viewers']}"
        + (f"; viewer errors {f['viewer_errors']}" if f["viewer_errors"] else ""),
    ]
    if r["scenario"] == "teacher":
        lines.append(
            f"  poll: {r['answers_accepted']}/{r['poll_students']} answers accepted, spread over "
            f"{r['answers_spread_s']} s; teacher saw {r['teacher_max_answers_seen']} answers, all "
            f"{fmt(r['teacher_full_after_last_ms'], 0)} ms after the last was sent; answer round trip "
            f"p50/p99/max {fmt(r['answer_rtt_p50_ms'])}/{fmt(r['answer_rtt_p99_ms'])}/"
            f"{fmt(r['answer_rtt_max_ms'])} ms; students saw the poll open p50/p99 "
            f"{fmt(r['saw_poll_open_p50_ms'])}/{fmt(r['saw_poll_open_p99_ms'])} ms after it was "
            f"accepted; teacher step / poll.open round trips {r['teacher_step_rtt_ms']} / "
            f"{r['teacher_poll_open_rtt_ms']} ms; frames p99 while the poll ran "
            f"{fmt(f['poll_p99_ms'])} ms"
            + (f"; answer errors {r['answer_errors']}" if r["answer_errors"] else "")
        )
    else:
        lines.append(
            f"  runs: {r['runs_started']} started (create p50/p99 {fmt(r['run_create_p50_ms'])}/"
            f"{fmt(r['run_create_p99_ms'])} ms; limits {r['limits']})"
            + (f"; refused {r['run_refusals']}" if r["run_refusals"] else "")
            + f"; progress {r['progress_accepted']}/{r['progress_sent']} accepted"
            + (f" (refused: {r['progress_errors']})" if r["progress_errors"] else "")
            + f"; own-pace predictions {r['own_pace_answers_accepted']}/"
            f"{r['own_pace_answers_sent']} accepted (round trip p99 "
            f"{fmt(r['own_pace_answer_rtt_p99_ms'])} ms)"
            + (
                f" (refused: {r['own_pace_answer_errors']})"
                if r["own_pace_answer_errors"]
                else ""
            )
            + f"; class.members to the teacher: {r['teacher_class_members_msgs']}"
        )
    lines.append(
        f"  CPU % of one core: daphne {c.get('daphne')}, worker {c.get('worker')}, redis "
        f"{c.get('redis')}, client {c.get('client')}, machine {c.get('machine')}, other "
        f"{c.get('other')}; client loop lag ms {r['client_loop_lag_ms']}"
        + (
            f"; Postgres connections {r['pg_connections']}"
            if r["pg_connections"]
            else ""
        )
    )
    if r.get("teacher_socket_errors"):
        lines.append(f"  teacher socket errors: {r['teacher_socket_errors']}")
    for name, bad in r.get("log_problems", {}).items():
        lines.append(f"  log {name}: " + bad[0])
        lines.extend(f"    {line}" for line in bad[1:])
    return "\n".join(lines)


# Main ------------------------------------------------------------------------------


def class_allowance() -> bool:
    """Whether the app counts a live class's members per class for run limits."""
    text = ""
    for src in ("lessons/classes.py", "simulations/views.py"):
        try:
            text += (ROOT / src).read_text()
        except OSError:
            return False
    return (
        bool(re.search(r"def class_allowance\(", text))
        and "class_allowance(" in (ROOT / "simulations" / "views.py").read_text()
    )


async def played(stack: ClassStack, play: Any, args: Any) -> dict[str, Any]:
    """A scenario's result, with the problems its servers' logs show."""
    res = await play(stack, args)
    res["log_problems"] = stack.log_problems()
    return res


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--scenario", choices=("teacher", "student", "all"), default="all"
    )
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measured window of each scenario"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds after every socket opened"
    )
    add_shared(parser, "--grace")
    parser.add_argument(
        "--join-over",
        type=float,
        default=10.0,
        help="the students' joins start evenly over this many seconds",
    )
    parser.add_argument(
        "--join-concurrency",
        type=int,
        default=32,
        help="join requests in flight at most (client threads)",
    )
    parser.add_argument(
        "--poll-at",
        type=float,
        default=5.0,
        help="seconds into the window the poll opens",
    )
    parser.add_argument(
        "--answer-over",
        type=float,
        default=2.0,
        help="the answers are sent at random over this many seconds after the poll opened",
    )
    add_shared(parser, "--hz")
    parser.add_argument(
        "--kind", default="cache", help="engine of the runs (the lesson's)"
    )
    parser.add_argument("--daphne", type=int, default=1, help="Daphne processes")
    add_shared(parser, "--workers")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="task threads per worker"
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--progress",
        type=int,
        default=3,
        help="student scenario: progress reports per student over the window (0: none)",
    )
    parser.add_argument(
        "--pg-connections",
        type=int,
        default=40,
        help="with --db postgres: the most connections the stack may hold (its role's "
        "CONNECTION LIMIT); past it the app's requests fail, and are counted",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=REDIS_DB,
        help="Redis database number (flushed before and after)",
    )
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=25,
        help="websocket handshakes in flight",
    )
    parser.add_argument(
        "--caps",
        choices=("auto", "raised", "app"),
        default="auto",
        help="student scenario: raise the per-address run caps (raised), keep the app's "
        "(app: needs the class allowance), or raised unless the app has one (auto)",
    )
    parser.add_argument(
        "--profile",
        choices=("gc", "stacks"),
        help="as bench/stream.py's: time the servers' garbage collections (gc), and sample "
        "their stacks every 4 ms (stacks), printed after each scenario",
    )
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    # What stream.py's Stack and analyse() read of the arguments.
    args.worker_runs = 0
    args.profile = args.profile or None
    args.gc = None
    args.nice = 0
    args.full_json = False
    args.after = "0"
    if not 1 <= args.students <= MAX_STUDENTS:
        parser.error(f"--students must be from 1 to {MAX_STUDENTS}")
    if args.redis_db in (0, 12, 13, 14):
        parser.error(
            "--redis-db: 0 is the shared one; 12 to 14 are the tests' and benches'"
        )
    if args.caps == "auto":
        args.caps = "app" if class_allowance() else "raised"

    interrupt_on_sigterm()
    chosen = ["teacher", "student"] if args.scenario == "all" else [args.scenario]
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    for name in chosen:
        runs = 1 if name == "teacher" else args.students + 1
        stack = ClassStack(args, name, runs, limits_for(name, args, args.students))
        play = teacher_scenario if name == "teacher" else student_scenario
        try:
            failed = run_stack(stack, name, results, played, play, args)
        except KeyboardInterrupt:
            return 130
        if not args.json and not failed:
            print(details(results[-1]), file=sys.stderr, flush=True)
        if args.profile == "stacks":
            for proc_name, proc in stack.procs:
                print_profile(stack.scratch / f"profile-{proc.pid}.json", proc_name)
        keep_or_clean(
            name,
            stack,
            bool(failed or results[-1].get("log_problems") or args.keep_logs),
        )
    cmd = " ".join(["bench/classroom.py", *sys.argv[1:]])
    import psutil

    took = time.monotonic() - started
    header = (
        f"\n`{cmd}` on {psutil.cpu_count()} CPU(s), {'Postgres' if args.db == 'postgres' else 'SQLite'}, "
        f"{args.daphne} Daphne, {args.workers} worker; took {took:.0f} s\n"
    )
    print_results(args, cmd, results, header, table, took_s=round(took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
