"""Link to this moment: another visitor opens it and goes on from that very frame."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def timeline(app_url, run_id):
    with urllib.request.urlopen(f"{app_url}/api/runs/{run_id}/timeline") as response:
        return json.load(response)


def test_a_link_to_a_moment_replays_the_run_there_as_the_visitors_own(browser, app_url):
    owner = browser.new_context(viewport={"width": 1366, "height": 768})
    page = owner.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{app_url}/sandbox/queue/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.select_option("#sim-speed", "4")
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 20"
    )
    page.click("#sim button[data-command=kill_worker]")
    page.wait_for_function(
        "() => (document.querySelector('.sim').dataset.lastCommand || '').startsWith('kill_worker@')"
    )
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 40"
    )
    page.click("#sim button:text('Pause')")
    page.wait_for_selector(".sim[data-status=paused]")
    page.click("text=Link to this moment")
    link = page.input_value(".sim-link-url")
    query = parse_qs(urlparse(link).query)
    source_id = page.get_attribute(".sim", "data-run-id")
    assert query["run"] == [source_id]
    at = int(query["at"][0])
    assert at == int(page.get_attribute(".sim", "data-seq"))
    assert page.is_visible(".sim-link-note")

    # Someone else opens it: a new run of theirs, from frame `at`, live.
    visitor = browser.new_context(viewport={"width": 390, "height": 844})
    other = visitor.new_page()
    other.on("pageerror", lambda e: errors.append(str(e)))
    other.goto(link)
    other.wait_for_function(
        "(at) => { const d = document.querySelector('.sim').dataset;"
        " return d.status === 'running' && Number(d.seq) > at; }",
        arg=at,
        timeout=20_000,
    )
    fork_id = other.get_attribute(".sim", "data-run-id")
    assert fork_id != source_id
    assert "run=" not in other.url  # a reload carries on with the new run
    assert "watching" not in other.text_content(
        ".sim-status"
    )  # it is theirs to control
    # Its timeline holds the source's controls before that frame, the kill among them.
    copied = [c for c in timeline(app_url, fork_id)["controls"] if c["seq"] < at]
    before = [c for c in timeline(app_url, source_id)["controls"] if c["seq"] < at]
    assert copied == before
    assert any(c.get("name") == "kill_worker" for c in copied)
    # The figures go on from the moment's simulated time, not from zero.
    t = float(query["t"][0])
    first_row = other.locator("#sim .chart-table tbody tr th").last
    other.locator("#sim .chart-data summary").first.click()
    assert float(first_row.text_content()) >= t - 0.5
    assert errors == []
    owner.close()
    visitor.close()
