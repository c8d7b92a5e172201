"""The live picture of the whole stack, in the browser.

Every layer of the run's setup is drawn in request order, the frame's bottleneck
is marked and named, the run's owner fails and repairs a layer from the picture,
and the picture reads on a phone as on a laptop.
"""

from __future__ import annotations

import math

import pytest

from simulations.engines import REGISTRY
from tests.browser.conftest import start_run, wait_for_command, wait_for_words

if "stack" not in REGISTRY:
    pytest.skip("the stack engine does not exist yet", allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

# Keep the last frame's picture as the server sent it, to hold the drawing to it.
KEEP_FRAMES = """
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        try {
          const msg = JSON.parse(e.data);
          if (msg.type === "frame" && msg.picture) window.lastPicture = msg.picture;
        } catch {}
      });
    }
  };
})();
"""
CARDS = """() => Object.fromEntries([...document.querySelectorAll(
    '#sim .picture [data-role=layer]')].map((g) => [g.dataset.layer, g.dataset.state]))"""
MARKED = """() => [...document.querySelectorAll(
    '#sim .picture [data-role=layer][data-bottleneck=true]')].map((g) => g.dataset.layer)"""
DOTS = "() => document.querySelectorAll('#sim .pic-dot').length"


def layer(page, name):
    return page.locator(f"#sim .picture [data-role=layer][data-layer={name}]")


def pause(page):
    page.click("#sim button:text('Pause')")
    page.wait_for_selector(".sim[data-status=paused]")


def test_the_picture_draws_every_layer_of_the_setup_and_marks_the_bottleneck(
    page, app_url
):
    page.add_init_script(KEEP_FRAMES)
    start_run(page, app_url, "stack", selects={"balancer": "pair"})
    page.wait_for_function("() => window.lastPicture", timeout=10_000)
    pause(page)
    page.wait_for_timeout(1200)  # the sentence is written at most once a second
    sent = page.evaluate("() => window.lastPicture")
    cards = page.evaluate(CARDS)
    assert list(cards) == [x["name"] for x in sent["layers"]]  # in request order
    for x in sent["layers"]:
        if x["on"]:
            assert cards[x["name"]] in ("up", "degraded", "down"), x
            card = layer(page, x["name"])
            assert x["label"] in card.text_content()
            # Half up, as the page's Math.round (Python's round(8.5) is 8).
            assert f"{math.floor(x['util'] * 100 + 0.5)} %" in card.text_content()
        else:
            assert cards[x["name"]] == "off"
    assert page.evaluate(MARKED) == [sent["bottleneck"]]
    neck = layer(page, sent["bottleneck"])
    assert "bottleneck" in neck.text_content()
    label = next(x["label"] for x in sent["layers"] if x["name"] == sent["bottleneck"])
    words = page.text_content("#sim .picture-words")
    assert f"the bottleneck is the {label.lower()}" in words.lower()
    assert "requests a second" in words and "a month" in words
    assert "cache hit ratio" in words and "no CDN" in words
    assert page.errors == []


def test_the_owner_fails_a_layer_by_a_click_and_repairs_it_from_the_keyboard(
    page, app_url
):
    start_run(page, app_url, "stack")
    cache = layer(page, "cache")
    page.wait_for_function(
        "() => document.querySelector('#sim .picture [data-layer=cache]')"
        ".dataset.state === 'up'",
        timeout=10_000,
    )
    assert cache.get_attribute("role") == "button"
    assert cache.get_attribute("aria-label") == "Fail the cache"
    cache.click()
    wait_for_command(page, "fail")
    page.wait_for_function(
        "() => document.querySelector('#sim .picture [data-layer=cache]')"
        ".dataset.state === 'down'",
        timeout=10_000,
    )
    assert "down" in cache.text_content()  # in words, not only drawn hatched
    wait_for_words(page, "(t) => t.includes('the cache is down')")
    assert cache.get_attribute("aria-label") == "Repair the cache"
    cache.focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "repair")
    page.wait_for_function(
        "() => document.querySelector('#sim .picture [data-layer=cache]')"
        ".dataset.state === 'up'",
        timeout=10_000,
    )
    wait_for_words(page, "(t) => !t.includes('is down')")
    assert page.errors == []


def test_with_reduced_motion_no_dots_move_and_the_links_give_the_rates(
    browser, app_url
):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, reduced_motion="reduce"
    )
    page = context.new_page()
    start_run(page, app_url, "stack")
    page.wait_for_timeout(800)
    assert page.evaluate(DOTS) == 0
    rates = page.evaluate(
        "() => [...document.querySelectorAll('#sim .picture .pic-link-label')]"
        ".map((t) => t.textContent).filter(Boolean)"
    )
    assert rates and all(r.endswith("/s") for r in rates)
    context.close()


def test_without_reduced_motion_requests_flow_as_a_bounded_sample(page, app_url):
    start_run(page, app_url, "stack")
    seen = []
    for _ in range(8):
        page.wait_for_timeout(150)
        seen.append(page.evaluate(DOTS))
    assert 0 < max(seen) <= 60, seen


@pytest.mark.parametrize(
    ("page", "layout"),
    [
        ({"width": 390, "height": 844}, "down"),
        ({"width": 1366, "height": 768}, "across"),
    ],
    indirect=["page"],
)
def test_the_chain_runs_top_to_bottom_on_a_phone_and_stays_readable(
    page, app_url, layout
):
    start_run(page, app_url, "stack")
    svg = page.locator("#sim .picture-svg")
    assert svg.get_attribute("data-layout") == layout
    box = svg.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    # The smallest text of the picture, as drawn on the screen.
    smallest = page.evaluate(
        "() => Math.min(...[...document.querySelectorAll('#sim .picture .pic-detail')]"
        ".filter((t) => t.textContent).map((t) => t.getBoundingClientRect().height))"
    )
    assert smallest >= 11, smallest
    assert page.errors == []
