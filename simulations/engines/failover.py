"""Load balancer failover: an active balancer, an optional passive standby.

Clients send requests (Poisson) to a virtual IP. The balancer holding it passes
each request to a backend with a fixed number of workers; a full backend drops
the request. The active balancer sends a heartbeat to the standby every
``heartbeat_interval_s``. The standby arms a deadline ``missed_heartbeats``
intervals after the last beat it heard; when the deadline passes it takes over,
and holds the virtual IP ``takeover_s`` later. Because the active may die
anywhere between two beats, the standby notices between (missed - 1) and
missed intervals after the death.

Without a standby the balancer is a single point of failure: every request is
dropped until the balancer is repaired (``repair_s``) or revived by hand. A
partition of the heartbeat link leaves both balancers believing they are
active (split brain) until it heals; then the one that became active last
steps down and the connections it carried are cut.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any

from ..theory.availability import (
    detection_bounds,
    dropped_per_death,
    failover_outage_bounds,
    mean_failover_outage,
    outage_per_death,
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

DOWN, STANDBY, TAKING_OVER, ACTIVE = 0, 1, 2, 3
ROLE_NAMES = ("down", "standby", "taking over", "active")
NAMES = ("lb-a", "lb-b")
MAX_BACKENDS = 20

# Kinds of scheduled happenings in the heap: (time, seq, kind, a, b, c).
_DONE = 0  # a request finishes: a = backend, b = balancer, c = its connection epoch
_BEAT = 1  # a heartbeat is sent: a = balancer, b = its beat token
_DEADLINE = 2  # the standby's deadline passes: a = balancer, b = watch generation
_TAKEOVER = 3  # the virtual IP is held: a = balancer, b = watch generation
_REPAIR = 4  # a dead balancer is repaired: a = balancer, b = its connection epoch


class FailoverEngine(Engine):
    kind = "failover"
    title = "Load balancer failover"
    description = (
        "An active load balancer and an optional passive standby exchange "
        "heartbeats; when the active dies the standby takes the virtual IP after "
        "a few missed beats. Without a standby the balancer is a single point of "
        "failure."
    )
    params = (
        Param(
            "arrival_rate",
            "float",
            300.0,
            1.0,
            20_000.0,
            unit="requests/s",
            step=10,
            help="Average requests per second from clients (Poisson).",
            label="Arrival rate",
        ),
        Param(
            "standby",
            "bool",
            True,
            help="Run a passive standby balancer that takes over when the active dies.",
            label="Standby balancer",
        ),
        Param(
            "heartbeat_interval_s",
            "float",
            1.0,
            0.05,
            10.0,
            unit="s",
            step=0.05,
            help="How often the active balancer tells the standby it is alive.",
            label="Heartbeat interval",
        ),
        Param(
            "missed_heartbeats",
            "int",
            3,
            1,
            10,
            unit="beats",
            help="Heartbeats the standby misses before it declares the active dead.",
            label="Missed heartbeats",
        ),
        Param(
            "takeover_s",
            "float",
            2.0,
            0.0,
            60.0,
            unit="s",
            step=0.1,
            help="Time to move the virtual IP (gratuitous ARP) once failure is detected.",
            label="Takeover time",
        ),
        Param(
            "repair_s",
            "float",
            300.0,
            1.0,
            3600.0,
            unit="s",
            step=10,
            help="Time until a dead balancer is repaired and comes back.",
            label="Repair time",
        ),
        Param(
            "backends",
            "int",
            4,
            1,
            MAX_BACKENDS,
            unit="servers",
            help="Application servers behind the balancer (round robin).",
            label="Backends",
        ),
        Param(
            "backend_workers",
            "int",
            50,
            1,
            500,
            unit="workers",
            help="Requests one backend serves at once; a full backend drops requests.",
            label="Workers per backend",
        ),
        Param(
            "service_ms",
            "float",
            50.0,
            1.0,
            5000.0,
            unit="ms",
            step=1,
            help="Average time a backend worker needs for a request (exponential).",
            label="Service time",
        ),
    )
    commands = (
        Command(
            "kill_active",
            "Kill active balancer",
            "The balancer holding the virtual IP dies; its open connections are cut.",
        ),
        Command(
            "revive",
            "Revive",
            "Bring every dead balancer back now: active if nobody holds the virtual "
            "IP, otherwise standby.",
        ),
        Command(
            "partition",
            "Partition",
            "Cut the heartbeat link between the balancers: the standby believes the "
            "active is dead and takes over while it is still alive (split brain).",
        ),
        Command(
            "heal",
            "Heal",
            "Restore the heartbeat link; if both are active the newer one steps down.",
        ),
    )
    event_types = (
        "balancer.heartbeat",
        "balancer.down",
        "balancer.missed_heartbeats",
        "balancer.failover",
        "balancer.split_brain",
        "balancer.step_down",
        "balancer.up",
        "balancer.partition",
        "balancer.heal",
        "request.served",
        "request.dropped",
    )
    narration = {
        "balancer.down": (
            "Balancer {balancer} went down, cutting {cut#connection}; the standby "
            "{standby_ready?is ready|is not ready}"
        ),
        "balancer.missed_heartbeats": (
            "Balancer {balancer} missed {missed#heartbeat}: {silence_s} s of silence"
        ),
        "balancer.failover": (
            "Balancer {balancer} took over: noticed after {detection_s} s, "
            "{outage_s} s without service"
        ),
        "balancer.split_brain": (
            "{resolved?The split brain is over: one balancer stepped down|Split "
            "brain: both balancers claim the virtual address}"
        ),
        "balancer.step_down": "Balancer {balancer} stepped down: it {reason}",
        "balancer.up": "Balancer {balancer} is up again as the {role} balancer",
        "balancer.partition": "The network between the balancers is cut",
        "balancer.heal": "The network between the balancers is back",
    }
    metric_specs = (
        Metric(
            "outage_s",
            "Outage",
            "s",
            help="Time with no balancer holding the virtual IP.",
        ),
        Metric(
            "dropped_requests",
            "Dropped requests",
            "requests",
            help="Requests lost: no balancer, connection cut, or backend full.",
        ),
        Metric("failovers", "Failovers", help="Times a standby took the virtual IP."),
        Metric(
            "availability",
            "Availability",
            help="Share of the measured time some balancer held the virtual IP.",
        ),
        Metric(
            "dropped_no_balancer",
            "Dropped: no balancer",
            "requests",
            help="Requests that arrived while nobody held the virtual IP.",
        ),
        Metric(
            "dropped_cut",
            "Dropped: connections cut",
            "requests",
            help="Requests in flight through a balancer that died or stepped down.",
        ),
        Metric(
            "dropped_overload",
            "Dropped: backend full",
            "requests",
            help="Requests that found every worker of their backend busy.",
        ),
        Metric(
            "split_brain_s",
            "Split brain",
            "s",
            help="Time with two balancers both believing they are active.",
        ),
        Metric(
            "mean_detection_s",
            "Mean detection time",
            "s",
            help="From the active's death (or the partition) to the standby acting.",
        ),
        Metric(
            "mean_failover_outage_s",
            "Mean outage per failover",
            "s",
            help="From the active's death to the standby holding the virtual IP.",
        ),
        Metric("heartbeats", "Heartbeats sent", "beats"),
        Metric("arrived", "Requests arrived", "requests"),
        Metric("completed", "Requests served", "requests"),
        Metric("in_flight", "Requests in flight", "requests"),
        Metric("active_balancers", "Balancers active", summary=False),
        Metric("balancer_names", "Balancers", summary=False),
        Metric(
            "balancer_state",
            "Balancer state",
            summary=False,
            help="0 down, 1 standby, 2 taking over, 3 active.",
        ),
        Metric(
            "heartbeat_silence_s",
            "Silence heard by the standby",
            "s",
            summary=False,
            help="Time since a waiting standby last heard a heartbeat.",
        ),
        Metric(
            "detection_threshold_s",
            "Detection threshold",
            "s",
            summary=False,
            help="Silence after which the standby takes over: missed x interval.",
        ),
        Metric(
            "arrival_rps_recent", "Arrivals (last 3 s)", "requests/s", summary=False
        ),
        Metric("served_rps_recent", "Served (last 3 s)", "requests/s", summary=False),
        Metric("dropped_rps_recent", "Dropped (last 3 s)", "requests/s", summary=False),
    )

    theory_models = {
        "mean_detection_s": (
            "Death at a uniform phase of the beat: (missed - 1/2) x interval"
        ),
        "mean_failover_outage_s": (
            "Detection plus takeover: (missed - 1/2) x interval + takeover"
        ),
    }

    def setup(self) -> None:
        p = self.p
        self.heap: list[tuple[float, int, int, int, int, int]] = []
        self.seq = 0
        self.present = [True, bool(p["standby"])]
        self.role = [ACTIVE, STANDBY if p["standby"] else DOWN]
        self.epoch = [0, 0]  # bumped when a balancer's connections are cut
        self.beat_token = [0, 0]  # bumped when a balancer starts or stops beating
        self.watch_gen = [0, 0]  # bumped when a standby's deadline moves
        self.last_heard = [0.0, 0.0]
        self.active_since = [0.0, 0.0]
        self.inflight = [0, 0]
        self.busy = [0] * MAX_BACKENDS
        self.rr = 0
        self.partitioned = False
        self.lost_at = 0.0  # when the beats stopped: a death or a partition
        self.detected_at = 0.0
        self.holders = [0]
        self.outage_began: float | None = None
        self.split_began: float | None = None
        self.next_arrival = self.rng.expovariate(p["arrival_rate"])
        self.window = Window(span=3.0)
        # The first beat comes at a random phase, so a death at a fixed time
        # lands at a random point between two beats.
        self._push(self.rng.uniform(0.0, p["heartbeat_interval_s"]), _BEAT, 0, 0, 0)
        if p["standby"]:
            self._watch(1, 0.0)
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.completed = 0
        self.dropped_no_lb = self.dropped_cut = self.dropped_overload = 0
        self.failovers = self.heartbeats = 0
        self.outage_s = self.split_brain_s = 0.0
        self.detection_sum = self.failover_outage_sum = 0.0
        self.failover_outages = 0
        # Requests in flight at the reset count as arrived within the measurement,
        # so that arrived = completed + dropped + in flight holds from here on.
        self.arrived = self.inflight[0] + self.inflight[1]

    # Scheduling -------------------------------------------------------------

    def _push(self, t: float, kind: int, a: int, b: int, c: int) -> None:
        heappush(self.heap, (t, self.seq, kind, a, b, c))
        self.seq += 1

    def _watch(self, i: int, t: float) -> None:
        """Arm standby ``i``'s deadline: ``missed`` intervals after time ``t``."""
        self.last_heard[i] = t
        self.watch_gen[i] += 1
        deadline = t + self.p["missed_heartbeats"] * self.p["heartbeat_interval_s"]
        self._push(deadline, _DEADLINE, i, self.watch_gen[i], 0)

    def _start_beating(self, i: int, t: float) -> None:
        self.beat_token[i] += 1
        self._push(t, _BEAT, i, self.beat_token[i], 0)

    def _update_holders(self, t: float, events: list[Event]) -> None:
        """Recompute who holds the virtual IP; account outage and split brain."""
        before = len(self.holders)
        self.holders = [i for i in (0, 1) if self.role[i] == ACTIVE]
        after = len(self.holders)
        if before and not after:
            self.outage_began = t
        elif after and not before and self.outage_began is not None:
            self.outage_s += t - max(self.outage_began, self.since)
            self.outage_began = None
        if after == 2 and before < 2:
            self.split_began = t
            events.append(
                {
                    "type": "balancer.split_brain",
                    "t": t,
                    "resolved": False,
                    "balancers": [NAMES[0], NAMES[1]],
                }
            )
        elif after < 2 and before == 2 and self.split_began is not None:
            self.split_brain_s += t - max(self.split_began, self.since)
            self.split_began = None

    def _cut(self, i: int) -> int:
        """Drop the connections through balancer ``i``; return how many."""
        cut = self.inflight[i]
        self.inflight[i] = 0
        self.epoch[i] += 1
        self.dropped_cut += cut
        return cut

    # Happenings -------------------------------------------------------------

    def _on_control(
        self, kind: int, t: float, a: int, b: int, events: list[Event]
    ) -> None:
        if kind == _BEAT:
            if b != self.beat_token[a] or self.role[a] != ACTIVE:
                return
            self.heartbeats += 1
            self.processed += 1
            self._push(t + self.p["heartbeat_interval_s"], _BEAT, a, b, 0)
            peer = 1 - a
            if self.present[peer] and self.role[peer] != DOWN and not self.partitioned:
                self._hear(peer, a, t, events)
        elif kind == _DEADLINE:
            if b != self.watch_gen[a] or self.role[a] != STANDBY:
                return
            self.processed += 1
            self.role[a] = TAKING_OVER
            self.detected_at = t
            self.watch_gen[a] += 1
            self._push(t + self.p["takeover_s"], _TAKEOVER, a, self.watch_gen[a], 0)
            events.append(
                {
                    "type": "balancer.missed_heartbeats",
                    "t": t,
                    "balancer": NAMES[a],
                    "silence_s": t - self.last_heard[a],
                    "missed": self.p["missed_heartbeats"],
                }
            )
        elif kind == _TAKEOVER:
            if b != self.watch_gen[a] or self.role[a] != TAKING_OVER:
                return
            self.processed += 1
            self.role[a] = ACTIVE
            self.active_since[a] = t
            self._start_beating(a, t)
            outage = t - self.lost_at if not self.holders else 0.0
            detection = self.detected_at - self.lost_at
            self.failovers += 1
            self.detection_sum += detection
            if not self.holders:
                self.failover_outage_sum += outage
                self.failover_outages += 1
            events.append(
                {
                    "type": "balancer.failover",
                    "t": t,
                    "balancer": NAMES[a],
                    "detection_s": detection,
                    "takeover_s": t - self.detected_at,
                    "outage_s": outage,
                }
            )
            self._update_holders(t, events)
        elif kind == _REPAIR:
            if b != self.epoch[a] or self.role[a] != DOWN or not self.present[a]:
                return
            self.processed += 1
            self._bring_up(a, t, "repaired", events)

    def _hear(self, i: int, sender: int, t: float, events: list[Event]) -> None:
        """Balancer ``i`` hears a heartbeat from active balancer ``sender``."""
        role = self.role[i]
        if role == STANDBY:
            self._watch(i, t)
        elif role == TAKING_OVER:
            self.role[i] = STANDBY
            self._watch(i, t)
            events.append(
                {
                    "type": "balancer.step_down",
                    "t": t,
                    "balancer": NAMES[i],
                    "reason": "heard the active again before taking over",
                    "cut": 0,
                }
            )
        elif role == ACTIVE:
            # Both believe they are active and can hear each other again: the one
            # that became active last gives the virtual IP back.
            newer = (
                i
                if (self.active_since[i], i) > (self.active_since[sender], sender)
                else sender
            )
            older = 1 - newer
            lasted = t - self.split_began if self.split_began is not None else 0.0
            self.role[newer] = STANDBY
            self.beat_token[newer] += 1
            cut = self._cut(newer)
            self._watch(newer, t)
            self._update_holders(t, events)
            events.append(
                {
                    "type": "balancer.split_brain",
                    "t": t,
                    "resolved": True,
                    "kept": NAMES[older],
                    "stepped_down": NAMES[newer],
                    "cut": cut,
                    "lasted_s": lasted,
                }
            )

    def _bring_up(self, i: int, t: float, reason: str, events: list[Event]) -> None:
        peer = 1 - i
        if self.present[peer] and self.role[peer] in (ACTIVE, TAKING_OVER):
            self.role[i] = STANDBY
            self._watch(i, t)
        else:
            self.role[i] = ACTIVE
            self.active_since[i] = t
            self._start_beating(i, t)
        events.append(
            {
                "type": "balancer.up",
                "t": t,
                "balancer": NAMES[i],
                "role": ROLE_NAMES[self.role[i]],
                "reason": reason,
            }
        )
        self._update_holders(t, events)

    def run_until(self, end: float) -> list[Event]:
        heap = self.heap
        expo = self.rng.expovariate
        rand = self.rng.random
        rate = self.p["arrival_rate"]
        mu = 1000.0 / self.p["service_ms"]
        workers = self.p["backend_workers"]
        nb = self.p["backends"]
        busy = self.busy
        inflight = self.inflight
        epoch = self.epoch
        rr = self.rr % nb
        seq = self.seq
        holders = self.holders
        events: list[Event] = []
        beats_before = self.heartbeats
        arrived = served = no_lb = overload = 0
        ta = self.next_arrival
        while True:
            if heap and heap[0][0] <= ta:
                t, _, kind, a, b, c = heap[0]
                if t > end:
                    break
                heappop(heap)
                if kind == _DONE:
                    busy[a] -= 1
                    if c == epoch[b]:
                        inflight[b] -= 1
                        served += 1
                    continue
                self.seq = seq
                self._on_control(kind, t, a, b, events)
                seq = self.seq
                holders = self.holders
                continue
            if ta > end:
                break
            arrived += 1
            if not holders:
                no_lb += 1
            else:
                lb = holders[0] if len(holders) == 1 else holders[rand() < 0.5]
                if busy[rr] < workers:
                    busy[rr] += 1
                    inflight[lb] += 1
                    heappush(heap, (ta + expo(mu), seq, _DONE, rr, lb, epoch[lb]))
                    seq += 1
                else:
                    overload += 1
                rr += 1
                if rr == nb:
                    rr = 0
            ta += expo(rate)
        self.next_arrival = ta
        self.seq = seq
        self.rr = rr
        self.arrived += arrived
        self.completed += served
        self.dropped_no_lb += no_lb
        self.dropped_overload += overload
        self.processed += arrived + served
        dropped = no_lb + overload
        self.window.add(self.now, arrived=arrived, served=served, dropped=dropped)
        beats = self.heartbeats - beats_before
        if beats:
            events.append({"type": "balancer.heartbeat", "count": beats})
        if served:
            events.append({"type": "request.served", "count": served})
        if dropped:
            events.append({"type": "request.dropped", "count": dropped})
        return events

    def metrics(self) -> dict[str, Any]:
        now = self.now
        elapsed = max(now - self.since, 1e-9)
        outage = self.outage_s
        if self.outage_began is not None:
            outage += now - max(self.outage_began, self.since)
        split = self.split_brain_s
        if self.split_began is not None:
            split += now - max(self.split_began, self.since)
        silence = 0.0
        for i in (0, 1):
            if self.present[i] and self.role[i] == STANDBY:
                silence = now - self.last_heard[i]
        w = self.window
        span = w.seconds(now)
        dropped = self.dropped_no_lb + self.dropped_cut + self.dropped_overload
        shown = [i for i in (0, 1) if self.present[i]]
        return {
            "outage_s": outage,
            "dropped_requests": dropped,
            "failovers": self.failovers,
            "availability": 1.0 - outage / elapsed,
            "dropped_no_balancer": self.dropped_no_lb,
            "dropped_cut": self.dropped_cut,
            "dropped_overload": self.dropped_overload,
            "split_brain_s": split,
            "mean_detection_s": self.detection_sum / self.failovers
            if self.failovers
            else 0.0,
            "mean_failover_outage_s": (
                self.failover_outage_sum / self.failover_outages
                if self.failover_outages
                else 0.0
            ),
            "heartbeats": self.heartbeats,
            "arrived": self.arrived,
            "completed": self.completed,
            "in_flight": self.inflight[0] + self.inflight[1],
            "active_balancers": len(self.holders),
            "balancer_names": [NAMES[i] for i in shown],
            "balancer_state": [self.role[i] for i in shown],
            "heartbeat_silence_s": silence,
            "detection_threshold_s": (
                self.p["missed_heartbeats"] * self.p["heartbeat_interval_s"]
            ),
            "arrival_rps_recent": w.total("arrived", now) / span,
            "served_rps_recent": w.total("served", now) / span,
            "dropped_rps_recent": w.total("dropped", now) / span,
        }

    def picture(self) -> dict[str, Any]:
        """Return the heartbeat link's state, the beats the standby missed, the
        balancer a kill would take down, the backend's busy workers, and what
        theory says one death of the active costs under these settings."""
        interval = self.p["heartbeat_interval_s"]
        missed = 0
        for i in (0, 1):
            if self.present[i] and self.role[i] == STANDBY:
                missed = int((self.now - self.last_heard[i]) / interval + 1e-9)
        target = (
            NAMES[min(self.holders, key=lambda k: (self.active_since[k], k))]
            if self.holders
            else ""
        )
        nb = self.p["backends"]
        return {
            "partitioned": self.partitioned,
            "missed": missed,
            "missed_limit": self.p["missed_heartbeats"],
            "kill": target,
            "backend_busy": sum(self.busy[:nb]),
            "backend_workers": nb * self.p["backend_workers"],
            "per_death": self._per_death(),
        }

    def _per_death(self) -> dict[str, float]:
        """Return the outage bounds, mean outage and mean requests lost that one
        death of the active balancer costs, by theory, under these settings."""
        p = self.p
        interval, missed = p["heartbeat_interval_s"], p["missed_heartbeats"]
        takeover, repair = p["takeover_s"], p["repair_s"]
        outage = outage_per_death(p["standby"], interval, missed, takeover, repair)
        lo, hi = (
            failover_outage_bounds(interval, missed, takeover)
            if p["standby"]
            else (repair, repair)
        )
        dropped = dropped_per_death(p["arrival_rate"], outage, p["service_ms"] / 1000)
        return {
            "outage_lo_s": round(lo, 6),
            "outage_hi_s": round(hi, 6),
            "outage_s": round(outage, 6),
            "dropped": round(dropped, 1),
        }

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        if not p["standby"]:
            cost = self._per_death()
            why = (
                "no standby: nothing fails over, and a dead balancer is an outage "
                f"until it is repaired, {p['repair_s']:g} s (or revived by hand), "
                f"losing about {cost['dropped']:,.0f} requests"
            )
            return {"mean_detection_s": why, "mean_failover_outage_s": why}
        interval, missed = p["heartbeat_interval_s"], p["missed_heartbeats"]
        lo, hi = detection_bounds(interval, missed)
        return {
            "mean_detection_s": (lo + hi) / 2,
            "mean_failover_outage_s": mean_failover_outage(
                interval, missed, p["takeover_s"]
            ),
        }

    # Commands ---------------------------------------------------------------

    def _state_words(self) -> str:
        return ", ".join(
            f"{NAMES[i]} {ROLE_NAMES[self.role[i]]}" for i in (0, 1) if self.present[i]
        )

    def on_kill_active(self) -> list[Event]:
        if not self.holders:
            raise CommandError(
                "kill_active",
                f"no balancer holds the virtual IP to kill ({self._state_words()})",
            )
        # In a split brain the clients mostly reach the older one: kill that.
        i = min(self.holders, key=lambda k: (self.active_since[k], k))
        self.role[i] = DOWN
        self.beat_token[i] += 1
        cut = self._cut(i)
        self.lost_at = self.now
        self._push(self.now + self.p["repair_s"], _REPAIR, i, self.epoch[i], 0)
        events: list[Event] = [
            {
                "type": "balancer.down",
                "t": self.now,
                "balancer": NAMES[i],
                "cut": cut,
                "standby_ready": any(
                    self.present[k] and self.role[k] == STANDBY for k in (0, 1)
                ),
            }
        ]
        self._update_holders(self.now, events)
        return events

    def on_revive(self) -> list[Event]:
        dead = [i for i in (0, 1) if self.present[i] and self.role[i] == DOWN]
        if not dead:
            raise CommandError(
                "revive", f"no balancer is down to revive ({self._state_words()})"
            )
        events: list[Event] = []
        for i in dead:
            self._bring_up(i, self.now, "revived", events)
        return events

    def on_partition(self) -> list[Event]:
        if not self.p["standby"]:
            raise CommandError(
                "partition",
                "partition needs two balancers: set standby to true first",
            )
        if self.partitioned:
            raise CommandError(
                "partition", "the balancers are already partitioned; heal first"
            )
        self.partitioned = True
        self.lost_at = self.now
        return [{"type": "balancer.partition", "t": self.now}]

    def on_heal(self) -> list[Event]:
        if not self.partitioned:
            raise CommandError(
                "heal", "the balancers are not partitioned; nothing to heal"
            )
        self.partitioned = False
        return [{"type": "balancer.heal", "t": self.now}]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "arrival_rate":
            # Memoryless: the remaining wait scales with the ratio of the rates.
            self.next_arrival = self.now + (self.next_arrival - self.now) * (
                old / self.p["arrival_rate"]
            )
        elif name == "standby" and self.p["standby"] != old:
            events: list[Event] = []
            if self.p["standby"]:
                self.present[1] = True
                self._bring_up(1, self.now, "added", events)
            else:
                if self.role[1] != DOWN:
                    self.role[1] = DOWN
                    self.beat_token[1] += 1
                    cut = self._cut(1)
                    events.append(
                        {
                            "type": "balancer.down",
                            "t": self.now,
                            "balancer": NAMES[1],
                            "cut": cut,
                            "standby_ready": False,
                        }
                    )
                self.present[1] = False
                self.partitioned = False
                self.lost_at = self.now
                self._update_holders(self.now, events)
            return events
        return None
