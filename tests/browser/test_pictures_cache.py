"""The live pictures of the cache and prerender engines: they follow the frames,
their components inject faults when clicked or activated with Enter, and the
charts draw the theory line."""

from __future__ import annotations

import pytest

from tests.browser.conftest import (
    button,
    start_run,
    wait_for_change,
    wait_for_command,
    wait_for_state,
    wait_for_words,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def theory_lines(page):
    return page.evaluate(
        "() => [...document.querySelectorAll('#sim .chart-plot[data-theory]')]"
        ".map((p) => p.dataset.theory).join(' ')"
    )


def test_the_cache_picture_fills_and_its_cache_crashes_and_restarts(page, app_url):
    start_run(page, app_url, "cache")
    wait_for_state(page, "Cache", "up")
    # the hottest keys get cached as the reads come in: the count in words grows
    page.wait_for_function(
        "() => /: [1-9]\\d* cached/.test(document.querySelector('.picture svg')"
        ".textContent)",
        timeout=10_000,
    )
    assert page.locator(".picture .pic-keys rect.is-full").count() > 0
    assert "of reads hit it" in page.text_content(".picture-words")
    wait_for_change(page)
    # the cache, activated from the keyboard, crashes: it says so, hatched
    button(page, "Crash the cache").focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "crash")
    wait_for_state(page, "Cache", "down")
    assert page.locator(".picture .pic-node.is-down").count() == 1
    wait_for_words(page, "(t) => t.startsWith('Cache down')")
    # clicked again, it restarts (memcached: empty)
    button(page, "Restart the cache").click()
    wait_for_command(page, "restart")
    wait_for_state(page, "Cache", "up")
    # clients, clicked, send a write burst
    button(page, "Send a burst").click()
    wait_for_command(page, "write_burst")
    # the hit-ratio and latency charts draw theory (until the writes begin there)
    assert "line" in theory_lines(page)
    assert page.errors == []


def test_the_prerender_picture_shows_fresh_pages_and_an_edit_makes_one_stale(
    page, app_url
):
    start_run(page, app_url, "prerender", selects={"mode": "prerendered"})
    # the regeneration job renders the pages: squares turn fresh, in words too
    page.wait_for_function(
        "() => document.querySelectorAll('.picture .pic-page[data-state=fresh]')"
        ".length >= 30",
        timeout=15_000,
    )
    marks = page.evaluate(
        "() => [...document.querySelectorAll('.picture .pic-page')].map("
        "(g) => [g.dataset.state, g.querySelector('text').textContent])"
    )
    assert all(
        mark == {"fresh": "F", "stale": "S", "no copy": ""}[state]
        for state, mark in marks
    )
    wait_for_words(page, "(t) => t.includes('views a second come from the CDN')")
    # a fresh page, clicked, is edited: its square says it is stale. The coldest
    # of the pages drawn is edited by the editors about once in ten minutes.
    page_no = max(i for i, (state, _) in enumerate(marks) if state == "fresh")
    button(page, f"Edit page {page_no + 1} (fresh)").click()
    wait_for_command(page, "publish")
    page.wait_for_function(
        '(i) => document.querySelector(`.picture .pic-page[data-page="${i}"]`)'
        ".dataset.state === 'stale'",
        arg=page_no,
        timeout=10_000,
    )
    # the CDN, clicked, is purged: pages lose their copy
    button(page, "Purge every page").click()
    wait_for_command(page, "purge")
    wait_for_words(page, "(t) => /[1-9][\\d,]* with no copy/.test(t)")
    # staleness, utilisation, latency and outdated views have theory lines
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .chart-plot[data-theory]')]"
        ".filter((p) => p.dataset.theory === 'line').length >= 3",
        timeout=10_000,
    )
    assert page.errors == []
