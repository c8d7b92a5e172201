"""The sessions engine: where sessions live decides who is logged out and what is lost."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step
from simulations.engines.sessions import STORES
from simulations.theory.queueing import round_robin_move_probability

from .golden import assert_golden, trace

Sessions = get_engine("sessions")


def measure(params, *, seed=1, duration=300.0, warmup=60.0):
    """Return every figure measured after ``warmup`` seconds, up to ``duration``."""
    engine = Sessions(params, seed=seed)
    engine.advance(warmup)
    engine.reset_stats()
    engine.advance(duration - warmup)
    return engine.metrics()


def live_sessions(engine):
    return len(engine.central) + sum(len(m) for m in engine.mem)


def live_items(engine):
    stores = [engine.central, *engine.mem]
    return sum(session[1] for store in stores for session in store.values())


def test_golden_trace_with_a_kill_a_new_server_and_restarts():
    steps = [
        make_step(Sessions, 2, "kill", {"server": 2}),
        make_step(Sessions, 4, "add_server", {}),
        make_step(Sessions, 6, "restart", {"server": 2}),
        make_step(Sessions, 8, "restart", {"server": 1}),
    ]
    frames = trace(
        Sessions,
        {
            "servers": 3,
            "users": 40,
            "store": "sticky",
            "think_time_s": 1.0,
            "offline_s": 5.0,
        },
        seed=7,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("sessions", frames)


@pytest.mark.parametrize("servers", [2, 3, 5])
def test_local_sessions_with_round_robin_log_users_out_n_minus_1_times_in_n(servers):
    # Round robin sends a user's next request to the next server in the rotation
    # after the other users' requests in between; there are hundreds of those, so
    # the user meets the server that holds the session only 1 time in N. Every
    # request that needs a session follows the login or a success on that server,
    # so the share of forced logouts is (N-1)/N too. The count of requests in
    # between is roughly geometric with mean ~300, not exactly uniform modulo N,
    # which raises the share by about (N-1)/(2N x 300), at most 0.0015 here. About
    # 50k requests after the warm-up: the binomial standard error is under 0.003,
    # and 0.012 is four of them (three seeds more landed within 0.0065).
    figures = measure(
        {"servers": servers, "users": 300, "store": "local", "memory_sessions": 10_000},
        duration=660,
    )
    expected = round_robin_move_probability(servers)
    assert figures["move_ratio"] == pytest.approx(expected, abs=0.012)
    assert figures["forced_logout_ratio"] == pytest.approx(expected, abs=0.012)
    assert figures["evicted_sessions"] == 0  # no other cause of logouts
    assert figures["split_carts"] > 0


@pytest.mark.parametrize("store", ["central_cache", "central_db"])
def test_central_stores_lose_nothing_when_a_server_dies(store):
    engine = Sessions({"servers": 4, "users": 300, "store": store}, seed=2)
    engine.advance(60)
    engine.reset_stats()
    (event,) = engine.apply("kill", {"server": 2})
    assert event["sessions_lost"] == 0
    engine.advance(60)
    engine.apply("restart", {"server": 3})
    engine.advance(60)
    figures = engine.metrics()
    assert figures["checkouts"] > 500
    for name in ("forced_logouts", "lost_carts", "split_carts", "lost_sessions"):
        assert figures[name] == 0, name
    # Requests still move between servers; it does not matter.
    assert figures["move_ratio"] == pytest.approx(2 / 3, abs=0.05)


def test_sticky_sessions_lose_exactly_the_dead_servers_sessions():
    engine = Sessions({"servers": 4, "users": 1000, "store": "sticky"}, seed=3)
    engine.advance(120)
    engine.reset_stats()
    assert engine.metrics()["forced_logouts"] == 0
    doomed = {session[0]: session[1] for session in engine.mem[1].values()}
    assert len(doomed) > 40
    (event,) = engine.apply("kill", {"server": 2})
    assert event["sessions_lost"] == len(doomed)
    assert event["carts_lost"] == sum(1 for items in doomed.values() if items)
    # Think times are 2 s on average: within 60 s every user has come back (the
    # chance one has not is e^-30). Each user of the dead server is logged out
    # once, re-pinned to a live server, and nobody else is.
    engine.advance(60)
    figures = engine.metrics()
    assert figures["forced_logouts"] == len(doomed)
    assert figures["lost_sessions"] == len(doomed)
    assert figures["lost_carts"] == event["carts_lost"]
    assert figures["items_lost"] == sum(doomed.values())
    assert figures["split_carts"] == 0
    assert all(engine.pin[u] != 1 for u in doomed)
    # Without failures sticky sessions never move.
    assert figures["move_ratio"] < 0.02


def test_a_kill_after_a_switch_to_a_central_store_loses_no_cart():
    engine = Sessions({"servers": 4, "users": 1000, "store": "sticky"}, seed=3)
    engine.advance(120)
    engine.set_param("store", "central_cache")
    # The carts in server memory are out of reach now: the new store never
    # reads them, so a kill destroys nothing a user would have seen.
    held = [session[1] for session in engine.mem[1].values()]
    assert sum(1 for items in held if items) > 20
    (event,) = engine.apply("kill", {"server": 2})
    assert event["sessions_lost"] == len(held)
    assert event["carts_lost"] == event["items_lost"] == 0
    # Within 60 s every user came back, was sent to log in again (their old
    # cart split off, counted once) and now shops from the central store.
    engine.advance(60)
    split = engine.metrics()["split_carts"]
    assert split > 0
    (event,) = engine.apply("restart", {"server": 3})
    assert event["sessions_lost"] > 0
    assert event["carts_lost"] == 0
    figures = engine.metrics()
    assert figures["lost_carts"] == figures["items_lost"] == 0
    assert figures["split_carts"] == split


def test_a_split_cart_is_not_lost_again_when_its_server_dies():
    # Round robin over local memory: carts are split off all the time, and the
    # server that holds one may die later.
    engine = Sessions({"servers": 2, "users": 300, "store": "local"}, seed=6)
    engine.advance(60)
    memory = engine.mem[0]
    live = [n for sid, (u, n, _) in memory.items() if n and engine.sid[u] == sid]
    stranded = [n for sid, (u, n, _) in memory.items() if n and engine.sid[u] != sid]
    assert live and stranded
    (event,) = engine.apply("kill", {"server": 1})
    assert event["carts_lost"] == len(live)
    assert event["items_lost"] == sum(live)


def test_an_expired_cart_waiting_for_the_sweep_is_not_lost():
    # Sessions last 10 s and are swept every 5 s: at 14.9 s the ones last used
    # before 4.9 s have expired but are still in memory until the sweep at 15 s.
    engine = Sessions(
        {
            "servers": 2,
            "users": 300,
            "store": "sticky",
            "session_ttl_s": 10,
            "think_time_s": 60,
            "offline_s": 1,
        },
        seed=2,
    )
    engine.advance(14.9)
    memory = engine.mem[0]
    expired = [n for u, n, used in memory.values() if n and used <= 4.9]
    fresh = [n for u, n, used in memory.values() if n and used > 4.9]
    assert expired and fresh
    (event,) = engine.apply("kill", {"server": 1})
    assert event["carts_lost"] == len(fresh)
    assert event["items_lost"] == sum(fresh)


def test_a_session_past_its_lifetime_is_refused_on_read_not_only_by_the_sweep():
    # A central store moves no one, so the only way to lose a session is to come
    # back after its lifetime. Think times are exponential (memoryless), so a
    # returning user finds the session expired with probability exp(-ttl/think):
    # exp(-0.5) = 0.607 here. If expiry waited for the sweep every 5 s, sessions
    # would live up to 5 s longer and the share would fall to about 0.582. About
    # 54k session reads after the warm-up give a standard error of 0.0021; 0.01
    # is under five of them and still well clear of 0.582.
    figures = measure(
        {
            "servers": 3,
            "users": 2000,
            "store": "central_cache",
            "think_time_s": 60,
            "session_ttl_s": 30,
            "offline_s": 60,
        },
        duration=3000,
        warmup=300,
    )
    assert figures["forced_logout_ratio"] == pytest.approx(math.exp(-0.5), abs=0.01)
    assert figures["lost_carts"] == 0


def test_restarting_a_running_server_also_wipes_its_memory():
    engine = Sessions({"servers": 3, "users": 200, "store": "sticky"}, seed=4)
    engine.advance(60)
    held = len(engine.mem[0])
    (event,) = engine.apply("restart", {"server": 1})
    assert event["was_up"] is True
    assert event["sessions_lost"] == held > 0
    assert engine.metrics()["server_up"] == [1, 1, 1]


def test_a_new_server_takes_only_new_sticky_users():
    engine = Sessions({"servers": 2, "users": 300, "store": "sticky"}, seed=5)
    engine.advance(60)
    engine.reset_stats()
    engine.apply("add_server")
    engine.advance(5)
    figures = engine.metrics()
    sessions = figures["server_sessions"]
    # Users already shopping stay where they are; the newcomer fills only with
    # logins, a third of them, so it lags well behind.
    assert 0 < sessions[2] < 0.5 * min(sessions[:2])
    assert figures["forced_logouts"] == 0


def test_latency_adds_one_store_round_trip_per_session_read_or_write():
    # The two central stores give the same run (same draws, no session is ever
    # missing), so their latencies differ by exactly the extra round trips.
    params = {"servers": 4, "users": 200, "cache_ms": 0.5, "db_ms": 8.0}
    cache = measure(params | {"store": "central_cache"})
    db = measure(params | {"store": "central_db"})
    assert cache["requests"] == db["requests"]
    trips_per_request = (
        (cache["store_reads_per_s"] + cache["store_writes_per_s"])
        * 240
        / (cache["requests"])
    )
    assert db["mean_latency_ms"] - cache["mean_latency_ms"] == pytest.approx(
        7.5 * trips_per_request, rel=1e-9
    )
    # Sessions in local memory cost nothing beyond the app time: exponential with
    # mean 20 ms, so over 30k requests the standard error is about 0.12 ms.
    local = measure(params | {"store": "sticky"})
    assert local["mean_latency_ms"] == pytest.approx(20.0, abs=0.5)
    assert local["store_reads_per_s"] == 0.0
    # Every request that needs a session reads it once.
    reads = cache["store_reads_per_s"] * 240
    assert reads == pytest.approx(cache["requests"] - cache["logins"], abs=1e-6)


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0.1, 5.0)),
        st.tuples(st.sampled_from(["kill", "restart"]), st.integers(1, 5)),
        st.tuples(st.just("add_server"), st.none()),
        st.tuples(st.just("store"), st.sampled_from(STORES)),
        st.tuples(st.just("users"), st.integers(1, 60)),
        st.tuples(st.just("servers"), st.integers(1, 5)),
        st.tuples(st.just("memory_sessions"), st.integers(10, 40)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(
    servers=st.integers(1, 4),
    users=st.integers(1, 60),
    store=st.sampled_from(STORES),
    memory=st.integers(10, 40),
    seed=st.integers(0, 1000),
    actions=ACTIONS,
)
def test_sessions_and_items_are_conserved_and_memory_never_overflows(
    servers, users, store, memory, seed, actions
):
    engine = Sessions(
        {
            "servers": servers,
            "users": users,
            "store": store,
            "memory_sessions": memory,
            "think_time_s": 0.5,
            "offline_s": 2.0,
            "session_ttl_s": 10.0,
        },
        seed=seed,
    )
    for action, arg in actions:
        if action == "advance":
            engine.advance(arg)
        elif action in ("kill", "restart"):
            # A server that is not a valid target right now is refused; the
            # refusal itself is checked in test_bad_commands_name_the_allowed_servers.
            with contextlib.suppress(CommandError):
                engine.apply(action, {"server": arg})
        elif action == "add_server":
            with contextlib.suppress(CommandError):
                engine.apply("add_server")
        else:
            engine.set_param(action, arg)
        t = engine.totals
        # Every session ever created is still held, or ended one known way.
        assert t["logins"] == (
            live_sessions(engine)
            + t["checkouts"]
            + t["expired"]
            + t["evicted"]
            + t["lost_sessions"]
        )
        assert t["items_added"] == (
            live_items(engine)
            + t["items_bought"]
            + t["items_expired"]
            + t["items_evicted"]
            + t["items_destroyed"]
        )
        # Lost items are the destroyed ones that sat in their user's live cart.
        assert t["items_lost"] <= t["items_destroyed"]
        assert t["lost_carts"] <= t["lost_sessions"]
        assert all(len(m) <= engine.p["memory_sessions"] for m in engine.mem)
        assert all(not m for m, up in zip(engine.mem, engine.alive) if not up)
        assert t["forced"] <= t["requests"]
        assert t["split"] <= t["forced"]
        figures = engine.metrics()
        assert figures["users_logged_in"] <= engine.p["users"]
        # A user holds at most one session that is current.
        current = [
            engine.sid[u] for u in range(engine.users_active) if engine.sid[u] >= 0
        ]
        assert len(current) == len(set(current))
        assert math.isfinite(figures["mean_latency_ms"])


def test_bad_commands_name_the_allowed_servers():
    engine = Sessions({"servers": 3})
    with pytest.raises(CommandError) as info:
        engine.apply("kill", {"server": 5})
    assert info.value.field == "kill.server"
    assert "a running server: one of 1, 2, 3" in info.value.message
    engine.apply("kill", {"server": 2})
    with pytest.raises(CommandError) as info:
        engine.apply("kill", {"server": 2})
    assert "one of 1, 3" in info.value.message
