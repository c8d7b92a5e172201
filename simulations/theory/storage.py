"""Textbook results for the data tier: RAID arrays and sharding by hashing.

Pure Python. The engines simulate disks, stripes and keys one by one; tests
compare what they measure with these formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

HOURS_PER_YEAR = 8766.0  # 365.25 days
RAID_LEVELS = ("0", "1", "5", "6", "10")


# RAID ----------------------------------------------------------------------


def raid_min_disks(level: str) -> int:
    """Return the fewest disks an array of ``level`` can have."""
    return {"0": 2, "1": 2, "5": 3, "6": 4, "10": 4}[level]


def usable_tb(level: str, disks: int, disk_tb: float) -> float:
    """Return the capacity left for data after mirroring or parity.

    RAID 0 stripes (all of it), RAID 1 mirrors every disk onto every other (one
    disk's worth), RAID 10 mirrors pairs (half), RAID 5 and 6 give one and two
    disks' worth to parity.
    """
    data_disks = {"0": disks, "1": 1, "5": disks - 1, "6": disks - 2, "10": disks // 2}
    return data_disks[level] * disk_tb


def tolerated_failures(level: str, disks: int) -> int:
    """Return how many failed disks the array survives whichever disks they are.

    RAID 10 survives up to one failure per mirror pair, but only one is
    guaranteed: the second may be the first one's partner.
    """
    return {"0": 0, "1": disks - 1, "5": 1, "6": 2, "10": 1}[level]


def data_lost(level: str, disks: int, failed: Iterable[int]) -> bool:
    """Return whether losing the disks ``failed`` loses data.

    RAID 10 pairs disks (0, 1), (2, 3)...: data is lost when both disks of one
    pair are gone. Every other level loses data exactly when the failures
    exceed what it tolerates.
    """
    gone = set(failed)
    if level == "10":
        return any(2 * i in gone and 2 * i + 1 in gone for i in range(disks // 2))
    return len(gone) > tolerated_failures(level, disks)


def next_failure_loss_chance(level: str, disks: int, missing: Iterable[int]) -> float:
    """Return the chance that the next working disk to fail loses data.

    ``missing`` are the disks that hold nothing to read from (failed, or being
    rebuilt); each working disk is equally likely to fail next. With one disk
    of a RAID 10 pair gone only its partner is fatal: 1 / (N - 1); a degraded
    RAID 5 dies of any second failure, a RAID 6 of none.
    """
    gone = set(missing)
    working = [d for d in range(disks) if d not in gone]
    if not working:
        return 1.0
    fatal = sum(1 for d in working if data_lost(level, disks, gone | {d}))
    return fatal / len(working)


def write_penalty(level: str, disks: int) -> int:
    """Return the disk I/Os one small random write costs on a healthy array.

    RAID 5 reads the old data and parity and writes both (4); RAID 6 does the
    same with two parities (6); a mirror writes every copy (2 for a pair).
    """
    return {"0": 1, "1": disks, "5": 4, "6": 6, "10": 2}[level]


def read_iops(level: str, disks: int, disk_iops: float) -> float:
    """Return the small random reads per second a healthy array can serve."""
    return disks * disk_iops


def write_iops(level: str, disks: int, disk_iops: float) -> float:
    """Return the small random writes per second a healthy array can serve."""
    return disks * disk_iops / write_penalty(level, disks)


def rebuild_seconds(disk_tb: float, rebuild_mb_s: float) -> float:
    """Return the time to rewrite a whole disk at the rebuild rate (TB = 10^12 B)."""
    return disk_tb * 1e12 / (rebuild_mb_s * 1e6)


def rebuild_sources(level: str, disks: int) -> int:
    """Return how many surviving disks a single-disk rebuild reads in full.

    A mirror copies its partner; RAID 5 and 6 read every surviving disk to
    recompute the lost strips. RAID 0 cannot rebuild (0).
    """
    return {"0": 0, "1": 1, "5": disks - 1, "6": disks - 1, "10": 1}[level]


def rebuild_bits_read(level: str, disks: int, disk_tb: float) -> float:
    """Return the bits read from surviving disks to rebuild one disk."""
    return rebuild_sources(level, disks) * disk_tb * 1e12 * 8


def ure_probability(bits: float, p_bit: float) -> float:
    """Return the chance of at least one unrecoverable read error in ``bits``.

    Each bit fails independently with probability ``p_bit``: 1 - (1 - p)^bits,
    computed without losing precision for tiny ``p_bit``.
    """
    if p_bit <= 0 or bits <= 0:
        return 0.0
    if p_bit >= 1:
        return 1.0
    return -math.expm1(bits * math.log1p(-p_bit))


def mttf_hours(afr: float) -> float:
    """Return a disk's mean time to failure from its annual failure rate."""
    return math.inf if afr <= 0 else HOURS_PER_YEAR / afr


def mttdl_hours(level: str, disks: int, mttf_h: float, mttr_h: float) -> float:
    """Return the textbook mean time to data loss (Patterson, Gibson, Katz 1988).

    Independent exponential failures, repair much shorter than MTTF: an array
    that tolerates k failures loses data when k more disks fail during the
    repair of the first, giving MTTF^(k+1) / (N (N-1) ... (N-k) MTTR^k). A
    RAID 10 of N disks loses data when a failed disk's partner fails during the
    repair: MTTF^2 / (N MTTR).
    """
    if math.isinf(mttf_h):
        return math.inf
    try:
        if level == "10":
            return mttf_h**2 / (disks * mttr_h) if mttr_h > 0 else math.inf
        k = tolerated_failures(level, disks)
        if k and mttr_h <= 0:
            return math.inf
        falling = math.prod(disks - i for i in range(k + 1))
        return mttf_h ** (k + 1) / (falling * mttr_h**k)
    except OverflowError:  # disks that next to never fail: longer than a float holds
        return math.inf


# Sharding ------------------------------------------------------------------


def modulo_moved_fraction(old: int, new: int) -> float:
    """Return the share of keys that change shard when ``hash % old`` becomes ``% new``.

    For a uniform hash, residues modulo lcm(old, new) are equally likely, and a
    key stays exactly when hash % old == hash % new, which holds for
    min(old, new) of them: n to n + 1 moves n / (n + 1) of the keys.
    """
    lcm = old * new // math.gcd(old, new)
    return 1.0 - min(old, new) / lcm


def modulo_remap_fraction(before: tuple[int, ...], after: tuple[int, ...]) -> float:
    """Return the share of keys that move when ``before[h % n]`` becomes ``after[h % m]``.

    ``before`` and ``after`` list the shards in routing order. Residues modulo
    lcm(n, m) are equally likely for a uniform hash; a key stays when both
    lists name the same shard for it. Appending shards gives
    ``modulo_moved_fraction``; removing a shard from the middle instead of the
    end moves other keys, but as many of them.
    """
    n, m = len(before), len(after)
    lcm = n * m // math.gcd(n, m)
    stay = sum(1 for r in range(lcm) if before[r % n] == after[r % m])
    return 1.0 - stay / lcm


def consistent_moved_fraction(old: int, new: int) -> float:
    """Return the expected share of keys that move on a hash ring.

    Only the keys the newcomers take move (Karger et al. 1997): adding a shard
    to n moves 1 / (n + 1) on average, adding m - n of them (m - n) / m;
    removing one of n moves only its own keys, 1 / n.
    """
    return abs(new - old) / max(old, new)


def consistent_moved_sd(old: int, new: int, vnodes: int, keys: int) -> float:
    """Return the standard deviation of the moved share on a hash ring.

    The ring has N = max(old, new) * vnodes points at independent uniform
    places; the arcs between them are Dirichlet(1, ..., 1), so the share owned
    by one shard's ``vnodes`` points is Beta(v, N - v) with mean p = 1 / shards
    and variance p (1 - p) / (N + 1). Routing ``keys`` keys adds binomial
    sampling noise p (1 - p) / keys.
    """
    shards = max(old, new)
    p = 1.0 / shards
    points = shards * vnodes
    return math.sqrt(p * (1 - p) * (1.0 / (points + 1) + 1.0 / keys))


def range_split_moved_fraction(shards: int) -> float:
    """Return the share that moves when the largest of ``shards`` equal ranges splits.

    The newcomer takes the upper half of one range: 1 / (2 n) of the keys.
    """
    return 1.0 / (2 * shards)


def range_moved_fraction(
    before: Iterable[tuple[float, int]], after: Iterable[tuple[float, int]]
) -> float:
    """Return the share of the key space whose owner differs between two range maps.

    A map is a sorted list of (start, shard) with the first start at 0: each
    shard owns [start, next start). With many keys the moved share of keys is
    this length, whatever splits or merges happened.
    """

    def pieces(bounds: Iterable[tuple[float, int]]) -> list[tuple[float, float, int]]:
        starts = list(bounds)
        ends = [s for s, _ in starts[1:]] + [1.0]
        return [(s, e, sid) for (s, sid), e in zip(starts, ends)]

    old, new = pieces(before), pieces(after)
    cuts = sorted({0.0, 1.0, *(s for s, _, _ in old), *(s for s, _, _ in new)})
    moved = 0.0
    i = j = 0
    for lo, hi in zip(cuts, cuts[1:]):
        while old[i][1] <= lo:
            i += 1
        while new[j][1] <= lo:
            j += 1
        if old[i][2] != new[j][2]:
            moved += hi - lo
    return moved
