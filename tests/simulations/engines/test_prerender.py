"""The prerender engine: pages rendered per request, or ahead of time onto a CDN."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engines import get_engine
from simulations.engines.base import CommandError
from simulations.engines.runner import make_step, run_headless

from .golden import assert_golden, trace

Prerender = get_engine("prerender")

# 1,000 pages, a render of 40 ms plus 20 ms of database time on average, 16
# backend workers, a regeneration every 60 s by 4 parallel renders (15 s a run).
SITE = {
    "pages": 1000,
    "render_ms": 40,
    "db_ms": 20,
    "backend_workers": 16,
    "regen_interval_s": 60,
    "regen_workers": 4,
}
MEAN_RENDER_S = 0.060


def measure(params, seed=1, warmup=120.0, duration=1320.0):
    return run_headless(
        Prerender, {**SITE, **params}, seed=seed, duration=duration, warmup=warmup
    ).metrics


def test_golden_trace_with_a_change_a_purge_and_a_spike():
    steps = [
        make_step(Prerender, 2, "publish", {}),
        make_step(Prerender, 5, "purge", {}),
        make_step(Prerender, 6, "spike", {"factor": 3, "duration_s": 2}),
    ]
    frames = trace(
        Prerender,
        {
            "mode": "prerendered",
            "pages": 40,
            "request_rate": 30,
            "regen_interval_s": 4,
            "regen_workers": 2,
            "backend_workers": 4,
            "edit_rate": 1,
        },
        seed=7,
        steps=steps,
        frames=20,
        dt=0.5,
    )
    assert_golden("prerender", frames)


def test_prerendered_backend_load_does_not_grow_with_traffic():
    quiet = measure({"mode": "prerendered", "request_rate": 100})
    busy = measure({"mode": "prerendered", "request_rate": 2000})
    # The backend only runs the regeneration job: 1,000 renders every 60 s on 16
    # workers, whatever the traffic. The 1,200 s measured hold exactly 20 runs,
    # about 20,000 renders, so the random database time moves the total by about
    # 0.3 % (one standard error); 2 % is several of them.
    expected = SITE["pages"] * MEAN_RENDER_S / (SITE["regen_interval_s"] * 16)
    assert quiet["backend_utilization"] == pytest.approx(expected, rel=0.02)
    assert busy["backend_utilization"] == pytest.approx(expected, rel=0.02)
    assert busy["cdn_hits"] > 15 * quiet["cdn_hits"]
    assert busy["p95_latency_ms"] == quiet["p95_latency_ms"] == pytest.approx(15.0)


@pytest.mark.parametrize("rate", [100, 200])
def test_dynamic_backend_load_grows_with_traffic(rate):
    figures = measure({"mode": "dynamic", "request_rate": rate})
    # Every view is a render: utilization = rate x mean render time / workers.
    # Over 120,000+ renders the count and the mean time are each within 0.3 %
    # (one standard error); 2 % is several of them.
    assert figures["backend_utilization"] == pytest.approx(
        rate * MEAN_RENDER_S / 16, rel=0.02
    )
    assert figures["mean_staleness_s"] == 0.0
    assert figures["cdn_hits"] == 0


@pytest.mark.parametrize("interval", [20.0, 60.0])
def test_mean_staleness_is_half_the_regeneration_interval(interval):
    figures = measure(
        {"mode": "prerendered", "request_rate": 200, "regen_interval_s": interval}
    )
    # Each page's file is replaced once per interval T, at the same point of
    # every run, so its age at a moment picked at random is uniform on [0, T);
    # Poisson views see the site at such random moments (PASTA), so the mean
    # age is T/2. The render times' jitter shifts a page's replacement by well
    # under a second, and the 240,000 views leave a standard error near 0.1 %:
    # 2 % is ample and still tells T/2 from any other simple answer.
    assert figures["mean_staleness_s"] == pytest.approx(interval / 2, rel=0.02)
    assert figures["backend_requests"] == 0


def test_regeneration_slower_than_its_interval_is_skipped_and_pages_grow_older():
    # 2,000 pages one at a time take 120 s, twice the interval.
    figures = measure(
        {"mode": "prerendered", "pages": 2000, "regen_workers": 1, "request_rate": 100}
    )
    assert figures["regen_skipped"] >= 9
    assert figures["last_regen_s"] > 110
    assert figures["mean_staleness_s"] > 45


def test_a_published_change_is_seen_outdated_until_the_next_regeneration():
    engine = Prerender(
        {**SITE, "mode": "prerendered", "request_rate": 300, "edit_rate": 0}, seed=2
    )
    engine.advance(80)  # the run that started at 60 s finished about 15 s later
    engine.reset_stats()
    engine.apply("publish")
    engine.advance(40)  # still before the run at 120 s
    assert engine.metrics()["outdated_share"] == 1.0
    assert engine.metrics()["mean_outdated_s"] == pytest.approx(20, rel=0.05)
    engine.advance(20 + 20)  # the run at 120 s has re-rendered every page
    engine.reset_stats()
    engine.advance(30)
    assert engine.metrics()["outdated_share"] == 0.0


def test_recent_outdated_share_shows_a_late_publish_at_full_size():
    engine = Prerender(
        {**SITE, "mode": "prerendered", "request_rate": 300, "edit_rate": 0}, seed=2
    )
    # Ten regenerations with no change (the one at 600 s is over by 630 s).
    engine.advance(630)
    engine.apply("publish")
    engine.advance(3)
    figures = engine.metrics()
    # Every page is out of date until the run at 660 s; the share since the
    # start is diluted by the 630 s before the publish, the last 3 s are not.
    assert figures["outdated_share_recent"] == 1.0
    assert figures["outdated_share"] < 0.01
    engine.advance(30 + 15 + 3)  # the run at 660 s has re-rendered every page
    figures = engine.metrics()
    assert figures["outdated_share_recent"] == 0.0
    assert figures["outdated_share"] > 0.03


def test_a_purge_sends_views_to_the_backend_until_the_pages_are_stored_again():
    engine = Prerender(
        {**SITE, "mode": "prerendered", "request_rate": 500, "edit_rate": 0}, seed=3
    )
    engine.advance(90)
    assert engine.metrics()["backend_per_s_recent"] == 0
    engine.apply("publish")
    engine.apply("purge")
    engine.reset_stats()
    engine.advance(1)
    # Right after the purge every page misses until a visitor's render of it is
    # stored: most views of the first second need the backend (rendered, still
    # waiting for a worker, or refused).
    figures = engine.metrics()
    missed = figures["requests"] - figures["cdn_hits"]
    assert missed > 0.4 * figures["requests"]
    assert figures["backend_utilization"] > 0.9
    engine.advance(30)
    # The pages are stored again (the popular ones within a second); only rare
    # ones still miss, and what visitors saw was current, not the old content.
    assert engine.metrics()["backend_per_s_recent"] < 0.05 * 500
    assert engine.metrics()["outdated_share"] == 0.0


def test_a_traffic_spike_overloads_dynamic_rendering_but_not_the_cdn():
    spike = [make_step(Prerender, 300, "spike", {"factor": 5, "duration_s": 60})]
    dynamic = run_headless(
        Prerender,
        {**SITE, "mode": "dynamic", "request_rate": 200},
        seed=4,
        duration=360,
        warmup=300,
        steps=spike,
    ).metrics
    static = run_headless(
        Prerender,
        {**SITE, "mode": "prerendered", "request_rate": 200},
        seed=4,
        duration=360,
        warmup=300,
        steps=spike,
    ).metrics
    # 1,000 views/s need 60 workers' worth of rendering; there are 16.
    assert dynamic["backend_utilization"] > 0.99
    assert dynamic["dropped"] > 10_000
    assert dynamic["p95_latency_ms"] > 1000
    assert static["dropped"] == 0
    assert static["p95_latency_ms"] == pytest.approx(15.0)


@settings(max_examples=200, deadline=None)
@given(
    mode=st.sampled_from(["dynamic", "prerendered"]),
    pages=st.integers(1, 60),
    workers=st.integers(1, 6),
    queue=st.integers(1, 30),
    rate=st.floats(1, 300),
    actions=st.lists(
        st.sampled_from(
            [
                "advance",
                "advance",
                "publish",
                "purge",
                "spike",
                "switch_mode",
                "workers",
                "pages",
            ]
        ),
        max_size=12,
    ),
    value=st.integers(1, 60),
    seed=st.integers(0, 1000),
)
def test_views_are_conserved_and_the_backend_never_exceeds_its_bounds(
    mode, pages, workers, queue, rate, actions, value, seed
):
    engine = Prerender(
        {
            "mode": mode,
            "pages": pages,
            "backend_workers": workers,
            "backend_queue": queue,
            "request_rate": rate,
            "render_ms": 30,
            "regen_interval_s": 2,
            "regen_workers": 2,
            "edit_rate": 2,
        },
        seed=seed,
    )
    most_workers = workers
    for action in actions:
        if action == "advance":
            engine.advance(0.6)
        elif action == "publish":
            engine.apply("publish", {"page": value % engine.p["pages"]})
        elif action == "purge":
            engine.apply("purge")
        elif action == "spike":
            engine.apply("spike", {"factor": 4, "duration_s": 1})
        elif action == "switch_mode":
            engine.set_param(
                "mode",
                "dynamic" if engine.p["mode"] == "prerendered" else "prerendered",
            )
        elif action == "workers":
            engine.set_param("backend_workers", value % 6 + 1)
            most_workers = max(most_workers, value % 6 + 1)
        else:
            engine.set_param("pages", value)
        engine.advance(0.2)
        figures = engine.metrics()
        queued = [job for job in engine.queue if job[1] == 0]
        # Every view was served (from the CDN or by a render that started), was
        # refused, or is waiting for a backend worker.
        assert figures["requests"] == (
            figures["cdn_hits"]
            + figures["backend_requests"]
            + figures["dropped"]
            + len(queued)
        )
        assert engine.waiting_requests == len(queued) <= engine.p["backend_queue"]
        # Busy workers never outnumber the most ever configured; after a shrink
        # the extra ones only finish what they had started.
        assert 0 <= engine.busy <= most_workers
        assert engine.busy <= max(engine.size, figures["backend_busy"])
        assert len(engine.queue) - len(queued) <= engine.p["regen_workers"]
        assert figures["mean_staleness_s"] >= 0
        assert 0.0 <= figures["outdated_share"] <= 1.0
        assert 0.0 <= figures["outdated_share_recent"] <= 1.0
        assert 0.0 <= figures["backend_utilization"] <= 1.0 + 1e-9


def test_a_page_past_the_last_one_is_refused_naming_the_pages_the_site_has():
    engine = Prerender({"pages": 40})
    for command in ("publish", "purge"):
        with pytest.raises(CommandError) as info:
            engine.apply(command, {"page": 40})
        assert info.value.field == f"{command}.page"
        assert "from -1 to 39" in info.value.message
