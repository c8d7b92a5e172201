"""An auto-scaling group meets a traffic spike; instances boot from an image.

Requests arrive at random (Poisson) and a round-robin balancer hands them to
the instances in service; each instance has a few workers and a short queue,
and drops what does not fit. Every ``check_interval_s`` the group looks at the
CPU (the share of workers busy over the interval just ended): above the
threshold, and once the cooldown since its last action has passed, it launches
``scale_out_step`` instances; well below it (under half the threshold) it
drains one. It never goes under ``min_instances`` or over ``max_instances``,
and it replaces a killed instance at once.

A new instance boots from the group's ``image``:

- ``golden``: a machine image baked with the packages and the code of a
  release. It boots quickly and runs the code baked into it.
- ``bare``: a plain operating system that runs a bootstrap script, installing
  the packages and then pulling the main branch. It boots slowly, and runs
  whatever main holds when it pulls, which may include commits that were never
  released: it can come up on another version than the rest of the fleet.

Developers push commits to main (at random, or by the ``commit`` command);
``deploy`` releases main to every running instance; ``bake_image`` bakes the
current release into a new golden image, which takes ``bake_s``.
"""

from __future__ import annotations

from typing import Any

from ..theory.fleet import instance_utilization, spike_time_to_capacity
from ._fleet import RECENT_METRICS, FleetEngine
from .base import (
    Command,
    CommandError,
    Event,
    Metric,
    Param,
    ParamError,
    TheoryFigures,
)

SLOTS = 128  # instance records in use at once: in service, booting and draining
OFF, BOOTING, IN_SERVICE, DRAINING = 0, 1, 2, 3
STATE_NAMES = ("terminated", "booting", "in service", "draining")

# Scheduled happenings in the heap besides a request finishing (see _fleet).
_READY = 1  # an instance has booted
_CHECK = 2  # the group looks at the CPU
_COMMIT = 3  # a developer pushes to main (b: commit generation)
_BAKED = 4  # a new golden image is ready (b: bake generation)


