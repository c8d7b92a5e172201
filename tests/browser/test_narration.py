"""The event log and the screen reader's announcements speak words, not codes."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

LESSON = "/lessons/balancer-failover/"
ANNOUNCER = ".sim p[aria-live=polite]"  # the panel's, not a chart's (those are off)
CODE = re.compile(r"\b[a-z_]+\.[a-z_]+\b")  # an event type such as balancer.down


def test_killing_the_active_balancer_is_told_in_words_in_the_log_and_aloud(
    page, app_url
):
    page.goto(f"{app_url}{LESSON}")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.click("#sim .btn-primary")
    page.wait_for_selector(".sim[data-status=running]", timeout=15_000)
    page.click("button[data-command=kill_active]")
    page.wait_for_function(
        "() => document.querySelector('.sim-log').textContent.includes('went down')",
        timeout=10_000,
    )
    lines = page.eval_on_selector_all(
        ".sim-log li", "(items) => items.map((li) => li.textContent)"
    )
    down = next(line for line in lines if "went down" in line)
    # The lesson's preset has no standby: nobody is ready to take over.
    assert re.fullmatch(
        r"\d+\.\d s  Balancer lb-a went down, cutting [\d,]+ connections?; "
        r"the standby is not ready",
        down,
    ), down
    for line in lines:
        assert not CODE.search(line), line
        assert not re.search(r"\b(true|false|null|undefined)\b", line), line
    # The announcer says it too, within its window, in the same words.
    page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent.includes('went down')",
        arg=ANNOUNCER,
        timeout=10_000,
    )
    said = page.text_content(ANNOUNCER)
    assert "Balancer lb-a went down" in said
    assert not CODE.search(said), said
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert page.errors == []


def test_a_stream_of_slow_queries_neither_floods_the_log_nor_the_announcer(
    page, app_url
):
    page.goto(f"{app_url}/lessons/sql-tuning/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.evaluate(
        """(sel) => {
            window.said = [];
            const live = document.querySelector(sel);
            new MutationObserver(() => window.said.push([performance.now(), live.textContent]))
                .observe(live, { childList: true, characterData: true, subtree: true });
        }""",
        ANNOUNCER,
    )
    page.click("#sim .btn-primary")
    page.wait_for_selector(".sim[data-status=running]", timeout=15_000)
    page.wait_for_timeout(10_000)
    lines = page.eval_on_selector_all(
        ".sim-log li[data-event='query.slow']",
        "(items) => items.map((li) => li.textContent)",
    )
    times = [float(line.split(" s ")[0]) for line in lines]
    # About two queries a second are slow; a line gathers those of five seconds.
    assert lines, "no slow query in ten seconds"
    assert len(lines) <= max(times) / 5 + 2, lines
    assert any("more like it" in line for line in lines), lines
    said = page.evaluate("window.said")
    assert said, "nothing was announced"
    gaps = [b[0] - a[0] for a, b in zip(said, said[1:])]
    assert all(gap >= 3500 for gap in gaps), gaps
    assert all("query" in text and not CODE.search(text) for _, text in said), said
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    assert page.errors == []
