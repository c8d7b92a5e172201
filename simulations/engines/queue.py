"""Slow work done in the web request, or handed to a job queue drained by workers."""

from __future__ import annotations

import math
from collections import deque
from heapq import heapify, heappop, heappush, heapreplace
from typing import Any, cast

from ..theory.erlang import (
    erlang_c,
    md1_mean_wait,
    mmc_mean_queue_length,
    mmc_mean_wait,
    mmc_poll_figures,
    mmc_timeout_figures,
    mmck_figures,
)
from .base import (
    Command,
    CommandError,
    Engine,
    Event,
    Metric,
    Param,
    TheoryFigures,
    Window,
)

INF = math.inf
Fig = tuple[float, str]
# The broker refuses work past this many waiting jobs even with "no limit"
# (queue_capacity 0): it keeps memory, and so the work of a run, bounded.
HARD_LIMIT = 1_000_000
# Marks on the worker (or web thread) that holds a job: leave after this job,
# or die after doing its work but before acknowledging it.
RETIRE, DOOM = 1, 2
# Response times go in logarithmic bins: 40 per factor e (2.5 % wide) from
# 0.1 ms to 10,000 s, enough for a 95th percentile to about 1 %.
_LOG_LO = math.log(1e-4)
_BINS_PER_E = 40
_NBINS = int((math.log(1e4) - _LOG_LO) * _BINS_PER_E) + 1


def _bin(seconds: float) -> int:
    if seconds <= 1e-4:
        return 0
    return min(_NBINS - 1, int((math.log(seconds) - _LOG_LO) * _BINS_PER_E))


def _bin_value(index: int) -> float:
    return math.exp(_LOG_LO + (index + 0.5) / _BINS_PER_E)


