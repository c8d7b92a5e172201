"""Vertical against horizontal scaling under growing traffic.

Requests arrive at random (Poisson) at a rate that grows steadily. Each server
has a number of workers (a request holds one for an exponential service time)
and a queue a few times as long; a request that finds both full is dropped.

Vertical: one server, stepped up through the sizes of ``SIZES``. Each step
doubles the price but less than doubles the workers (bigger machines give
diminishing returns), and there is a largest size. Every upgrade is a reboot:
a short downtime that drops the requests in the server and all that arrive.
A killed server is a full outage until it is repaired.

Horizontal: identical servers behind a round-robin balancer. Adding one costs
the same each time (linear cost) and takes a boot, with no downtime; a killed
server takes 1/n of the capacity away and the rest carry on.
"""

from __future__ import annotations

import math
from typing import Any

from ..theory.erlang import mmck_figures
from ._fleet import RECENT_METRICS, FleetEngine
from .base import (
    TICK,
    Command,
    CommandError,
    Event,
    Metric,
    Param,
    ParamError,
    TheoryFigures,
)

# The sizes a server comes in: name, workers, price in dollars per hour. The
# price doubles at every step while the workers grow by 1.75x down to 1.56x, so
# a unit of capacity costs more on a bigger machine. With the default 40 ms
# service time the capacities are 100, 175, 300, 500, 800 and 1250 requests/s.
SIZES: tuple[tuple[str, int, float], ...] = (
    ("small", 4, 0.10),
    ("medium", 7, 0.20),
    ("large", 12, 0.40),
    ("xlarge", 20, 0.80),
    ("2xlarge", 32, 1.60),
    ("4xlarge", 50, 3.20),
)
SIZE_NAMES = tuple(s[0] for s in SIZES)
MAX_RATE = 20_000.0  # requests/s: growing traffic stops growing here

OFF, BOOTING, UP, DOWN, UPGRADING = 0, 1, 2, 3, 4
STATE_NAMES = ("off", "booting", "up", "down", "upgrading")

# Scheduled happenings in the heap besides a request finishing (see _fleet).
_READY = 1  # a server finishes booting, upgrading or being repaired
_CHECK = 2  # the auto-scaler looks at the traffic


