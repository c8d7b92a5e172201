"""The live pictures of the cache and prerender engines: they follow the frames,
their components inject faults when clicked or activated with Enter, and the
charts draw the theory line."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

STATE_OF = """(name) => {
  const node = [...document.querySelectorAll('.picture .pic-node')].find(
    (n) => n.querySelector('.pic-name') &&
      n.querySelector('.pic-name').textContent === name);
  return node ? node.dataset.state : null;
}"""


def start(page, app_url, kind, speed="8", **params):
    page.goto(f"{app_url}/sandbox/{kind}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    for name, value in params.items():
        page.select_option(f"#sim select[name={name}]", value)
    page.select_option("#sim-speed", speed)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 5",
        timeout=20_000,
    )


def wait_for_state(page, name, state):
    page.wait_for_function(
        f"([name, state]) => ({STATE_OF})(name) === state",
        arg=[name, state],
        timeout=10_000,
    )


def wait_for_command(page, name):
    page.wait_for_function(
        "(name) => (document.querySelector('.sim').dataset.lastCommand || '')"
        ".startsWith(name + '@')",
        arg=name,
        timeout=10_000,
    )


def wait_for_change(page, selector, before):
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel).textContent !== before",
        arg=[selector, before],
        timeout=10_000,
    )


def button(page, label_start):
    return page.locator(f".picture [role=button][aria-label^='{label_start}']")


def theory_lines(page):
    return page.evaluate(
        "() => [...document.querySelectorAll('#sim .chart-plot[data-theory]')]"
        ".map((p) => p.dataset.theory).join(' ')"
    )


def test_the_cache_picture_fills_and_its_cache_crashes_and_restarts(page, app_url):
    start(page, app_url, "cache")
    wait_for_state(page, "Cache", "up")
    # the hottest keys get cached as the reads come in: the count in words grows
    page.wait_for_function(
        "() => /: [1-9]\\d* cached/.test(document.querySelector('.picture svg')"
        ".textContent)",
        timeout=10_000,
    )
    assert page.locator(".picture .pic-keys rect.is-full").count() > 0
    assert "of reads hit it" in page.text_content(".picture-words")
    before = page.text_content(".picture svg")
    wait_for_change(page, ".picture svg", before)
    # the cache, activated from the keyboard, crashes: it says so, hatched
    button(page, "Crash the cache").focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "crash")
    wait_for_state(page, "Cache", "down")
    assert page.locator(".picture .pic-node.is-down").count() == 1
    page.wait_for_function(
        "() => document.querySelector('.picture-words').textContent"
        ".startsWith('Cache down')",
        timeout=10_000,
    )
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
    start(page, app_url, "prerender", mode="prerendered")
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
    page.wait_for_function(
        "() => document.querySelector('.picture-words').textContent"
        ".includes('views a second come from the CDN')",
        timeout=10_000,
    )
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
    page.wait_for_function(
        "() => /[1-9][\\d,]* with no copy/.test(document.querySelector("
        "'.picture-words').textContent)",
        timeout=10_000,
    )
    # staleness, utilisation, latency and outdated views have theory lines
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .chart-plot[data-theory]')]"
        ".filter((p) => p.dataset.theory === 'line').length >= 3",
        timeout=10_000,
    )
    assert page.errors == []
