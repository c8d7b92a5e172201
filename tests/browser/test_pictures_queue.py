"""The live pictures of the queue and scaling engines, in the browser.

Each picture follows the frames, injects its faults from its components (by
click, and from the keyboard with Enter), and the charts draw theory lines.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import (
    picture_text,
    start_run,
    wait_for_change,
    wait_for_command,
    wait_for_words,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]


def test_the_queue_picture_follows_the_jobs_and_a_worker_dies_from_the_keyboard(
    page, app_url
):
    start_run(page, app_url, "queue")
    workers = page.locator("#sim figure.picture [data-role=worker]")
    assert workers.count() == 4
    wait_for_change(page)
    assert "Job queue:" in picture_text(page)
    assert page.locator("#sim figure.picture [data-state=killed]").count() == 0
    # Erlang C draws its dashed lines beside the measured figures.
    assert page.locator("#sim .chart-plot[data-theory~=line]").count() >= 3
    # Keyboard: focus the first worker and press Enter.
    workers.first.focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "kill_worker")
    page.wait_for_selector(
        "#sim figure.picture [data-role=worker][data-state=killed]", timeout=10_000
    )
    assert "killed" in picture_text(page)
    # Three workers at load 1: no steady state, and the chart says so.
    page.wait_for_selector(
        "#sim .chart-plot[data-theory~=none]", state="attached", timeout=10_000
    )
    assert "no steady state" in page.text_content("#sim")
    assert page.errors == []


def test_the_queue_picture_shows_the_web_threads_at_work_in_sync_mode(page, app_url):
    start_run(page, app_url, "queue", selects={"mode": "sync"})
    page.wait_for_selector("#sim figure.picture [data-role=thread]", timeout=10_000)
    assert "Requests waiting for a thread" in picture_text(page)
    words = page.locator("#sim .picture-words")
    wait_for_words(page, "(t) => t.startsWith('Sync mode')")
    assert "web threads busy" in words.text_content()
    # The timeout bounds the queue: M/M/c+D gives a line even here.
    assert page.locator("#sim .chart-plot[data-theory~=line]").count() >= 3
    assert page.errors == []


def test_the_scaling_picture_draws_each_server_and_a_click_kills_one(page, app_url):
    start_run(
        page,
        app_url,
        "scaling",
        selects={"strategy": "horizontal"},
        numbers={"servers": 3},
    )
    servers = page.locator("#sim figure.picture [data-role=server]")
    page.wait_for_function(
        "() => document.querySelectorAll('#sim figure.picture [data-role=server]')"
        ".length === 3",
        timeout=10_000,
    )
    wait_for_change(page)
    second = servers.nth(1)
    assert second.get_attribute("data-state") == "up"
    assert second.get_attribute("aria-label") == "Kill server web-1"
    second.click()
    wait_for_command(page, "kill_server")
    page.wait_for_function(
        "() => document.querySelectorAll('#sim figure.picture [data-role=server]')[1]"
        ".dataset.state === 'down'",
        timeout=10_000,
    )
    assert "down" in second.text_content()
    wait_for_words(page, "(t) => t.includes('web-1 down')")
    assert page.locator("#sim .chart-plot[data-theory~=line]").count() >= 1
    assert page.errors == []


def test_the_one_server_of_the_vertical_strategy_goes_down_when_clicked(page, app_url):
    start_run(page, app_url, "scaling")
    server = page.locator("#sim figure.picture [data-role=server]")
    page.wait_for_function(
        "() => document.querySelector('#sim figure.picture [data-role=server]')"
        "?.dataset.state === 'up'",
        timeout=10_000,
    )
    assert "workers busy" in server.text_content()
    server.click()
    wait_for_command(page, "kill_server")
    page.wait_for_function(
        "() => document.querySelector('#sim figure.picture [data-role=server]')"
        ".dataset.state === 'down'",
        timeout=10_000,
    )
    assert "serves nothing" in server.text_content()
    assert page.errors == []