class QueueEngine(Engine):
    kind = "queue"
    title = "Job queue and workers"
    description = (
        "Each web request carries slow work. In sync mode a web thread does it while "
        "the user waits, and requests time out when every thread is busy. In async "
        "mode the request only enqueues a job and answers at once; workers take jobs "
        "from the queue in order, and the page learns the job is done by a push or "
        "by polling a status URL."
    )
    params = (
        Param(
            "mode",
            "choice",
            "async",
            choices=("sync", "async"),
            help="sync: the web thread does the work; async: it enqueues a job for the workers.",
            label="Mode",
        ),
        Param(
            "arrival_rate",
            "float",
            30.0,
            0.1,
            5_000.0,
            unit="requests/s",
            step=1,
            help="Average requests per second, arriving at random (Poisson).",
            label="Arrival rate",
        ),
        Param(
            "service_rate",
            "float",
            10.0,
            0.01,
            5_000.0,
            unit="jobs/s",
            step=0.5,
            help="Jobs one worker (or web thread) finishes per second: 1 / mean duration.",
            label="Service rate per worker",
        ),
        Param(
            "service_dist",
            "choice",
            "exponential",
            choices=("exponential", "deterministic"),
            help="How long a job takes: exponential around the mean, or always the mean.",
            label="Job duration",
        ),
        Param(
            "workers",
            "int",
            4,
            0,
            500,
            unit="workers",
            help="Worker processes taking jobs from the queue (async mode).",
            label="Workers",
        ),
        Param(
            "queue_capacity",
            "int",
            0,
            0,
            HARD_LIMIT,
            unit="jobs",
            help="How many jobs (async) or requests (sync) may wait; 0 for no limit of your "
            f"own (the broker still refuses past {HARD_LIMIT:,}).",
            label="Queue capacity",
        ),
        Param(
            "web_threads",
            "int",
            8,
            1,
            500,
            unit="threads",
            help="Web server threads; in sync mode each does the work of one request.",
            label="Web threads",
        ),
        Param(
            "request_timeout_s",
            "float",
            5.0,
            0.1,
            600.0,
            unit="s",
            step=0.5,
            help="Sync mode: a user gives up after this long; a request still waiting "
            "for a thread then leaves, one in progress is finished for nobody.",
            label="Request timeout",
        ),
        Param(
            "enqueue_ms",
            "float",
            5.0,
            0.1,
            1_000.0,
            unit="ms",
            step=1,
            help="Async mode: time to put a job on the queue and answer the request.",
            label="Enqueue time",
        ),
        Param(
            "notify",
            "choice",
            "push",
            choices=("push", "poll"),
            help="Async mode: how a page learns its job is done. push: the server "
            "sends one message down a websocket the page holds open; poll: the "
            "page asks a status URL every poll interval.",
            label="Result delivery",
        ),
        Param(
            "poll_interval_s",
            "float",
            1.0,
            0.1,
            60.0,
            unit="s",
            step=0.5,
            help="How often a polling page asks whether its job is done, counted "
            "from the moment the request was answered.",
            label="Poll interval",
        ),
    )
    commands = (
        Command(
            "add_worker",
            "Add worker",
            "Start more workers; they take waiting jobs at once.",
            args=(
                Param(
                    "count", "int", 1, 1, 500, unit="workers", help="How many to start."
                ),
            ),
        ),
        Command(
            "remove_worker",
            "Remove worker",
            "Stop workers gracefully: idle ones leave now, busy ones after their job.",
            args=(
                Param(
                    "count", "int", 1, 1, 500, unit="workers", help="How many to stop."
                ),
            ),
        ),
        Command(
            "kill_worker",
            "Kill worker",
            "Kill the worker running the oldest job (or an idle one). Its job was never "
            "acknowledged, so the queue delivers it again: at-least-once.",
            args=(
                Param(
                    "before_ack",
                    "bool",
                    False,
                    help="Die after the job's work is done but before acknowledging "
                    "it: the job then runs twice.",
                ),
            ),
        ),
        Command(
            "burst",
            "Traffic burst",
            "A crowd of requests arrives at this instant.",
            args=(
                Param(
                    "requests",
                    "int",
                    200,
                    1,
                    100_000,
                    unit="requests",
                    help="How many requests arrive at once.",
                ),
            ),
        ),
    )
    event_types = (
        "job.enqueued",
        "job.started",
        "job.done",
        "job.retried",
        "job.rejected",
        "job.timed_out",
        "worker.added",
        "worker.removed",
        "worker.killed",
        "worker.kill_scheduled",
        "traffic.burst",
    )
    narration = {
        "job.retried": (
            "Job {job} will run again{done_before?, though it had already finished|}"
        ),
        "worker.added": "{count#worker} added to the {pool} pool",
        "worker.removed": (
            "{retired?A worker retired from|Workers are leaving} the {pool} pool"
        ),
        "worker.killed": (
            "A worker was killed{before_ack? before acknowledging its job|}"
        ),
        "worker.kill_scheduled": "A worker will be killed while it runs job {job}",
        "traffic.burst": "A burst of {requests#job} arrived; {rejected} turned away",
    }
    theory_models = dict.fromkeys(
        (
            "p_wait",
            "mean_wait_s",
            "mean_queue_length",
            "utilization",
            "throughput_per_s",
        ),
        "M/M/c queueing (Erlang C, or M/M/c/K with a queue limit, or M/M/c+D "
        "in sync mode)",
    ) | {
        "mean_response_s": "the enqueue time (async) or M/M/c+D (sync)",
        **dict.fromkeys(
            ("status_requests_per_s", "polls_per_job", "result_delay_s"),
            "M/M/c (Erlang C) time to done, polled every interval; none with push",
        ),
        "open_connections": "Little's law: jobs waiting + in service (push only)",
    }
    metric_specs = (
        Metric(
            "completed",
            "Jobs completed",
            "jobs",
            help="Completions, counting a job done twice (at-least-once) twice.",
        ),
        Metric(
            "mean_wait_s",
            "Mean wait",
            "s",
            help="Time a job waited before its work started.",
        ),
        Metric(
            "p_wait",
            "Share that waited",
            help="Share of accepted requests that found no free worker.",
        ),
        Metric(
            "mean_queue_length",
            "Mean queue length",
            "jobs",
            help="Jobs (or requests) waiting, averaged over time.",
        ),
        Metric(
            "utilization",
            "Utilization",
            help="Share of time the workers (async) or web threads (sync) were busy, "
            "since the start of the run.",
        ),
        Metric(
            "p95_response_s",
            "95th percentile response",
            "s",
            help="Time until the user got an answer (a timeout counts as the timeout).",
        ),
        Metric(
            "rejected",
            "Rejected",
            "requests",
            help="Refused because the queue was full.",
        ),
        Metric("arrived", "Arrived", "requests"),
        Metric(
            "timed_out",
            "Timed out",
            "requests",
            help="Sync mode: users who gave up, waiting or while their request ran.",
        ),
        Metric(
            "abandoned",
            "Gave up waiting",
            "requests",
            help="Sync mode: requests that timed out before a thread took them.",
        ),
        Metric(
            "retried",
            "Retried",
            "jobs",
            help="Jobs delivered again after their worker died.",
        ),
        Metric(
            "duplicates",
            "Done twice",
            "jobs",
            help="Completions of a job already completed.",
        ),
        Metric(
            "status_requests_per_s",
            "Status polls",
            "requests/s",
            help="Polling: requests per second to the status URL from pages "
            "waiting for their job, since polling, its interval or the mode last "
            "changed (a finished job's last poll is counted when the job ends).",
        ),
        Metric(
            "polls_per_job",
            "Polls per job",
            "requests",
            help="Polling: status requests a page made until one found its job done.",
        ),
        Metric(
            "result_delay_s",
            "Result seen after",
            "s",
            help="Polling: mean time from a job's end until its page's next poll "
            "finds it done (a push arrives as the job ends).",
        ),
        Metric(
            "open_connections",
            "Open push connections",
            "connections",
            help="Push: connections held open by pages waiting for their job (one "
            "per job waiting or running, plus any sync request still waiting for "
            "a thread), on average since push or the mode was last switched on.",
        ),
        Metric("mean_response_s", "Mean response", "s"),
        Metric("throughput_per_s", "Throughput", "jobs/s"),
        Metric("queue_length", "Waiting now", "jobs", summary=False),
        Metric("in_service", "In service now", "jobs", summary=False),
        Metric("in_flight", "In flight", "jobs", summary=False),
        Metric("workers", "Workers", "workers", summary=False),
        Metric("pool_names", "Pools", summary=False),
        Metric("pool_counts", "Busy and idle", summary=False),
        Metric(
            "arrivals_per_s_recent", "Arrivals (last 3 s)", "requests/s", summary=False
        ),
        Metric("done_per_s_recent", "Done (last 3 s)", "jobs/s", summary=False),
        Metric(
            "failed_per_s_recent",
            "Rejected or timed out (last 3 s)",
            "requests/s",
            summary=False,
        ),
        Metric("wait_s_recent", "Wait (last 3 s)", "s", summary=False),
        Metric(
            "utilization_recent",
            "Utilization (last 3 s)",
            help="Busy server-seconds of the pool doing the work in the current mode "
            "(workers in async, web threads in sync) over its server-seconds on "
            "hand, in the last 3 s.",
            summary=False,
        ),
        Metric("response_s_recent", "Response (last 3 s)", "s", summary=False),
    )

    # Setting up ---------------------------------------------------------------

    def setup(self) -> None:
        # In-service jobs as (finish time, job id): ids are unique, come from the
        # counter self.next_job and break ties in time. A web thread's job has a
        # negative id, a worker's a positive one; the sentinel (INF, 0) stays.
        self.heap: list[tuple[float, int]] = [(INF, 0)]
        # Waiting work as (enqueued at, job): jobs for the workers, and requests
        # for the web threads (sync mode).
        self.jobq: deque[tuple[float, int]] = deque()
        self.backlog: deque[tuple[float, int]] = deque()
        self.next_job = 0
        self.size_w = self.free_w = self.p["workers"]
        self.size_t = self.free_t = self.p["web_threads"]
        # job -> RETIRE or DOOM, for the server holding that job.
        self.marks: dict[int, int] = {}
        # Jobs done once and delivered again (their next completion is a duplicate).
        self.redo: set[int] = set()
        # Set to {} to count every job's completions (audits in tests; grows).
        self.ledger: dict[int, int] | None = None
        # job -> when its polling page got its answer (and began to poll).
        self.born: dict[int, float] = {}
        self.next_arrival = self.rng.expovariate(self.p["arrival_rate"])
        self.last_t = 0.0
        self.window = Window(span=3.0)
        self.reset_stats()

    def reset_stats(self) -> None:
        now = self.now
        self.since = self.last_t = self.cap_last = now
        self.arrived = self.accepted = self.waited = self.started = 0
        self.completed = self.rejected = self.timed_out = self.late = 0
        self.retried = self.duplicates = self.instant = 0
        self.wait_sum = self.q_area = self.resp_sum = 0.0
        self.cap_w_area = self.cap_t_area = 0.0
        # Busy time is added a whole job at a time when the job starts; the part
        # of the jobs in progress still to come is taken off when it is read.
        self.busy_w = sum(t - now for t, j in self.heap if j > 0)
        self.busy_t = sum(t - now for t, j in self.heap if j < 0)
        self.hist = [0] * _NBINS
        self._poll_restart(now)

    def _poll_restart(self, now: float) -> None:
        """Measure polling afresh from ``now``."""
        self.poll_since = now
        # Polls the pages still waiting made before now are counted again, from
        # their timers, when read: take them off here.
        self.poll_offset = -self._polls_made(now)
        self.poll_total = self.polled = 0
        self.poll_delay = 0.0
        self.poll_area = self._in_system_area(now)

    def _in_system_area(self, now: float) -> float:
        """Return the job-seconds spent waiting or in service since the stats began.

        In async mode every such job is a page waiting for its result: with push,
        one open connection.
        """
        waiting = len(self.jobq) + len(self.backlog)
        ahead_w, _ = self._ahead(now)
        return self.q_area + waiting * (now - self.last_t) + self.busy_w - ahead_w

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A snapshot from before results were polled carries on pushing them.
        state["p"].setdefault("notify", "push")
        state["p"].setdefault("poll_interval_s", 1.0)
        state.setdefault("born", {})
        state.setdefault("poll_since", state["since"])
        state.setdefault("poll_offset", 0)
        state.setdefault("poll_total", 0)
        state.setdefault("polled", 0)
        state.setdefault("poll_delay", 0.0)
        state.setdefault("poll_area", 0.0)
        super().__setstate__(state)

    def _polls_made(self, now: float) -> int:
        """Return the polls the pages still waiting for a job have made by ``now``."""
        period = self.p["poll_interval_s"]
        return sum(int((now - a) // period) for a in self.born.values() if a < now)

    # Running -----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        p = self.p
        heap, jobq, backlog = self.heap, self.jobq, self.backlog
        marks, redo, ledger, hist = self.marks, self.redo, self.ledger, self.hist
        special = bool(marks or redo or ledger is not None)
        rand = self.rng.random
        log = math.log
        sync = p["mode"] == "sync"
        mean_gap = 1.0 / p["arrival_rate"]
        mean_svc = 1.0 / p["service_rate"]
        expo = p["service_dist"] == "exponential"
        timeout = p["request_timeout_s"]
        cap = p["queue_capacity"] or HARD_LIMIT
        # Polling pages: each asks at answer + k x period until a poll finds its
        # job done; the poll count and the wait for that poll follow from when
        # the job ends.
        poll = p["notify"] == "poll"
        born = self.born
        period = p["poll_interval_s"]
        answer_s = p["enqueue_ms"] / 1000.0
        polls = polled = 0
        poll_delay = 0.0
        lo, per_e, top = _LOG_LO, _BINS_PER_E, _NBINS - 1
        ta = self.next_arrival
        jid = first = self.next_job
        free_w, free_t = self.free_w, self.free_t
        nj, nb = len(jobq), len(backlog)
        nq = nj + nb
        tto = backlog[0][0] + timeout if nb else INF
        last = self.last_t
        q_area = wait_sum = busy_w = busy_t = resp_sum = 0.0
        # Busy server-seconds inside this slice: the work of jobs started in it,
        # plus the work still to come at its start, less what is still to come at
        # its end; and the server-seconds on hand in it.
        ahead_w, ahead_t = self._ahead(self.now)
        self._cap_to(self.now)
        cap_w, cap_t = self.cap_w_area, self.cap_t_area
        in_service = len(heap)
        direct = completed = rejected = timed_out = late = served = 0
        duplicates = 0
        notes: list[Event] = []
        # The heap ends with a sentinel (INF, 0), so it is never empty.
        while True:
            head = heap[0]
            tc = head[0]
            if ta <= tc and ta <= tto:
                if ta > end:
                    break
                q_area += nq * (ta - last)
                last = ta
                jid += 1
                if sync:
                    if free_t:
                        free_t -= 1
                        s = -log(1.0 - rand()) * mean_svc if expo else mean_svc
                        busy_t += s
                        direct += 1
                        if s > timeout:
                            late += 1
                        else:
                            served += 1
                            resp_sum += s
                            hist[
                                min(top, int((log(s) - lo) * per_e)) if s > 1e-4 else 0
                            ] += 1
                        heappush(heap, (ta + s, -jid))
                    elif nb >= cap:
                        rejected += 1
                    else:
                        backlog.append((ta, jid))
                        if not nb:
                            tto = ta + timeout
                        nb += 1
                        nq += 1
                elif free_w:
                    free_w -= 1
                    s = -log(1.0 - rand()) * mean_svc if expo else mean_svc
                    busy_w += s
                    direct += 1
                    heappush(heap, (ta + s, jid))
                    if poll:
                        born[jid] = ta + answer_s
                elif nj >= cap:
                    rejected += 1
                else:
                    jobq.append((ta, jid))
                    nj += 1
                    nq += 1
                    if poll:
                        born[jid] = ta + answer_s
                ta -= log(1.0 - rand()) * mean_gap
            elif tc <= tto:
                if tc > end:
                    break
                t = tc
                q_area += nq * (t - last)
                last = t
                j = head[1]
                completed += 1
                if poll and j > 0:
                    # The page sees the first completion; a job done twice is
                    # no longer awaited.
                    a = born.pop(j, None)
                    if a is not None:
                        k = max(1, math.ceil((t - a) / period))
                        polls += k
                        polled += 1
                        poll_delay += a + k * period - t
                if special:
                    if j in redo:
                        redo.discard(j)
                        duplicates += 1
                    if ledger is not None:
                        ledger[j] = ledger.get(j, 0) + 1
                    if j in marks:
                        # The server holding this job leaves (retires or dies)
                        # instead of taking the next one.
                        heappop(heap)
                        if marks.pop(j) == RETIRE:
                            notes.append(self._leave(t, j, killed=False))
                            continue
                        notes.append(self._leave(t, j, killed=True))
                        notes.append(
                            {
                                "type": "job.retried",
                                "t": t,
                                "job": j,
                                "done_before": True,
                            }
                        )
                        jobq.appendleft((t, j))
                        nj += 1
                        nq += 1
                        redo.add(j)
                        if free_w:
                            # An idle worker takes the job delivered again at once.
                            jobq.popleft()
                            nj -= 1
                            nq -= 1
                            free_w -= 1
                            s = -log(1.0 - rand()) * mean_svc if expo else mean_svc
                            busy_w += s
                            heappush(heap, (t + s, j))
                        special = True
                        continue
                    special = bool(marks or redo or ledger is not None)
                if j > 0:
                    if nj:
                        a, k = jobq.popleft()
                        nj -= 1
                        nq -= 1
                        wait_sum += t - a
                        s = -log(1.0 - rand()) * mean_svc if expo else mean_svc
                        busy_w += s
                        heapreplace(heap, (t + s, k))
                    else:
                        heappop(heap)
                        free_w += 1
                elif nb:
                    a, k = backlog.popleft()
                    nb -= 1
                    nq -= 1
                    tto = backlog[0][0] + timeout if nb else INF
                    w = t - a
                    wait_sum += w
                    s = -log(1.0 - rand()) * mean_svc if expo else mean_svc
                    busy_t += s
                    r = w + s
                    if r > timeout:
                        late += 1
                    else:
                        served += 1
                        resp_sum += r
                        hist[
                            min(top, int((log(r) - lo) * per_e)) if r > 1e-4 else 0
                        ] += 1
                    heapreplace(heap, (t + s, -k))
                else:
                    heappop(heap)
                    free_t += 1
            else:
                if tto > end:
                    break
                t = tto
                q_area += nq * (t - last)
                last = t
                backlog.popleft()
                nb -= 1
                nq -= 1
                timed_out += 1
                tto = backlog[0][0] + timeout if nb else INF
        arrived = jid - first
        accepted = arrived - rejected
        self.next_arrival = ta
        self.next_job = jid
        self.free_w, self.free_t = free_w, free_t
        self.last_t = last
        self.processed += arrived + completed + timed_out
        # Every completion popped a job off the heap and every start pushed one.
        started = completed + len(heap) - in_service
        self.arrived += arrived
        self.accepted += accepted
        self.waited += accepted - direct
        self.started += started
        self.completed += completed
        self.rejected += rejected
        self.timed_out += timed_out + late
        self.late += late
        self.duplicates += duplicates
        self.poll_total += polls
        self.polled += polled
        self.poll_delay += poll_delay
        self.q_area += q_area
        self.wait_sum += wait_sum
        self.busy_w += busy_w
        self.busy_t += busy_t
        # A user who gave up waited the whole timeout; an async request is answered
        # once its job is on the queue.
        instant = 0 if sync else accepted
        self.instant += instant
        left_w, left_t = self._ahead(end)
        self._cap_to(end)
        resp_sum += (timed_out + late) * timeout + instant * p["enqueue_ms"] / 1000.0
        self.resp_sum += resp_sum
        self.window.add(
            self.now,
            arrived=arrived,
            done=completed,
            failed=rejected + timed_out + late,
            started=started,
            wait=wait_sum,
            answers=served + timed_out + late + instant,
            response=resp_sum,
            busy_w=busy_w + ahead_w - left_w,
            busy_t=busy_t + ahead_t - left_t,
            cap_w=self.cap_w_area - cap_w,
            cap_t=self.cap_t_area - cap_t,
        )
        events: list[Event] = []
        for name, n in (
            ("job.enqueued", accepted),
            ("job.started", started),
            ("job.done", completed),
            ("job.rejected", rejected),
            ("job.timed_out", timed_out + late),
        ):
            if n:
                events.append({"type": name, "count": n})
        return events + notes

    def _leave(self, t: float, job: int, killed: bool) -> Event:
        """Take the server that held ``job`` out of its pool at time ``t``."""
        self._cap_to(t)
        if job > 0:
            self.size_w -= 1
        else:
            self.size_t -= 1
        if killed:
            self.retried += 1
            return {"type": "worker.killed", "t": t, "job": job, "before_ack": True}
        return {
            "type": "worker.removed",
            "t": t,
            "retired": True,
            "pool": "workers" if job > 0 else "web_threads",
        }

    def _cap_to(self, t: float) -> None:
        """Add the server-seconds of both pools up to time ``t``."""
        dt = t - self.cap_last
        if dt > 0:
            self.cap_w_area += self.size_w * dt
            self.cap_t_area += self.size_t * dt
            self.cap_last = t

    def _settle(self) -> None:
        """Bring the time integrals up to now, before a command changes the world."""
        self.q_area += (len(self.jobq) + len(self.backlog)) * (self.now - self.last_t)
        self.last_t = self.now
        self._cap_to(self.now)

    def _ahead(self, now: float) -> tuple[float, float]:
        """Return the work still to come after ``now`` of the jobs in service.

        The first figure is the workers', the second the web threads'.
        """
        ahead_w = ahead_t = 0.0
        for t, j in self.heap:
            if t > now and j:
                if j > 0:
                    ahead_w += t - now
                else:
                    ahead_t += t - now
        return ahead_w, ahead_t

    def _draw_service(self) -> float:
        mean = 1.0 / self.p["service_rate"]
        if self.p["service_dist"] == "exponential":
            return -math.log(1.0 - self.rng.random()) * mean
        return mean

    def _dispatch(self) -> int:
        """Give waiting jobs to idle workers now; return how many started."""
        n = 0
        now = self.now
        while self.free_w and self.jobq:
            a, k = self.jobq.popleft()
            self.free_w -= 1
            s = self._draw_service()
            self.wait_sum += now - a
            self.busy_w += s
            self.started += 1
            heappush(self.heap, (now + s, k))
            n += 1
        while self.free_t and self.backlog:
            a, k = self.backlog.popleft()
            self.free_t -= 1
            s = self._draw_service()
            w = now - a
            self.wait_sum += w
            self.busy_t += s
            self.started += 1
            if w + s > self.p["request_timeout_s"]:
                self.late += 1
                self.timed_out += 1
                self.resp_sum += self.p["request_timeout_s"]
            else:
                self.resp_sum += w + s
                self.hist[_bin(w + s)] += 1
            heappush(self.heap, (now + s, -k))
            n += 1
        return n

    # Metrics -----------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        now = self.now
        elapsed = max(now - self.since, 1e-9)
        sync = self.p["mode"] == "sync"
        waiting = len(self.jobq) + len(self.backlog)
        q_area = self.q_area + waiting * (now - self.last_t)
        ahead_w, ahead_t = self._ahead(now)
        dt = now - self.cap_last
        if sync:
            capacity = self.cap_t_area + self.size_t * dt
            busy = self.busy_t - ahead_t
        else:
            capacity = self.cap_w_area + self.size_w * dt
            busy = self.busy_w - ahead_w
        busy_w = self.size_w - self.free_w
        busy_t = self.size_t - self.free_t
        answers = sum(self.hist) + self.timed_out + self.instant
        w, span = self.window, self.window.seconds(now)
        recent_started = w.total("started", now)
        recent_answers = w.total("answers", now)
        pool = "t" if sync else "w"
        recent_capacity = w.total("cap_" + pool, now)
        return {
            "completed": self.completed,
            "mean_wait_s": self.wait_sum / self.started if self.started else 0.0,
            "p_wait": self.waited / self.accepted if self.accepted else 0.0,
            "mean_queue_length": q_area / elapsed,
            "utilization": busy / capacity if capacity > 0 else 0.0,
            "p95_response_s": self._percentile(0.95),
            "rejected": self.rejected,
            "arrived": self.arrived,
            "timed_out": self.timed_out,
            "abandoned": self.timed_out - self.late,
            "retried": self.retried,
            "duplicates": self.duplicates,
            "status_requests_per_s": self._status_rate(now),
            "polls_per_job": self.poll_total / self.polled if self.polled else 0.0,
            "result_delay_s": self.poll_delay / self.polled if self.polled else 0.0,
            "open_connections": self._open_connections(now),
            "mean_response_s": self.resp_sum / answers if answers else 0.0,
            "throughput_per_s": self.completed / elapsed,
            "queue_length": waiting,
            "in_service": busy_w + busy_t,
            "in_flight": waiting + busy_w + busy_t,
            "workers": self.size_w,
            "pool_names": [
                "workers busy",
                "workers idle",
                "web threads busy",
                "web threads idle",
            ],
            "pool_counts": [busy_w, self.free_w, busy_t, self.free_t],
            "arrivals_per_s_recent": w.total("arrived", now) / span,
            "done_per_s_recent": w.total("done", now) / span,
            "failed_per_s_recent": w.total("failed", now) / span,
            "wait_s_recent": w.total("wait", now) / recent_started
            if recent_started
            else 0.0,
            "response_s_recent": w.total("response", now) / recent_answers
            if recent_answers
            else 0.0,
            "utilization_recent": w.total("busy_" + pool, now) / recent_capacity
            if recent_capacity > 0
            else 0.0,
        }

    def _status_rate(self, now: float) -> float:
        """Return the status requests a second since polling was measured afresh."""
        span = now - self.poll_since
        if self.p["notify"] != "poll" or span <= 0:
            return 0.0
        made = self.poll_total + self.poll_offset + self._polls_made(now)
        return made / span

    def _open_connections(self, now: float) -> float:
        """Return the mean connections held open for pushes since push was measured."""
        span = now - self.poll_since
        if self.p["notify"] != "push" or self.p["mode"] == "sync" or span <= 0:
            return 0.0
        return (self._in_system_area(now) - self.poll_area) / span

    def _percentile(self, q: float) -> float:
        """Return the q-quantile of response times, from the bins and the exact masses."""
        masses = [(_bin_value(i), n) for i, n in enumerate(self.hist) if n]
        if self.timed_out:
            masses.append((self.p["request_timeout_s"], self.timed_out))
        if self.instant:
            masses.append((self.p["enqueue_ms"] / 1000.0, self.instant))
        total = sum(n for _, n in masses)
        if not total:
            return 0.0
        masses.sort()
        need = q * total
        seen = 0
        for value, n in masses:
            seen += n
            if seen >= need:
                return value
        return masses[-1][0]

    def picture(self) -> dict[str, Any]:
        retiring = doomed = 0
        for mark in self.marks.values():
            if mark == RETIRE:
                retiring += 1
            else:
                doomed += 1
        return {
            "mode": self.p["mode"],
            "jobs_waiting": len(self.jobq),
            "requests_waiting": len(self.backlog),
            "retiring": retiring,
            "doomed": doomed,
        }

    # Theory ------------------------------------------------------------------

    def compute_theory(self) -> TheoryFigures:
        out = self._queue_theory()
        return out | self._poll_theory() | self._push_theory(out)

    def _push_theory(
        self, queue: dict[str, float | str | tuple[float, str]]
    ) -> dict[str, float | str | tuple[float, str]]:
        p = self.p
        if p["mode"] == "sync" or p["notify"] == "poll":
            why = "sync: the answer is the result" if p["mode"] == "sync" else "polling"
            return {"open_connections": (0.0, why)}
        waiting, done = queue["mean_queue_length"], queue["throughput_per_s"]
        if isinstance(waiting, str) or isinstance(done, str):
            return {"open_connections": waiting if isinstance(waiting, str) else done}
        (lq, model), (x, _) = cast(Fig, waiting), cast(Fig, done)
        # Little's law: jobs in the system = waiting + throughput x service time
        return {"open_connections": (lq + x / p["service_rate"], model)}

    def _poll_theory(self) -> dict[str, float | str | tuple[float, str]]:
        p = self.p
        names = ("status_requests_per_s", "polls_per_job", "result_delay_s")
        if p["mode"] == "sync":
            return dict.fromkeys(names, (0.0, "sync: the answer is the result"))
        if p["notify"] == "push":
            return dict.fromkeys(names, (0.0, "push: no page polls"))
        lam, mu, c = p["arrival_rate"], p["service_rate"], p["workers"]
        if c == 0 or lam >= c * mu:
            why = "no steady state: the jobs, and the pages' polls, pile up"
        elif p["queue_capacity"]:
            why = "polling with a queue limit: no closed form is used here"
        elif p["service_dist"] != "exponential":
            why = "polling fixed-length jobs: the formula here assumes exponential ones"
        else:
            figures = mmc_poll_figures(
                lam, mu, c, p["poll_interval_s"], p["enqueue_ms"] / 1000.0
            )
            model = f"M/M/c, polled every {p['poll_interval_s']:g} s"
            return {name: (figures[name], model) for name in names}
        return dict.fromkeys(names, why)

    def _queue_theory(self) -> dict[str, float | str | tuple[float, str]]:
        p = self.p
        lam, mu = p["arrival_rate"], p["service_rate"]
        names = (
            "p_wait",
            "mean_wait_s",
            "mean_queue_length",
            "utilization",
            "throughput_per_s",
        )
        out: dict[str, float | str | tuple[float, str]] = {}
        if p["mode"] == "sync":
            c, timeout = p["web_threads"], p["request_timeout_s"]
            if p["queue_capacity"]:
                why = (
                    "sync mode with both a queue limit and a timeout: no closed "
                    "form is used here; set the queue capacity to 0 for M/M/c+D"
                )
                return dict.fromkeys((*names, "mean_response_s"), why)
            if p["service_dist"] != "exponential":
                why = (
                    "fixed job durations with a timeout (M/D/c+D): the formulas "
                    "here assume exponential durations"
                )
                return dict.fromkeys((*names, "mean_response_s"), why)
            fig = mmc_timeout_figures(lam, mu, c, timeout)
            model = f"M/M/c+D (Erlang C with users who give up after {timeout:g} s)"
            for name in (*names, "mean_response_s"):
                out[name] = (fig[name], model)
            return out
        out["mean_response_s"] = (p["enqueue_ms"] / 1000.0, "the enqueue time")
        c, cap = p["workers"], p["queue_capacity"]
        load = lam / (c * mu) if c else math.inf
        if c == 0:
            why = "no worker is running: every job waits until one is added"
            return out | dict.fromkeys(names, why)
        if not cap and load >= 1:
            why = (
                f"load is {load:.2f}, at or above 1: the queue grows without "
                "limit, so no steady state exists"
            )
            return out | dict.fromkeys(names, why)
        if p["service_dist"] != "exponential":
            if cap:
                why = (
                    "fixed job durations with a queue limit (M/D/c/K): no closed "
                    "form here"
                )
                return out | dict.fromkeys(names, why)
            out["utilization"] = (load, "lambda / (c mu)")
            out["throughput_per_s"] = (lam, "every arrival, served")
            if c == 1:
                wait = md1_mean_wait(lam, 1.0 / mu)
                model = "Pollaczek-Khinchine (M/D/1)"
                out["p_wait"] = (load, model)
                out["mean_wait_s"] = (wait, model)
                out["mean_queue_length"] = (lam * wait, model)
                return out
            why = (
                f"fixed job durations on {c} workers (M/D/c): Erlang's formulas "
                "assume exponential durations"
            )
            return out | dict.fromkeys(
                ("p_wait", "mean_wait_s", "mean_queue_length"), why
            )
        if not cap:
            model = "Erlang C (M/M/c)"
            figures = {
                "p_wait": erlang_c(c, lam / mu),
                "mean_wait_s": mmc_mean_wait(lam, mu, c),
                "mean_queue_length": mmc_mean_queue_length(lam, mu, c),
                "utilization": load,
                "throughput_per_s": lam,
            }
        else:
            model = f"M/M/c/K ({cap} places in the queue)"
            figures = mmck_figures(lam, mu, c, cap)
        for name in names:
            out[name] = (figures[name], model)
        return out

    # Commands ----------------------------------------------------------------

    def _busy_jobs(self, workers: bool) -> list[int]:
        """Return the jobs held by unmarked servers of one pool, oldest first."""
        jobs = [
            j for _, j in self.heap if j and (j > 0) == workers and j not in self.marks
        ]
        return sorted(jobs, key=abs)

    def _grow(self, workers: bool, n: int) -> Event:
        self._settle()
        if workers:
            self.size_w += n
            self.free_w += n
        else:
            self.size_t += n
            self.free_t += n
        started = self._dispatch()
        self.window.add(self.now, started=started)
        pool = "workers" if workers else "web_threads"
        return {
            "type": "worker.added",
            "t": self.now,
            "pool": pool,
            "count": n,
            "started": started,
        }

    def _shrink(self, workers: bool, n: int) -> Event:
        self._settle()
        if workers:
            idle = min(self.free_w, n)
            self.free_w -= idle
            self.size_w -= idle
        else:
            idle = min(self.free_t, n)
            self.free_t -= idle
            self.size_t -= idle
        # Busy ones finish their job first: the newest jobs, so the oldest finish
        # undisturbed.
        retiring = self._busy_jobs(workers)[::-1][: n - idle]
        for j in retiring:
            self.marks[j] = RETIRE
        pool = "workers" if workers else "web_threads"
        return {
            "type": "worker.removed",
            "t": self.now,
            "pool": pool,
            "count": n,
            "retiring": len(retiring),
        }

    def on_add_worker(self, count: int) -> list[Event]:
        allowed = 500 - self.p["workers"]
        if count > allowed:
            raise CommandError(
                "add_worker.count",
                f"add_worker: count must be from 1 to {allowed} "
                f"(at most 500 workers; {self.p['workers']} now)",
            )
        self.p["workers"] += count
        return [self._grow(True, count)]

    def on_remove_worker(self, count: int) -> list[Event]:
        if count > self.p["workers"]:
            raise CommandError(
                "remove_worker.count",
                f"remove_worker: count must be from 1 to {self.p['workers']} "
                f"(the workers running)"
                if self.p["workers"]
                else "remove_worker: no worker is running",
            )
        self.p["workers"] -= count
        return [self._shrink(True, count)]

    def on_kill_worker(self, before_ack: bool) -> list[Event]:
        if self.p["workers"] == 0:
            raise CommandError(
                "kill_worker", "kill_worker: no worker is running; add one first"
            )
        self._settle()
        self.p["workers"] -= 1
        busy = self._busy_jobs(True)
        if not busy:
            self.free_w -= 1
            self.size_w -= 1
            return [
                {
                    "type": "worker.killed",
                    "t": self.now,
                    "job": None,
                    "before_ack": before_ack,
                }
            ]
        job = busy[0]
        if before_ack:
            self.marks[job] = DOOM
            return [{"type": "worker.kill_scheduled", "t": self.now, "job": job}]
        # Killed mid-job: the work done so far is lost and the broker, which never
        # got an acknowledgement, delivers the job again at the head of the queue.
        for i, (t, j) in enumerate(self.heap):
            if j == job:
                self.busy_w -= t - self.now
                self.heap[i] = self.heap[-1]
                self.heap.pop()
                heapify(self.heap)
                break
        self.size_w -= 1
        self.jobq.appendleft((self.now, job))
        self.retried += 1
        events: list[Event] = [
            {"type": "worker.killed", "t": self.now, "job": job, "before_ack": False},
            {"type": "job.retried", "t": self.now, "job": job, "done_before": False},
        ]
        started = self._dispatch()
        if started:
            self.window.add(self.now, started=started)
        return events

    def on_burst(self, requests: int) -> list[Event]:
        self._settle()
        sync = self.p["mode"] == "sync"
        cap = self.p["queue_capacity"] or HARD_LIMIT
        now = self.now
        poll = not sync and self.p["notify"] == "poll"
        answered = now + self.p["enqueue_ms"] / 1000.0
        accepted = rejected = 0
        for _ in range(requests):
            self.next_job += 1
            queue = self.backlog if sync else self.jobq
            free = self.free_t if sync else self.free_w
            if not free and len(queue) >= cap:
                rejected += 1
                continue
            accepted += 1
            if not free:
                self.waited += 1
            queue.append((now, self.next_job))
            if poll:
                self.born[self.next_job] = answered
            self._dispatch()
        self.processed += requests
        self.arrived += requests
        self.accepted += accepted
        self.rejected += rejected
        instant = 0 if sync else accepted
        self.instant += instant
        response = instant * self.p["enqueue_ms"] / 1000.0
        self.resp_sum += response
        self.window.add(
            now, arrived=requests, failed=rejected, answers=instant, response=response
        )
        events: list[Event] = [
            {
                "type": "traffic.burst",
                "t": now,
                "requests": requests,
                "rejected": rejected,
            }
        ]
        if accepted:
            events.append({"type": "job.enqueued", "count": accepted})
        if rejected:
            events.append({"type": "job.rejected", "count": rejected})
        return events

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        new = self.p[name]
        if name in ("notify", "poll_interval_s"):
            # Pages already waiting poll at the new interval from now on (or hold
            # a connection instead); polling is measured afresh.
            if self.p["notify"] == "poll":
                self.born = dict.fromkeys(self.born, self.now)
            else:
                self.born = {}
            self._poll_restart(self.now)
        elif name == "mode":
            # Sync requests hold no page waiting for a job: measure afresh.
            self._poll_restart(self.now)
        elif name == "arrival_rate":
            # Poisson arrivals have no memory: drawing the next gap afresh is exact.
            self.next_arrival = self.now + self.rng.expovariate(new)
        elif name in ("workers", "web_threads"):
            workers = name == "workers"
            if new > old:
                return [self._grow(workers, new - old)]
            if new < old:
                return [self._shrink(workers, old - new)]
        elif name == "request_timeout_s":
            # Users already waiting longer than the new timeout give up now.
            self._settle()
            gave_up = 0
            while self.backlog and self.backlog[0][0] + new <= self.now:
                self.backlog.popleft()
                gave_up += 1
            self.timed_out += gave_up
            self.resp_sum += gave_up * new
            if gave_up:
                return [{"type": "job.timed_out", "count": gave_up}]
        return None
