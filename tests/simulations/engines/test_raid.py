"""The RAID engine: capacity, tolerance, write penalty, rebuilds and read errors."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError, ParamError
from simulations.engines.runner import make_step
from simulations.theory.storage import (
    data_lost,
    mttdl_hours,
    mttf_hours,
    next_failure_loss_chance,
    read_iops,
    rebuild_bits_read,
    rebuild_seconds,
    tolerated_failures,
    ure_probability,
    usable_tb,
    write_iops,
    write_penalty,
)

from .golden import assert_golden, trace

Raid = get_engine("raid")
QUIET = {"afr": 0.0, "io_rate": 0.0}  # no random failures, no I/O


def valid_sizes(level):
    for disks in range(2, 25):
        try:
            Raid.validate_params({"level": level, "disks": disks})
        except ParamError:
            continue
        yield disks


def test_golden_trace_of_a_raid6_surviving_a_failure_during_rebuild():
    steps = [
        make_step(Raid, 1, "fail_disk", {"disk": 1}),
        make_step(Raid, 1.5, "replace_disk", {"disk": 1}),
        make_step(Raid, 2.5, "fail_during_rebuild", {"disk": -1}),
        make_step(Raid, 4, "replace_disk", {"disk": 0}),
    ]
    params = {"level": "6", "disks": 5, "io_rate": 100, "time_scale": 20_000}
    frames = trace(Raid, params, seed=7, steps=steps, frames=20, dt=0.5)
    assert_golden("raid", frames)


def test_golden_trace_of_a_raid10_losing_a_mirror_during_rebuild():
    steps = [
        make_step(Raid, 1, "fail_disk", {"disk": 2}),
        make_step(Raid, 2, "replace_disk", {"disk": 2}),
        make_step(Raid, 3, "fail_during_rebuild", {"disk": -1}),
    ]
    params = {"level": "10", "disks": 4, "io_rate": 60, "time_scale": 5_000}
    frames = trace(Raid, params, seed=3, steps=steps, frames=10, dt=0.5)
    events = [e for frame in frames for e in frame["events"]]
    failed = {"type": "raid.disk_failed", "t": 3.0, "disk": 3, "cause": "command"}
    loss = {"type": "raid.data_loss", "t": 3.0, "reason": "disks", "failed": [2, 3]}
    assert failed in events and loss in events
    assert frames[-1]["metrics"]["state"] == "failed"
    assert_golden("raid_loss", frames)


@pytest.mark.parametrize("level", ["0", "1", "5", "6", "10"])
def test_usable_capacity_and_tolerated_failures_follow_each_level(level):
    sizes = list(valid_sizes(level))
    assert sizes
    for disks in sizes:
        figures = Raid(
            {"level": level, "disks": disks, "disk_tb": 3.0, **QUIET}
        ).metrics()
        assert figures["usable_tb"] == pytest.approx(usable_tb(level, disks, 3.0))
        assert figures["tolerated_failures"] == tolerated_failures(level, disks)


@pytest.mark.parametrize(
    ("level", "disks"),
    [
        ("0", 2),
        ("0", 3),
        ("1", 2),
        ("1", 3),
        ("5", 3),
        ("5", 5),
        ("6", 4),
        ("6", 6),
        ("10", 4),
        ("10", 6),
        ("10", 8),
    ],
)
def test_data_is_lost_exactly_when_failures_exceed_what_the_level_tolerates(
    level, disks
):
    # every set of failed disks failed in ascending order, and every order of up
    # to three failures; checked after each failure
    orders = [
        order
        for size in range(1, disks + 1)
        for order in itertools.combinations(range(disks), size)
    ]
    orders += list(itertools.permutations(range(disks), min(3, disks)))
    for order in orders:
        engine = Raid({"level": level, "disks": disks, **QUIET})
        for i, disk in enumerate(order):
            engine.apply("fail_disk", {"disk": disk})
            lost = data_lost(level, disks, order[: i + 1])
            assert engine.metrics()["data_lost"] == int(lost), order[: i + 1]
            assert (engine.metrics()["state"] == "failed") == lost


@pytest.mark.parametrize(
    ("level", "disks"),
    [("0", 3), ("1", 3), ("5", 5), ("6", 5), ("10", 4), ("10", 8)],
)
def test_the_chance_that_the_next_failure_loses_data_follows_the_layout(level, disks):
    for size in range(disks):
        for failed in itertools.combinations(range(disks), size):
            if data_lost(level, disks, failed):
                continue
            engine = Raid({"level": level, "disks": disks, **QUIET})
            for disk in failed:
                engine.apply("fail_disk", {"disk": disk})
            chance = engine.metrics()["next_failure_loss"]
            assert chance == pytest.approx(
                next_failure_loss_chance(level, disks, failed)
            ), failed


@pytest.mark.parametrize("disks", [4, 6, 8, 12])
def test_after_one_failure_only_the_partner_of_a_raid10_disk_is_fatal(disks):
    engine = Raid({"level": "10", "disks": disks, **QUIET})
    assert engine.metrics()["next_failure_loss"] == 0.0
    engine.apply("fail_disk", {"disk": 1})
    assert engine.metrics()["next_failure_loss"] == pytest.approx(1 / (disks - 1))
    # a rebuild in progress leaves the partner the only copy until it ends
    engine.apply("replace_disk", {"disk": 1})
    assert engine.metrics()["next_failure_loss"] == pytest.approx(1 / (disks - 1))
    engine.apply("fail_disk", {"disk": 0})
    assert engine.metrics()["next_failure_loss"] is None


def test_a_degraded_raid5_dies_of_any_second_failure_and_a_raid6_of_none():
    raid5 = Raid({"level": "5", "disks": 4, **QUIET})
    raid6 = Raid({"level": "6", "disks": 4, **QUIET})
    for engine in (raid5, raid6):
        engine.apply("fail_disk", {"disk": 2})
    assert raid5.metrics()["next_failure_loss"] == 1.0
    assert raid6.metrics()["next_failure_loss"] == 0.0


def test_a_degraded_mirror_reads_its_survivor_without_reconstructing():
    # RAID 10 with one of four disks gone: every read still costs one disk I/O,
    # now on three disks, so 3 x 150 reads a second (RAID 5 would manage 300).
    engine = Raid(
        {"level": "10", "disks": 4, "io_rate": 2_000, "afr": 0.0, "read_fraction": 1.0},
        seed=5,
    )
    engine.apply("fail_disk", {"disk": 1})
    engine.advance(3)
    figures = engine.metrics()
    assert figures["read_iops"] == pytest.approx(3 * 150)
    assert figures["disk_utilisation"][0] == pytest.approx(
        2 * figures["disk_utilisation"][2], rel=0.15
    )


@pytest.mark.parametrize(
    ("level", "disks"), [("0", 4), ("1", 2), ("5", 4), ("6", 6), ("10", 8)]
)
def test_write_penalty_and_iops_come_from_the_disk_ios_each_request_costs(level, disks):
    params = {
        "level": level,
        "disks": disks,
        "io_rate": 5_000,
        "afr": 0.0,
        "disk_iops": 150,
    }
    engine = Raid(params, seed=1)
    engine.advance(4)
    figures = engine.metrics()
    # on a healthy array every read costs one disk I/O and every write exactly
    # the level's penalty, so these are exact
    assert figures["disk_ios_per_write"] == write_penalty(level, disks)
    assert figures["read_iops"] == pytest.approx(read_iops(level, disks, 150))
    assert figures["write_iops"] == pytest.approx(write_iops(level, disks, 150))


def test_a_degraded_raid5_serves_half_the_reads():
    # With one of N disks gone, a read of its blocks reads the N - 1 others: a read
    # costs 2 (N - 1) / N disk I/Os on N - 1 disks, so N x IOPS / 2 reads a second.
    # 28,000 reads: the share that hits the lost disk has a standard error of
    # 0.0026 around 1/4, well inside 3 %.
    engine = Raid(
        {"level": "5", "disks": 4, "io_rate": 10_000, "afr": 0.0, "read_fraction": 1.0},
        seed=2,
    )
    engine.apply("fail_disk", {"disk": 3})
    engine.advance(3)
    figures = engine.metrics()
    assert figures["read_iops"] == pytest.approx(4 * 150 / 2, rel=0.03)
    assert figures["disk_utilisation"][3] == 0.0
    assert figures["state"] == "degraded"


def test_a_rebuild_takes_the_disk_size_over_the_rebuild_rate():
    params = {
        "level": "1",
        "disks": 2,
        "disk_tb": 2.0,
        "rebuild_mb_s": 50,
        "time_scale": 10_000,
        **QUIET,
    }
    engine = Raid(params, seed=0)
    expected = rebuild_seconds(2.0, 50)
    assert expected == 40_000
    assert engine.metrics()["rebuild_time_s"] == pytest.approx(expected)
    engine.apply("fail_disk", {"disk": 0})
    assert engine.metrics()["rebuild_progress"] == 0.0
    engine.apply("replace_disk", {"disk": 0})
    assert engine.metrics()["rebuild_eta_s"] == pytest.approx(expected)
    progress = []
    rebuilt = []
    while not rebuilt:
        events = engine.advance(0.5)
        progress += [e["progress"] for e in events if e["type"] == "raid.rebuild"]
        rebuilt += [e for e in events if e["type"] == "raid.rebuilt"]
    assert progress == sorted(progress) and 0 < progress[0] < progress[-1] < 1
    assert rebuilt[0]["seconds"] == pytest.approx(expected)
    assert rebuilt[0]["t"] == pytest.approx(expected / 10_000)
    figures = engine.metrics()
    assert (figures["state"], figures["rebuild_progress"]) == ("optimal", 1.0)


@pytest.mark.parametrize(
    ("level", "disks", "p_bit"), [("5", 4, 1e-14), ("1", 2, 1e-14), ("6", 6, 2e-15)]
)
def test_read_errors_during_rebuilds_follow_the_bits_read(level, disks, p_bit):
    # A rebuild reads `rebuild_bits_read` bits; each fails with p_bit, so at least
    # one error happens with 1 - (1 - p)^bits. Over 1,500 seeded rebuilds the
    # observed share has a binomial standard error below 0.013: 4 of them is the
    # tolerance. The mean count of errors is bits x p (Poisson), with standard
    # error sqrt(mean / runs).
    runs = 1500
    params = {
        "level": level,
        "disks": disks,
        "ure_per_bit": p_bit,
        "time_scale": 1e7,
        **QUIET,
    }
    bits = rebuild_bits_read(level, disks, params.get("disk_tb", 4.0))
    expected = ure_probability(bits, p_bit)
    hit = 0
    counts = []
    for seed in range(runs):
        engine = Raid(params, seed=seed)
        engine.apply("fail_disk", {"disk": 0})
        engine.apply("replace_disk", {"disk": 0})
        engine.advance(0.25)
        figures = engine.metrics()
        assert figures["state"] == "optimal"
        counts.append(figures["ures"])
        hit += figures["ures"] > 0
    se = math.sqrt(expected * (1 - expected) / runs)
    assert hit / runs == pytest.approx(expected, abs=4 * se)
    mean = bits * p_bit
    assert statistics.fmean(counts) == pytest.approx(
        mean, abs=4 * math.sqrt(mean / runs)
    )


def test_a_read_error_loses_a_stripe_in_raid5_but_raid6_recovers_it():
    params = {"disks": 6, "ure_per_bit": 1e-13, "time_scale": 1e7, **QUIET}
    for level, lost in (("5", 1), ("6", 0)):
        engine = Raid({**params, "level": level}, seed=1)
        engine.apply("fail_disk", {"disk": 2})
        engine.apply("replace_disk", {"disk": 2})
        events = engine.advance(0.25)
        ures = [e for e in events if e["type"] == "raid.ure"]
        assert len(ures) > 5
        assert all(e["recovered"] == (not lost) for e in ures)
        figures = engine.metrics()
        assert figures["data_lost"] == lost
        assert figures["lost_stripes"] == (len(ures) if lost else 0)


def test_disks_fail_at_their_annual_failure_rate():
    # A hot spare replaces every failed disk at once, so all 10 disks are always
    # at risk: failures are Poisson with mean disks x AFR x years. 200 simulated
    # seconds at 1e7 are 63.4 years: 317 expected, standard deviation 17.8; the
    # tolerance is 4 of them.
    params = {
        "level": "6",
        "disks": 10,
        "afr": 0.5,
        "time_scale": 1e7,
        "disk_tb": 0.1,
        "rebuild_mb_s": 2000,
        "io_rate": 0,
        "auto_replace": True,
    }
    engine = Raid(params, seed=4)
    engine.advance(200)
    figures = engine.metrics()
    years = figures["array_days"] / 365.25
    expected = 10 * 0.5 * years
    assert figures["data_lost"] == 0
    assert figures["disk_failures"] == pytest.approx(
        expected, abs=4 * math.sqrt(expected)
    )


def test_time_to_data_loss_is_near_the_textbook_mttdl():
    # RAID 5 of 4 disks with MTTR / MTTF = 0.01 and a hot spare. The textbook
    # MTTF^2 / (N (N-1) MTTR) leaves out the time spent in repair and the chance
    # of two failures in one repair: for this fixed-length repair the expected time
    # is (MTTF / N + MTTR) / (1 - exp(-(N-1) MTTR / MTTF)), 6 % above it. The time
    # to loss is nearly exponential, so the mean of 120 runs has a standard error
    # of 9 %: 30 % leaves over two standard errors beyond that bias.
    afr = 0.5
    mttf = mttf_hours(afr)
    rebuild_h = mttf / 100
    params = {
        "level": "5",
        "disks": 4,
        "afr": afr,
        "disk_tb": 30.0,
        "rebuild_mb_s": 30e6 / (rebuild_h * 3600),
        "time_scale": 1e7,
        "io_rate": 0,
        "auto_replace": True,
        "ure_per_bit": 0,
    }
    years = []
    for seed in range(120):
        engine = Raid(params, seed=seed)
        loss = []
        while not loss:
            loss = [e for e in engine.advance(20) if e["type"] == "raid.data_loss"]
        years.append(loss[0]["t"] * 1e7 / (365.25 * 86400))
    textbook = engine.metrics()["mttdl_textbook_years"]
    assert textbook == pytest.approx(mttdl_hours("5", 4, mttf, rebuild_h) / 8766)
    assert statistics.fmean(years) == pytest.approx(textbook, rel=0.3)


def test_a_hot_spare_starts_the_rebuild_at_once():
    engine = Raid({"level": "5", "auto_replace": True, **QUIET})
    events = engine.apply("fail_disk", {"disk": 2})
    assert [e["type"] for e in events] == [
        "raid.disk_failed",
        "raid.degraded",
        "raid.rebuild",
    ]
    assert engine.metrics()["state"] == "rebuilding"


def test_changing_the_time_scale_keeps_the_rebuild_on_its_array_time():
    params = {"level": "1", "time_scale": 1000, **QUIET}
    engine = Raid(params)
    engine.apply("fail_disk", {"disk": 1})
    engine.apply("replace_disk", {"disk": 1})
    engine.advance(10.1)
    engine.set_param("time_scale", 4000)
    rebuilt = []
    while not rebuilt:
        rebuilt = [e for e in engine.advance(0.25) if e["type"] == "raid.rebuilt"]
    assert rebuilt[0]["seconds"] == pytest.approx(rebuild_seconds(4.0, 100))
    assert rebuilt[0]["t"] == pytest.approx(10.1 + (40_000 - 10_100) / 4000)


@settings(max_examples=60, deadline=None)
@given(
    config=st.sampled_from([("0", 3), ("1", 3), ("5", 4), ("6", 5), ("10", 6)]),
    actions=st.lists(
        st.tuples(
            st.sampled_from(["advance", "fail", "replace", "during"]), st.integers(0, 5)
        ),
        max_size=12,
    ),
    afr=st.sampled_from([0.0, 0.9]),
)
def test_loss_matches_the_missing_disks_and_disk_ios_add_up(config, actions, afr):
    level, disks = config
    params = {
        "level": level,
        "disks": disks,
        "afr": afr,
        "time_scale": 1e6,
        "io_rate": 400,
        "rebuild_mb_s": 1000,
    }
    engine = Raid(params, seed=9)
    ever_fatal = False
    for action, disk in actions:
        disk %= disks
        try:
            if action == "advance":
                engine.advance(0.4)
            elif action == "fail":
                engine.apply("fail_disk", {"disk": disk})
            elif action == "replace":
                engine.apply("replace_disk", {"disk": disk})
            else:
                engine.apply("fail_during_rebuild")
        except CommandError:
            pass
        figures = engine.metrics()
        missing = [d for d, s in enumerate(engine.state) if s != "ok"]
        if not engine.lost:
            assert not data_lost(level, disks, missing)
        ever_fatal = ever_fatal or data_lost(level, disks, missing)
        assert engine.lost == ever_fatal
        assert (figures["state"] == "failed") == ever_fatal
        assert sum(engine.disk_ios) == engine.read_ios + engine.write_ios
        assert 0.0 <= figures["rebuild_progress"] <= 1.0
        assert figures["usable_tb"] == pytest.approx(usable_tb(level, disks, 4.0))


def test_bad_commands_name_the_field_and_the_allowed_values():
    engine = Raid({"level": "5", "disks": 4, **QUIET})
    with pytest.raises(CommandError) as info:
        engine.apply("fail_disk", {"disk": 6})
    assert (info.value.field, "disks: 0 to 3" in info.value.message) == (
        "fail_disk.disk",
        True,
    )
    with pytest.raises(CommandError) as info:
        engine.apply("replace_disk", {"disk": 1})
    assert "failed disks: none" in info.value.message
    with pytest.raises(CommandError) as info:
        engine.apply("fail_during_rebuild")
    assert "no rebuild is running" in info.value.message
    engine.apply("fail_disk", {"disk": 1})
    with pytest.raises(CommandError) as info:
        engine.apply("fail_disk", {"disk": 1})
    assert "disks that can fail: 0, 2, 3" in info.value.message
    engine.apply("replace_disk", {"disk": 1})
    with pytest.raises(CommandError) as info:
        engine.apply("fail_during_rebuild", {"disk": 1})
    assert "working disks: 0, 2, 3" in info.value.message
    engine.apply("fail_during_rebuild", {"disk": 0})
    with pytest.raises(CommandError) as info:
        engine.apply("replace_disk", {"disk": 0})
    assert "lost its data" in info.value.message
