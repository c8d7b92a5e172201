"""Charts readable by everyone: each chart a named figure with a sentence and a data
table, states in words as well as colours, no placeholder in the figures, targets
of at least 24 px, focus never under the docked step, and Pause stops the charts."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import answer_prediction

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}

# A value standing in for "nothing": -1 (Plotly writes its minus as U+2212) or a
# dash alone. "(n-1)/n" in a legend is a formula, not a placeholder.
PLACEHOLDER = re.compile(r"(?<![\w)])[-\u2212]1\b|^\s*[–-]\s*$")

# Every text a sighted or a screen-reader user gets from the charts: the plots'
# svg text, the sentences and the tables.
CHART_TEXTS = """() => [...document.querySelectorAll('#sim .chart')].flatMap((c) => [
    ...c.querySelectorAll('svg text, .chart-summary, caption, th, td')].map((e) => e.textContent))"""

# What the command inputs show (a menu's chosen words, a box's value or its hint),
# and the table of latest values.
CONTROL_TEXTS = """() => [
    ...[...document.querySelectorAll('#sim .sim-commands select')]
        .map((s) => s.selectedOptions[0].textContent),
    ...[...document.querySelectorAll('#sim .sim-commands input:not([type=checkbox])')]
        .map((i) => i.value || i.placeholder),
    ...[...document.querySelectorAll('#sim .sim-table td')].map((e) => e.textContent)]"""

# Whether a figure holds a placeholder, shown as a line of its own.
FIGURE_TEXTS = """() => [...document.querySelectorAll('#sim .sim-figures .figure-value')]
    .map((e) => e.textContent)"""

# Buttons, links, fields and toggles smaller than 24x24 CSS px; links inside a
# sentence are exempt (WCAG 2.2, 2.5.8 "inline").
SMALL_TARGETS = """() => [...document.querySelectorAll(
        'a[href], button, input, select, textarea, summary')]
    .filter((e) => e.checkVisibility())
    .filter((e) => !(e.tagName === 'A' && getComputedStyle(e).display === 'inline'
        && e.closest('p, li, dd, td')))
    .map((e) => [e, e.getBoundingClientRect()])
    .filter(([, b]) => b.width < 24 || b.height < 24)
    .map(([e, b]) => `${e.tagName.toLowerCase()}[${e.type || ''}] `
        + `${(e.getAttribute('aria-label') || e.textContent || e.name).trim().slice(0, 40)}`
        + ` ${Math.round(b.width)}x${Math.round(b.height)}`)"""


def open_lesson(page, app_url, slug):
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"{app_url}/lessons/{slug}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)


def wait_for_frames(page, count=10):
    page.wait_for_function(
        f"() => Number(document.querySelector('.sim').dataset.seq) > {count}",
        timeout=20_000,
    )


def stop(page):
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)


def play_first_step(page):
    """Play the first guided step, predicting first when the step asks for it."""
    step = page.locator("li.step").first
    answer_prediction(page, step)
    step.locator("[data-step-actions]").click()


def table_rows(page, title):
    """The body rows of the data table of the chart named ``title``, as text."""
    return page.evaluate(
        """(title) => {
            const figure = [...document.querySelectorAll('#sim figure.chart')]
                .find((f) => f.getAttribute('aria-label') === title);
            return [...figure.querySelectorAll('tbody tr')]
                .map((tr) => [...tr.cells].map((c) => c.textContent));
        }""",
        title,
    )


def test_every_chart_is_a_named_figure_whose_data_table_fills_while_it_runs(
    page, app_url
):
    open_lesson(page, app_url, "raid")
    plots = page.locator("#sim .chart-plot")
    titles = [plots.nth(i).get_attribute("aria-label") for i in range(plots.count())]
    assert len(titles) == 5
    figures = page.locator("#sim figure.chart")
    assert [figures.nth(i).get_attribute("aria-label") for i in range(5)] == titles
    for title in titles:
        assert page.get_by_role("figure", name=title).count() == 1
    # The plot's svg (and its ticks) is hidden from screen readers: the table
    # carries its data.
    assert plots.evaluate_all(
        "(ps) => ps.every((p) => p.closest('[aria-hidden=true]'))"
    )

    page.select_option("#sim-speed", "8")
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => window.scalelabPanels[0].latest?.t > 24", timeout=20_000
    )
    toggles = page.locator("#sim .chart-data > summary")
    for i in range(toggles.count()):
        toggles.nth(i).click()
    page.wait_for_timeout(1200)  # the words are rewritten at most once a second
    for title in titles:
        figure = page.get_by_role("figure", name=title)
        description = page.evaluate(
            "(id) => document.getElementById(id).textContent",
            figure.get_attribute("aria-describedby"),
        )
        assert "No data yet" not in description and "Pause" in description, title
        rows = table_rows(page, title)
        assert rows and all(cell.strip() for row in rows for cell in row), title
    # A line chart keeps one row a simulated second, the last 20 at most.
    rows = table_rows(page, titles[0])
    assert len(rows) == 20
    times = [float(row[0]) for row in rows]
    assert times == sorted(times, reverse=True) and times[0] - times[-1] >= 18
    disks = table_rows(page, titles[1])
    assert [row[0] for row in disks] == ["disk 0", "disk 1", "disk 2", "disk 3"]
    stop(page)


@pytest.mark.parametrize(
    "slug",
    [
        "raid",
        "scaling-the-database",
        "pre-rendering",
        "balancer-failover",
        "write-through-vs-write-behind",
        "job-queues",
    ],
)
def test_no_placeholder_reaches_the_charts_figures_or_controls(page, app_url, slug):
    open_lesson(page, app_url, slug)
    texts = page.evaluate(CHART_TEXTS) + page.evaluate(CONTROL_TEXTS)
    before = [t for t in texts if PLACEHOLDER.search(t) or not t.strip()]
    assert not before, f"before the run: {before}"
    page.click("#sim .btn-primary")
    wait_for_frames(page)
    page.wait_for_timeout(1200)
    shown = (
        page.evaluate(CHART_TEXTS)
        + page.evaluate(FIGURE_TEXTS)
        + page.evaluate(CONTROL_TEXTS)
    )
    stop(page)
    assert not [t for t in shown if PLACEHOLDER.search(t)]


def test_a_yes_or_no_argument_is_a_checkbox_and_an_unset_one_is_in_words(page, app_url):
    open_lesson(page, app_url, "job-queues")
    before_ack = page.locator("#sim-c-kill_worker-before_ack")
    assert before_ack.get_attribute("type") == "checkbox"
    assert not before_ack.is_checked()
    open_lesson(page, app_url, "raid")
    disk = page.locator("#sim [data-command=fail_during_rebuild] select")
    assert disk.evaluate("(s) => s.selectedOptions[0].textContent") == (
        "a disk the rebuild reads from"
    )
    assert disk.input_value() == "-1"  # what the command is sent
    open_lesson(page, app_url, "pre-rendering")
    page_arg = page.locator("#sim [data-command=publish] input.arg")
    assert page_arg.input_value() == ""
    assert page_arg.get_attribute("placeholder") == "every page"


def test_a_disk_state_is_written_under_its_bar_and_in_the_table(page, app_url):
    open_lesson(page, app_url, "raid")
    title = page.locator("#sim .chart-plot").nth(1).get_attribute("aria-label")
    page.click("#sim .btn-primary")
    wait_for_frames(page)
    page.get_by_role("figure", name=title).locator("summary").click()
    bars = page.get_by_role("figure", name=title).locator(".xtick text")
    page.fill("#sim-c-fail_disk-disk", "1")
    page.click("#sim button[data-command=fail_disk]")
    bars.filter(has_text="failed").wait_for(timeout=10_000)
    assert bars.filter(has_text="disk 1").text_content().endswith("failed")
    page.fill("#sim-c-replace_disk-disk", "1")
    page.click("#sim button[data-command=replace_disk]")
    bars.filter(has_text="rebuilding").wait_for(timeout=10_000)
    page.wait_for_timeout(1200)
    states = {row[0]: row[-1] for row in table_rows(page, title)}
    stop(page)
    assert states == {
        "disk 0": "working",
        "disk 1": "rebuilding",
        "disk 2": "working",
        "disk 3": "working",
    }


def test_a_dead_balancer_says_down_rather_than_showing_an_empty_bar(page, app_url):
    open_lesson(page, app_url, "balancer-failover")
    page.click("#sim .btn-primary")
    wait_for_frames(page)
    page.click("#sim button[data-command=kill_active]")
    ticks = page.locator("#sim .chart .xtick text")
    ticks.filter(has_text="down").wait_for(timeout=10_000)
    assert "lb-a" in ticks.filter(has_text="down").first.text_content()
    stop(page)


@pytest.mark.parametrize(
    "page", [PHONE, DESKTOP], indirect=True, ids=["phone", "desktop"]
)
def test_every_control_of_the_lesson_and_its_panel_is_at_least_24px(page, app_url):
    # The RAID lesson has every kind: sliders, a checkbox, radios, number fields.
    open_lesson(page, app_url, "raid")
    page.evaluate(
        "() => document.querySelectorAll('details').forEach((d) => d.open = true)"
    )
    assert page.locator("#sim input[type=checkbox]").count() >= 1
    assert page.locator("input[type=radio]").count() >= 1
    small = page.evaluate(SMALL_TARGETS)
    assert not small, "\n".join(small)


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_focus_is_never_hidden_under_the_docked_step(page, app_url):
    open_lesson(page, app_url, "raid")
    play_first_step(page)
    page.wait_for_selector("#step-dock:not([hidden])", timeout=20_000)
    page.evaluate(
        "() => document.querySelectorAll('#sim details').forEach((d) => d.open = true)"
    )
    hidden = []
    for key in ["Tab"] * 30 + ["Shift+Tab"] * 45:
        page.keyboard.press(key)
        hidden += page.evaluate(
            """() => {
                const e = document.activeElement;
                const dock = document.getElementById('step-dock');
                if (e === document.body || dock.hidden || dock.contains(e)) return [];
                const b = e.getBoundingClientRect();
                const d = dock.getBoundingClientRect();
                const under = b.top < d.bottom && b.bottom > d.top;
                const name = `${e.tagName} ${(e.textContent || e.id).trim().slice(0, 30)}`;
                return under ? [`${name} at ${Math.round(b.top)} px, dock to ${Math.round(d.bottom)} px`] : [];
            }"""
        )
    stop(page)
    assert not hidden, hidden


def test_pause_stops_the_charts_and_their_tables(page, app_url):
    open_lesson(page, app_url, "raid")
    page.click("#sim .btn-primary")
    wait_for_frames(page)
    page.locator("#sim .chart-data > summary").first.click()
    page.click("#sim button:text('Pause')")
    page.wait_for_selector(".sim[data-status=paused]", timeout=10_000)
    page.wait_for_timeout(1200)  # the last frames, and the words' last rewrite
    counts = "() => [...document.querySelectorAll('#sim .chart-plot')].map((p) => p.data[0].x.length)"
    first = (page.evaluate(counts), page.text_content("#sim .chart-table"))
    page.wait_for_timeout(1500)
    assert (page.evaluate(counts), page.text_content("#sim .chart-table")) == first
    stop(page)
