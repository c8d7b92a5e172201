"""The replication engine's consistency: quorums, monotonic reads, read-your-writes."""

from __future__ import annotations

import pytest

from simulations.engines import get_engine
from simulations.engines.runner import make_step, run_headless
from simulations.theory.replication import quorums_overlap

Replication = get_engine("replication")

# Busy reads of few rows, 30 ms between servers: a replica is often behind on a
# row someone reads, so any read that can miss a write does.
BUSY = {
    "write_rate": 100,
    "apply_rate": 150,
    "network_delay_ms": 30,
    "read_rate": 2000,
    "rows": 50,
    "users": 100,
}


def quorum_run(replicas, write_quorum, read_quorum, steps=(), seed=3, duration=30):
    params = {
        **BUSY,
        "replicas": replicas,
        "replication": "quorum",
        "read_from": "quorum",
        "write_quorum": write_quorum,
        "read_quorum": read_quorum,
    }
    return run_headless(
        Replication, params, seed=seed, duration=duration, warmup=0, steps=steps
    )


@pytest.mark.parametrize(
    ("replicas", "write_quorum", "read_quorum"),
    [(2, 2, 2), (2, 3, 1), (2, 1, 3), (4, 3, 3), (4, 2, 4)],
)
def test_overlapping_quorums_never_serve_a_stale_read(
    replicas, write_quorum, read_quorum
):
    assert quorums_overlap(replicas + 1, write_quorum, read_quorum)
    # a slow copy and a burst make some copies far behind the others
    steps = [
        make_step(Replication, 5, "pause_replica", {"replica": 1, "seconds": 3}),
        make_step(Replication, 15, "write_burst", {"writes": 500, "duration_s": 2}),
    ]
    summary = quorum_run(replicas, write_quorum, read_quorum, steps)
    assert summary.metrics["reads"] > 50_000
    assert summary.metrics["stale_reads"] == 0
    assert summary.metrics["ryw_violations"] == 0
    assert summary.theory["stale_read_ratio"] == 0.0


@pytest.mark.parametrize(
    ("replicas", "write_quorum", "read_quorum"),
    [(2, 2, 1), (2, 1, 2), (2, 1, 1), (4, 2, 3)],
)
def test_quorums_that_need_not_meet_serve_stale_reads(
    replicas, write_quorum, read_quorum
):
    assert not quorums_overlap(replicas + 1, write_quorum, read_quorum)
    summary = quorum_run(replicas, write_quorum, read_quorum)
    # R + W = N + 1 - 1 at most: 0.4 % of reads (five copies, three asked) up to
    # 7 % (three copies, W = 1, R = 2) over seeds 3 to 5
    assert summary.metrics["stale_read_ratio"] > 0.002
    assert "is not above N" in summary.theory_gaps["stale_read_ratio"]


def test_a_larger_read_quorum_costs_the_master_more_reads():
    one = quorum_run(2, 3, 1).metrics["master_utilization"]
    three = quorum_run(2, 1, 3).metrics["master_utilization"]
    # every read of all three copies asks the master: 2000 reads/s on 2000 ops/s
    assert three > 2.5 * one
    assert three > 1.0


def test_a_write_quorum_of_two_rides_out_a_paused_replica_and_one_of_all_stalls():
    steps = [make_step(Replication, 5, "pause_replica", {"replica": 1, "seconds": 10})]
    engines = {}
    for w in (2, 3):
        engine = Replication(
            {**BUSY, "replication": "quorum", "write_quorum": w}, seed=4
        )
        engine.advance(5)
        engine.apply(steps[0].command, steps[0].args)
        engine.advance(5)
        engines[w] = engine.metrics()
    # W = 2 needs the master and the faster of two replicas: about 30 ms + 20 ms
    assert engines[2]["writes_waiting"] < 20
    assert engines[2]["write_latency_ms_recent"] < 150
    # W = 3 needs the paused one too: 5 s of writes pile up unconfirmed
    assert engines[3]["writes_waiting"] > 400


def test_a_read_quorum_larger_than_the_live_copies_asks_them_all():
    engine = Replication(
        {**BUSY, "replication": "quorum", "read_from": "quorum", "read_quorum": 12},
        seed=5,
    )
    engine.advance(5)
    assert engine.metrics()["copies"] == 3
    assert engine.metrics()["stale_reads"] == 0
    # every read asked the master, and every write is on it
    assert engine.metrics()["master_utilization"] > 1.0


