"""The database side of a worker's scheduler, on a thread of its own.

Loading a run to adopt it (lease, row, restored engine, the frames already sent
regenerated) and writing checkpoints both wait on the database; doing them here keeps
the tick loop on time. Checkpoints are written in batches, one transaction each, the
newest state of a run replacing an older one still waiting. Every result goes back
to the scheduler, which reads them at the start of its next tick.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from ..engines import get_engine
from ..engines.base import Engine
from ..models import Run, RunControl
from ..transport import TRANSIENT_ERRORS, Transport
from .checkpoints import seal, unseal
from .constants import LIVE
from .driver import RunDriver
from .errors import RunFailed
from .replay import Replay, check_timeline, timeline_of

log = logging.getLogger(__name__)

RESTORE_FAILED = (
    "its saved state cannot be restored (it was written by another version of the "
    "engine or under another SECRET_KEY); start a new run"
)
ENGINE_FAILED = "the simulation stopped on an internal error; start a new run"
REPLAY_THREADS = 2  # moments replayed at once per worker process
REPLAY_FAILED = "the moment it was started from could not be replayed; start a new run"


class LeaseLost(Exception):
    """Another worker took the run while this one was replaying it."""


class RunStore:
    """Load runs and save checkpoints for one scheduler, off its tick."""

    def __init__(
        self, transport: Transport, token: str, lease_s: float, period: float
    ) -> None:
        self.transport = transport
        self.token = token
        self.lease_s = lease_s
        self.period = period
        self.cond = threading.Condition()
        self.loads: deque[str] = deque()
        self.saves: dict[str, tuple[int, dict[str, Any]]] = {}
        self.busy = False
        self.results: deque[tuple[Any, ...]] = deque()  # read by the scheduler
        self.thread: threading.Thread | None = None
        self.halt = False
        self.replays = ThreadPoolExecutor(
            max_workers=REPLAY_THREADS, thread_name_prefix="scalelab-replay"
        )

    # asked by the scheduler (any thread)

    def load(self, run_id: str) -> None:
        with self.cond:
            self.loads.append(run_id)
            self.cond.notify()

    def save(self, run_id: str, version: int, fields: dict[str, Any]) -> None:
        with self.cond:
            self.saves[run_id] = (version, fields)
            self.cond.notify()

    def idle(self) -> bool:
        with self.cond:
            return not (self.loads or self.saves or self.busy)

    # the thread

    def start(self) -> RunStore:
        self.thread = threading.Thread(
            target=self._serve, name="scalelab-run-store", daemon=True
        )
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with self.cond:
            self.halt = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join(timeout)
        self.replays.shutdown(wait=False, cancel_futures=True)

    def _serve(self) -> None:
        while True:
            with self.cond:
                while not (self.loads or self.saves or self.halt):
                    self.cond.wait()
                if self.halt and not (self.loads or self.saves):
                    return
            if not self.process():
                time.sleep(1.0)  # the database is away: try again in a second

    def process(self) -> bool:
        """Do everything asked so far; return False if the database failed."""
        with self.cond:
            loads, self.loads = list(self.loads), deque()
            saves, self.saves = self.saves, {}
            self.busy = True
        try:
            if saves:
                self._write(saves)
            for run_id in loads:
                if self.thread is not None and _replays_first(run_id):
                    # A run started from a moment replays first: seconds for an old
                    # moment, which must not hold up the checkpoints of other runs.
                    self.replays.submit(self._load_replayed, run_id)
                else:
                    self.results.append(self._load(run_id))
            return True
        except Exception:
            log.exception("run store: the database could not be reached")
            with self.cond:
                for run_id, job in saves.items():
                    self.saves.setdefault(run_id, job)
                self.loads.extendleft(reversed(loads))
            return False
        finally:
            with self.cond:
                self.busy = False
            # With DEBUG on, Django logs every query, and a checkpoint's query holds
            # its whole state: 9,000 of them would be hundreds of megabytes.
            connection.queries_log.clear()
            if not connection.in_atomic_block:  # inside a test's transaction, keep it
                close_old_connections()

    def _renew(self, run: Run) -> None:
        """Keep the lease on a run while it replays; give up if another took it."""
        if not self.transport.acquire(str(run.id), self.token, self.lease_s):
            raise LeaseLost(str(run.id))

    def _load_replayed(self, run_id: str) -> None:
        try:
            self.results.append(self._load(run_id))
        except Exception:
            log.exception("run %s: could not be loaded; trying again", run_id)
            time.sleep(1.0)
            self.load(run_id)
        finally:
            connection.close()

    def _write(self, saves: dict[str, tuple[int, dict[str, Any]]]) -> None:
        now = timezone.now()
        written = []
        periodic = []
        with transaction.atomic():
            for run_id, (version, fields) in saves.items():
                update = dict(fields)
                state = update.pop("state", None)
                timeline = update.pop("timeline", None)
                if timeline is not None:
                    _write_timeline(run_id, *timeline)
                if state is not None:
                    update.update(
                        checkpoint=seal(state),
                        checkpoint_seq=state["seq"],
                        checkpoint_at=now,
                    )
                if update["status"] in LIVE and state is not None:
                    periodic.append((run_id, version, update))
                    continue
                if update["status"] not in LIVE:
                    update["ended_at"] = now
                count = Run.objects.filter(id=run_id, status__in=LIVE).update(**update)
                written.append(("saved", run_id, version, count > 0))
            if periodic:
                live = _update_live(periodic)
                written += [("saved", r, v, r in live) for r, v, _ in periodic]
        self.results.extend(written)

    def _load(self, run_id: str) -> tuple[Any, ...]:
        try:
            if not self.transport.acquire(run_id, self.token, self.lease_s):
                return ("refused", run_id, "leased elsewhere")
            published = self.transport.last_id(run_id)
        except TRANSIENT_ERRORS:
            return ("refused", run_id, "transport unavailable")
        run = Run.objects.filter(id=run_id).first()
        if run is None or run.status not in LIVE:
            self.transport.release(run_id, self.token)
            return ("refused", run_id, "not live")
        try:
            driver = self._driver(run, published)
            driver.catch_up()
        except LeaseLost:
            return ("refused", run_id, "leased elsewhere")
        except RunFailed as exc:
            return self._failed(run_id, published, str(exc))
        except Exception:
            log.exception("run %s: the simulation failed while resuming", run_id)
            return self._failed(run_id, published, ENGINE_FAILED)
        self.transport.clear_dispatch(run_id)
        return ("loaded", run_id, driver)

    def _driver(self, run: Run, published: tuple[int, int]) -> RunDriver:
        engine_cls = get_engine(run.kind)
        origin = run.origin or {}
        # The frame rate the run began at: a worker set to another one paces its
        # frames by its own clock, and each frame still holds the same slice of
        # simulated time, so the run stays exact and replayable.
        period = 1.0 / origin["frame_hz"] if "frame_hz" in origin else self.period
        if run.checkpoint:
            try:
                state = unseal(run.checkpoint)
                engine = Engine.restore(state["engine"])
                seq, speed = state["seq"], state["speed"]
                paused, params = state["paused"], state["params"]
            except Exception as exc:
                raise RunFailed(RESTORE_FAILED) from exc
        elif "moment" in origin:
            # Started from a moment of another run: replay its controls (copied
            # into this run's timeline) to that frame, then go on live from there.
            try:
                timeline = check_timeline(timeline_of(run), limit=origin["moment"])
                replayed = Replay(timeline)
                engine = replayed.to(
                    origin["moment"], progress=lambda: self._renew(run)
                )
            except LeaseLost:
                raise
            except Exception as exc:
                raise RunFailed(REPLAY_FAILED) from exc
            seq, speed, params = origin["moment"], replayed.speed, replayed.params
            paused = run.status == Run.Status.PAUSED
        else:
            params = dict(run.params)
            engine = engine_cls(params, seed=run.seed)
            seq, speed, paused = 0, run.speed, run.status == Run.Status.PAUSED
        return RunDriver(
            run,
            engine,
            seq=seq,
            speed=speed,
            paused=paused,
            params=params,
            published=published,
            period=period,
            timeline_base=RunControl.objects.filter(run=run).count(),
        )

    def _failed(self, run_id: str, published: tuple[int, int], reason: str):
        log.error("run %s: %s", run_id, reason)
        Run.objects.filter(id=run_id, status__in=LIVE).update(
            status=Run.Status.FAILED, ended_at=timezone.now(), stop_reason=reason
        )
        self.transport.clear_dispatch(run_id)
        return ("failed", run_id, published, reason)


def _replays_first(run_id: str) -> bool:
    """Whether the run starts from a moment of another and has not been saved yet."""
    return Run.objects.filter(
        id=run_id, checkpoint__isnull=True, origin__has_key="moment"
    ).exists()


def _write_timeline(run_id: str, base: int, entries: list[tuple[Any, ...]]) -> None:
    """Insert the run's controls from number ``base`` on (ones already there stay)."""
    RunControl.objects.bulk_create(
        [
            RunControl(run_id=run_id, n=base + i, seq=seq, t=t, control=control)
            for i, (seq, t, control) in enumerate(entries)
        ],
        ignore_conflicts=True,
    )


_PERIODIC = ("checkpoint", "checkpoint_seq", "checkpoint_at", "last_seq", "speed")
_PERIODIC += ("params", "status")


def _update_live(rows: list[tuple[str, int, dict[str, Any]]]) -> set[str]:
    """Write the checkpoints of live runs in one statement; return the ids still live.

    The hot path of the store: every live run writes one every few seconds. One
    prepared UPDATE for the whole batch costs far less than one ORM update each.
    """
    meta = Run._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in _PERIODIC]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    live = [meta.get_field("status").get_db_prep_save(s, connection) for s in LIVE]
    status = quote(meta.get_field("status").column)
    # Every name comes from the model's own metadata, none from input.
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s AND {status} IN (%s, %s)"  # noqa: S608
    params = [
        [f.get_db_prep_save(update[f.name], connection) for f in fields]
        + [meta.pk.get_db_prep_save(uuid.UUID(run_id), connection), *live]
        for run_id, _, update in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    ids = [uuid.UUID(run_id) for run_id, _, _ in rows]
    return {
        str(i)
        for i in Run.objects.filter(id__in=ids, status__in=LIVE).values_list(
            "id", flat=True
        )
    }
