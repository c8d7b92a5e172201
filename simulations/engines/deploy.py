"""Releasing a new version to a fleet of app servers behind a load balancer."""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import Any

from ..theory.fleet import deploy_min_capacity, deploy_peak_servers
from .base import (
    Command,
    CommandError,
    Engine,
    Event,
    Metric,
    Param,
    ParamError,
    TheoryFigures,
    Window,
)

INF = math.inf
STRATEGIES = ("all_at_once", "rolling", "blue_green", "atomic")
FLEETS = ("blue", "green")
PROBE, INSTALLED, DEADLINE = 0, 1, 2
# What each strategy leaves in service while a good release goes out.
STRATEGY_MODELS = {
    "all_at_once": "all at once: every server stops to update",
    "rolling": "rolling batches: servers - batch size stay in service",
    "blue_green": "blue/green: a full second fleet takes over",
    "atomic": "atomic switch: servers keep running while the release is shipped",
}
RELEASES_KEPT = 3  # release directories kept on each server (atomic rollback)


class DeployEngine(Engine):
    kind = "deploy"
    title = "Deploying a new release"
    description = (
        "App servers behind a load balancer that health-checks them. A release is "
        "installed all at once (downtime), in rolling batches (old and new side by "
        "side), on a second blue/green fleet (an instant switch), or shipped next to "
        "the running one and switched everywhere at once (atomic). Each request loads "
        "a page and then fetches from a second server; if the versions are "
        "incompatible and the two differ, the request fails."
    )
    params = (
        Param(
            "servers",
            "int",
            6,
            1,
            100,
            unit="servers",
            help="App servers in service (a blue/green deploy runs as many again).",
            label="Servers",
        ),
        Param(
            "strategy",
            "choice",
            "rolling",
            choices=STRATEGIES,
            help="How a release reaches the servers.",
            label="Strategy",
        ),
        Param(
            "batch_size",
            "int",
            2,
            1,
            100,
            unit="servers",
            help="Rolling: servers taken out of service together.",
            label="Batch size",
        ),
        Param(
            "incompatible",
            "bool",
            False,
            help="The new version cannot talk to the old one (a changed API or format): "
            "a request whose page and follow-up reach different versions fails.",
            label="Versions incompatible",
        ),
        Param(
            "request_rate",
            "float",
            200.0,
            1.0,
            20_000.0,
            unit="requests/s",
            step=10,
            help="Average requests per second, arriving at random (Poisson).",
            label="Request rate",
        ),
        Param(
            "install_s",
            "float",
            10.0,
            1.0,
            600.0,
            unit="s",
            step=1,
            help="Time to install a release on a server (copy, build, restart).",
            label="Install time",
        ),
        Param(
            "health_interval_s",
            "float",
            2.0,
            0.5,
            30.0,
            unit="s",
            step=0.5,
            help="The balancer probes each server this often; a server enters or leaves "
            "service at the first probe that sees it healthy or not.",
            label="Health check interval",
        ),
        Param(
            "health_timeout_s",
            "float",
            30.0,
            2.0,
            600.0,
            unit="s",
            step=1,
            help="How long the deploy tool waits for new servers to pass a health check "
            "before it declares the release failed.",
            label="Health timeout",
        ),
        Param(
            "auto_rollback",
            "bool",
            True,
            help="Roll back by itself when a release fails its health checks.",
            label="Roll back on failure",
        ),
    )
    commands = (
        Command(
            "deploy", "Deploy", "Release the next version with the chosen strategy."
        ),
        Command(
            "deploy_bad",
            "Deploy a bad release",
            "Release a version that crashes on start: it never passes a health check.",
        ),
        Command(
            "rollback",
            "Roll back",
            "Go back to the previous release (stopping a deploy in progress).",
        ),
        Command(
            "kill_server",
            "Kill server",
            "A server's process crashes: its requests fail until the balancer's next "
            "health check takes it out of service.",
            args=(
                Param("fleet", "choice", "blue", choices=FLEETS, help="Its fleet."),
                Param(
                    "number", "int", 1, 1, 100, help="Its number in the fleet (blue2)."
                ),
            ),
        ),
        Command(
            "restart_server",
            "Restart server",
            "Start a crashed server again: it rejoins at its next passed health check.",
            args=(
                Param("fleet", "choice", "blue", choices=FLEETS, help="Its fleet."),
                Param(
                    "number", "int", 1, 1, 100, help="Its number in the fleet (blue2)."
                ),
            ),
        ),
    )
    event_types = (
        "deploy.started",
        "deploy.batch",
        "deploy.switched",
        "deploy.finished",
        "deploy.failed",
        "deploy.aborted",
        "server.stopped",
        "server.installed",
        "server.healthy",
        "server.unhealthy",
        "balancer.changed",
        "request.ok",
        "request.error",
    )
    narration = {
        "deploy.started": (
            "A {strategy} {kind} to version {version} started{bad?; this version is "
            "broken|}"
        ),
        "deploy.batch": "Taking {servers} out of service to update",
        "deploy.switched": (
            "Traffic switched to the {fleet} fleet, on version {version}"
        ),
        "deploy.finished": "The {kind} to version {version} finished in {took_s} s",
        "deploy.failed": (
            "The {kind} to version {version} failed: {unhealthy} never became healthy"
        ),
        "deploy.aborted": "The deploy of version {version} was stopped",
        "server.stopped": "Server {server} stopped",
        "server.installed": "Server {server} now has version {version}",
        "server.healthy": (
            "Server {server} passed its health check on version {version}"
        ),
        "server.unhealthy": (
            "Server {server} failed its health check on version {version}"
        ),
        "balancer.changed": (
            "The balancer now sends traffic to {in_service#server} (versions "
            "{versions})"
        ),
    }
    metric_specs = (
        Metric(
            "downtime_s",
            "Downtime",
            "s",
            help="Time with no server running a working version in service.",
        ),
        Metric("error_requests", "Failed requests", "requests"),
        Metric(
            "mixed_version_s",
            "Mixed versions",
            "s",
            help="Time with two versions in service side by side.",
        ),
        Metric(
            "min_capacity",
            "Lowest capacity",
            "servers",
            help="Fewest servers with a working version in service at once.",
        ),
        Metric("requests", "Requests", "requests"),
        Metric(
            "crossing_errors",
            "Version mismatch failures",
            "requests",
            help="Failed because the page and its follow-up reached different versions.",
        ),
        Metric(
            "peak_servers",
            "Most servers running",
            "servers",
            help="What the strategy costs: a blue/green deploy runs two fleets.",
        ),
        Metric("deploys", "Releases finished", "deploys"),
        Metric("failed_deploys", "Releases failed", "deploys"),
        Metric("last_deploy_s", "Last release took", "s"),
        Metric(
            "release",
            "Current release",
            help="The version the deploy tool last released or rolled back to.",
        ),
        Metric("phase", "Deploy tool", summary=False),
        Metric("capacity", "Servers in service", "servers", summary=False),
        Metric(
            "servers_newest",
            "In service on the newest version",
            "servers",
            summary=False,
        ),
        Metric(
            "servers_older", "In service on older versions", "servers", summary=False
        ),
        Metric("server_names", "Servers", summary=False),
        Metric("server_versions", "Version per server (0 stopped)", summary=False),
        Metric(
            "server_rps_recent",
            "Requests per server (last 3 s)",
            "requests/s",
            summary=False,
        ),
        Metric(
            "requests_per_s_recent", "Requests (last 3 s)", "requests/s", summary=False
        ),
        Metric(
            "errors_per_s_recent",
            "Failed requests (last 3 s)",
            "requests/s",
            summary=False,
        ),
    )

    theory_models = {
        "min_capacity": "Servers left in service by the strategy during a good release "
        "(rolling: servers - batch size)",
        "peak_servers": "Servers the strategy runs at once (blue/green: two fleets)",
    }

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        if values["batch_size"] > values["servers"]:
            raise ParamError(
                "batch_size",
                f"batch_size must be from 1 to servers ({values['servers']}); "
                f"got {values['batch_size']}",
            )

    # Setting up ---------------------------------------------------------------

    def setup(self) -> None:
        n = self.p["servers"]
        # Per server, indexed by id: the version it runs (0 stopped), whether the
        # balancer sends it traffic when healthy, what the last probe saw, the
        # releases on its disk, and its fleet (0 blue, 1 green).
        self.run: list[int] = []
        self.registered: list[bool] = []
        self.healthy: list[bool] = []
        self.releases: list[list[int]] = []
        self.names: list[str] = []
        self.fleets: list[list[int]] = [[], []]
        self.spares: list[list[int]] = [[], []]  # removed by a resize, kept for reuse
        self.active: list[bool] = []
        self.probe_gen: list[int] = []  # a returning server's probes start afresh
        self.slice_hits: list[int] = []
        self.crashed: list[bool] = []  # its process died; a restart or install fixes it
        self.live = 0
        # Timed happenings as (time, seq, kind, server or generation, tag); the
        # sentinel at INF keeps the heap from running empty.
        self.heap: list[tuple[float, int, int, int, int]] = [(INF, 0, 0, 0, 0)]
        self.seq = 0
        for fleet in (0, 1):
            for _ in range(n):
                self._new_server(fleet, version=1 if fleet == 0 else 0)
        self.bad = [False, False]  # by version; version 0 means stopped
        self.history = [1]  # releases in service order; the last is current
        self.plan: dict[str, Any] | None = None
        self.gen = 0
        self.next_arrival = self.rng.expovariate(self.p["request_rate"])
        self.rotation: list[int] = []
        self.codes: list[int] = []
        self.hits: list[int] = []
        self.good = self.min_capacity = self.peak_servers = 0
        self.mixed = False
        self.acc_t = 0.0
        self.window = Window(span=3.0)
        self.notes: list[Event] = []
        self.deploys = self.failed_deploys = 0
        self.last_deploy_s = 0.0
        self._rerotate(0.0, announce=False)
        self.reset_stats()

    def _new_server(self, fleet: int, version: int) -> int:
        i = len(self.run)
        self.run.append(version)
        self.registered.append(fleet == self.live and version > 0)
        self.healthy.append(version > 0)
        self.releases.append([version] if version else [])
        self.names.append(f"{FLEETS[fleet]}{len(self.fleets[fleet]) + 1}")
        self.fleets[fleet].append(i)
        self.active.append(True)
        self.slice_hits.append(0)
        self.crashed.append(False)
        # Probes are spread over the interval (golden-ratio offsets) so that they
        # do not all land at once, however many servers there are.
        offset = (0.5 + i * 0.6180339887498949) % 1.0 * self.p["health_interval_s"]
        self.probe_gen.append(0)
        self._at(self.now + offset, PROBE, i, 0)
        return i

    def reset_stats(self) -> None:
        self._account(self.now)
        self.since = self.now
        self.requests = self.errors = self.crossing = 0
        self.downtime = self.mixed_s = 0.0
        self.min_capacity = self.good
        self.peak_servers = sum(1 for v in self.run if v)

    def _at(self, t: float, kind: int, server: int, tag: int = 0) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, kind, server, tag))

    # Balancer -----------------------------------------------------------------

    def _account(self, t: float) -> None:
        """Add the time since the last change of rotation to the running totals."""
        dt = t - self.acc_t
        if dt > 0:
            if not self.good:
                self.downtime += dt
            if self.mixed:
                self.mixed_s += dt
            self.acc_t = t

    def _rerotate(self, t: float, announce: bool = True) -> None:
        """Recompute which servers get traffic, after a server or the balancer changed."""
        self._account(t)
        rotation = [
            i
            for i in self.fleets[self.live] + self.fleets[1 - self.live]
            if self.registered[i] and self.healthy[i] and self.run[i]
        ]
        # A request to a crashed server or one running a broken version fails: its
        # code is negative.
        codes = [
            -self.run[i] if self.bad[self.run[i]] or self.crashed[i] else self.run[i]
            for i in rotation
        ]
        if rotation == self.rotation and codes == self.codes:
            return
        self._flush_hits()
        self.rotation = rotation
        self.codes = codes
        self.hits = [0] * len(rotation)
        versions = sorted({abs(c) for c in self.codes})
        self.good = sum(1 for c in self.codes if c > 0)
        self.mixed = len(versions) > 1
        self.min_capacity = min(self.min_capacity, self.good)
        self.peak_servers = max(self.peak_servers, sum(1 for v in self.run if v))
        if announce:
            self.notes.append(
                {
                    "type": "balancer.changed",
                    "t": t,
                    "in_service": len(rotation),
                    "versions": [self.run[i] for i in rotation],
                }
            )

    def _flush_hits(self) -> None:
        for k, i in enumerate(self.rotation):
            self.slice_hits[i] += self.hits[k]
        self.hits = [0] * len(self.rotation)

    # Running -----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        heap = self.heap
        requests = errors = 0
        steps = 0
        while True:
            th = heap[0][0]
            limit = th if th < end else end
            if self.next_arrival <= limit:
                n, e = self._requests(limit)
                requests += n
                errors += e
            if th > end:
                break
            t, _, kind, server, tag = heappop(heap)
            steps += 1
            if kind == PROBE:
                self._probe(t, server, tag)
            elif kind == INSTALLED:
                self._installed(t, server, tag)
            else:
                self._deadline(t, server, tag)
        self._flush_hits()
        self.processed += requests + steps
        self.window.add(
            self.now,
            requests=requests,
            errors=errors,
            **{f"s{i}": float(h) for i, h in enumerate(self.slice_hits) if h},
        )
        self.slice_hits = [0] * len(self.run)
        events = self.notes
        self.notes = []
        if requests - errors:
            events.append({"type": "request.ok", "count": requests - errors})
        if errors:
            events.append({"type": "request.error", "count": errors})
        return events

    def _requests(self, limit: float) -> tuple[int, int]:
        """Route every request arriving up to ``limit``; return (requests, failures)."""
        rand = self.rng.random
        log = math.log
        gap = 1.0 / self.p["request_rate"]
        ta = self.next_arrival
        codes, hits = self.codes, self.hits
        n = len(codes)
        count = errors = crossing = 0
        if not n:
            # No server in service: every request fails at the balancer.
            while ta <= limit:
                count += 1
                ta -= log(1.0 - rand()) * gap
            errors = count
        elif self.mixed and self.p["incompatible"] or self.good < n:
            # Each request loads a page from one server, then fetches from another.
            while ta <= limit:
                count += 1
                a = int(rand() * n)
                b = int(rand() * n)
                hits[a] += 1
                hits[b] += 1
                va, vb = codes[a], codes[b]
                if va < 0 or vb < 0:
                    errors += 1
                elif va != vb:
                    crossing += 1
                ta -= log(1.0 - rand()) * gap
            if not self.p["incompatible"]:
                crossing = 0
            errors += crossing
        else:
            while ta <= limit:
                count += 1
                hits[int(rand() * n)] += 1
                hits[int(rand() * n)] += 1
                ta -= log(1.0 - rand()) * gap
        self.next_arrival = ta
        self.requests += count
        self.errors += errors
        self.crossing += crossing
        return count, errors

    def _probe(self, t: float, i: int, gen: int) -> None:
        if not self.active[i] or gen != self.probe_gen[i]:
            return  # the server left the fleet (and may have come back since)
        self._at(t + self.p["health_interval_s"], PROBE, i, gen)
        v = self.run[i]
        ok = v > 0 and not self.bad[v] and not self.crashed[i]
        if ok != self.healthy[i]:
            self.healthy[i] = ok
            self.notes.append(
                {
                    "type": "server.healthy" if ok else "server.unhealthy",
                    "t": t,
                    "server": self.names[i],
                    "version": v,
                }
            )
            self._rerotate(t)
        plan = self.plan
        if plan is not None and ok and i in plan["waiting"]:
            plan["waiting"].remove(i)
            if not plan["waiting"] and not plan["installing"]:
                self._step_done(t)

    # Deploy tool -------------------------------------------------------------

    def _start(self, t: float, kind: str, target: int) -> None:
        """Begin bringing the live fleet to version ``target`` with the chosen strategy."""
        self.gen += 1
        strategy = self.p["strategy"]
        live = self.fleets[self.live]
        self.plan = plan = {
            "kind": kind,
            "strategy": strategy,
            "target": target,
            "started": t,
            "step": 0,
            "phase": "",
            "waiting": [],
            "installing": 0,
            "pending": [],
            "register": True,
            "restart": True,
        }
        self.notes.append(
            {
                "type": "deploy.started",
                "t": t,
                "kind": kind,
                "version": target,
                "strategy": strategy,
                "bad": self.bad[target],
            }
        )
        behind = [i for i in live if self.run[i] != target or not self.registered[i]]
        if not behind:
            if strategy == "blue_green":
                self._stop_idle_fleet(t)
            self._finish(t)
        elif strategy == "all_at_once":
            plan["phase"] = "installing"
            self._install(t, behind, target, restart=True, register=True)
        elif strategy == "rolling":
            plan["pending"] = behind
            self._next_batch(t)
        elif strategy == "blue_green":
            idle = self.fleets[1 - self.live]
            if all(self.run[i] == target and self.healthy[i] for i in idle):
                self._switch(t)
                self._finish(t)
            else:
                plan["phase"] = "installing on the idle fleet"
                self._install(t, idle, target, restart=True, register=False)
        elif all(target in self.releases[i] for i in live):
            self._flip(t, target)
        else:
            plan["phase"] = "shipping"
            self._install(t, live, target, restart=False, register=False)

    def _install(
        self, t: float, ids: list[int], target: int, restart: bool, register: bool
    ) -> None:
        plan = self.plan
        assert plan is not None
        plan["installing"] = len(ids)
        plan["register"] = register
        plan["restart"] = restart
        plan["waiting"] = []
        if restart:
            for i in ids:
                self.registered[i] = False
                self.run[i] = 0
                self.healthy[i] = False
                self.crashed[i] = False
                self.notes.append(
                    {"type": "server.stopped", "t": t, "server": self.names[i]}
                )
            self._rerotate(t)
        for i in ids:
            self._at(t + self.p["install_s"], INSTALLED, i, self.gen)

    def _installed(self, t: float, i: int, gen: int) -> None:
        plan = self.plan
        if gen != self.gen or plan is None:
            return  # a deploy that was stopped
        target = plan["target"]
        kept = [v for v in self.releases[i] if v != target][-(RELEASES_KEPT - 1) :]
        self.releases[i] = [*kept, target]
        self.notes.append(
            {
                "type": "server.installed",
                "t": t,
                "server": self.names[i],
                "version": target,
            }
        )
        plan["installing"] -= 1
        if plan["restart"]:
            self.run[i] = target
            self.registered[i] = plan["register"]
            plan["waiting"].append(i)
            self.peak_servers = max(self.peak_servers, sum(1 for v in self.run if v))
        if plan["installing"]:
            return
        if plan["restart"]:
            self._await_health(t)
        else:
            self._flip(t, target)

    def _await_health(self, t: float) -> None:
        plan = self.plan
        assert plan is not None
        plan["step"] += 1
        plan["phase"] = "waiting for health checks"
        self._at(t + self.p["health_timeout_s"], DEADLINE, self.gen, plan["step"])

    def _next_batch(self, t: float) -> None:
        plan = self.plan
        assert plan is not None
        batch = plan["pending"][: self.p["batch_size"]]
        plan["pending"] = plan["pending"][len(batch) :]
        plan["phase"] = "installing a batch"
        self.notes.append(
            {"type": "deploy.batch", "t": t, "servers": [self.names[i] for i in batch]}
        )
        self._install(t, batch, plan["target"], restart=True, register=True)

    def _flip(self, t: float, target: int) -> None:
        """Atomic: point every live server at release ``target`` in the same instant."""
        plan = self.plan
        assert plan is not None
        live = self.fleets[self.live]
        for i in live:
            self.run[i] = target
        plan["waiting"] = list(live)
        plan["restart"] = False
        self.notes.append(
            {
                "type": "deploy.switched",
                "t": t,
                "version": target,
                "fleet": FLEETS[self.live],
            }
        )
        self._rerotate(t)
        self._await_health(t)

    def _switch(self, t: float) -> None:
        """Blue/green: send all traffic to the other fleet in one balancer change."""
        new = 1 - self.live
        for i in self.fleets[new]:
            self.registered[i] = True
        for i in self.fleets[self.live]:
            self.registered[i] = False
        self.live = new
        self.notes.append(
            {
                "type": "deploy.switched",
                "t": t,
                "fleet": FLEETS[new],
                "version": self.run[self.fleets[new][0]],
            }
        )
        self._rerotate(t)

    def _stop_idle_fleet(self, t: float) -> None:
        for i in self.fleets[1 - self.live]:
            if self.run[i]:
                self.run[i] = 0
                self.healthy[i] = False
                self.notes.append(
                    {"type": "server.stopped", "t": t, "server": self.names[i]}
                )

    def _step_done(self, t: float) -> None:
        plan = self.plan
        assert plan is not None
        if plan["strategy"] == "rolling" and plan["pending"]:
            self._next_batch(t)
        elif plan["strategy"] == "blue_green" and not plan["register"]:
            self._switch(t)
            self._finish(t)
        else:
            self._finish(t)

    def _finish(self, t: float) -> None:
        plan = self.plan
        assert plan is not None
        took = t - plan["started"]
        self.notes.append(
            {
                "type": "deploy.finished",
                "t": t,
                "kind": plan["kind"],
                "version": plan["target"],
                "took_s": took,
            }
        )
        if plan["kind"] == "deploy":
            self.deploys += 1
        self.last_deploy_s = took
        self.plan = None
        self.gen += 1

    def _deadline(self, t: float, gen: int, step: int) -> None:
        plan = self.plan
        if (
            plan is None
            or gen != self.gen
            or step != plan["step"]
            or not plan["waiting"]
        ):
            return
        self.failed_deploys += 1
        self.notes.append(
            {
                "type": "deploy.failed",
                "t": t,
                "kind": plan["kind"],
                "version": plan["target"],
                "unhealthy": [self.names[i] for i in plan["waiting"]],
            }
        )
        if plan["strategy"] == "blue_green" and not plan["register"]:
            # The new fleet never took traffic: stop it and keep the old one.
            self._stop_idle_fleet(t)
        self.plan = None
        self.gen += 1
        if plan["kind"] == "deploy":
            self.history.pop()
            if self.p["auto_rollback"]:
                self._start(t, "rollback", self.history[-1])
            else:
                self.history.append(plan["target"])

    # Metrics -----------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        now = self.now
        dt = max(now - self.acc_t, 0.0)
        downtime = self.downtime + (dt if not self.good else 0.0)
        mixed = self.mixed_s + (dt if self.mixed else 0.0)
        newest = len(self.bad) - 1
        versions = [self.run[i] for i in self.rotation]
        w, span = self.window, self.window.seconds(now)
        shown = self.fleets[self.live] + [
            i for i in self.fleets[1 - self.live] if self.run[i]
        ]
        shown.sort()
        return {
            "downtime_s": downtime,
            "error_requests": self.errors,
            "mixed_version_s": mixed,
            "min_capacity": self.min_capacity,
            "requests": self.requests,
            "crossing_errors": self.crossing,
            "peak_servers": self.peak_servers,
            "deploys": self.deploys,
            "failed_deploys": self.failed_deploys,
            "last_deploy_s": self.last_deploy_s,
            "release": self.history[-1],
            "phase": self.plan["phase"] if self.plan else "idle",
            "capacity": self.good,
            "servers_newest": sum(1 for v in versions if v == newest),
            "servers_older": sum(1 for v in versions if v != newest),
            "server_names": [self.names[i] for i in shown],
            "server_versions": [self.run[i] for i in shown],
            "server_rps_recent": [w.total(f"s{i}", now) / span for i in shown],
            "requests_per_s_recent": w.total("requests", now) / span,
            "errors_per_s_recent": w.total("errors", now) / span,
        }

    # Commands ----------------------------------------------------------------

    def _busy(self, command: str) -> None:
        if self.plan is not None:
            plan = self.plan
            raise CommandError(
                command,
                f"{command}: a {plan['kind']} to version "
                f"{plan['target']} is in progress; wait for it or roll back",
            )

    def on_deploy(self) -> list[Event]:
        self._busy("deploy")
        return self._release(bad=False)

    def on_deploy_bad(self) -> list[Event]:
        self._busy("deploy_bad")
        return self._release(bad=True)

    def _release(self, bad: bool) -> list[Event]:
        version = len(self.bad)
        self.bad.append(bad)
        self.history.append(version)
        self._start(self.now, "deploy", version)
        return self._take_notes()

    def on_rollback(self) -> list[Event]:
        if len(self.history) < 2:
            raise CommandError(
                "rollback",
                f"rollback: nothing to roll back to; version "
                f"{self.history[-1]} is the first release",
            )
        if self.plan is not None:
            self.notes.append(
                {
                    "type": "deploy.aborted",
                    "t": self.now,
                    "version": self.plan["target"],
                }
            )
            if self.plan["strategy"] == "blue_green" and not self.plan["register"]:
                self._stop_idle_fleet(self.now)
            self.plan = None
            self.gen += 1
        self.history.pop()
        self._start(self.now, "rollback", self.history[-1])
        return self._take_notes()

    def _server(self, command: str, fleet: str, number: int, crashed: bool) -> int:
        """Return the id of server ``fleet``+``number``, which must be running and
        crashed (or not), or raise CommandError listing the ones that are."""
        ids = self.fleets[FLEETS.index(fleet)]
        ok = [i for i in ids if self.run[i] and self.crashed[i] == crashed]
        if number <= len(ids) and ids[number - 1] in ok:
            return ids[number - 1]
        what = "a crashed server" if crashed else "a running server"
        allowed = ", ".join(self.names[i] for i in ok) or "none"
        raise CommandError(
            f"{command}.number",
            f"{command}: {fleet}{number} is not {what}; {what}s: {allowed}",
        )

    def on_kill_server(self, fleet: str, number: int) -> list[Event]:
        i = self._server("kill_server", fleet, number, crashed=False)
        self.crashed[i] = True
        self.notes.append(
            {"type": "server.stopped", "t": self.now, "server": self.names[i]}
        )
        self._rerotate(self.now, announce=False)
        return self._take_notes()

    def on_restart_server(self, fleet: str, number: int) -> list[Event]:
        i = self._server("restart_server", fleet, number, crashed=True)
        self.crashed[i] = False
        self._rerotate(self.now, announce=False)
        return self._take_notes()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "crashed" not in state:  # a snapshot from before servers could crash
            self.crashed = [False] * len(self.run)

    # Picture and theory --------------------------------------------------------

    def _server_state(self, i: int, in_service: set[int]) -> str:
        if not self.run[i]:
            plan = self.plan
            return "updating" if plan is not None and plan["installing"] else "stopped"
        if self.crashed[i]:
            return "crashed"
        if i in in_service:
            return "serving"
        if self.bad[self.run[i]]:
            return "failing"
        if self.registered[i]:
            return "starting"
        return "out of pool"

    def picture(self) -> dict[str, Any]:
        """Return each shown server's state and fleet, and the rollout's progress."""
        shown = self.fleets[self.live] + [
            i for i in self.fleets[1 - self.live] if self.run[i]
        ]
        shown.sort()
        in_service = set(self.rotation)
        plan = self.plan
        progress = None
        if plan is not None:
            live = self.fleets[self.live]
            target_fleet = (
                self.fleets[1 - self.live]
                if plan["strategy"] == "blue_green" and not plan["register"]
                else live
            )
            done = sum(
                1
                for i in target_fleet
                if self.run[i] == plan["target"] and self.healthy[i]
            )
            progress = {
                "target": plan["target"],
                "done": done,
                "total": len(target_fleet),
            }
        return {
            "states": [self._server_state(i, in_service) for i in shown],
            "live_fleet": FLEETS[self.live],
            "newest": len(self.bad) - 1,
            "progress": progress,
        }

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        n, b = p["servers"], p["batch_size"]
        return {
            "min_capacity": (
                float(deploy_min_capacity(p["strategy"], n, b)),
                STRATEGY_MODELS[p["strategy"]],
            ),
            "peak_servers": float(deploy_peak_servers(p["strategy"], n)),
        }

    def _take_notes(self) -> list[Event]:
        events, self.notes = self.notes, []
        return events

    def set_param(self, name: str, value: Any) -> list[Event]:
        if self.plan is not None and name in ("servers", "strategy", "batch_size"):
            raise ParamError(
                name,
                f"{name} can change only between deploys; a "
                f"{self.plan['kind']} is in progress",
            )
        return super().set_param(name, value)

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "request_rate":
            # Poisson arrivals have no memory: drawing the next gap afresh is exact.
            self.next_arrival = self.now + self.rng.expovariate(self.p["request_rate"])
        elif name == "servers":
            self._resize(self.p["servers"])
            return self._take_notes()
        return None

    def _resize(self, n: int) -> None:
        """Grow or shrink both fleets; servers added to the live one run its version.

        Removed servers are kept aside and brought back first, so a run never holds
        more than twice the largest fleet.
        """
        t = self.now
        self._stop_idle_fleet(t)
        version = self.history[-1]
        for fleet in (0, 1):
            ids = self.fleets[fleet]
            for i in ids[n:]:
                self.run[i] = 0
                self.registered[i] = False
                self.healthy[i] = False
                self.active[i] = False
            self.spares[fleet] = ids[n:] + self.spares[fleet]
            self.fleets[fleet] = ids[:n]
            while len(self.fleets[fleet]) < n:
                run = version if fleet == self.live else 0
                if self.spares[fleet]:
                    i = self.spares[fleet].pop(0)
                    self.fleets[fleet].append(i)
                    self.active[i] = True
                    self.crashed[i] = False
                    self.run[i] = run
                    self.releases[i] = (
                        [*self.releases[i], run][-RELEASES_KEPT:] if run else []
                    )
                    self.probe_gen[i] += 1
                    self._at(
                        t + self.p["health_interval_s"], PROBE, i, self.probe_gen[i]
                    )
                else:
                    i = self._new_server(fleet, run)
                # A new server enters service at its first probe.
                self.registered[i] = bool(run)
                self.healthy[i] = False
        self._rerotate(t)