class ProvisioningEngine(FleetEngine):
    kind = "provisioning"
    title = "Auto-scaling and machine images"
    description = (
        "An auto-scaling group adds instances when CPU runs high. Instances boot "
        "from a prepared golden image (quick, same code) or from a bare system "
        "that installs and pulls code (slow, and maybe another version)."
    )
    params = (
        Param(
            "arrival_rate",
            "float",
            120.0,
            1.0,
            5000.0,
            unit="requests/s",
            step=10,
            help="Average requests per second before any spike (Poisson).",
            label="Traffic",
        ),
        Param(
            "image",
            "choice",
            "golden",
            choices=("golden", "bare"),
            help="What new instances boot from: a baked image or a bare system.",
            label="Boot image",
        ),
        Param(
            "golden_boot_s",
            "float",
            40.0,
            5.0,
            600.0,
            unit="s",
            step=5,
            help="Typical boot time from the golden image.",
            label="Golden boot time",
        ),
        Param(
            "bare_boot_s",
            "float",
            300.0,
            10.0,
            3600.0,
            unit="s",
            step=10,
            help="Typical boot time of a bare instance: install packages, pull code.",
            label="Bare boot time",
        ),
        Param(
            "boot_jitter",
            "float",
            0.2,
            0.0,
            0.5,
            step=0.05,
            help="Boot times vary uniformly by this share either side of typical.",
            label="Boot time spread",
        ),
        Param(
            "min_instances",
            "int",
            2,
            1,
            100,
            unit="instances",
            help="The group never has fewer instances.",
            label="Minimum",
        ),
        Param(
            "max_instances",
            "int",
            20,
            1,
            100,
            unit="instances",
            help="The group never has more instances.",
            label="Maximum",
        ),
        Param(
            "cpu_threshold",
            "float",
            0.7,
            0.1,
            0.95,
            step=0.05,
            help="Scale out when the CPU over the last check is above this.",
            label="CPU threshold",
        ),
        Param(
            "cooldown_s",
            "float",
            60.0,
            0.0,
            900.0,
            unit="s",
            step=10,
            help="Wait at least this long after a scaling action before another.",
            label="Cooldown",
        ),
        Param(
            "check_interval_s",
            "float",
            10.0,
            1.0,
            300.0,
            unit="s",
            step=1,
            help="How often the group looks at the CPU.",
            label="Check interval",
        ),
        Param(
            "scale_out_step",
            "int",
            2,
            1,
            20,
            unit="instances",
            help="Instances launched by one scale-out.",
            label="Scale-out step",
        ),
        Param(
            "workers",
            "int",
            4,
            1,
            64,
            unit="workers",
            help="Requests one instance serves at once.",
            label="Workers per instance",
        ),
        Param(
            "service_ms",
            "float",
            40.0,
            1.0,
            1000.0,
            unit="ms",
            step=1,
            help="Average time a worker needs for a request (exponential).",
            label="Service time",
        ),
        Param(
            "queue_per_worker",
            "int",
            2,
            0,
            20,
            unit="requests",
            help="Queue places per worker; requests finding it full are dropped.",
            label="Queue per worker",
        ),
        Param(
            "commit_rate_per_hour",
            "float",
            6.0,
            0.0,
            120.0,
            unit="commits/h",
            step=1,
            help="How often developers push unreleased commits to main (Poisson).",
            label="Commits to main",
        ),
        Param(
            "bake_s",
            "float",
            120.0,
            0.0,
            3600.0,
            unit="s",
            step=10,
            help="Time to bake a new golden image.",
            label="Bake time",
        ),
    )
    commands = (
        Command(
            "spike",
            "Traffic spike",
            "Multiply the traffic for a while.",
            args=(
                Param("factor", "float", 5.0, 1.0, 20.0, unit="x", help="Multiplier."),
                Param(
                    "duration_s",
                    "float",
                    600.0,
                    1.0,
                    3600.0,
                    unit="s",
                    help="How long the spike lasts.",
                ),
            ),
        ),
        Command(
            "kill_instance",
            "Kill instance",
            "An instance dies; its requests are lost; the group replaces it.",
            args=(
                Param(
                    "instance",
                    "int",
                    0,
                    0,
                    1_000_000,
                    help="Number of the instance (i-N) to kill.",
                ),
            ),
        ),
        Command(
            "bake_image",
            "Bake image",
            "Bake the current release into a new golden image.",
        ),
        Command("commit", "Push a commit", "A developer pushes a commit to main."),
        Command(
            "deploy",
            "Deploy",
            "Release main and update every running instance to it.",
        ),
    )
    event_types = (
        "instance.launch",
        "instance.ready",
        "instance.drain",
        "instance.terminate",
        "instance.kill",
        "capacity.reached",
        "traffic.spike",
        "image.bake",
        "image.baked",
        "code.commit",
        "code.deploy",
        "request.served",
        "request.dropped",
    )
    narration = {
        "instance.launch": "Launching {instances} from the {image} image",
        "instance.ready": (
            "Instance {instance} is ready after {boot_s} s, on version "
            "{version}{on_release?|, an old release}"
        ),
        "instance.drain": (
            "Instance {instance} is finishing its requests before it stops"
        ),
        "instance.terminate": "Instance {instance} was shut down",
        "instance.kill": "Instance {instance} was killed; {lost#request} lost",
        "capacity.reached": (
            "Capacity caught up {after_s} s after the spike, with {instances#instance}"
        ),
        "traffic.spike": (
            "Traffic jumped to {factor} times normal: {rate} requests a second "
            "against a capacity of {capacity_rps}"
        ),
        "image.bake": "Baking an image of version {version}, ready at {ready_at} s",
        "image.baked": "The image of version {version} is ready",
        "code.commit": "Version {version} was committed",
        "code.deploy": (
            "Version {version} went out to {updated#instance}{image_stale?; the "
            "image is now out of date|}"
        ),
    }
    metric_specs = (
        Metric(
            "time_to_capacity_s",
            "Time to capacity",
            "s",
            help="From the last spike until the instances in service could carry "
            "it (while not yet there: the time so far).",
        ),
        Metric(
            "capacity_met",
            "Capacity reached",
            help="1 once the instances in service carry the spike, else 0.",
        ),
        Metric("dropped_requests", "Dropped requests", "requests"),
        Metric("instances", "Instances in service", "instances"),
        Metric(
            "version_drift",
            "Version drift",
            "instances",
            help="Instances in service not running the current release.",
        ),
        Metric("instances_booting", "Instances booting", "instances"),
        Metric("capacity_rps", "Capacity", "requests/s"),
        Metric("offered_rps", "Traffic now", "requests/s"),
        Metric("cpu", "CPU at the last check"),
        Metric("drop_ratio", "Drop ratio"),
        Metric("arrived", "Requests arrived", "requests"),
        Metric("completed", "Requests served", "requests"),
        Metric("in_flight", "Requests in flight", "requests"),
        Metric("launches", "Instances launched", "instances"),
        Metric("mean_boot_s", "Mean boot time", "s"),
        Metric("release_version", "Current release"),
        Metric("main_version", "Latest commit on main"),
        Metric("image_version", "Release in the golden image"),
        *RECENT_METRICS,
        Metric("instance_names", "Instances", summary=False),
        Metric("instance_state", "Instance state", summary=False),
        Metric("instance_versions", "Version per instance", summary=False),
        Metric(
            "instance_drift", "Instance off the release (1) or on it (0)", summary=False
        ),
    )

    theory_models = {
        "cpu": "M/M/c/K utilisation of each instance in service (traffic split evenly)",
        "time_to_capacity_s": "Upper bound: 2 checks, then a cooldown and a check "
        "per further scale-out, then the slowest boot",
    }
    # Counted when the last spike started, for the time-to-capacity bound (class
    # defaults: a snapshot from before they were kept reads them).
    spike_live = 0
    spike_desired = 0
    # Every instance has the same workers and queue, set by the parameters.
    derived = ("workers", "qcap")
    # A draining instance is terminated once it has served its last request.
    retiring = DRAINING

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        if values["min_instances"] > values["max_instances"]:
            raise ParamError(
                "min_instances",
                f"min_instances must be at most max_instances ({values['max_instances']}); "
                f"got {values['min_instances']}",
            )

    def rebuild(self) -> None:
        workers = self.p["workers"]
        self.workers = [workers] * SLOTS
        self.qcap = [workers * self.p["queue_per_worker"]] * SLOTS

    def setup(self) -> None:
        p = self.p
        self.state = [OFF] * SLOTS
        self.iid = [0] * SLOTS
        self.version = [0] * SLOTS
        self._setup_fleet(SLOTS)
        self.launched_at = [0.0] * SLOTS
        self.boot_image = ["golden"] * SLOTS
        self.next_iid = 0
        self.release = self.main = self.image_version = 1
        self.baking = False
        self.bake_gen = self.commit_gen = 0
        self.spike_at: float | None = None
        self.spike_rate = 0.0
        self.capacity_at: float | None = None
        self.running_workers = 0
        self.check_busy = self.check_cap = 0.0
        self.cpu = 0.0
        self.last_action = -1e18
        self.launches = 0
        for _ in range(p["min_instances"]):
            slot = self._launch(0.0)
            self.state[slot] = IN_SERVICE
            self.version[slot] = self.release
        self._recount()
        self._push(p["check_interval_s"], _CHECK, 0, 0)
        self._schedule_commit(0.0)
        self.reset_stats()

    def reset_stats(self) -> None:
        self.since = self.now
        self.completed = self.dropped = 0
        self.launches = 0
        self.boot_sum = 0.0
        self.boots = 0
        self.arrived = self.in_flight()

    # Instances --------------------------------------------------------------

    def _schedule_commit(self, t: float) -> None:
        self.commit_gen += 1
        rate = self.p["commit_rate_per_hour"]
        if rate > 0:
            self._push(
                t + self.rng.expovariate(rate / 3600.0), _COMMIT, 0, self.commit_gen
            )

    def _rate_at(self, t: float) -> float:
        rate: float = self.p["arrival_rate"]
        return rate * self.spike_factor if t < self.spike_end else rate

    def _capacity(self, instances: int) -> float:
        return instances * self.p["workers"] * 1000.0 / self.p["service_ms"]

    def _recount(self) -> None:
        self.live = [i for i in range(SLOTS) if self.state[i] == IN_SERVICE]
        running = sum(1 for s in self.state if s in (IN_SERVICE, DRAINING))
        self.running_workers = running * self.p["workers"]

    def _integrate(self, t: float) -> None:
        """Account busy and available worker time up to ``t``."""
        self._account_busy(t)
        self.cap_area += self.running_workers * (t - self.cap_t)
        self.cap_t = t

    def _launch(self, t: float) -> int:
        """Start booting a new instance; return its slot (or -1 if none is free)."""
        slot = self.state.index(OFF) if OFF in self.state else -1
        if slot < 0:
            return slot
        p = self.p
        image = p["image"]
        typical = p["golden_boot_s"] if image == "golden" else p["bare_boot_s"]
        jitter = p["boot_jitter"]
        boot = typical * self.rng.uniform(1.0 - jitter, 1.0 + jitter)
        self.state[slot] = BOOTING
        self.iid[slot] = self.next_iid
        self.next_iid += 1
        self.boot_image[slot] = image
        # A golden instance runs the release baked into the image it boots from.
        self.version[slot] = self.image_version if image == "golden" else 0
        self.launched_at[slot] = t
        self.busy[slot] = self.queued[slot] = 0
        self.epoch[slot] += 1
        self.launches += 1
        self._push(t + boot, _READY, slot, self.epoch[slot])
        return slot

    def _launch_many(
        self, count: int, t: float, reason: str, events: list[Event]
    ) -> None:
        slots = [s for s in (self._launch(t) for _ in range(count)) if s >= 0]
        if slots:
            events.append(
                {
                    "type": "instance.launch",
                    "t": t,
                    "reason": reason,
                    "image": self.p["image"],
                    "instances": [f"i-{self.iid[s]}" for s in slots],
                }
            )

    def _desired(self) -> int:
        return sum(1 for s in self.state if s in (BOOTING, IN_SERVICE))

    def _cut(self, slot: int, t: float) -> int:
        self._integrate(t)
        lost = self._drop_requests(slot)
        self.all_dropped += lost
        return lost

    def _terminate(self, slot: int, t: float, events: list[Event]) -> None:
        self._integrate(t)
        self.state[slot] = OFF
        self._recount()
        events.append(
            {"type": "instance.terminate", "t": t, "instance": f"i-{self.iid[slot]}"}
        )

    def _check_capacity(self, t: float, events: list[Event]) -> None:
        if self.spike_at is None or self.capacity_at is not None or t > self.spike_end:
            return
        if self._capacity(len(self.live)) >= self.spike_rate:
            self.capacity_at = t
            events.append(
                {
                    "type": "capacity.reached",
                    "t": t,
                    "after_s": t - self.spike_at,
                    "instances": len(self.live),
                }
            )

    def _control(
        self, kind: int, t: float, slot: int, ep: int, events: list[Event]
    ) -> None:
        self.processed += 1
        p = self.p
        if kind == _READY:
            if ep != self.epoch[slot] or self.state[slot] != BOOTING:
                return
            self._integrate(t)
            if self.boot_image[slot] == "bare":
                # The bootstrap script pulls main as it finishes.
                self.version[slot] = self.main
            self.state[slot] = IN_SERVICE
            self._recount()
            boot = t - self.launched_at[slot]
            self.boot_sum += boot
            self.boots += 1
            events.append(
                {
                    "type": "instance.ready",
                    "t": t,
                    "instance": f"i-{self.iid[slot]}",
                    "image": self.boot_image[slot],
                    "version": self.version[slot],
                    "on_release": self.version[slot] == self.release,
                    "boot_s": boot,
                }
            )
            self._check_capacity(t, events)
        elif kind == _CHECK:
            self._push(t + p["check_interval_s"], _CHECK, 0, 0)
            self._integrate(t)
            busy = self.busy_area - self.check_busy
            cap = self.cap_area - self.check_cap
            self.check_busy, self.check_cap = self.busy_area, self.cap_area
            self.cpu = busy / cap if cap > 0 else 1.0
            desired = self._desired()
            ready = t - self.last_action >= p["cooldown_s"]
            if desired < p["min_instances"]:
                self._launch_many(p["min_instances"] - desired, t, "minimum", events)
            elif (
                self.cpu > p["cpu_threshold"] and ready and desired < p["max_instances"]
            ):
                count = min(p["scale_out_step"], p["max_instances"] - desired)
                self.last_action = t
                self._launch_many(count, t, "scale out", events)
            elif desired > p["max_instances"] or (
                self.cpu < p["cpu_threshold"] / 2
                and ready
                and desired > p["min_instances"]
            ):
                self.last_action = t
                self._drain(t, events)
        elif kind == _COMMIT:
            if ep != self.commit_gen:
                return
            self.main += 1
            events.append(
                {"type": "code.commit", "t": t, "version": self.main, "by": "developer"}
            )
            self._schedule_commit(t)
        elif kind == _BAKED:
            if ep != self.bake_gen or not self.baking:
                return
            self.baking = False
            self.image_version = slot
            events.append({"type": "image.baked", "t": t, "version": slot})

    def _drain(self, t: float, events: list[Event]) -> None:
        """Take the newest instance out of service; it finishes its requests."""
        booting = [i for i in range(SLOTS) if self.state[i] == BOOTING]
        if booting:
            slot = max(booting, key=lambda i: self.iid[i])
            self.epoch[slot] += 1
            self._terminate(slot, t, events)
            return
        if not self.live:
            return
        slot = max(self.live, key=lambda i: self.iid[i])
        self._integrate(t)
        self.state[slot] = DRAINING
        self._recount()
        events.append(
            {"type": "instance.drain", "t": t, "instance": f"i-{self.iid[slot]}"}
        )
        if not self.busy[slot] and not self.queued[slot]:
            self._terminate(slot, t, events)

    # Running ----------------------------------------------------------------

    def run_until(self, end: float) -> list[Event]:
        events: list[Event] = []
        start = self.now
        before = self._tally()
        self._serve_until(end, events)
        self._integrate(end)
        self._report(start, before, events)
        return events

    def metrics(self) -> dict[str, Any]:
        now = self.now
        shown = [i for i in range(SLOTS) if self.state[i] != OFF]
        shown.sort(key=lambda i: self.iid[i])
        if self.spike_at is None:
            to_capacity = 0.0
        elif self.capacity_at is not None:
            to_capacity = self.capacity_at - self.spike_at
        else:
            to_capacity = min(now, self.spike_end) - self.spike_at
        drift = sum(1 for i in self.live if self.version[i] != self.release)
        return {
            "time_to_capacity_s": to_capacity,
            "capacity_met": 1
            if self.spike_at is None or self.capacity_at is not None
            else 0,
            "dropped_requests": self.dropped,
            "instances": len(self.live),
            "version_drift": drift,
            "instances_booting": sum(1 for s in self.state if s == BOOTING),
            "capacity_rps": self._capacity(len(self.live)),
            "offered_rps": self.rate,
            "cpu": self.cpu,
            "drop_ratio": self.dropped / self.arrived if self.arrived else 0.0,
            "arrived": self.arrived,
            "completed": self.completed,
            "in_flight": self.in_flight(),
            "launches": self.launches,
            "mean_boot_s": self.boot_sum / self.boots if self.boots else 0.0,
            "release_version": self.release,
            "main_version": self.main,
            "image_version": self.image_version,
            **self._recent_rates(),
            "instance_names": [f"i-{self.iid[i]}" for i in shown],
            "instance_state": [STATE_NAMES[self.state[i]] for i in shown],
            "instance_versions": [self.version[i] for i in shown],
            "instance_drift": [
                1 if self.state[i] != BOOTING and self.version[i] != self.release else 0
                for i in shown
            ],
        }

    def picture(self) -> dict[str, Any]:
        """Return, per shown instance, its busy workers, its queue and how far
        through a typical boot it is (1 once booted); whether an image bakes; and
        the workers and CPU threshold the meters are drawn against."""
        now = self.now
        shown = [i for i in range(SLOTS) if self.state[i] != OFF]
        shown.sort(key=lambda i: self.iid[i])
        boot = []
        for i in shown:
            if self.state[i] == BOOTING:
                typical = self.p[f"{self.boot_image[i]}_boot_s"]
                boot.append(round(min(0.99, (now - self.launched_at[i]) / typical), 3))
            else:
                boot.append(1)
        return {
            "busy": [self.busy[i] for i in shown],
            "queued": [self.queued[i] for i in shown],
            "boot": boot,
            "image": self.p["image"],
            "baking": self.baking,
            "workers": self.p["workers"],
            "threshold": self.p["cpu_threshold"],
        }

    def theory_key(self) -> tuple[Any, ...]:
        spike = (
            (self.spike_rate, self.spike_live, self.spike_desired)
            if self.spike_at is not None
            else None
        )
        return (*super().theory_key(), len(self.live), self.rate, spike)

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        out: dict[str, float | str | tuple[float, str]] = {}
        n = len(self.live)
        if n:
            out["cpu"] = instance_utilization(
                self.rate,
                n,
                p["workers"],
                p["service_ms"] / 1000.0,
                p["workers"] * p["queue_per_worker"],
            )
        else:
            out["cpu"] = "no instance is in service"
        if self.spike_at is None:
            out["time_to_capacity_s"] = "no spike yet: press Traffic spike"
            return out
        typical = p["golden_boot_s"] if p["image"] == "golden" else p["bare_boot_s"]
        jitter = p["boot_jitter"]
        bounds = spike_time_to_capacity(
            spike_rate=self.spike_rate,
            instance_rps=self._capacity(1),
            in_service=self.spike_live,
            desired=self.spike_desired,
            step=p["scale_out_step"],
            max_instances=p["max_instances"],
            check_s=p["check_interval_s"],
            cooldown_s=p["cooldown_s"],
            boot_min_s=typical * (1 - jitter),
            boot_max_s=typical * (1 + jitter),
        )
        out["time_to_capacity_s"] = bounds if isinstance(bounds, str) else bounds[1]
        return out

    # Commands ---------------------------------------------------------------

    def on_spike(self, factor: float, duration_s: float) -> list[Event]:
        self.spike_factor = factor
        self.spike_end = self.now + duration_s
        self.spike_at = self.now
        self.spike_rate = self.p["arrival_rate"] * factor
        self.capacity_at = None
        self.spike_live = len(self.live)
        self.spike_desired = self._desired()
        events: list[Event] = [
            {
                "type": "traffic.spike",
                "t": self.now,
                "factor": factor,
                "until": self.spike_end,
                "rate": self.spike_rate,
                "capacity_rps": self._capacity(len(self.live)),
            }
        ]
        self._check_capacity(self.now, events)
        return events

    def on_kill_instance(self, instance: int) -> list[Event]:
        slots = [
            i for i in range(SLOTS) if self.state[i] != OFF and self.iid[i] == instance
        ]
        if not slots:
            running = sorted(self.iid[i] for i in range(SLOTS) if self.state[i] != OFF)
            allowed = ", ".join(str(n) for n in running) or "none"
            raise CommandError(
                "kill_instance.instance",
                f"there is no running instance i-{instance}; running: {allowed}",
            )
        slot = slots[0]
        counted = self.state[slot] in (BOOTING, IN_SERVICE)
        lost = self._cut(slot, self.now)
        events: list[Event] = [
            {
                "type": "instance.kill",
                "t": self.now,
                "instance": f"i-{instance}",
                "lost": lost,
            }
        ]
        self.window.add(self.now, dropped=lost)
        self.state[slot] = OFF
        self._recount()
        if counted:
            # Health checks fail; the group replaces the instance straight away.
            self._launch_many(1, self.now, "replace", events)
        return events

    def on_bake_image(self) -> list[Event]:
        if self.baking:
            raise CommandError(
                "bake_image", "an image is already being baked; wait for it"
            )
        self.baking = True
        self.bake_gen += 1
        self._push(self.now + self.p["bake_s"], _BAKED, self.release, self.bake_gen)
        return [
            {
                "type": "image.bake",
                "t": self.now,
                "version": self.release,
                "ready_at": self.now + self.p["bake_s"],
            }
        ]

    def on_commit(self) -> list[Event]:
        self.main += 1
        return [
            {
                "type": "code.commit",
                "t": self.now,
                "version": self.main,
                "by": "command",
            }
        ]

    def on_deploy(self) -> list[Event]:
        self.release = self.main
        updated = 0
        for i in range(SLOTS):
            if self.state[i] in (IN_SERVICE, DRAINING):
                updated += self.version[i] != self.release
                self.version[i] = self.release
        return [
            {
                "type": "code.deploy",
                "t": self.now,
                "version": self.release,
                "updated": updated,
                "image_stale": self.image_version != self.release,
            }
        ]

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name == "commit_rate_per_hour":
            self._schedule_commit(self.now)
        elif name == "workers":
            self._integrate(self.now)
            self._recount()
        return None
