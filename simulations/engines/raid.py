"""RAID: striping, mirroring and parity over disks that fail, rebuild and misread."""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import Any, cast

from ..theory.storage import (
    mttdl_hours,
    mttf_hours,
    rebuild_bits_read,
    rebuild_seconds,
    tolerated_failures,
    ure_probability,
    usable_tb,
)
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

LEVELS = ("0", "1", "5", "6", "10")
MAX_DISKS = 24
YEAR_S = 365.25 * 86400
CHUNKS = 200  # a rebuild copies a disk in this many chunks
PICTURE_STRIPES = 4  # stripes the live picture draws
FAIL, CHUNK = 0, 1

Row = tuple[int, tuple[int, ...], tuple[int, ...]]
Plan = tuple[int, ...]


def stripe_labels(level: str, disks: int, stripes: int) -> list[str]:
    """Return what each disk holds in the first ``stripes`` stripes, in words.

    One string per stripe, one word per disk: "D3" for data block 3 (a mirror
    holds the same block on every copy), "P" and "Q" for the parities.
    """
    rows = layout(level, disks)
    out = []
    for s in range(stripes):
        words = [""] * disks
        if level in ("0", "1", "10"):
            # one block per copy set: every disk (RAID 1), a pair, a single disk
            groups = list(dict.fromkeys(group for _, group, _ in rows))
            for j, group in enumerate(groups):
                for d in group:
                    words[d] = f"D{s * len(groups) + j}"
        else:
            per = len(rows) // disks
            for j, (home, _, parity) in enumerate(rows[(s % disks) * per :][:per]):
                words[home] = f"D{s * per + j}"
                for name, d in zip("PQ", parity):
                    words[d] = name
        out.append(" ".join(words))
    return out


