"""Every lesson at phone width and on a projector: it fits, its simulation runs,
and axe-core finds no serious or critical accessibility violation."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from lessons.services import CONTENT_DIR, parse_lesson

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SLUGS = sorted(
    parse_lesson(p.read_text(), p.name)["slug"] for p in CONTENT_DIR.glob("*.md")
)
PHONE = {"width": 390, "height": 844}
PROJECTOR = {"width": 1920, "height": 1080}


def serious(page, **context):
    results = Axe().run(page, **context)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def run_simulation(page):
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) > 10", timeout=20_000
    )


def stop_simulation(page):
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)


@pytest.mark.parametrize(
    ("page", "query"),
    [(PHONE, ""), (PROJECTOR, "?projector=1")],
    indirect=["page"],
    ids=["phone", "projector"],
)
@pytest.mark.parametrize("slug", SLUGS)
def test_the_lesson_fits_runs_and_has_no_serious_accessibility_violation(
    page, app_url, slug, query
):
    page.goto(f"{app_url}/lessons/{slug}/{query}")
    run_simulation(page)
    assert (
        page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        <= 0
    )
    if query:
        assert page.evaluate(
            "() => document.documentElement.classList.contains('projector')"
        )
    problems = serious(page)
    stop_simulation(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/glossary/",
        "/search/?q=cache",
        "/progress/",
        "/sandbox/",
        "/sandbox/cache/",
        "/accounts/login/",
        "/accounts/signup/",
    ],
)
def test_other_pages_have_no_serious_accessibility_violation(page, app_url, path):
    page.goto(f"{app_url}{path}")
    assert (
        page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        <= 0
    )
    assert not serious(page)


def test_presenter_keys_move_through_steps_and_open_the_help(page, app_url):
    page.goto(f"{app_url}/lessons/caching-and-eviction/?projector=1")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.keyboard.press("PageDown")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("body", "data-step") == "2"
    assert page.evaluate("() => document.activeElement.id") == "step-2"
    page.keyboard.press("PageUp")
    assert page.get_attribute("body", "data-step") == "1"
    page.keyboard.press("?")
    assert page.is_visible("#keys-help")
    assert "Next step" in page.text_content("#keys-help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#keys-help")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement?.id === 'sim'")
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null")
    page.keyboard.press("ArrowRight")  # step 2 plays a resize, once predicted
    page.keyboard.press("Enter")  # not yet playable: Enter leads to its prediction
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Lock in my prediction"
    page.wait_for_selector("#step-2 form.prediction[data-phase=answered]")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the step's own button plays it
    page.wait_for_function(
        "() => document.querySelector('.sim').dataset.lastCommand?.startsWith('resize@')",
        timeout=20_000,
    )
    # The command changed a parameter: the controls show the new value.
    page.wait_for_function(
        "() => document.getElementById('sim-p-capacity').value === '100'"
    )
    stop_simulation(page)


def test_a_checkpoint_answer_is_graded_at_once_and_counts_as_progress(page, app_url):
    page.goto(f"{app_url}/lessons/caching-and-eviction/")
    form = page.locator("form.question").first
    # The figures are drawn for this visitor: read them, and work the answer out.
    prompt = form.locator("legend").text_content().replace(",", "")
    rate, db = map(
        int, re.search(r"read (\d+) times .* at most (\d+) reads", prompt).groups()
    )
    right = 1 - db / rate
    form.locator("input[type=number]").fill(f"{right - 0.1:.3f}")
    form.locator("button").click()
    page.wait_for_function(
        "() => document.querySelector('form.question').dataset.result === 'wrong'"
    )
    assert f"The answer is {right:.3g}" in form.locator(".feedback").text_content()
    form.locator("input[type=number]").fill(f"{right:.3f}")
    form.locator("button").click()
    page.wait_for_function(
        "() => document.querySelector('form.question').dataset.result === 'right'"
    )
    page.goto(f"{app_url}/progress/")
    row = page.locator("tr", has_text="Caching and eviction")
    assert "1 of 3" in row.text_content()
