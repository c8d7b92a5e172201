"""Every engine in the browser: its charts move and each of its commands is carried out."""

from __future__ import annotations

import pytest

from simulations.engines import REGISTRY

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def chart_points(page):
    return page.evaluate(
        """() => [...document.querySelectorAll('#sim .chart-plot')].map(
            (p) => (p.data || []).reduce((n, trace) => n + ((trace.x || trace.values || []).length), 0))"""
    )


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_engine_streams_to_its_charts_and_takes_every_command(page, app_url, kind):
    page.goto(f"{app_url}/sandbox/{kind}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    assert page.locator("#sim .chart-plot").count() >= 1
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 15", timeout=20_000
    )
    first = chart_points(page)
    page.wait_for_timeout(1200)
    later = chart_points(page)
    assert all(n > 0 for n in later), f"a chart of {kind} stayed empty: {later}"
    assert sum(later) > sum(first) or all(n > 0 for n in first)
    for command in REGISTRY[kind].commands:
        # Carried out, or refused by the world with a reason shown (e.g. "upgrade"
        # applies to a vertical fleet only): either way the student sees an answer.
        page.evaluate(
            "() => { delete document.querySelector('.sim').dataset.lastError; }"
        )
        before = page.get_attribute(".sim", "data-last-command")
        page.click(f"#sim button[data-command={command.name}]")
        page.wait_for_function(
            "([name, before]) => { const d = document.querySelector('.sim').dataset;"
            " return (d.lastCommand && d.lastCommand !== before && d.lastCommand.startsWith(name + '@'))"
            " || d.lastError; }",
            arg=[command.name, before],
            timeout=10_000,
        )
        if page.get_attribute(".sim", "data-last-error"):
            assert page.is_visible(".sim-error")
            assert page.text_content(".sim-error").strip()
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert page.errors == []
