"""The caching lesson in a real browser: run, watch, crash."""

from __future__ import annotations

import pytest

from tests.browser.conftest import play_step

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

LESSON = "/lessons/caching-and-eviction/"


def points(page, title):
    return page.evaluate(
        """(title) => {
            const plot = [...document.querySelectorAll('.chart-plot')].find((p) => p.getAttribute('aria-label') === title);
            return plot && plot.data ? plot.data[0].x.length : -1;
        }""",
        title,
    )


def figure(page, metric):
    text = page.text_content(f".figure-value[data-metric={metric}]")
    return float(text.replace(",", ""))


def open_lesson(page, app_url, query=""):
    page.goto(f"{app_url}{LESSON}{query}")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)


def test_run_streams_to_the_chart_and_a_crash_drops_the_hit_ratio_to_zero(
    page, app_url
):
    open_lesson(page, app_url)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => { const p = document.querySelector('.chart-plot'); return p && p.data && p.data[0].x.length >= 30; }",
        timeout=20_000,
    )
    before = points(page, "Hit ratio (last 3 s)")
    page.wait_for_timeout(1000)
    assert (
        points(page, "Hit ratio (last 3 s)") > before
    )  # the trace keeps gaining points
    ratio = figure(page, "hit_ratio_recent")
    assert 0.0 <= ratio <= 1.0
    assert ratio > 0.2  # a warm cache with the lesson's preset
    page.click("button[data-command=crash]")
    page.wait_for_function(
        "() => document.querySelector('.figure-value[data-metric=hit_ratio_recent]').textContent === '0'",
        timeout=10_000,
    )
    assert figure(page, "db_reads_per_s_recent") > 300  # the database takes the load
    assert "The cache crashed" in page.text_content(".sim-log")
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert page.text_content(".sim-status") == "Stopped: stopped by its owner."
    assert page.errors == []


def test_space_runs_and_pauses_from_the_keyboard(page, app_url):
    open_lesson(page, app_url)
    page.keyboard.press("Space")
    page.wait_for_selector(".sim[data-status=running]", timeout=15_000)
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) > 3", timeout=10_000
    )
    page.keyboard.press("Space")
    page.wait_for_selector(".sim[data-status=paused]", timeout=10_000)
    seq = page.get_attribute(".sim", "data-seq")
    page.wait_for_timeout(800)
    assert page.get_attribute(".sim", "data-seq") == seq  # no frames while paused
    page.keyboard.press("2")  # the second command: crash
    page.wait_for_function(
        "() => document.querySelector('.sim-log').textContent.includes('The cache crashed')",
        timeout=10_000,
    )
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)


def test_an_out_of_range_parameter_is_refused_with_its_allowed_values(page, app_url):
    open_lesson(page, app_url)
    page.fill("#sim-p-capacity", "0")
    page.press("#sim-p-capacity", "Tab")
    assert "must be an integer from 1 to 1000000" in page.text_content(".sim-error")
    assert page.get_attribute("#sim-p-capacity", "aria-invalid") == "true"


@pytest.mark.parametrize(
    ("page", "query"),
    [
        ({"width": 390, "height": 844}, ""),
        ({"width": 1920, "height": 1080}, "?projector=1"),
    ],
    indirect=["page"],
)
def test_the_lesson_fits_a_phone_and_a_projector_without_sideways_scrolling(
    page, app_url, query
):
    open_lesson(page, app_url, query)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) > 10", timeout=15_000
    )
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)


def test_a_step_that_changes_the_strategy_starts_a_new_run_with_it(page, app_url):
    page.goto(f"{app_url}/lessons/scaling-up-and-out/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 10",
        timeout=20_000,
    )
    first = page.get_attribute(".sim", "data-run-id")
    play_step(page, "Start again, scaling out")
    page.wait_for_function(
        "(first) => { const d = document.querySelector('.sim').dataset;"
        " return d.runId && d.runId !== first && d.status === 'running'"
        " && Number(d.seq) >= 5; }",
        arg=first,
        timeout=20_000,
    )
    assert page.input_value("#sim [data-param=strategy] select") == "horizontal"
    assert page.get_attribute(".sim", "data-last-error") is None
    # The first run was ended by its owner, not left running beside the new one.
    status = page.evaluate(
        "(id) => fetch(`/api/runs/${id}/`).then((r) => r.json())", first
    )
    assert status["status"] == "stopped"
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert page.errors == []