def layout(level: str, disks: int) -> list[Row]:
    """Return one row per block position: (home disk, disks holding it, parities).

    RAID 0 stripes blocks over every disk; RAID 1 copies each block to every
    disk (the home disk says where reads go); RAID 10 mirrors pairs (0, 1),
    (2, 3)...; RAID 5 and 6 rotate parity over a stripe of every disk
    (left-symmetric), P on disk N-1-s of stripe s and Q just after it.
    """
    everyone = tuple(range(disks))
    if level == "0":
        return [(d, (d,), ()) for d in everyone]
    if level == "1":
        return [(d, everyone, ()) for d in everyone]
    if level == "10":
        return [
            (2 * j + r, (2 * j, 2 * j + 1), ())
            for r in (0, 1)
            for j in range(disks // 2)
        ]
    parities = 1 if level == "5" else 2
    rows = []
    for s in range(disks):
        p = disks - 1 - s
        parity = tuple((p + i) % disks for i in range(parities))
        for j in range(disks - parities):
            rows.append(((p + parities + j) % disks, everyone, parity))
    return rows


class RaidEngine(Engine):
    kind = "raid"
    title = "RAID array"
    description = (
        "An array of disks at RAID 0, 1, 5, 6 or 10. Small reads and writes arrive "
        "one by one and cost each level's disk I/Os; disks fail at their annual "
        "failure rate (sped up by the time scale); a replaced disk is rebuilt chunk "
        "by chunk from the survivors, and every bit read may be unreadable."
    )
    params = (
        Param(
            "level",
            "choice",
            "5",
            choices=LEVELS,
            label="RAID level",
            help="0 stripes, 1 mirrors every disk, 5 and 6 add one and two "
            "parities, 10 stripes over mirrored pairs.",
        ),
        Param(
            "disks",
            "int",
            4,
            2,
            MAX_DISKS,
            unit="disks",
            label="Disks",
            help="Disks in the array (RAID 5 needs 3, RAID 6 4, RAID 10 an even "
            "number from 4).",
        ),
        Param(
            "disk_tb",
            "float",
            4.0,
            0.1,
            30.0,
            unit="TB",
            step=0.5,
            label="Disk size",
            help="Capacity of each disk (1 TB = 10^12 bytes).",
        ),
        Param(
            "rebuild_mb_s",
            "float",
            100.0,
            1.0,
            2_000.0,
            unit="MB/s",
            step=10,
            label="Rebuild rate",
            help="How fast a replaced disk is rewritten.",
        ),
        Param(
            "afr",
            "float",
            0.02,
            0.0,
            1.0,
            step=0.01,
            label="Annual failure rate",
            help="Chance a disk fails within a year of running (0.02 is 2 %).",
        ),
        Param(
            "ure_per_bit",
            "float",
            1e-14,
            0.0,
            1e-10,
            label="Unrecoverable reads",
            help="Chance that one bit read cannot be read back (1e-14 for "
            "desktop disks, 1e-15 for enterprise ones).",
        ),
        Param(
            "time_scale",
            "float",
            3_600.0,
            1.0,
            1e7,
            unit="x",
            label="Time scale",
            help="Seconds of the array's life per simulated second, for failures "
            "and rebuilds (3600: an hour a second). The I/O load runs at its "
            "own rate.",
        ),
        Param(
            "io_rate",
            "float",
            200.0,
            0.0,
            50_000.0,
            unit="I/O per s",
            step=50,
            label="I/O rate",
            help="Small random reads and writes per second.",
        ),
        Param(
            "read_fraction",
            "float",
            0.7,
            0.0,
            1.0,
            step=0.05,
            label="Read fraction",
            help="Share of the I/Os that are reads.",
        ),
        Param(
            "disk_iops",
            "float",
            150.0,
            1.0,
            1e6,
            unit="I/O per s",
            step=10,
            label="Disk IOPS",
            help="Random I/Os one disk can do per second (about 150 for a hard disk).",
        ),
        Param(
            "auto_replace",
            "bool",
            False,
            label="Hot spare",
            help="Replace a failed disk at once and start its rebuild.",
        ),
    )
    disk_arg = Param(
        "disk",
        "int",
        0,
        0,
        MAX_DISKS - 1,
        label="Disk",
        help="Number of the disk, from 0.",
    )
    commands = (
        Command("fail_disk", "Fail disk", "The disk dies now.", args=(disk_arg,)),
        Command(
            "replace_disk",
            "Replace disk",
            "Put a new disk in place of a failed one and start its rebuild.",
            args=(disk_arg,),
        ),
        Command(
            "fail_during_rebuild",
            "Fail during rebuild",
            "Another disk dies while a rebuild runs: the worst moment.",
            args=(
                Param(
                    "disk",
                    "int",
                    -1,
                    -1,
                    MAX_DISKS - 1,
                    label="Disk",
                    unset="a disk the rebuild reads from",
                    help="The disk to fail; -1 a disk the rebuild reads from "
                    "(for a mirror, the rebuilding disk's partner).",
                ),
            ),
        ),
    )
    quiet_events = ("raid.rebuild",)
    event_types = (
        "raid.io",
        "raid.disk_failed",
        "raid.degraded",
        "raid.rebuild",
        "raid.rebuilt",
        "raid.ure",
        "raid.data_loss",
        "raid.created",
    )
    narration = {
        "raid.disk_failed": "Disk {disk} failed",
        "raid.degraded": "The array is degraded: disk {failed} down",
        "raid.rebuilt": "Disk {disk} was rebuilt in {seconds} s",
        "raid.ure": (
            "A sector of disk {disk} could not be read{recovered?; it was rebuilt "
            "from the others|, and its data is lost}"
        ),
        "raid.data_loss": (
            "{failed?The array lost data: too many disks failed|The array lost data "
            "to an unreadable sector}"
        ),
        "raid.created": "A new RAID {level} array of {disks} disks of {disk_tb} TB",
    }
    metric_specs = (
        Metric("usable_tb", "Usable capacity", "TB"),
        Metric(
            "tolerated_failures",
            "Failures always survived",
            "disks",
            help="How many disks may fail, whichever they are, without losing data.",
        ),
        Metric("state", "State", help="optimal, degraded, rebuilding or failed."),
        Metric(
            "rebuild_progress",
            "Rebuild progress",
            help="Share of the rebuild done (1 when no disk is missing).",
        ),
        Metric(
            "rebuild_eta_s",
            "Rebuild time left",
            "s",
            help="In the array's time (divide by the time scale for simulated "
            "seconds).",
        ),
        Metric(
            "rebuild_time_s",
            "Rebuild time of a disk",
            "s",
            help="Time to rebuild one whole disk at the rebuild rate.",
        ),
        Metric("data_lost", "Data lost", help="1 once any data is lost."),
        Metric(
            "next_failure_loss",
            "Chance the next failure loses data",
            help="Share of the working disks whose failure, if it came next, would "
            "leave some block with no copy or parity to rebuild it from; none "
            "once the array has lost its data.",
        ),
        Metric(
            "read_iops",
            "Read IOPS",
            "I/O per s",
            help="Small reads per second the working disks could "
            "serve, from the disk I/Os each read cost.",
        ),
        Metric(
            "write_iops",
            "Write IOPS",
            "I/O per s",
            help="Small writes per second the working disks could serve, from "
            "the disk I/Os each write cost (the write penalty).",
        ),
        Metric(
            "disk_ios_per_write", "Disk I/Os per write", help="Measured write penalty."
        ),
        Metric(
            "max_disk_utilisation",
            "Busiest disk utilisation",
            help="Busy share of the busiest disk (over 1: it cannot keep up).",
        ),
        Metric("io_per_s", "I/O served", "I/O per s"),
        Metric(
            "failed_ios", "I/Os failed", "I/Os", help="I/Os that found the data gone."
        ),
        Metric("disk_failures", "Disk failures", "disks"),
        Metric("ures", "Unrecoverable read errors", "errors"),
        Metric("lost_stripes", "Stripes lost to read errors", "stripes"),
        Metric("rebuilds", "Rebuilds finished", "rebuilds"),
        Metric(
            "rebuild_ure_share",
            "Rebuilds that met a read error",
            help="Share of the finished rebuilds during which at least one bit "
            "read could not be read back.",
        ),
        Metric(
            "array_days",
            "Array time",
            "days",
            help="How long the array has run in its own time.",
        ),
        Metric(
            "mttdl_textbook_years",
            "Mean time to data loss (textbook)",
            "years",
            help="Patterson, Gibson and Katz (1988): independent failures at "
            "the AFR, repair taking the rebuild time. A textbook value, not a "
            "measurement; none when disks never fail.",
        ),
        Metric(
            "ure_chance_textbook",
            "Chance of a read error in a rebuild (textbook)",
            help="1 - (1 - p)^bits read to rebuild one disk.",
        ),
        Metric("disk_names", "Disks", summary=False),
        Metric("disk_states", "Disk states", summary=False),
        Metric("disk_utilisation", "Disk utilisation (last 3 s)", summary=False),
        Metric("read_iops_recent", "Read IOPS (last 3 s)", "I/O per s", summary=False),
        Metric(
            "write_iops_recent", "Write IOPS (last 3 s)", "I/O per s", summary=False
        ),
    )
    derived = (
        "_rows",
        "_groups",
        "_read_plans",
        "_write_plans",
        "_kill",
        "_efficiency",
        "_stripes",
        "_next_loss",
    )
    theory_models = {
        "usable_tb": "data disks x disk size (RAID 0: all, 1: one, 5: N-1, "
        "6: N-2, 10: N/2)",
        "tolerated_failures": "failures survived whichever disks fail "
        "(RAID 0: 0, 1: N-1, 5: 1, 6: 2, 10: 1)",
        "rebuild_time_s": "disk size / rebuild rate",
        "rebuild_ure_share": "1 - (1 - p)^bits read from the survivors "
        "(independent bit errors)",
    }

    @classmethod
    def check_params(cls, values: dict[str, Any]) -> None:
        level, disks = values["level"], values["disks"]
        need = {"5": 3, "6": 4, "10": 4}.get(level, 2)
        if disks < need:
            raise ParamError(
                "disks", f"RAID {level} needs at least {need} disks; got {disks}"
            )
        if level == "10" and disks % 2:
            raise ParamError(
                "disks",
                f"RAID 10 needs an even number of disks from 4 "
                f"to {MAX_DISKS}; got {disks}",
            )

    # Layout ----------------------------------------------------------------

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A snapshot from before rebuilds were counted carries on from none.
        state.setdefault("rebuilds", 0)
        state.setdefault("rebuilds_with_ure", 0)
        state.setdefault("ure_in_rebuild", [False] * len(state["state"]))
        super().__setstate__(state)

    def rebuild(self) -> None:
        level, disks = self.p["level"], self.p["disks"]
        self._rows = layout(level, disks)
        # the disks that share each disk's blocks: its mirror set or its stripe
        self._groups = [
            next((group, parity) for _, group, parity in self._rows if d in group)
            for d in range(disks)
        ]
        # the fewest failed disks that make a block unreadable: all its copies,
        # or one more strip of its stripe than there are parities
        self._kill = min(
            len(group) if not parity else len(parity) + 1
            for _, group, parity in self._rows
        )
        home, group, parity = self._rows[0]
        if parity:
            self._efficiency = (len(group) - len(parity)) / len(group)
        else:
            self._efficiency = 1 / len(group)
        self._stripes = stripe_labels(level, disks, PICTURE_STRIPES)
        if len(getattr(self, "state", ())) == disks:
            self._plan()

    def _plan(self) -> None:
        """Work out which disks each read and write touches with the disks now working."""
        working = [s == "ok" for s in self.state]
        reads: list[Plan | None] = []
        writes: list[Plan | None] = []
        for home, group, parity in self._rows:
            if not parity:
                alive = tuple(d for d in group if working[d])
                reads.append((home,) if working[home] else alive[:1] or None)
                writes.append(alive or None)
                continue
            needed = len(group) - len(parity)
            live_parity = tuple(d for d in parity if working[d])
            if working[home]:
                reads.append((home,))
                # read-modify-write: old data and parities in, new ones out
                writes.append(
                    (home, home) + live_parity * 2 if live_parity else (home,)
                )
                continue
            others = tuple(d for d in group if d != home and working[d])
            if len(others) < needed:
                reads.append(None)
                writes.append(None)
                continue
            # reconstruct from any `needed` surviving strips of the stripe
            reads.append(others[:needed])
            data = [d for d in group if d != home and d not in parity]
            present = tuple(d for d in data if working[d])
            # the new parity needs every other data strip: read the present ones,
            # and one parity per missing one to recompute them
            extra = live_parity[: len(data) - len(present)]
            writes.append(present + extra + live_parity)
        self._read_plans = reads
        self._write_plans = writes
        self._next_loss = self._next_failure_loss(working)

    def _next_failure_loss(self, working: list[bool]) -> float:
        """Return the share of the working disks whose failure next loses data."""
        # blocks that share their disks and redundancy die together: check each
        # kind once (RAID 5 and 6 have one, mirrors one per copy set)
        sets = {(group, len(parity)) for _, group, parity in self._rows}

        def unreadable(alive: list[bool]) -> bool:
            for group, parities in sets:
                missing = sum(1 for d in group if not alive[d])
                if missing > parities if parities else missing == len(group):
                    return True
            return False

        candidates = [d for d, ok in enumerate(working) if ok]
        if not candidates:
            return 1.0
        fatal = 0
        for d in candidates:
            alive = list(working)
            alive[d] = False
            fatal += unreadable(alive)
        return fatal / len(candidates)

    def _unreadable(self) -> bool:
        return any(plan is None for plan in self._read_plans)

    # World -----------------------------------------------------------------

    def setup(self) -> None:
        self._create()
        self.window = Window(span=3.0)
        self.reset_stats()

    def _create(self) -> None:
        n = self.p["disks"]
        self.state = ["ok"] * n
        self.epoch = [0] * n
        self.done = [0] * n  # rebuild chunks copied
        self.started = [0.0] * n  # array time the rebuild began
        self.due = [0.0] * n  # simulated time the current chunk ends
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.array_s = getattr(self, "array_s", 0.0)
        self.lost = False
        self.data_lost = False
        self.lost_stripes = 0
        self.disk_failures = 0
        self.ures = 0
        self.rebuilds = 0
        self.rebuilds_with_ure = 0
        self.ure_in_rebuild = [False] * n
        self.bits_to_ure = self._ure_gap()
        self._plan()
        rate = self.p["io_rate"]
        self.next_io = self.now + self.rng.expovariate(rate) if rate > 0 else math.inf
        for d in range(n):
            self._schedule_failure(d, self.now)

    def reset_stats(self) -> None:
        self.since = self.now
        self.reads = self.writes = self.read_ios = self.write_ios = 0
        self.failed_ios = 0
        self.disk_ios = [0] * self.p["disks"]

    def _push(self, when: float, kind: int, disk: int) -> None:
        self.seq += 1
        heappush(self.heap, (when, self.seq, kind, disk, self.epoch[disk]))

    def _schedule_failure(self, disk: int, start: float) -> None:
        rate = self.p["afr"] / YEAR_S * self.p["time_scale"]
        if rate > 0 and not self.lost:
            self._push(start + self.rng.expovariate(rate), FAIL, disk)

    def _chunk_seconds(self) -> float:
        """Return the array time one rebuild chunk takes."""
        return rebuild_seconds(self.p["disk_tb"], self.p["rebuild_mb_s"]) / CHUNKS

    def _schedule_chunk(self, disk: int, start: float) -> None:
        self.due[disk] = start + self._chunk_seconds() / self.p["time_scale"]
        self._push(self.due[disk], CHUNK, disk)

    def _ure_gap(self) -> float:
        """Return the bits read until the next unrecoverable one (geometric)."""
        p = self.p["ure_per_bit"]
        if p <= 0:
            return math.inf
        gap = math.log(1.0 - self.rng.random()) / math.log1p(-p)
        # A rate so small (1e-309) that the gap is past any float: never, in effect.
        return math.floor(gap) + 1 if math.isfinite(gap) else math.inf

    def _array_time(self, when: float) -> float:
        return self.array_s + (when - self.now) * self.p["time_scale"]

    def _rebuilding(self) -> list[int]:
        """Return the disks being rebuilt (none once the array has lost its data)."""
        if self.lost:
            return []
        return [d for d, s in enumerate(self.state) if s == "rebuilding"]

    def _status(self) -> str:
        if self.lost:
            return "failed"
        if "rebuilding" in self.state:
            return "rebuilding"
        return "degraded" if "failed" in self.state else "optimal"

    def _fail(self, when: float, disk: int, cause: str) -> list[Event]:
        self.state[disk] = "failed"
        self.epoch[disk] += 1
        self.disk_failures += 1
        self._plan()
        failed = [d for d, s in enumerate(self.state) if s != "ok"]
        events: list[Event] = [
            {"type": "raid.disk_failed", "t": when, "disk": disk, "cause": cause}
        ]
        if self._unreadable():
            self.lost = self.data_lost = True
            self.heap.clear()
            events.append(
                {
                    "type": "raid.data_loss",
                    "t": when,
                    "reason": "disks",
                    "failed": failed,
                }
            )
            return events
        events.append({"type": "raid.degraded", "t": when, "failed": failed})
        if self.p["auto_replace"]:
            events += self._replace(when, disk)
        return events

    def _replace(self, when: float, disk: int) -> list[Event]:
        self.state[disk] = "rebuilding"
        self.epoch[disk] += 1
        self.done[disk] = 0
        self.ure_in_rebuild[disk] = False
        self.started[disk] = self._array_time(when)
        self._schedule_chunk(disk, when)
        self._schedule_failure(disk, when)
        return [{"type": "raid.rebuild", "t": when, "disk": disk, "progress": 0.0}]

    def _redundant(self, disk: int) -> bool:
        """Return whether a strip read for ``disk``'s rebuild could be read elsewhere."""
        working = [s == "ok" for s in self.state]
        group, parity = self._groups[disk]
        if parity:
            missing = sum(1 for d in group if not working[d])
            return missing + 1 <= len(parity)
        return sum(1 for d in group if working[d]) >= 2

    def _chunk(self, when: float, disk: int) -> list[Event]:
        events: list[Event] = []
        group, parity = self._groups[disk]
        state = self.state
        sources = (
            sum(1 for d in group if d != disk and state[d] == "ok") if parity else 1
        )
        bits = self.p["disk_tb"] * 1e12 / CHUNKS * 8 * sources
        while self.bits_to_ure <= bits:
            bits -= self.bits_to_ure
            self.bits_to_ure = self._ure_gap()
            self.ures += 1
            self.ure_in_rebuild[disk] = True
            recovered = self._redundant(disk)
            events.append(
                {"type": "raid.ure", "t": when, "disk": disk, "recovered": recovered}
            )
            if not recovered:
                self.lost_stripes += 1
                self.data_lost = True
                events.append(
                    {"type": "raid.data_loss", "t": when, "reason": "ure", "disk": disk}
                )
        self.bits_to_ure -= bits
        self.done[disk] += 1
        if self.done[disk] < CHUNKS:
            self._schedule_chunk(disk, when)
            return events
        self.state[disk] = "ok"
        self.epoch[disk] += 1
        self.rebuilds += 1
        self.rebuilds_with_ure += self.ure_in_rebuild[disk]
        self._plan()
        self._schedule_failure(disk, when)
        events.append(
            {
                "type": "raid.rebuilt",
                "t": when,
                "disk": disk,
                "seconds": self._array_time(when) - self.started[disk],
            }
        )
        return events

    # Commands --------------------------------------------------------------

    def _check_disk(self, command: str, disk: int) -> None:
        n = self.p["disks"]
        if disk >= n:
            raise CommandError(
                f"{command}.disk", f"{command}: no disk {disk}; disks: 0 to {n - 1}"
            )

    def _names(self, wanted: tuple[str, ...]) -> str:
        found = [str(d) for d, s in enumerate(self.state) if s in wanted]
        return ", ".join(found) or "none"

    def on_fail_disk(self, disk: int) -> list[Event]:
        self._check_disk("fail_disk", disk)
        if self.state[disk] == "failed":
            raise CommandError(
                "fail_disk.disk",
                f"fail_disk: disk {disk} has already "
                f"failed; disks that can fail: "
                f"{self._names(('ok', 'rebuilding'))}",
            )
        return self._fail(self.now, disk, "command")

    def on_replace_disk(self, disk: int) -> list[Event]:
        self._check_disk("replace_disk", disk)
        if self.lost:
            raise CommandError(
                "replace_disk",
                "replace_disk: the array has lost its "
                "data; there is nothing to rebuild from",
            )
        if self.state[disk] != "failed":
            raise CommandError(
                "replace_disk.disk",
                f"replace_disk: disk {disk} has not "
                f"failed; failed disks: {self._names(('failed',))}",
            )
        return self._replace(self.now, disk)

    def on_fail_during_rebuild(self, disk: int) -> list[Event]:
        rebuilding = self._rebuilding()
        if not rebuilding:
            raise CommandError(
                "fail_during_rebuild",
                "fail_during_rebuild: no rebuild "
                "is running; fail a disk and replace it first",
            )
        if disk == -1:
            group, _ = self._groups[rebuilding[0]]
            disk = next(d for d in group if self.state[d] == "ok")
        self._check_disk("fail_during_rebuild", disk)
        if self.state[disk] != "ok":
            raise CommandError(
                "fail_during_rebuild.disk",
                f"fail_during_rebuild: disk "
                f"{disk} is not working; working disks: "
                f"{self._names(('ok',))} (or -1)",
            )
        return self._fail(self.now, disk, "command")

    def on_param_changed(self, name: str, old: Any) -> list[Event] | None:
        if name in ("level", "disks", "disk_tb"):
            self._create()
            self.reset_stats()
            return [
                {
                    "type": "raid.created",
                    "t": self.now,
                    "level": self.p["level"],
                    "disks": self.p["disks"],
                    "disk_tb": self.p["disk_tb"],
                }
            ]
        if name == "io_rate":
            rate = self.p["io_rate"]
            self.next_io = (
                self.now + self.rng.expovariate(rate) if rate > 0 else math.inf
            )
        if name == "ure_per_bit":
            self.bits_to_ure = self._ure_gap()
        if name in ("afr", "time_scale"):
            # failures are memoryless: draw every clock afresh; a chunk in progress
            # keeps the array time it still needs
            old_scale = old if name == "time_scale" else self.p["time_scale"]
            self.heap.clear()
            for d, s in enumerate(self.state):
                self.epoch[d] += 1
                if s == "rebuilding":
                    left = (self.due[d] - self.now) * old_scale
                    self.due[d] = self.now + left / self.p["time_scale"]
                    self._push(self.due[d], CHUNK, d)
                if s != "failed":
                    self._schedule_failure(d, self.now)
        return None

    # Running ---------------------------------------------------------------

    def _ios(self, limit: float, counts: list[int]) -> None:
        """Serve the I/Os arriving up to ``limit``, counting disk I/Os in ``counts``."""
        t = self.next_io
        if t > limit:
            return
        rand = self.rng.random
        expo = self.rng.expovariate
        rate = self.p["io_rate"]
        share = self.p["read_fraction"]
        if self.lost:
            failed = 0
            while t <= limit:
                failed += 1
                t += expo(rate)
            self.failed_ios += failed
            self.processed += failed
            self.next_io = t
            return
        # every block is readable while the array holds its data
        read_plans = cast(list[Plan], self._read_plans)
        write_plans = cast(list[Plan], self._write_plans)
        rows = len(read_plans)
        reads = writes = read_ios = write_ios = 0
        while t <= limit:
            if rand() < share:
                plan = read_plans[int(rand() * rows)]
                reads += 1
                read_ios += len(plan)
            else:
                plan = write_plans[int(rand() * rows)]
                writes += 1
                write_ios += len(plan)
            for d in plan:
                counts[d] += 1
            t += expo(rate)
        self.next_io = t
        self.reads += reads
        self.writes += writes
        self.read_ios += read_ios
        self.write_ios += write_ios
        self.processed += reads + writes

    def run_until(self, end: float) -> list[Event]:
        events: list[Event] = []
        heap = self.heap
        n = self.p["disks"]
        counts = [0] * n
        before = (self.reads, self.writes, self.read_ios, self.write_ios)
        while True:
            if heap and heap[0][0] <= end:
                self._ios(heap[0][0], counts)
                when, _, kind, disk, epoch = heappop(heap)
                if epoch != self.epoch[disk]:
                    continue
                self.processed += 1
                if kind == FAIL:
                    events += self._fail(when, disk, "wear")
                else:
                    events += self._chunk(when, disk)
                continue
            self._ios(end, counts)
            break
        for d in range(n):
            self.disk_ios[d] += counts[d]
        served = self.reads + self.writes - before[0] - before[1]
        if served:
            events.append({"type": "raid.io", "count": served})
        self.window.add(
            self.now,
            reads=self.reads - before[0],
            writes=self.writes - before[1],
            read_ios=self.read_ios - before[2],
            write_ios=self.write_ios - before[3],
            **{f"d{d}": counts[d] for d in range(n)},
        )
        for d in self._rebuilding():
            events.append(
                {
                    "type": "raid.rebuild",
                    "t": end,
                    "disk": d,
                    "progress": self.done[d] / CHUNKS,
                }
            )
        self.array_s += (end - self.now) * self.p["time_scale"]
        return events

    def metrics(self) -> dict[str, Any]:
        p = self.p
        level, n = p["level"], p["disks"]
        working = sum(1 for s in self.state if s == "ok")
        capacity = working * p["disk_iops"]
        rebuilding = self._rebuilding()
        chunk_s = self._chunk_seconds()
        if rebuilding:
            progress = min(self.done[d] for d in rebuilding) / CHUNKS
            eta = max(
                (CHUNKS - self.done[d] - 1) * chunk_s
                + max(self.due[d] - self.now, 0.0) * p["time_scale"]
                for d in rebuilding
            )
        else:
            progress = 0.0 if "failed" in self.state else 1.0
            eta = 0.0
        elapsed = max(self.now - self.since, 1e-9)
        w, now = self.window, self.now
        span = w.seconds(now)
        recent_reads, recent_writes = w.total("reads", now), w.total("writes", now)
        recent_read_ios = w.total("read_ios", now)
        recent_write_ios = w.total("write_ios", now)
        rebuild_s = rebuild_seconds(p["disk_tb"], p["rebuild_mb_s"])
        mttdl = mttdl_hours(level, n, mttf_hours(p["afr"]), rebuild_s / 3600)
        return {
            "usable_tb": n * p["disk_tb"] * self._efficiency,
            "tolerated_failures": self._kill - 1,
            "state": self._status(),
            "rebuild_progress": progress,
            "rebuild_eta_s": eta,
            "rebuild_time_s": chunk_s * CHUNKS,
            "data_lost": 1 if self.data_lost else 0,
            "next_failure_loss": None if self.lost else self._next_loss,
            "read_iops": capacity * self.reads / self.read_ios
            if self.read_ios
            else 0.0,
            "write_iops": (
                capacity * self.writes / self.write_ios if self.write_ios else 0.0
            ),
            "disk_ios_per_write": self.write_ios / self.writes if self.writes else 0.0,
            "max_disk_utilisation": max(self.disk_ios) / (p["disk_iops"] * elapsed),
            "io_per_s": (self.reads + self.writes) / elapsed,
            "failed_ios": self.failed_ios,
            "disk_failures": self.disk_failures,
            "ures": self.ures,
            "lost_stripes": self.lost_stripes,
            "rebuilds": self.rebuilds,
            "rebuild_ure_share": (
                self.rebuilds_with_ure / self.rebuilds if self.rebuilds else 0.0
            ),
            "array_days": self.array_s / 86400,
            "mttdl_textbook_years": (
                None if math.isinf(mttdl) else mttdl / (YEAR_S / 3600)
            ),
            "ure_chance_textbook": ure_probability(
                rebuild_bits_read(level, n, p["disk_tb"]), p["ure_per_bit"]
            ),
            "disk_names": [f"disk {d}" for d in range(n)],
            "disk_states": list(self.state),
            "disk_utilisation": [
                w.total(f"d{d}", now) / span / p["disk_iops"] for d in range(n)
            ],
            "read_iops_recent": (
                capacity * recent_reads / recent_read_ios if recent_read_ios else 0.0
            ),
            "write_iops_recent": (
                capacity * recent_writes / recent_write_ios if recent_write_ios else 0.0
            ),
        }

    def picture(self) -> dict[str, Any]:
        """Return the blocks of the first stripes and each rebuild's progress."""
        return {
            "level": self.p["level"],
            "stripes": self._stripes,
            "rebuild": {str(d): self.done[d] / CHUNKS for d in self._rebuilding()},
        }

    def theory_key(self) -> tuple[Any, ...]:
        p = self.p
        return (
            p["level"],
            p["disks"],
            p["disk_tb"],
            p["rebuild_mb_s"],
            p["ure_per_bit"],
        )

    def compute_theory(self) -> TheoryFigures:
        p = self.p
        level, n = p["level"], p["disks"]
        data = {"0": "N", "1": "1", "5": "N - 1", "6": "N - 2", "10": "N / 2"}[level]
        out: dict[str, float | str | tuple[float, str]] = {
            "usable_tb": (
                usable_tb(level, n, p["disk_tb"]),
                f"RAID {level}: {data} disks' worth of data",
            ),
            "tolerated_failures": tolerated_failures(level, n),
        }
        if level == "0":
            gap = "RAID 0 keeps no copy or parity: a failed disk cannot be rebuilt"
            out["rebuild_time_s"] = gap
            out["rebuild_ure_share"] = gap
            return out
        out["rebuild_time_s"] = rebuild_seconds(p["disk_tb"], p["rebuild_mb_s"])
        out["rebuild_ure_share"] = ure_probability(
            rebuild_bits_read(level, n, p["disk_tb"]), p["ure_per_bit"]
        )
        return out