class ScalingEngine(FleetEngine):
    kind = "scaling"
    title = "Vertical or horizontal scaling"
    description = (
        "Growing traffic meets either one server stepped up through bigger, "
        "pricier sizes (vertical) or more identical servers behind a load "
        "balancer (horizontal). Compare capacity, cost and what a failure does."
    )
    params = (
        Param(
            "strategy",
            "choice",
            "vertical",
            choices=("vertical", "horizontal"),
            help="Vertical: one bigger server. Horizontal: more servers of one size. "
            "Takes effect in a new run.",
            label="Strategy",
            live=False,
        ),
        Param(
            "arrival_rate",
            "float",
            60.0,
            1.0,
            5000.0,
            unit="requests/s",
            step=10,
            help="Average requests per second at the start (Poisson).",
            label="Starting traffic",
        ),
        Param(
            "growth_rps_per_min",
            "float",
            60.0,
            0.0,
            2000.0,
            unit="requests/s per min",
            step=10,
            help="How fast traffic grows.",
            label="Traffic growth",
        ),
        Param(
            "service_ms",
            "float",
            40.0,
            1.0,
            1000.0,
            unit="ms",
            step=1,
            help="Average time one worker needs for a request (exponential).",
            label="Service time",
        ),
        Param(
            "queue_per_worker",
            "int",
            2,
            0,
            20,
            unit="requests",
            help="Queue places per worker; a request finding the queue full is dropped.",
            label="Queue per worker",
        ),
        Param(
            "start_size",
            "choice",
            "small",
            choices=SIZE_NAMES,
            help="Vertical: the size the server starts at.",
            label="Starting size",
        ),
        Param(
            "server_size",
            "choice",
            "small",
            choices=SIZE_NAMES,
            help="Horizontal: the size of every server.",
            label="Server size",
        ),
        Param(
            "servers",
            "int",
            1,
            1,
            100,
            unit="servers",
            help="Horizontal: servers at the start.",
            label="Starting servers",
        ),
        Param(
            "max_servers",
            "int",
            40,
            1,
            100,
            unit="servers",
            help="Horizontal: the most servers the balancer will take.",
            label="Most servers",
        ),
        Param(
            "upgrade_downtime_s",
            "float",
            20.0,
            0.0,
            600.0,
            unit="s",
            step=1,
            help="Vertical: how long the server is down while it is resized.",
            label="Upgrade downtime",
        ),
        Param(
            "boot_s",
            "float",
            30.0,
            0.0,
            600.0,
            unit="s",
            step=1,
            help="Horizontal: time from adding a server to its first request.",
            label="Boot time",
        ),
        Param(
            "repair_s",
            "float",
            60.0,
            1.0,
            3600.0,
            unit="s",
            step=1,
            help="Time until a killed server is replaced and serving again.",
            label="Repair time",
        ),
        Param(
            "auto_scale",
            "bool",
            True,
            help="Scale by itself: upgrade or add servers when traffic nears capacity.",
            label="Auto-scale",
        ),
        Param(
            "target_utilization",
            "float",
            0.75,
            0.3,
            0.95,
            step=0.05,
            help="Auto-scale so that traffic fills this share of the capacity.",
            label="Target utilisation",
        ),
        Param(
            "check_interval_s",
            "float",
            10.0,
            1.0,
            120.0,
            unit="s",
            step=1,
            help="How often the auto-scaler looks at the traffic.",
            label="Check interval",
        ),
    )
    commands = (
        Command(
            "upgrade",
            "Upgrade server",
            "Vertical: resize the server one step up (a short downtime).",
        ),
        Command(
            "add_server",
            "Add server",
            "Horizontal: boot one more server behind the balancer.",
        ),
        Command(
            "kill_server",
            "Kill server",
            "A server dies; its requests are lost; it is replaced after the repair time.",
            args=(
                Param("server", "int", 0, 0, 99, help="Index of the server to kill."),
            ),
        ),
        Command(
            "spike",
            "Traffic spike",
            "Multiply the traffic for a while.",
            args=(
                Param("factor", "float", 3.0, 1.0, 20.0, unit="x", help="Multiplier."),
                Param(
                    "duration_s",
                    "float",
                    60.0,
                    1.0,
                    3600.0,
                    unit="s",
                    help="How long the spike lasts.",
                ),
            ),
        ),
    )
    event_types = (
        "server.upgrade",
        "server.add",
        "server.ready",
        "server.kill",
        "traffic.spike",
        "request.served",
        "request.dropped",
    )
    narration = {
        "server.upgrade": (
            "The server grew from {from} to {to}: {capacity_rps} requests a second "
            "for ${cost_per_hour} an hour; {lost#request} lost"
        ),
        "server.add": "Adding {servers}",
        "server.ready": (
            "Server {server} ({size}) is ready; capacity is {capacity_rps} requests "
            "a second"
        ),
        "server.kill": (
            "Server {server} was killed; {lost#request} lost, capacity now "
            "{capacity_rps} requests a second"
        ),
        "traffic.spike": "Traffic jumped to {factor} times normal until {until} s",
    }
    theory_models = dict.fromkeys(
        ("dropped_rps_recent", "served_rps_recent", "utilization_recent"),
        # Round robin hands each server every n-th arrival, more regular than
        # the Poisson stream the model assumes: with several servers it drops
        # fewer than predicted (exact for one server).
        "M/M/c/K per server, Poisson split (round robin drops fewer)",
    )
    metric_specs = (
        Metric(
            "capacity_rps",
            "Capacity",
            "requests/s",
            help="Requests per second the serving servers can handle now.",
        ),
        Metric("cost_per_hour", "Cost", "$/h", help="What the servers cost now."),
        Metric(
            "utilization",
            "Utilisation",
            help="Share of the serving workers' time spent on requests (measured).",
        ),
        Metric("dropped", "Dropped requests", "requests"),
        Metric("downtime_s", "Downtime", "s", help="Time with no server serving."),
        Metric("arrived", "Requests arrived", "requests"),
        Metric("completed", "Requests served", "requests"),
        Metric("in_flight", "Requests in flight", "requests"),
        Metric("drop_ratio", "Drop ratio", help="Share of arrivals dropped."),
        Metric("cost_total", "Money spent", "$"),
        Metric(
            "cost_per_1000_requests",
            "Cost per 1000 requests",
            "$",
            help="Money spent per thousand requests served.",
        ),
        Metric(
            "cost_per_million_requests",
            "Cost per million requests",
            "$",
            help="The same, per million requests: easier to read.",
        ),
        Metric(
            "cost_per_1000_rps",
            "Price of capacity",
            "$/h per 1000 requests/s",
            help="Cost per hour of a thousand requests/s of capacity, at current sizes.",
        ),
        Metric("servers", "Servers serving", "servers"),
        Metric("size", "Server size"),
        Metric("offered_rps", "Traffic now", "requests/s"),
        Metric("upgrades", "Upgrades"),
        Metric("servers_added", "Servers added"),
        Metric("utilization_recent", "Utilisation (last 3 s)", summary=False),
        *RECENT_METRICS,
        Metric("server_names", "Servers", summary=False),
        Metric("server_utilization", "Workers busy per server", summary=False),
        Metric("server_state", "Server state", summary=False),
    )

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        if values["servers"] > values["max_servers"]:
            raise ParamError(
                "servers",
                f"servers must be at most max_servers ({values['max_servers']}); "
                f"got {values['servers']}",
            )

    def setup(self) -> None:
        p = self.p
        n = 100
        self.state = [OFF] * n
        self.size = [0] * n
        self.workers = [0] * n
        self.qcap = [0] * n
        self._setup_fleet(n)
        self.live_workers = 0
        self.cost_rate = 0.0
        self.checked_arrivals = 0
        if p["strategy"] == "vertical":
            self._provision(0, SIZE_NAMES.index(p["start_size"]), UP)
        else:
            for i in range(p["servers"]):
                self._provision(i, SIZE_NAMES.index(p["server_size"]), UP)
        self._push(p["check_interval_s"], _CHECK, 0, 0)
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.completed = self.dropped = 0
        self.upgrades = self.added = 0
        self.busy_area = self.cap_area = self.cost_total = self.downtime = 0.0
        self.arrived = self.in_flight()

    # Servers ----------------------------------------------------------------

    def _rate_at(self, t: float) -> float:
        """Return the arrival rate for the piece of time starting at ``t``.

        Traffic grows in steps of one tick, so it is constant within a slice.
        """
        tick_start = math.floor(t / TICK + 1e-9) * TICK
        rate = self.p["arrival_rate"] + self.p["growth_rps_per_min"] * tick_start / 60.0
        if t < self.spike_end:
            rate *= self.spike_factor
        return min(rate, MAX_RATE)

    def _integrate(self, t: float) -> None:
        """Account capacity, cost and downtime up to time ``t``."""
        dt = t - self.cap_t
        if dt > 0:
            self.cap_area += self.live_workers * dt
            self.cost_total += self.cost_rate * dt / 3600.0
            if not self.live_workers:
                self.downtime += dt
            self.cap_t = t

    def _recount(self) -> None:
        self.live = [i for i, s in enumerate(self.state) if s == UP]
        self.live_workers = sum(self.workers[i] for i in self.live)
        self.cost_rate = sum(
            SIZES[self.size[i]][2] for i, s in enumerate(self.state) if s
        )

    def _provision(self, i: int, size: int, state: int) -> None:
        qpw = self.p["queue_per_worker"]
        self.size[i] = size
        self.workers[i] = SIZES[size][1]
        self.qcap[i] = SIZES[size][1] * qpw
        self.state[i] = state
        self._recount()

    def _cut(self, i: int, t: float) -> int:
        """Lose the requests on server ``i`` at time ``t``; return how many."""
        self._account_busy(t)
        lost = self._drop_requests(i)
        self.window.add(self.now, dropped=lost)
        return lost

    def _capacity(self, workers: int) -> float:
        return workers * 1000.0 / self.p["service_ms"]

    def _upgrade_to(self, size: int, reason: str, t: float) -> Event:
        i = 0
        self._integrate(t)
        old = self.size[i]
        lost = self._cut(i, t)
        self._provision(i, size, UPGRADING)
        self.upgrades += 1
        self._push(t + self.p["upgrade_downtime_s"], _READY, i, self.epoch[i])
        return {
            "type": "server.upgrade",
            "t": t,
            "from": SIZE_NAMES[old],
            "to": SIZE_NAMES[size],
            "capacity_rps": self._capacity(SIZES[size][1]),
            "cost_per_hour": SIZES[size][2],
            "lost": lost,
            "reason": reason,
        }

    def _add(self, count: int, reason: str, t: float) -> Event | None:
        free = [i for i, s in enumerate(self.state) if s == OFF][:count]
        free = [i for i in free if i < self.p["max_servers"]]
        if not free:
            return None
        self._integrate(t)
        size = SIZE_NAMES.index(self.p["server_size"])
        for i in free:
            self._provision(i, size, BOOTING)
            self._push(t + self.p["boot_s"], _READY, i, self.epoch[i])
        self.added += len(free)
        return {
            "type": "server.add",
            "t": t,
            "servers": [f"web-{i}" for i in free],
            "reason": reason,
        }

    def _control(
        self, kind: int, t: float, i: int, ep: int, events: list[Event]
    ) -> None:
        self.processed += 1
        if kind == _READY:
            if ep != self.epoch[i] or self.state[i] not in (BOOTING, UPGRADING, DOWN):
                return
            self._integrate(t)
            self.state[i] = UP
            self._recount()
            events.append(
                {
                    "type": "server.ready",
                    "t": t,
                    "server": f"web-{i}",
                    "size": SIZE_NAMES[self.size[i]],
                    "capacity_rps": self._capacity(self.live_workers),
                }
            )
        elif kind == _CHECK:
            p = self.p
            interval = p["check_interval_s"]
            self._push(t + interval, _CHECK, 0, 0)
            demand = (self.all_arrivals - self.checked_arrivals) / interval
            self.checked_arrivals = self.all_arrivals
            if not p["auto_scale"]:
                return
            needed = demand / p["target_utilization"]
            if p["strategy"] == "vertical":
                if self.state[0] != UP or self._capacity(self.workers[0]) >= needed:
                    return
                size = self.size[0]
                while size < len(SIZES) - 1 and self._capacity(SIZES[size][1]) < needed:
                    size += 1
                if size != self.size[0]:
                    events.append(self._upgrade_to(size, "auto-scale", t))
            else:
                planned = sum(
                    self.workers[j]
                    for j, s in enumerate(self.state)
                    if s in (UP, BOOTING)
                )
                short = needed - self._capacity(planned)
                if short > 0:
                    per = self._capacity(SIZES[SIZE_NAMES.index(p["server_size"])][1])
                    event = self._add(math.ceil(short / per), "auto-scale", t)
                    if event:
                        events.append(event)

    # Running ----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        events: list[Event] = []
        start = self.now
        before = self._tally()
        busy0 = self.busy_area + self.total_busy * (start - self.busy_t)
        cap0 = self.cap_area
        self._serve_until(end, events)
        self._integrate(end)
        self._account_busy(end)
        self._report(
            start,
            before,
            events,
            busy=self.busy_area - busy0,
            cap=self.cap_area - cap0,
        )
        return events

    def metrics(self) -> dict[str, Any]:
        now = self.now
        w = self.window
        cap = self._capacity(self.live_workers)
        shown = [i for i, s in enumerate(self.state) if s]
        arrived = self.arrived
        recent_cap = w.total("cap", now)
        price_sizes = [SIZES[self.size[i]] for i in shown]
        price_cap = self._capacity(sum(s[1] for s in price_sizes))
        vertical = self.p["strategy"] == "vertical"
        return {
            "capacity_rps": cap,
            "cost_per_hour": self.cost_rate,
            "utilization": self.busy_area / self.cap_area if self.cap_area else 0.0,
            "dropped": self.dropped,
            "downtime_s": self.downtime,
            "arrived": arrived,
            "completed": self.completed,
            "in_flight": self.in_flight(),
            "drop_ratio": self.dropped / arrived if arrived else 0.0,
            "cost_total": self.cost_total,
            "cost_per_1000_requests": (
                1000.0 * self.cost_total / self.completed if self.completed else 0.0
            ),
            "cost_per_million_requests": (
                1e6 * self.cost_total / self.completed if self.completed else 0.0
            ),
            "cost_per_1000_rps": 1000.0 * self.cost_rate / price_cap
            if price_cap
            else 0.0,
            "servers": len(self.live),
            "size": SIZE_NAMES[self.size[0]] if vertical else self.p["server_size"],
            "offered_rps": self.rate,
            "upgrades": self.upgrades,
            "servers_added": self.added,
            "utilization_recent": w.total("busy", now) / recent_cap
            if recent_cap
            else 0.0,
            **self._recent_rates(),
            "server_names": [f"web-{i}" for i in shown],
            "server_utilization": [
                self.busy[i] / self.workers[i] if self.state[i] == UP else 0.0
                for i in shown
            ],
            "server_state": [STATE_NAMES[self.state[i]] for i in shown],
        }

    def picture(self) -> dict[str, Any]:
        shown = [i for i, s in enumerate(self.state) if s]
        return {
            "strategy": self.p["strategy"],
            "busy": [self.busy[i] for i in shown],
            "queued": [self.queued[i] for i in shown],
            "workers": [self.workers[i] for i in shown],
            "qcap": [self.qcap[i] for i in shown],
        }

    # Theory -----------------------------------------------------------------

    def theory_key(self) -> tuple[Any, ...]:
        # The prediction is for the traffic of now and the servers serving now.
        serving = tuple((self.workers[i], self.qcap[i]) for i in self.live)
        return (*super().theory_key(), self.rate, serving)

    def compute_theory(self) -> TheoryFigures:
        rate = self.rate
        mu = 1000.0 / self.p["service_ms"]
        serving = [(self.workers[i], self.qcap[i]) for i in self.live]
        if not serving:
            return {
                "dropped_rps_recent": rate,
                "served_rps_recent": 0.0,
                "utilization_recent": "no server is serving now, so none is busy",
            }
        # Round robin gives each serving server 1/n of the traffic, whatever its
        # size; servers of one size share one computation.
        share = rate / len(serving)
        served = busy = workers = 0.0
        figures: dict[tuple[int, int], dict[str, float]] = {}
        for c, places in serving:
            if (c, places) not in figures:
                figures[(c, places)] = mmck_figures(share, mu, c, places)
            done = figures[(c, places)]["throughput_per_s"]
            served += done
            busy += done / mu
            workers += c
        model = (
            "M/M/c/K (one server: exact)"
            if len(serving) == 1
            else self.theory_models["dropped_rps_recent"]
        )
        return {
            "dropped_rps_recent": (rate - served, model),
            "served_rps_recent": (served, model),
            "utilization_recent": (busy / workers, model),
        }

    # Commands ---------------------------------------------------------------

    def on_upgrade(self) -> list[Event]:
        if self.p["strategy"] != "vertical":
            raise CommandError(
                "upgrade",
                "upgrade resizes the one server of the vertical strategy; "
                "with horizontal use add_server",
            )
        if self.state[0] != UP:
            raise CommandError(
                "upgrade",
                f"the server is {STATE_NAMES[self.state[0]]}; wait until it is up",
            )
        if self.size[0] == len(SIZES) - 1:
            raise CommandError(
                "upgrade",
                f"the server is already the largest size ({SIZE_NAMES[-1]}); "
                f"sizes: {', '.join(SIZE_NAMES)}",
            )
        return [self._upgrade_to(self.size[0] + 1, "command", self.now)]

    def on_add_server(self) -> list[Event]:
        if self.p["strategy"] != "horizontal":
            raise CommandError(
                "add_server",
                "add_server belongs to the horizontal strategy; with vertical use upgrade",
            )
        event = self._add(1, "command", self.now)
        if event is None:
            raise CommandError(
                "add_server",
                f"already at the most servers allowed (max_servers = {self.p['max_servers']})",
            )
        return [event]

    def on_kill_server(self, server: int) -> list[Event]:
        # A server can die while it serves, boots or is being resized; one that
        # is already down waits for its repair.
        alive = [i for i, s in enumerate(self.state) if s in (UP, BOOTING, UPGRADING)]
        if server not in alive:
            allowed = ", ".join(str(i) for i in alive) or "none"
            raise CommandError(
                "kill_server.server",
                f"server {server} is not running; servers running: {allowed}",
            )
        self._integrate(self.now)
        lost = self._cut(server, self.now)
        self.state[server] = DOWN
        self._recount()
        self._push(self.now + self.p["repair_s"], _READY, server, self.epoch[server])
        return [
            {
                "type": "server.kill",
                "t": self.now,
                "server": f"web-{server}",
                "lost": lost,
                "capacity_rps": self._capacity(self.live_workers),
            }
        ]

    def on_spike(self, factor: float, duration_s: float) -> list[Event]:
        self.spike_factor = factor
        self.spike_end = self.now + duration_s
        return [
            {
                "type": "traffic.spike",
                "t": self.now,
                "factor": factor,
                "until": self.spike_end,
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "queue_per_worker":
            for i, s in enumerate(self.state):
                if s:
                    self.qcap[i] = self.workers[i] * self.p["queue_per_worker"]
        return None
