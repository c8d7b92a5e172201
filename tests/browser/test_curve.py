"""The hit-ratio curve in the browser: a progress bar while it runs, then a chart."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_the_curve_job_shows_progress_then_draws_the_curve(page, app_url):
    page.goto(f"{app_url}/sandbox/cache/")
    page.fill("#curve-requests", "2000000")
    page.fill("#curve-keys", "50000")
    page.click("#curve-go")
    page.wait_for_function(
        "() => { const b = document.getElementById('curve-progress'); return !b.hidden && b.value > 0 && b.value < 1; }",
        timeout=30_000,
    )
    page.wait_for_selector("#curve[data-done=true]", timeout=90_000)
    points = page.evaluate("() => document.getElementById('curve-plot').data[0].y")
    assert len(points) >= 15
    assert points == sorted(points)  # a bigger LRU cache never hits less
    assert page.locator("#curve-table tbody tr").count() == len(points)


def test_a_bad_value_is_refused_with_the_allowed_range(page, app_url):
    page.goto(f"{app_url}/sandbox/cache/")
    page.fill("#curve-keys", "3")
    page.click("#curve-go")
    page.wait_for_selector("#curve-error:not([hidden])")
    assert "keys: keys must be an integer from 10 to 1000000" in page.text_content(
        "#curve-error"
    )
