"""One loop per worker process drives every run the process holds.

Each run's next frame time sits in a heap, as SimPy orders its events. A tick takes
every run due (within a few milliseconds, so that runs share ticks), applies the
controls the previous tick read, advances the engines, and then sends the tick's
frames and statuses, its inbox reads, lease renewals and viewer counts to the
transport in one exchange (one round trip to Redis). Checkpoints go to the store's
thread, which writes them in batches. A run whose status waits for a checkpoint sits
out of the heap until the store has written it.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..memory import release_freed_memory
from ..models import Run
from ..transport import TRANSIENT_ERRORS, Exchange, Reply, Transport, get_transport
from .constants import limits
from .driver import RunDriver
from .store import ENGINE_FAILED, RunStore

log = logging.getLogger(__name__)

MAX_CATCH_UP = 10  # frames one run may make in one tick to catch up after a stall
TICK_BUDGET_S = 0.02  # CPU time one tick may spend on runs before its exchange
STALL_S = 1.0  # further behind than this, a run skips ahead instead of bursting
OUTCOMES_KEPT = 1000


@dataclass
class Clock:
    """Wall time and sleeping, replaceable in tests."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Scheduler:
    """Drive all of one process's runs from one thread."""

    def __init__(
        self,
        transport: Transport | None = None,
        clock: Clock | None = None,
        *,
        threaded: bool = True,
        capacity: int | None = None,
    ) -> None:
        cfg = limits()
        self.transport = transport or get_transport()
        self.clock = clock or Clock()
        self.threaded = threaded
        self.capacity = capacity or cfg["WORKER_RUNS"]
        # Who holds a lease is readable in Redis: host, process id, and a nonce.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.period = 1.0 / cfg["FRAME_HZ"]
        self.slack = min(self.period / 10, 0.01)
        self.lease_s = float(cfg["LEASE_S"])
        self.checkpoint_s = float(cfg["CHECKPOINT_S"])
        self.idle_s = float(cfg["RUN_IDLE_S"])
        self.max_life_s = float(cfg["RUN_MAX_LIFE_S"])
        self.store = RunStore(self.transport, self.token, self.lease_s, self.period)
        self.drivers: dict[str, RunDriver] = {}
        self.heap: list[tuple[float, int, RunDriver]] = []
        self.order = itertools.count()
        self.loading: set[str] = set()
        self.lock = threading.Lock()  # guards ``loading`` for adopt() callers
        self.release: list[str] = []
        self.unsent: Exchange | None = None  # a tick the transport did not take
        self.exchanged_at = -1.0
        self.freed = False  # a run ended since memory was last given back
        self.outcomes: OrderedDict[str, str] = OrderedDict()
        self.stopping = threading.Event()
        self.dropping = threading.Event()
        self.thread: threading.Thread | None = None

    # asked from other threads

    def adopt(self, run_id: str) -> str:
        """Take ``run_id`` on, unless it is here already or this process is full."""
        with self.lock:
            if run_id in self.drivers or run_id in self.loading:
                return "already here"
            if len(self.drivers) + len(self.loading) >= self.capacity:
                return "full"
            self.loading.add(run_id)
        self.store.load(run_id)
        return "adopted"

    def start(self) -> Scheduler:
        _tune_gc()
        self.store.start()
        self.thread = threading.Thread(
            target=self.run, name="scalelab-scheduler", daemon=True
        )
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Checkpoint every run, give up its lease and stop (a warm shutdown)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
        self.store.stop(timeout)

    def drop_all(self, timeout: float = 10.0) -> None:
        """Let go of every run at once, saving nothing (their rows were ended)."""
        self.dropping.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            self.dropping.is_set() or self.loading or not self.store.idle()
        ):
            time.sleep(0.01)

    # the loop

    def run(self, until=None) -> None:
        """Tick until stopped (or until ``until()`` is true, for tests)."""
        clock = self.clock
        while not self.stopping.is_set():
            if not self.threaded:
                self.store.process()
            wake = self.tick(clock.monotonic())
            if until is not None and until():
                return
            delay = min(wake, clock.monotonic() + 0.1) - clock.monotonic()
            if delay > 0:
                clock.sleep(delay)
        self._shut_down()

    def tick(self, now: float) -> float:
        """Do one tick at ``now``; return when the next one is due."""
        if self.unsent is not None:
            return self._retry(now)
        batch = Exchange(self.token, self.lease_s)
        if self.dropping.is_set():
            self._drop_everything(batch)
        self._take_results(now, batch)
        # A tick does at most a budget's worth of runs, so that its exchange goes
        # out while its first frames are fresh; the rest are the next tick's, at
        # once. A scheduler with more runs than it can drive gives each run fewer
        # frames, evenly, instead of sending every run's frames a second late.
        deadline = time.perf_counter() + TICK_BUDGET_S
        while self.heap and self.heap[0][0] <= now + self.slack:
            _, _, driver = heapq.heappop(self.heap)
            driver.scheduled = False
            if self.drivers.get(driver.run_id) is driver and not driver.saving:
                self._step(driver, now, batch)
                if time.perf_counter() > deadline:
                    break
        if self.release:
            batch.release += self.release
            self.release = []
        # An idle scheduler still exchanges once a second, which lets the
        # transport forget the runs that ended (embedded mode sweeps then).
        if batch or now - self.exchanged_at >= 1.0:
            self.exchanged_at = now
            try:
                reply = self.transport.exchange(batch)
            except TRANSIENT_ERRORS as exc:
                log.warning("transport unavailable (%s); retrying", exc)
                self.unsent = Exchange(
                    self.token,
                    self.lease_s,
                    entries=batch.entries,
                    release=batch.release,
                    retire=batch.retire,
                )
                return now + 0.5
            self._take_reply(now, batch, reply)
        if self.freed and release_freed_memory():
            self.freed = False  # ended runs' engines are given back to the OS
        return self.heap[0][0] if self.heap else now + 0.1

    def _step(self, driver: RunDriver, now: float, batch: Exchange) -> None:
        applied = False
        try:
            # A control's status waits for its checkpoint, and no frame may pass
            # it: the run makes its next frame once the store has written it.
            applied = driver.apply_controls()
            if not (applied or driver.ended):
                if driver.paused:
                    driver.next_at = now + self.period
                else:
                    made = 0
                    while driver.next_at <= now + self.slack and made < MAX_CATCH_UP:
                        driver.frame()
                        driver.next_at += self.period
                        made += 1
                    if driver.next_at < now - STALL_S:
                        driver.next_at = now + self.period  # a stall: skip, no burst
            if not driver.ended and now >= driver.housekeeping_at:
                driver.housekeeping_at = now + 1.0
                batch.renew.append(driver.run_id)
                batch.viewers.append(driver.run_id)
                if time.time() - driver.created_ts >= self.max_life_s:
                    driver.end(
                        Run.Status.STOPPED,
                        f"reached the maximum run life of {self.max_life_s:g} s",
                        "expired",
                    )
        except Exception:
            log.exception("run %s: the simulation failed", driver.run_id)
            driver.failed(ENGINE_FAILED)
            applied = True
        self._send(driver, batch)
        if applied or driver.ended:
            self._save(driver, now, wait=True)
        elif now - driver.checkpoint_at >= self.checkpoint_s:
            self._save(driver, now, wait=False)
        if not driver.ended:
            batch.controls.append(driver.run_id)
        if not driver.saving:
            self._schedule(driver)

    def _schedule(self, driver: RunDriver) -> None:
        """Put ``driver`` in the heap at its next frame time, once."""
        if not driver.scheduled:
            driver.scheduled = True
            heapq.heappush(self.heap, (driver.next_at, next(self.order), driver))

    def _send(self, driver: RunDriver, batch: Exchange) -> None:
        for id_, text in driver.take_outbox():
            batch.entries.append((driver.run_id, driver.prev, id_, text))
            driver.prev = id_

    def _save(self, driver: RunDriver, now: float, *, wait: bool) -> None:
        try:
            fields = driver.checkpoint()
        except Exception:
            log.exception("run %s: its state could not be saved", driver.run_id)
            driver.failed(ENGINE_FAILED)
            fields = driver.checkpoint()
            wait = True
        driver.checkpoint_at = now
        if wait:
            driver.saving = driver.version
        self.store.save(driver.run_id, driver.version, fields)

    def _take_results(self, now: float, batch: Exchange) -> None:
        results = self.store.results
        while results:
            kind, run_id, *rest = results.popleft()
            if kind == "loaded":
                self._adopted(rest[0], now, batch)
            elif kind == "saved":
                self._saved(run_id, *rest, batch=batch, now=now)
            else:
                with self.lock:
                    self.loading.discard(run_id)
                if kind == "failed":
                    (seq, sub), reason = rest
                    message = {
                        "type": "status",
                        "seq": seq,
                        "sub": sub + 1,
                        "status": "failed",
                        "reason": reason,
                    }
                    text = json.dumps(message)
                    batch.entries.append((run_id, (seq, sub), (seq, sub + 1), text))
                    batch.release.append(run_id)
                    self._record(run_id, "failed")
                else:
                    self._record(run_id, rest[0])

    def _adopted(self, driver: RunDriver, now: float, batch: Exchange) -> None:
        with self.lock:
            self.loading.discard(driver.run_id)
            self.drivers[driver.run_id] = driver
        driver.next_at = driver.housekeeping_at = now
        driver.checkpoint_at = driver.last_viewer_at = now
        # With the settings it has now: a run started from a moment of another
        # may have changed them before that moment, which its row does not say yet.
        driver.status(driver.state(), resumed=driver.seq > 0, params=driver.params)
        self._schedule(driver)

    def _saved(self, run_id, version, live, *, batch: Exchange, now: float) -> None:
        driver = self.drivers.get(run_id)
        if driver is None:
            return
        if not live and not driver.ended:
            # Its row was ended elsewhere (by an admin, or expired): let it go.
            self._forget(driver, batch, "ended elsewhere")
            return
        driver.confirmed(version)
        if driver.saving and version >= driver.saving:
            driver.release_held()
            self._send(driver, batch)
            if driver.ended:
                self._forget(driver, batch, driver.outcome)
            else:
                self._schedule(driver)

    def _forget(self, driver: RunDriver, batch: Exchange, outcome: str) -> None:
        with self.lock:
            self.drivers.pop(driver.run_id, None)
        self.freed = True
        batch.release.append(driver.run_id)
        batch.retire.append(driver.run_id)
        self._record(driver.run_id, outcome)

    def _take_reply(self, now: float, batch: Exchange, reply: Reply) -> None:
        for run_id, controls in reply.controls.items():
            driver = self.drivers.get(run_id)
            if driver is not None:
                driver.controls.extend(controls)
        for run_id, held in reply.renewed.items():
            driver = self.drivers.get(run_id)
            if driver is not None and not held:
                log.warning("run %s: lease lost; another worker drives it", run_id)
                with self.lock:
                    self.drivers.pop(run_id, None)
                self._record(run_id, "lease lost")
        for run_id, count in reply.viewers.items():
            driver = self.drivers.get(run_id)
            if driver is None or driver.ended:
                continue
            if count > 0:
                driver.last_viewer_at = now
            elif now - driver.last_viewer_at >= self.idle_s:
                driver.end(
                    Run.Status.STOPPED, f"no viewer for {self.idle_s:g} s", "idle"
                )
                self._save(driver, now, wait=True)

    def _retry(self, now: float) -> float:
        """The transport was away: send what it missed, then go on from now.

        No frame is made while it is away, so none is lost and the simulated
        clock waits for it (as a paused run does); nothing bursts when it is back.
        """
        assert self.unsent is not None
        try:
            self.transport.exchange(self.unsent)
        except TRANSIENT_ERRORS:
            return now + 0.5
        log.warning("transport available again")
        self.unsent = None
        for driver in self.drivers.values():
            driver.next_at = driver.housekeeping_at = now
        return now

    def _drop_everything(self, batch: Exchange) -> None:
        for driver in list(self.drivers.values()):
            self._forget(driver, batch, "dropped")
        self.heap = []
        self.dropping.clear()

    def _shut_down(self) -> None:
        now = self.clock.monotonic()
        for driver in self.drivers.values():
            if not driver.saving:
                self._save(driver, now, wait=False)
        deadline = time.monotonic() + 10
        if self.threaded:
            while not self.store.idle() and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            self.store.process()
        batch = Exchange(self.token, self.lease_s, release=list(self.drivers))
        for run_id in self.drivers:
            self._record(run_id, "worker stopping")
        with contextlib.suppress(*TRANSIENT_ERRORS):  # else the leases expire
            self.transport.exchange(batch)
        with self.lock:
            self.drivers.clear()

    def _record(self, run_id: str, outcome: str) -> None:
        log.info("run %s: %s", run_id, outcome)
        self.outcomes[run_id] = outcome
        while len(self.outcomes) > OUTCOMES_KEPT:
            self.outcomes.popitem(last=False)


def _tune_gc() -> None:
    """Collect less often in a process that holds hundreds of engines.

    Engines are many long-lived objects (cache tables, server lists); with the
    default thresholds a full collection walked them all every few seconds and
    paused the tick for 100 ms. What is alive at start is frozen out of it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


_scheduler: Scheduler | None = None
_scheduler_lock = threading.Lock()


def get_scheduler() -> Scheduler:
    """Return this process's scheduler, starting it on first use."""
    global _scheduler
    with _scheduler_lock:
        if _scheduler is None or not (
            _scheduler.thread and _scheduler.thread.is_alive()
        ):
            _scheduler = Scheduler().start()
        return _scheduler


def stop_scheduler(timeout: float = 10.0) -> None:
    global _scheduler
    with _scheduler_lock:
        scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.stop(timeout)
