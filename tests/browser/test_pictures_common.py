"""What every live picture shares: bounded dots that follow pause, counts instead of
motion for those who ask for less, the projector's look, and faults only for the
run's owner while it runs."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

DOTS = "() => document.querySelectorAll('#sim .pic-dot').length"
POSITIONS = """() => [...document.querySelectorAll('#sim .pic-dot')]
    .map((d) => `${d.getAttribute('cx')},${d.getAttribute('cy')}`).join(' ')"""


def start(page, app_url, kind="balancer"):
    page.goto(f"{app_url}/sandbox/{kind}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.wait_for_selector("#sim .picture-svg")


def run(page):
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 10", timeout=20_000
    )


def test_dots_are_a_bounded_sample_and_stand_still_while_paused(page, app_url):
    start(page, app_url)
    page.fill("#sim input[name=arrival_rate]", "400")
    page.dispatch_event("#sim input[name=arrival_rate]", "change")
    run(page)
    page.select_option("#sim-speed", "8")
    seen = []
    for _ in range(10):
        page.wait_for_timeout(150)
        seen.append(page.evaluate(DOTS))
    assert max(seen) > 0, "no request was drawn"
    assert max(seen) <= 60, f"more than 60 dots on screen: {seen}"
    page.click("#sim button:text('Pause')")
    page.wait_for_selector(".sim[data-status=paused]")
    page.wait_for_timeout(100)
    before = page.evaluate(POSITIONS)
    page.wait_for_timeout(600)
    assert before and page.evaluate(POSITIONS) == before  # frozen, not finished


def test_with_reduced_motion_there_are_no_dots_and_the_links_give_counts(
    browser, app_url
):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, reduced_motion="reduce"
    )
    page = context.new_page()
    start(page, app_url)
    run(page)
    page.wait_for_timeout(800)
    assert page.evaluate(DOTS) == 0
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#sim .pic-link-label, #sim .picture text')]"
        ".map((t) => t.textContent).join(' ')"
    )
    assert any(ch.isdigit() for ch in labels) and "/s" in labels
    context.close()


def test_components_are_buttons_for_the_owner_of_a_running_run_only(page, app_url):
    start(page, app_url)
    server = page.locator("#sim .pic-action").first
    assert server.get_attribute("role") == "button"
    assert server.get_attribute("aria-disabled") == "true"
    server.click(
        force=True
    )  # aria-disabled: Playwright would wait for it to be enabled
    assert "Press Run first" in page.text_content(".sim-error")
    run(page)
    page.wait_for_function(
        "() => document.querySelector('#sim .pic-action').getAttribute('aria-disabled') === 'false'"
    )
    label = server.get_attribute("aria-label")
    assert label.startswith("Kill")
    server.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => (document.querySelector('.sim').dataset.lastCommand || '').startsWith('kill@')"
    )


def test_the_projector_draws_the_picture_bolder_and_larger(page, app_url):
    start(page, app_url)
    width = page.evaluate(
        "() => getComputedStyle(document.querySelector('#sim .pic-box')).strokeWidth"
    )
    box = page.locator("#sim .picture-svg").bounding_box()
    page.goto(f"{app_url}/sandbox/balancer/?projector=1")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.wait_for_selector("#sim .pic-box")
    bold = page.evaluate(
        "() => getComputedStyle(document.querySelector('#sim .pic-box')).strokeWidth"
    )
    assert float(bold.rstrip("px")) > float(width.rstrip("px"))
    assert page.locator("#sim .picture-svg").bounding_box()["width"] >= box["width"]
