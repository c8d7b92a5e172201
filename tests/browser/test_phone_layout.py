"""The lesson page on a phone and at 1366x768: the step being played, the Run button
and the first chart share the screen, and no chart title is cut or overlapped."""

from __future__ import annotations

import pytest

from lessons.services import CONTENT_DIR, parse_lesson
from tests.browser.conftest import answer_prediction, play_step

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SLUGS = sorted(
    parse_lesson(p.read_text(), p.name)["slug"] for p in CONTENT_DIR.glob("*.md")
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}

# Where an element is, and whether it is wholly inside the viewport and on top there
# (not under a docked bar or anything else).
ON_SCREEN = """(el) => {
    const b = el.getBoundingClientRect();
    const inside = b.width > 0 && b.top >= 0 && b.left >= 0
        && b.bottom <= window.innerHeight && b.right <= window.innerWidth;
    const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
    return {inside, onTop: !!hit && (el === hit || el.contains(hit)),
            box: [Math.round(b.top), Math.round(b.bottom)]};
}"""

# Every title box of every chart: inside its plot's svg, and clear of the others.
TITLE_PROBLEMS = """() => {
    const box = (e) => e.getBoundingClientRect();
    const problems = [];
    for (const plot of document.querySelectorAll('.chart-plot')) {
        const svg = plot.querySelector('svg.main-svg');
        if (!svg) continue;
        const s = box(svg);
        const name = plot.getAttribute('aria-label');
        const titles = [...plot.querySelectorAll('.gtitle, .xtitle, .ytitle')]
            .map((e) => [e.getAttribute('class'), box(e)])
            .filter(([, b]) => b.width > 0 && b.height > 0);
        for (const [kind, b] of titles) {
            if (b.left < s.left - 0.5 || b.right > s.right + 0.5
                || b.top < s.top - 0.5 || b.bottom > s.bottom + 0.5) {
                problems.push(`${name}: the ${kind} is cut by the plot's edge`);
            }
        }
        for (let i = 0; i < titles.length; i++) {
            for (let j = i + 1; j < titles.length; j++) {
                const [a, c] = [titles[i][1], titles[j][1]];
                if (a.left < c.right && c.left < a.right && a.top < c.bottom && c.top < a.bottom) {
                    problems.push(`${name}: the ${titles[i][0]} overlaps the ${titles[j][0]}`);
                }
            }
        }
    }
    return problems;
}"""


def open_lesson(page, app_url, slug):
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"{app_url}/lessons/{slug}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)


def on_screen(page, selector):
    return page.locator(selector).first.evaluate(ON_SCREEN)


def title_on_screen(page, title):
    """Whether the step's title is shown, on top and in the viewport, somewhere."""
    return page.evaluate(
        """([title, onScreen]) => {
            const check = new Function(`return (${onScreen})`)();
            const leaves = [...document.querySelectorAll('body *')].filter((el) =>
                el.textContent.includes(title)
                && ![...el.children].some((c) => c.textContent.includes(title)));
            return leaves.some((el) => el.checkVisibility() && check(el).inside && check(el).onTop);
        }""",
        [title, ON_SCREEN],
    )


@pytest.mark.parametrize("page", [PHONE], indirect=True)
@pytest.mark.parametrize("slug", SLUGS)
def test_a_step_played_on_a_phone_shares_the_screen_with_the_run_button_and_first_chart(
    page, app_url, slug
):
    open_lesson(page, app_url, slug)
    button = page.locator("li.step [data-step-actions]").first
    title = button.locator("xpath=ancestor::li[1]//h3").text_content().strip()
    answer_prediction(page, button.locator("xpath=ancestor::li[1]"))
    button.click()
    page.wait_for_function(
        "() => document.querySelector('.sim').dataset.status === 'running'"
        " && Number(document.querySelector('.sim').dataset.seq) > 10",
        timeout=30_000,
    )
    page.wait_for_timeout(300)  # the charts draw on the next animation frame
    assert title_on_screen(page, title), f"the step {title!r} is not on screen"
    run = on_screen(page, "#sim .btn-primary")
    chart = on_screen(page, "#sim .chart-plot")
    assert run["inside"] and run["onTop"], f"Run button at {run['box']}"
    assert chart["inside"] and chart["onTop"], f"first chart at {chart['box']}"
    assert (
        page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        <= 0
    )
    problems = page.evaluate(TITLE_PROBLEMS)
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_back_to_the_step_returns_to_the_step_played_and_focuses_it(page, app_url):
    open_lesson(page, app_url, "raid")
    play_step(page, "Fail disk 1, replace it")
    page.wait_for_selector(".sim[data-status=running]", timeout=20_000)
    page.click("#step-dock button:text('Back to the step')")
    assert page.evaluate("() => document.activeElement.id") == "step-2"
    assert on_screen(page, "#step-2 h3")["inside"]
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)


@pytest.mark.parametrize("page", [DESKTOP], indirect=True)
@pytest.mark.parametrize("slug", SLUGS)
def test_the_first_chart_is_in_view_at_1366x768_while_a_step_is_read(
    page, app_url, slug
):
    open_lesson(page, app_url, slug)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) > 5", timeout=20_000
    )
    page.keyboard.press("PageDown")
    page.keyboard.press("PageDown")
    assert page.get_attribute("body", "data-step") == "2"
    assert on_screen(page, "#step-2 h3")["inside"]
    chart = on_screen(page, "#sim .chart-plot")
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert chart["inside"] and chart["onTop"], f"first chart at {chart['box']}"
