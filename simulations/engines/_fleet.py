"""A fleet of app servers behind a round-robin balancer, run on an event heap.

Shared by the engines that simulate one (``scaling``, ``provisioning``). Requests
arrive at random (Poisson) and the balancer hands each to the next server in
``live``; a server has ``workers[i]`` workers (a request holds one for an
exponential service time) and ``qcap[i]`` queue places, and drops what does not
fit. Busy worker time is summed in ``busy_area`` for utilisation.

Scheduled happenings sit in ``heap`` as ``(time, seq, kind, server, epoch)``. Kind
``DONE`` is a request finishing on a server; it is ignored once the server's
epoch has moved on (the server was killed, resized or relaunched). Every other
kind is the engine's own, handled by its ``_control``.

What differs between the engines stays in them: the server states and sizes,
which servers are ``live``, the traffic (``_rate_at``), the capacity and cost
accounting, and the control happenings. An engine whose servers drain sets
``retiring`` to that state: a retiring server that finishes its last request
is handed to ``_terminate``.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, ClassVar

from .base import Engine, Event, Metric, Window

DONE = 0  # the heap kind of a request finishing; engines number theirs from 1

# The request rates over the last few seconds, as ``_recent_rates`` gives them.
RECENT_METRICS = (
    Metric("arrival_rps_recent", "Arrivals (last 3 s)", "requests/s", summary=False),
    Metric("served_rps_recent", "Served (last 3 s)", "requests/s", summary=False),
    Metric("dropped_rps_recent", "Dropped (last 3 s)", "requests/s", summary=False),
)


class FleetEngine(Engine):
    """An engine whose world is a fleet of servers fed by Poisson arrivals."""

    # The server state whose servers leave once idle; -1: servers never drain.
    retiring: ClassVar[int] = -1

    state: list[int]
    workers: list[int]
    qcap: list[int]
    busy: list[int]
    queued: list[int]
    epoch: list[int]
    heap: list[tuple[float, int, int, int, int]]
    seq: int
    live: list[int]
    rr: int
    total_busy: int
    busy_area: float
    busy_t: float
    cap_area: float
    cap_t: float
    rate: float
    next_arrival: float
    spike_factor: float
    spike_end: float
    arrived: int
    completed: int
    dropped: int
    all_arrivals: int
    all_served: int
    all_dropped: int
    window: Window

    def _setup_fleet(self, n: int) -> None:
        """Give ``n`` empty servers, an empty heap, zeroed counters, no spike
        and the first arrival (the first draw from ``rng``)."""
        self.busy = [0] * n
        self.queued = [0] * n
        self.epoch = [0] * n
        self.heap = []
        self.seq = 0
        self.live = []
        self.rr = 0
        self.total_busy = 0
        self.busy_area = self.busy_t = 0.0
        self.cap_area = self.cap_t = 0.0
        self.all_arrivals = self.all_served = self.all_dropped = 0
        self.window = Window(span=3.0)
        self.spike_factor = 1.0
        self.spike_end = 0.0
        self.rate = self._rate_at(0.0)
        self.next_arrival = self.rng.expovariate(self.rate)

    def in_flight(self) -> int:
        return sum(self.busy) + sum(self.queued)

    def _push(self, t: float, kind: int, i: int, ep: int) -> None:
        heappush(self.heap, (t, self.seq, kind, i, ep))
        self.seq += 1

    def _account_busy(self, t: float) -> None:
        """Add the busy worker time up to ``t`` to ``busy_area``."""
        self.busy_area += self.total_busy * (t - self.busy_t)
        self.busy_t = t

    def _drop_requests(self, i: int) -> int:
        """Lose every request on server ``i``; return how many.

        Busy time must be accounted up to now first. The server's epoch moves on,
        so the completions it had scheduled are ignored.
        """
        lost = self.busy[i] + self.queued[i]
        self.total_busy -= self.busy[i]
        self.busy[i] = self.queued[i] = 0
        self.epoch[i] += 1
        self.dropped += lost
        return lost

    # Hooks ------------------------------------------------------------------

    def _rate_at(self, t: float) -> float:
        """Return the arrival rate for the piece of time starting at ``t``."""
        raise NotImplementedError

    def _control(
        self, kind: int, t: float, i: int, ep: int, events: list[Event]
    ) -> None:
        """Handle a happening of the engine's own ``kind`` (not ``DONE``)."""
        raise NotImplementedError

    def _terminate(self, i: int, t: float, events: list[Event]) -> None:
        """Take away server ``i``, which was ``retiring`` and is now idle."""
        raise NotImplementedError

    # Running ----------------------------------------------------------------

    def _serve(self, end: float, rate: float, events: list[Event]) -> bool:
        """Serve arrivals and completions up to ``end``.

        Return True when stopped early at a control happening due at or before
        ``end``; it is left at the top of the heap.
        """
        heap = self.heap
        expo = self.rng.expovariate
        mu = 1000.0 / self.p["service_ms"]
        busy, queued, epoch, state = self.busy, self.queued, self.epoch, self.state
        workers, qcap = self.workers, self.qcap
        retiring = self.retiring
        live = self.live
        nlive = len(live)
        rr = self.rr
        seq = self.seq
        total_busy = self.total_busy
        area = self.busy_area
        last = self.busy_t
        arrived = served = dropped = 0
        ta = self.next_arrival
        control = False
        while True:
            if heap and heap[0][0] <= ta:
                t, _, kind, i, ep = heap[0]
                if t > end:
                    break
                if kind != DONE:
                    control = True
                    break
                heappop(heap)
                if ep != epoch[i]:
                    continue
                served += 1
                if queued[i]:
                    queued[i] -= 1
                    heappush(heap, (t + expo(mu), seq, DONE, i, ep))
                    seq += 1
                else:
                    area += total_busy * (t - last)
                    last = t
                    busy[i] -= 1
                    total_busy -= 1
                    if not busy[i] and state[i] == retiring:
                        self.seq, self.total_busy = seq, total_busy
                        self.busy_area, self.busy_t = area, last
                        self._terminate(i, t, events)
                continue
            if ta > end:
                break
            arrived += 1
            if nlive:
                i = live[rr % nlive]
                rr += 1
                if busy[i] < workers[i]:
                    area += total_busy * (ta - last)
                    last = ta
                    busy[i] += 1
                    total_busy += 1
                    heappush(heap, (ta + expo(mu), seq, DONE, i, epoch[i]))
                    seq += 1
                elif queued[i] < qcap[i]:
                    queued[i] += 1
                else:
                    dropped += 1
            else:
                dropped += 1
            ta += expo(rate)
        self.next_arrival = ta
        self.seq = seq
        self.rr = rr
        self.total_busy = total_busy
        self.busy_area = area
        self.busy_t = last
        self.arrived += arrived
        self.all_arrivals += arrived
        self.completed += served
        self.all_served += served
        self.dropped += dropped
        self.all_dropped += dropped
        self.processed += arrived + served
        return control

    def _serve_until(self, end: float, events: list[Event]) -> None:
        """Run requests and control happenings from now to ``end``.

        The rate changes at tick boundaries (``_rate_at``) and where a spike ends;
        the pending arrival is rescaled to the new rate (arrivals are memoryless).
        """
        start = self.now
        cuts = [start]
        if start < self.spike_end < end:
            cuts.append(self.spike_end)
        cuts.append(end)
        for a, b in zip(cuts, cuts[1:]):
            rate = self._rate_at(a)
            if rate != self.rate:
                self.next_arrival = a + (self.next_arrival - a) * self.rate / rate
                self.rate = rate
            while self._serve(b, rate, events):
                t, _, kind, i, ep = heappop(self.heap)
                self._control(kind, t, i, ep, events)

    def _recent_rates(self) -> dict[str, Any]:
        """Return the ``RECENT_METRICS``: requests per second over the window."""
        now = self.now
        w = self.window
        span = w.seconds(now)
        return {
            "arrival_rps_recent": w.total("arrived", now) / span,
            "served_rps_recent": w.total("served", now) / span,
            "dropped_rps_recent": w.total("dropped", now) / span,
        }

    def _tally(self) -> tuple[int, int, int]:
        """Return the requests arrived, served and dropped since the start."""
        return self.all_arrivals, self.all_served, self.all_dropped

    def _report(
        self,
        start: float,
        before: tuple[int, int, int],
        events: list[Event],
        **amounts: float,
    ) -> None:
        """Count the requests since ``before`` (a ``_tally``) into the window
        at ``start``, with ``amounts``, and add them to ``events``."""
        arrived0, served0, dropped0 = before
        arrived = self.all_arrivals - arrived0
        served = self.all_served - served0
        dropped = self.all_dropped - dropped0
        self.window.add(
            start, arrived=arrived, served=served, dropped=dropped, **amounts
        )
        if served:
            events.append({"type": "request.served", "count": served})
        if dropped:
            events.append({"type": "request.dropped", "count": dropped})