def monotonic_run(read_from, seed=6):
    steps = [
        make_step(Replication, 5, "pause_replica", {"replica": 2, "seconds": 5}),
        make_step(Replication, 15, "write_burst", {"writes": 600, "duration_s": 2}),
    ]
    return run_headless(
        Replication,
        {**BUSY, "replicas": 3, "read_from": read_from},
        seed=seed,
        duration=30,
        warmup=0,
        steps=steps,
    ).metrics


@pytest.mark.parametrize("seed", [6, 7])
def test_a_sticky_replica_per_user_never_turns_time_back_and_random_ones_do(seed):
    random_replica = monotonic_run("replicas", seed)
    sticky = monotonic_run("sticky", seed)
    assert random_replica["monotonic_violations"] > 100
    assert sticky["monotonic_violations"] == 0
    # sticky replicas are just as stale: only the order of what a user sees is fixed
    assert sticky["stale_read_ratio"] > 0.5 * random_replica["stale_read_ratio"]
    assert sticky["reads"] > 50_000


def test_reads_of_the_master_keep_every_guarantee():
    m = monotonic_run("master")
    assert (m["stale_reads"], m["monotonic_violations"], m["ryw_violations"]) == (
        0,
        0,
        0,
    )


def test_read_your_writes_routing_removes_the_violations_replicas_give():
    params = {**BUSY, "network_delay_ms": 80, "read_back_ms": 50}
    got = {
        route: run_headless(
            Replication, {**params, "read_from": route}, seed=8, duration=30
        ).metrics
        for route in ("replicas", "read_your_writes", "sticky")
    }
    # a read-back 50 ms after the acknowledgement, 80 ms before any replica has it
    assert got["replicas"]["ryw_violations"] > 0.9 * got["replicas"]["writes"] * 0.9
    assert got["sticky"]["ryw_violations"] > 1000
    assert got["read_your_writes"]["ryw_violations"] == 0
    assert got["read_your_writes"]["stale_read_backs"] == 0


def test_a_write_lost_in_a_failover_is_a_read_your_writes_violation():
    engine = Replication(
        {
            "write_rate": 1000,
            "apply_rate": 1100,
            "network_delay_ms": 50,
            "read_from": "master",
            "read_back_ms": 100,
            # rows nobody else writes in the meantime
            "rows": 100_000,
            "zipf_s": 0.0,
        },
        seed=7,
    )
    engine.advance(5)
    before = engine.metrics()["ryw_violations"]
    assert before == 0
    lost = engine.apply("kill_master")[0]["lost_writes"]
    engine.advance(1)
    # each lost write's user reads the row back from the new master, without it;
    # the row is not stale, as what survives is the truth now
    assert lost > 20
    assert engine.metrics()["ryw_violations"] == lost
    assert engine.metrics()["stale_read_backs"] == 0


def test_the_seen_versions_stay_bounded_and_forget_what_every_copy_holds():
    engine = Replication({**BUSY, "users": 100_000, "rows": 100_000}, seed=9)
    engine.advance(20)
    # reads of writes every copy holds are forgotten: only a lag's worth is kept
    assert len(engine.seen) < 10_000
    engine.apply("pause_replica", {"replica": 1, "seconds": 600})
    engine.set_param("read_rate", 20_000)
    engine.advance(20)
    assert len(engine.seen) <= 200_000


def test_consistency_figures_survive_a_snapshot():
    engine = Replication({**BUSY, "read_from": "quorum", "replication": "quorum"})
    engine.advance(3)
    copy = Replication.restore(engine.snapshot())
    assert copy.advance(2) == engine.advance(2)
    assert copy.metrics() == engine.metrics()


def test_lowering_the_write_quorum_confirms_the_writes_waiting_at_once():
    engine = Replication({**BUSY, "replication": "quorum", "write_quorum": 3}, seed=2)
    engine.advance(2)
    engine.apply("pause_replica", {"replica": 2, "seconds": 30})
    engine.advance(3)
    assert engine.metrics()["writes_waiting"] > 200
    engine.set_param("write_quorum", 2)
    # the master and r1 have them all but the last few tens of milliseconds
    assert engine.metrics()["writes_waiting"] < 15
