"""Pages rendered for every request, or pre-rendered by a periodic job onto a CDN."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections import deque
from functools import lru_cache
from heapq import heappop, heappush
from typing import Any

from ..theory.caching import zipf_groups
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
MAX_PAGES = 20_000
# Kinds of timed happenings on the heap.
RENDER, REGEN, EDIT, REGEN_START, SPIKE_END = 0, 1, 2, 3, 4
NO_COPY = -1.0
# Latencies go in logarithmic bins: 40 per factor e (2.5 % wide) from 0.1 ms to
# 10,000 s, enough for a 95th percentile to about 1 %.
_LOG_LO = math.log(1e-4)
_BINS_PER_E = 40
_NBINS = int((math.log(1e4) - _LOG_LO) * _BINS_PER_E) + 1


def _bin(seconds: float) -> int:
    if seconds <= 1e-4:
        return 0
    return min(_NBINS - 1, int((math.log(seconds) - _LOG_LO) * _BINS_PER_E))


@lru_cache(maxsize=8)
def page_cdf(pages: int, s: float) -> array:
    """Return the cumulative Zipf(s) popularity of pages 0..pages-1 (read-only)."""
    cdf = array("d", bytes(8 * pages))
    total = 0.0
    for i in range(pages):
        total += 1.0 / (i + 1) ** s
        cdf[i] = total
    for i in range(pages):
        cdf[i] /= total
    cdf[pages - 1] = 1.0
    return cdf


def _outdated(
    pages: int, s: float, edit_rate: float, period: float
) -> dict[str, float]:
    """Return the share of views that see an outdated copy, and its mean lateness.

    A copy is made every ``period``; a view comes at a uniform age A of it
    (Poisson views see time averages); page i is edited as a Poisson stream of
    rate a = edit_rate * q_i, so it is outdated with probability
    1 - (1 - e^-aT)/(aT), for E[(A - first edit)+] = T (1/2 - 1/x + (1 - e^-x)/x^2)
    with x = aT. Views are as popular as edits: each term weighs q_i. Pages of
    near-equal popularity are summed as groups (``zipf_groups``), so 20,000
    pages cost about 1,800 terms.
    """
    share = late = 0.0
    for n, q in zip(*zipf_groups(pages, s), strict=True):
        x = edit_rate * q * period
        if x < 1e-4:
            share += n * q * (x / 2.0 - x * x / 6.0)
            late += n * q * period * (x / 6.0 - x * x / 24.0)
        else:
            e = -math.expm1(-x) / x
            share += n * q * (1.0 - e)
            late += n * q * period * (0.5 - 1.0 / x + e / x)
    return {"outdated_share": share, "mean_outdated_s": late}


class PrerenderEngine(Engine):
    kind = "prerender"
    title = "Rendering pages per request, or ahead of time"
    description = (
        "In dynamic mode every page view is rendered by the backend from the database. "
        "In pre-rendered mode a periodic job renders every page to a static file served "
        "by a CDN: the backend's load no longer follows traffic, but a page can be up "
        "to one regeneration interval old."
    )
    params = (
        Param(
            "mode",
            "choice",
            "dynamic",
            choices=("dynamic", "prerendered"),
            help="dynamic: render on every request; prerendered: serve files a job renders.",
            label="Mode",
        ),
        Param(
            "pages",
            "int",
            1_000,
            1,
            MAX_PAGES,
            unit="pages",
            help="Pages on the site (all of them are rendered by each regeneration).",
            label="Pages",
        ),
        Param(
            "zipf_s",
            "float",
            0.8,
            0.0,
            2.0,
            step=0.05,
            help="Skew of page popularity: 0 is uniform.",
            label="Popularity skew (Zipf s)",
        ),
        Param(
            "request_rate",
            "float",
            200.0,
            1.0,
            20_000.0,
            unit="requests/s",
            step=10,
            help="Average page views per second, arriving at random (Poisson).",
            label="Request rate",
        ),
        Param(
            "render_ms",
            "float",
            40.0,
            1.0,
            10_000.0,
            unit="ms",
            step=1,
            help="Backend time to render a page's template.",
            label="Render time",
        ),
        Param(
            "db_ms",
            "float",
            20.0,
            0.0,
            10_000.0,
            unit="ms",
            step=1,
            help="Mean database time per render (exponential).",
            label="Database time",
        ),
        Param(
            "backend_workers",
            "int",
            16,
            1,
            500,
            unit="workers",
            help="Pages the backend can render at once.",
            label="Backend workers",
        ),
        Param(
            "backend_queue",
            "int",
            1_000,
            1,
            100_000,
            unit="requests",
            help="Requests that may wait for a backend worker; more are refused (503).",
            label="Backend queue",
        ),
        Param(
            "regen_interval_s",
            "float",
            60.0,
            1.0,
            86_400.0,
            unit="s",
            step=1,
            help="Pre-rendered mode: a job re-renders every page this often.",
            label="Regeneration interval",
        ),
        Param(
            "regen_workers",
            "int",
            4,
            1,
            64,
            unit="renders",
            help="Pages the regeneration job renders at once.",
            label="Regeneration workers",
        ),
        Param(
            "cdn_ms",
            "float",
            15.0,
            1.0,
            1_000.0,
            unit="ms",
            step=1,
            help="Time for the CDN to serve a pre-rendered file.",
            label="CDN latency",
        ),
        Param(
            "edit_rate",
            "float",
            0.5,
            0.0,
            100.0,
            unit="edits/s",
            step=0.1,
            help="Editors change pages at this rate, popular pages more often.",
            label="Edit rate",
        ),
    )
    commands = (
        Command(
            "publish",
            "Publish a change",
            "Change a page's content now (or every page, like a new site header).",
            args=(
                Param(
                    "page",
                    "int",
                    -1,
                    -1,
                    MAX_PAGES - 1,
                    help="Page number, or -1 for every page.",
                    unset="every page",
                ),
            ),
        ),
        Command(
            "purge",
            "Purge CDN",
            "Drop pre-rendered copies: the next views of those pages are rendered by the "
            "backend (and stored).",
            args=(
                Param(
                    "page",
                    "int",
                    -1,
                    -1,
                    MAX_PAGES - 1,
                    help="Page number, or -1 for every page.",
                    unset="every page",
                ),
            ),
        ),
        Command(
            "spike",
            "Traffic spike",
            "Multiply the request rate for a while.",
            args=(
                Param(
                    "factor", "float", 5.0, 1.0, 50.0, help="How many times the rate."
                ),
                Param(
                    "duration_s",
                    "float",
                    30.0,
                    1.0,
                    3_600.0,
                    unit="s",
                    help="How long the spike lasts.",
                ),
            ),
        ),
    )
    event_types = (
        "request.cdn",
        "request.backend",
        "request.dropped",
        "render.done",
        "regen.started",
        "regen.finished",
        "regen.skipped",
        "content.published",
        "content.edited",
        "cdn.purged",
        "traffic.spike",
        "traffic.normal",
    )
    narration = {
        "regen.started": "Regenerating {pages#page}",
        "regen.finished": "Regeneration finished in {took_s} s",
        "regen.skipped": (
            "A regeneration was skipped: the last one is still going ({done} of "
            "{pages} pages done)"
        ),
        "content.published": "New content published: {pages#page} to regenerate",
        "content.edited": "Content was edited",
        "cdn.purged": "The CDN was purged: {dropped#cached page} dropped",
        "traffic.spike": "Traffic jumped to {factor} times normal until {until} s",
        "traffic.normal": "Traffic is back to normal",
    }
    metric_specs = (
        Metric(
            "backend_utilization",
            "Backend utilization",
            help="Share of the backend workers' time spent rendering.",
        ),
        Metric("p95_latency_ms", "95th percentile latency", "ms"),
        Metric(
            "mean_staleness_s",
            "Mean staleness",
            "s",
            help="How long ago the page a visitor got was rendered (0 if for them).",
        ),
        Metric("mean_latency_ms", "Mean latency", "ms"),
        Metric("requests", "Requests", "requests"),
        Metric("served", "Served", "requests"),
        Metric("dropped", "Refused (503)", "requests"),
        Metric("cdn_hits", "Served by the CDN", "requests"),
        Metric("backend_requests", "Rendered for a visitor", "requests"),
        Metric("regen_renders", "Rendered by the job", "renders"),
        Metric(
            "outdated_share",
            "Saw outdated content",
            help="Share of views showing a page older than its latest change, "
            "since the start of the run.",
        ),
        Metric(
            "mean_outdated_s",
            "Mean time out of date",
            "s",
            help="Per view: how long the page had been out of date (0 if current).",
        ),
        Metric("regen_runs", "Regenerations", "runs"),
        Metric(
            "regen_skipped",
            "Regenerations skipped",
            "runs",
            help="Due while the previous one was still running.",
        ),
        Metric("last_regen_s", "Last regeneration took", "s"),
        Metric("backend_busy", "Backend workers busy", "workers", summary=False),
        Metric("backend_waiting", "Waiting for the backend", "jobs", summary=False),
        Metric("regen_progress", "Regeneration progress", summary=False),
        Metric("latency_ms_recent", "Latency (last 3 s)", "ms", summary=False),
        Metric("staleness_s_recent", "Staleness (last 3 s)", "s", summary=False),
        Metric(
            "outdated_share_recent",
            "Saw outdated content (last 3 s)",
            help="Share of the views served in the last 3 s that showed a page "
            "older than its latest change.",
            summary=False,
        ),
        Metric(
            "requests_per_s_recent", "Requests (last 3 s)", "requests/s", summary=False
        ),
        Metric(
            "backend_per_s_recent",
            "Backend renders (last 3 s)",
            "renders/s",
            summary=False,
        ),
        Metric("utilization_recent", "Backend utilization (last 3 s)", summary=False),
    )
    derived = ("_cdf", "_picture_counts")
    theory_models = {
        "mean_staleness_s": "a copy's age seen at a random time: half the "
        "regeneration interval (T/2)",
        "backend_utilization": "offered work / workers (pages × render time / T "
        "when pre-rendered)",
        "mean_latency_ms": "every view served by the CDN",
        "outdated_share": "Poisson edits during a copy's uniform age",
        "mean_outdated_s": "Poisson edits during a copy's uniform age",
    }
    PICTURE_PAGES = 40  # the hottest pages, drawn one square each

    def rebuild(self) -> None:
        self._cdf = page_cdf(self.p["pages"], self.p["zipf_s"])
        # The picture's counts over every page, with the time they were taken.
        self._picture_counts: tuple[float, int, int] | None = None

    # Setting up ---------------------------------------------------------------

    def setup(self) -> None:
        n = self.p["pages"]
        # Per page: when its pre-rendered copy was made (NO_COPY: none) and when it
        # first changed after that copy (INF: the copy is current).
        self.copy_t = array("d", [NO_COPY]) * n
        self.dirty = array("d", [INF]) * n
        # In-service renders as (finish time, seq, kind, page); the sentinel at
        # INF keeps the heap from running empty. Timers share the heap.
        self.heap: list[tuple[float, int, int, int]] = [(INF, 0, 0, 0)]
        self.seq = 0
        self.queue: deque[tuple[float, int, int]] = deque()  # (since, kind, page)
        self.waiting_requests = 0
        self.busy = 0
        self.size = self.p["backend_workers"]
        self.factor = 1.0
        self.spike_gen = self.edit_gen = self.regen_gen = 0
        self.run_active = False
        # The current regeneration run; its renders carry run * MAX_PAGES + page.
        self.run_id = self.run_next = self.run_done = 0
        self.run_started = 0.0
        self.regen_runs = self.regen_skipped = self.edits = 0
        self.last_regen_s = 0.0
        self.next_arrival = self.now + self.rng.expovariate(self._rate())
        self.window = Window(span=3.0)
        self.notes: list[Event] = []
        self.cap_area = 0.0
        self.cap_last = 0.0
        self.reset_stats()
        self._schedule_edit()
        if self.p["mode"] == "prerendered":
            self._at(self.now, REGEN_START, self.regen_gen)

    def reset_stats(self) -> None:
        now = self.now
        self.since = self.cap_last = now
        # Worker-seconds on hand: the pool's size, plus workers kept past a shrink
        # to finish their render (counted whole in advance, like busy time).
        self.cap_area = self._extra(now)
        self.requests = self.served = self.dropped = self.cdn_hits = 0
        self.backend_requests = self.regen_renders = self.outdated = 0
        self.stale_sum = self.outdated_sum = self.latency_sum = 0.0
        # Busy time is added a whole render at a time when it starts; the part of
        # renders in progress still to come is taken off when it is read.
        self.busy_time = self._ahead(now)
        self.hist = [0] * _NBINS

    def _rate(self) -> float:
        return float(self.p["request_rate"] * self.factor)

    def _at(self, t: float, kind: int, page: int) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, kind, page))

    def _schedule_edit(self) -> None:
        self.edit_gen += 1
        if self.p["edit_rate"] > 0:
            self._at(
                self.now + self.rng.expovariate(self.p["edit_rate"]),
                EDIT,
                self.edit_gen,
            )

    # Running -----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        p = self.p
        heap, queue, hist = self.heap, self.queue, self.hist
        copy_t, dirty, cdf = self.copy_t, self.dirty, self._cdf
        rand = self.rng.random
        log = math.log
        last_page = p["pages"] - 1
        prerendered = p["mode"] == "prerendered"
        gap = 1.0 / self._rate()
        render = p["render_ms"] / 1000.0
        db = p["db_ms"] / 1000.0
        cdn = p["cdn_ms"] / 1000.0
        cap = p["backend_queue"]
        lo, per_e, top = _LOG_LO, _BINS_PER_E, _NBINS - 1
        ta = self.next_arrival
        # Busy time inside this slice: renders started in it (whole), plus what was
        # still to come at its start, less what is still to come at its end.
        busy_before = self.busy_time - self._ahead(self.now)
        busy, size, seq = self.busy, self.size, self.seq
        waiting = self.waiting_requests
        requests = cdn_hits = backend = dropped = outdated = renders = steps = 0
        stale_sum = outdated_sum = latency_sum = busy_time = 0.0
        while True:
            th = heap[0][0]
            if ta <= th:
                if ta > end:
                    break
                t = ta
                requests += 1
                page = bisect_right(cdf, rand())
                if page > last_page:
                    page = last_page
                made = copy_t[page]
                if prerendered and made >= 0.0:
                    # A pre-rendered file from the CDN: no backend work at all.
                    cdn_hits += 1
                    stale_sum += t - made
                    d = dirty[page]
                    if d <= t:
                        outdated += 1
                        outdated_sum += t - d
                elif busy < size:
                    busy += 1
                    backend += 1
                    s = render - log(1.0 - rand()) * db
                    busy_time += s
                    latency_sum += s
                    hist[min(top, int((log(s) - lo) * per_e)) if s > 1e-4 else 0] += 1
                    seq += 1
                    heappush(heap, (t + s, seq, RENDER, page))
                elif waiting >= cap:
                    dropped += 1
                else:
                    waiting += 1
                    queue.append((t, RENDER, page))
                ta = t - log(1.0 - rand()) * gap
                continue
            if th > end:
                break
            t, _, kind, page = heappop(heap)
            steps += 1
            if kind > REGEN:
                # A timer: save the loop's state, let a method handle it, reload.
                self.busy, self.seq, self.waiting_requests = busy, seq, waiting
                self.next_arrival = ta
                self._timer(t, kind, page)
                busy, seq, waiting = self.busy, self.seq, self.waiting_requests
                ta = self.next_arrival
                gap = 1.0 / self._rate()
                continue
            busy -= 1
            renders += 1
            if kind == REGEN:
                run, page = divmod(page, MAX_PAGES)
                if page <= last_page:
                    copy_t[page] = t
                    dirty[page] = INF
                self.regen_renders += 1
                if run == self.run_id and self.run_active:
                    self._regen_next(t)
            elif prerendered and page <= last_page:
                # A page rendered for a visitor is kept as its copy too.
                copy_t[page] = t
                dirty[page] = INF
            while busy < size and queue:
                since, job, page = queue.popleft()
                busy += 1
                s = render - log(1.0 - rand()) * db
                busy_time += s
                if job == RENDER:
                    waiting -= 1
                    backend += 1
                    r = t - since + s
                    latency_sum += r
                    hist[min(top, int((log(r) - lo) * per_e)) if r > 1e-4 else 0] += 1
                seq += 1
                heappush(heap, (t + s, seq, job, page))
        self.next_arrival = ta
        self.busy, self.seq, self.waiting_requests = busy, seq, waiting
        self.processed += requests + steps
        self.requests += requests
        self.dropped += dropped
        self.cdn_hits += cdn_hits
        self.backend_requests += backend
        self.outdated += outdated
        self.stale_sum += stale_sum
        self.outdated_sum += outdated_sum
        self.latency_sum += latency_sum + cdn_hits * cdn
        self.busy_time += busy_time
        self.served += cdn_hits + backend
        self.window.add(
            self.now,
            requests=requests,
            served=cdn_hits + backend,
            backend=backend,
            latency=latency_sum + cdn_hits * cdn,
            stale=stale_sum,
            outdated=outdated,
            busy=self.busy_time - self._ahead(end) - busy_before,
        )
        events = self.notes
        self.notes = []
        for name, n in (
            ("request.cdn", cdn_hits),
            ("request.backend", backend),
            ("request.dropped", dropped),
            ("render.done", renders),
        ):
            if n:
                events.append({"type": name, "count": n})
        return events

    def _timer(self, t: float, kind: int, tag: int) -> None:
        if kind == EDIT:
            if tag != self.edit_gen:
                return
            page = bisect_right(self._cdf, self.rng.random())
            self._dirty(t, min(page, self.p["pages"] - 1))
            self.edits += 1
            self._at(t + self.rng.expovariate(self.p["edit_rate"]), EDIT, tag)
        elif kind == REGEN_START:
            if tag != self.regen_gen or self.p["mode"] != "prerendered":
                return
            self._at(t + self.p["regen_interval_s"], REGEN_START, tag)
            if self.run_active:
                self.regen_skipped += 1
                self.notes.append(
                    {
                        "type": "regen.skipped",
                        "t": t,
                        "done": self.run_done,
                        "pages": self.p["pages"],
                    }
                )
                return
            self.regen_runs += 1
            self.run_id += 1
            self.run_active = True
            self.run_started = t
            self.run_done = 0
            self.run_next = min(self.p["regen_workers"], self.p["pages"])
            self.notes.append(
                {"type": "regen.started", "t": t, "pages": self.p["pages"]}
            )
            for page in range(self.run_next):
                self.queue.append((t, REGEN, self.run_id * MAX_PAGES + page))
            self._drain(t)
        elif kind == SPIKE_END and tag == self.spike_gen:
            self.factor = 1.0
            self.next_arrival = t + self.rng.expovariate(self._rate())
            self.notes.append({"type": "traffic.normal", "t": t})

    def _regen_next(self, t: float) -> None:
        """Count a finished page of the current run; queue the next or end the run."""
        self.run_done += 1
        if self.run_next < self.p["pages"]:
            self.queue.append((t, REGEN, self.run_id * MAX_PAGES + self.run_next))
            self.run_next += 1
        elif self.run_done >= self.run_next:
            self.run_active = False
            self.last_regen_s = t - self.run_started
            self.notes.append(
                {"type": "regen.finished", "t": t, "took_s": self.last_regen_s}
            )

    def _dirty(self, t: float, page: int) -> None:
        """Record a change of ``page`` at ``t``: its copy, if older, is now out of date."""
        if self.dirty[page] == INF:
            self.dirty[page] = t

    def _drain(self, t: float) -> None:
        """Start waiting renders on free workers at time ``t`` (outside the hot loop)."""
        render = self.p["render_ms"] / 1000.0
        db = self.p["db_ms"] / 1000.0
        while self.busy < self.size and self.queue:
            since, job, page = self.queue.popleft()
            self.busy += 1
            s = render - math.log(1.0 - self.rng.random()) * db
            self.busy_time += s
            if job == RENDER:
                self.waiting_requests -= 1
                self.backend_requests += 1
                self.served += 1
                self.latency_sum += t - since + s
                self.hist[_bin(t - since + s)] += 1
            self._at(t + s, job, page)

    def _ahead(self, now: float) -> float:
        """Return the render time still to come, after ``now``, of renders started."""
        return sum(
            t - now for t, _, kind, _ in self.heap if kind <= REGEN and now < t < INF
        )

    def _extra(self, now: float) -> float:
        """Return the worker-seconds still to come of workers beyond the pool's size.

        After a shrink the extra workers leave as renders finish: while N renders
        run, N - size workers are extra, so the extra time is the time left of
        the N - size renders that finish first.
        """
        ends = sorted(
            t for t, _, kind, _ in self.heap if kind <= REGEN and now < t < INF
        )
        return sum(t - now for t in ends[: max(0, len(ends) - self.size)])

    # Metrics -----------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        now = self.now
        ahead = self._ahead(now)
        capacity = self.cap_area + self.size * (now - self.cap_last) - self._extra(now)
        served = self.served
        w, span = self.window, self.window.seconds(now)
        recent_served = w.total("served", now)
        return {
            "backend_utilization": (self.busy_time - ahead) / capacity
            if capacity > 0
            else 0.0,
            "p95_latency_ms": self._percentile(0.95) * 1000.0,
            "mean_staleness_s": self.stale_sum / served if served else 0.0,
            "mean_latency_ms": self.latency_sum / served * 1000.0 if served else 0.0,
            "requests": self.requests,
            "served": served,
            "dropped": self.dropped,
            "cdn_hits": self.cdn_hits,
            "backend_requests": self.backend_requests,
            "regen_renders": self.regen_renders,
            "outdated_share": self.outdated / served if served else 0.0,
            "mean_outdated_s": self.outdated_sum / served if served else 0.0,
            "regen_runs": self.regen_runs,
            "regen_skipped": self.regen_skipped,
            "last_regen_s": self.last_regen_s,
            "backend_busy": self.busy,
            "backend_waiting": len(self.queue),
            "regen_progress": self.run_done / self.p["pages"]
            if self.run_active
            else 0.0,
            "latency_ms_recent": (
                w.total("latency", now) / recent_served * 1000.0
                if recent_served
                else 0.0
            ),
            "staleness_s_recent": w.total("stale", now) / recent_served
            if recent_served
            else 0.0,
            "outdated_share_recent": w.total("outdated", now) / recent_served
            if recent_served
            else 0.0,
            "requests_per_s_recent": w.total("requests", now) / span,
            "backend_per_s_recent": w.total("backend", now) / span,
            "utilization_recent": w.total("busy", now) / (self.size * span),
        }

    def picture(self) -> dict[str, Any]:
        """Return the hottest pages' state and the counts of every page's."""
        copy_t, dirty = self.copy_t, self.dirty
        n = self.p["pages"]
        # Counting every page costs milliseconds at 20,000 of them: once a
        # simulated second is enough for a picture, not once a frame.
        # Counting every page costs milliseconds at 20,000 of them: the counts
        # are taken again once a simulated second, or after a command (which
        # forgets them), not once a frame; the grid of hottest pages is live.
        counted = self._picture_counts
        if counted is None or not 0 <= self.now - counted[0] < 1.0:
            missing = copy_t.count(NO_COPY)
            outdated = 0
            if self.p["mode"] == "prerendered" and len(dirty) - dirty.count(INF):
                outdated = sum(
                    1
                    for made, d in zip(copy_t, dirty, strict=True)
                    if d != INF and made != NO_COPY
                )
            counted = self._picture_counts = (self.now, missing, outdated)
        _, missing, outdated = counted
        hot = []
        for i in range(min(n, self.PICTURE_PAGES)):
            if copy_t[i] == NO_COPY:
                hot.append("-")
            else:
                hot.append("s" if dirty[i] != INF else "f")
        return {
            "mode": self.p["mode"],
            "pages": "".join(hot),
            "fresh": n - missing - outdated,
            "outdated": outdated,
            "no_copy": missing,
            "regen_busy": sum(1 for e in self.heap if e[2] == REGEN),
        }

    def theory_key(self) -> tuple[Any, ...]:
        return (*super().theory_key(), self.factor)

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        service = (p["render_ms"] + p["db_ms"]) / 1000.0
        workers = p["backend_workers"]
        if p["mode"] == "dynamic":
            load = self._rate() * service / workers
            if load >= 1.0:
                utilization: float | str = (
                    f"load is {load:.2f}, at or above 1: requests queue until the "
                    "backend refuses them, so the formula does not apply"
                )
            else:
                utilization = load
            return {
                "mean_staleness_s": 0.0,
                "outdated_share": 0.0,
                "mean_outdated_s": 0.0,
                "backend_utilization": utilization,
                "mean_latency_ms": (
                    "pages rendered per request wait for a worker (an M/G/c "
                    "queue): no exact formula for the wait"
                ),
            }
        period, pages = p["regen_interval_s"], p["pages"]
        took = pages * service / min(p["regen_workers"], workers)
        if took >= period:
            why = (
                f"a regeneration takes about {took:.3g} s, at least the interval of "
                f"{period:g} s: runs are skipped, so copies are not made every interval"
            )
            return dict.fromkeys(self.theory_models, why)
        return {
            "mean_staleness_s": period / 2.0,
            "backend_utilization": pages * service / (period * workers),
            "mean_latency_ms": p["cdn_ms"],
            **_outdated(pages, p["zipf_s"], p["edit_rate"], period),
        }

    def _percentile(self, q: float) -> float:
        """Return the q-quantile of latency: binned backend renders plus exact CDN hits."""
        masses = [
            (math.exp(_LOG_LO + (i + 0.5) / _BINS_PER_E), n)
            for i, n in enumerate(self.hist)
            if n
        ]
        if self.cdn_hits:
            masses.append((self.p["cdn_ms"] / 1000.0, self.cdn_hits))
        total = sum(n for _, n in masses)
        if not total:
            return 0.0
        masses.sort()
        seen = 0
        for value, n in masses:
            seen += n
            if seen >= q * total:
                return value
        return masses[-1][0]

    # Commands ----------------------------------------------------------------

    def _page_arg(self, command: str, page: int) -> range:
        pages = self.p["pages"]
        if page >= pages:
            raise CommandError(
                f"{command}.page",
                f"{command}: page must be from -1 to "
                f"{pages - 1} (-1 for every page); got {page}",
            )
        return range(pages) if page < 0 else range(page, page + 1)

    def on_publish(self, page: int) -> list[Event]:
        self._picture_counts = None
        for i in self._page_arg("publish", page):
            self._dirty(self.now, i)
        return [
            {
                "type": "content.published",
                "t": self.now,
                "pages": self.p["pages"] if page < 0 else 1,
                "page": page,
            }
        ]

    def on_purge(self, page: int) -> list[Event]:
        self._picture_counts = None
        dropped = 0
        for i in self._page_arg("purge", page):
            if self.copy_t[i] >= 0.0:
                self.copy_t[i] = NO_COPY
                dropped += 1
        return [{"type": "cdn.purged", "t": self.now, "page": page, "dropped": dropped}]

    def on_spike(self, factor: float, duration_s: float) -> list[Event]:
        self.factor = factor
        self.spike_gen += 1
        self._at(self.now + duration_s, SPIKE_END, self.spike_gen)
        # Poisson arrivals have no memory: drawing the next gap afresh is exact.
        self.next_arrival = self.now + self.rng.expovariate(self._rate())
        return [
            {
                "type": "traffic.spike",
                "t": self.now,
                "factor": factor,
                "until": self.now + duration_s,
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        self._picture_counts = None
        now = self.now
        if name == "request_rate":
            self.next_arrival = now + self.rng.expovariate(self._rate())
        elif name == "edit_rate":
            self._schedule_edit()
        elif name == "backend_workers":
            # Busy workers beyond the new size finish their render, then stop.
            self.cap_area += self.size * (now - self.cap_last) - self._extra(now)
            self.cap_last = now
            self.size = self.p["backend_workers"]
            self.cap_area += self._extra(now)
            self._drain(now)
        elif name == "pages":
            return self._repage(old)
        elif name == "mode":
            self.regen_gen += 1
            if self.p["mode"] == "prerendered":
                # Switching on pre-rendering builds the site at once.
                self._at(now, REGEN_START, self.regen_gen)
            else:
                for i in range(self.p["pages"]):
                    self.copy_t[i] = NO_COPY
                    self.dirty[i] = INF
                self.run_active = False
                self.queue = deque(j for j in self.queue if j[1] == RENDER)
        elif name == "regen_interval_s" and self.p["mode"] == "prerendered":
            self.regen_gen += 1
            self._at(now + self.p["regen_interval_s"], REGEN_START, self.regen_gen)
        return None

    def _repage(self, old: int) -> list[Event]:
        """Resize the site: new pages have no copy yet; removed ones stop being asked for."""
        n = self.p["pages"]
        if n > old:
            self.copy_t.extend([NO_COPY] * (n - old))
            self.dirty.extend([INF] * (n - old))
        else:
            del self.copy_t[n:]
            del self.dirty[n:]
            # Renders of removed pages still queued are dropped from the job.
            self.queue = deque(
                j for j in self.queue if j[1] == RENDER or j[2] % MAX_PAGES < n
            )
            self.waiting_requests = sum(1 for j in self.queue if j[1] == RENDER)
        self.run_next = min(self.run_next, n)
        return [
            {
                "type": "content.published",
                "t": self.now,
                "pages": n,
                "page": -1,
                "resized_from": old,
            }
        ]
