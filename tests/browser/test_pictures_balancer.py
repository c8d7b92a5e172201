"""The balancer's live picture: servers that move with the frames and take faults."""

from __future__ import annotations

import pytest

from tests.browser.conftest import (
    start_run,
    wait_for_command,
    wait_for_state,
    wait_for_words,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

PICTURE = "#sim .picture"


def server(page, number):
    return page.locator(f"{PICTURE} .pic-action:has(.pic-name:text-is('s{number}'))")


def state_of(locator):
    return locator.locator(".pic-state").text_content()


def test_servers_show_their_load_and_a_click_kills_one_and_enter_revives_it(
    page, app_url
):
    start_run(page, app_url, "balancer", "4")
    balancer = page.locator(f"{PICTURE} .pic-node:has(.pic-name:text-is('Balancer'))")
    assert state_of(balancer) == "round robin"
    # The picture follows the frames: the servers' held counts change.
    first = page.locator(f"{PICTURE} .pic-queue").evaluate_all(
        "(qs) => qs.map((q) => q.dataset.count).join()"
    )
    page.wait_for_function(
        "(first) => [...document.querySelectorAll('#sim .picture .pic-queue')]"
        ".map((q) => q.dataset.count).join() !== first",
        arg=first,
        timeout=10_000,
    )
    # Round robin at load 0.8 has theory lines (E_n/M/1) on its charts.
    page.wait_for_selector("#sim .chart-plot[data-theory='line']", timeout=10_000)
    two = server(page, 2)
    assert two.get_attribute("aria-label") == "Kill server 2"
    before = page.get_attribute(".sim", "data-last-command")
    two.click()
    wait_for_command(page, "kill", before)
    wait_for_state(page, "s2", "down")
    assert state_of(two) == "down"
    assert two.get_attribute("aria-label") == "Revive server 2"
    wait_for_words(page, "(t) => t.includes('server 2 down')")
    # Four servers left take a load of 1: the lines give way to a reason.
    page.wait_for_function(
        "() => document.querySelectorAll(\"#sim .chart-plot[data-theory='line']\")"
        ".length === 0",
        timeout=10_000,
    )
    assert "load is 1.00" in page.text_content("#sim .sim-charts")
    # The keyboard works as the mouse does: focus the dead server, press Enter.
    before = page.get_attribute(".sim", "data-last-command")
    two.focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "revive", before)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .picture .pic-node')].some((n) =>"
        " n.querySelector('.pic-name').textContent === 's2'"
        " && n.dataset.state !== 'down')",
        timeout=10_000,
    )
    assert state_of(two) != "down"
    assert page.errors == []


def test_dns_round_robin_shows_each_resolvers_cached_answer_and_no_theory_line(
    page, app_url
):
    start_run(page, app_url, "balancer", "4", selects={"strategy": "dns_round_robin"})
    resolver = page.locator(
        f"{PICTURE} .pic-node:has(.pic-name:text-is('Client 10.0.0.0'))"
    )
    # That client's resolver holds an answer once it has asked (until then it says
    # its share of the traffic).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .picture .pic-node')]"
        ".some((n) => n.querySelector('.pic-name').textContent === 'Client 10.0.0.0'"
        " && /^cached s\\d+/.test(n.querySelector('.pic-state').textContent)"
        " && n.querySelector('.pic-detail').textContent.startsWith('TTL '))",
        timeout=10_000,
    )
    assert resolver.locator(".pic-detail").text_content().startswith("TTL ")
    ttl = resolver.locator(".pic-detail").text_content()
    page.wait_for_function(
        "(ttl) => [...document.querySelectorAll('#sim .picture .pic-node')]"
        ".find((n) => n.querySelector('.pic-name').textContent === 'Client 10.0.0.0')"
        ".querySelector('.pic-detail').textContent !== ttl",
        arg=ttl,
        timeout=10_000,
    )
    # Killing the server a busy client cached leaves that client on a dead server
    # (with time left on its answer, so that it still holds it after the kill).
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .picture .pic-node')]"
        ".find((n) => n.querySelector('.pic-name').textContent === 'Client 10.0.0.0')"
        ".querySelector('.pic-detail').textContent.match(/^TTL ([\\d.]+)/)?.[1] >= 10",
        timeout=20_000,
    )
    cached = resolver.locator(".pic-state").text_content().split()[1]
    before = page.get_attribute(".sim", "data-last-command")
    server(page, cached.removeprefix("s")).click()
    wait_for_command(page, "kill", before)
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('#sim .picture .pic-state')]"
        ".some((s) => s.textContent === `cached ${name} (dead)`)",
        arg=cached,
        timeout=10_000,
    )
    assert state_of(server(page, cached.removeprefix("s"))) == "down"
    # No standard model for DNS round robin: the chart says so instead of a line.
    assert page.locator("#sim .chart-plot[data-theory='none']").count() >= 1
    assert page.locator("#sim .chart-plot[data-theory='line']").count() == 0
    assert page.errors == []
