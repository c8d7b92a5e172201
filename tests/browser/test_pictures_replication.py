"""The live pictures of replication and failover: they follow the frames, their
components inject faults when clicked or activated with Enter, theory is drawn."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

STATE_OF = """(name) => {
  const node = [...document.querySelectorAll('.picture .pic-node')].find(
    (n) => n.querySelector('.pic-name').textContent === name);
  return node ? node.dataset.state : null;
}"""


def start(page, app_url, kind, speed="4"):
    page.goto(f"{app_url}/sandbox/{kind}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    page.select_option("#sim-speed", speed)
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) >= 5",
        timeout=20_000,
    )


def picture_text(page):
    return page.text_content(".picture svg")


def wait_for_change(page, before):
    page.wait_for_function(
        "(before) => document.querySelector('.picture svg').textContent !== before",
        arg=before,
        timeout=10_000,
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


def button(page, label_start):
    return page.locator(f".picture [role=button][aria-label^='{label_start}']")


def test_the_replication_picture_follows_the_run_and_its_servers_take_faults(
    page, app_url
):
    start(page, app_url, "replication")
    wait_for_state(page, "r1", "replica")
    first = picture_text(page)
    wait_for_change(page, first)
    assert "replicas up" in page.text_content(".picture-words")
    # a replica, clicked, pauses: its state says so and the command went out
    button(page, "Pause replica r1").click()
    wait_for_command(page, "pause_replica")
    wait_for_state(page, "r1", "paused")
    # the master, activated from the keyboard, dies and a replica is promoted
    button(page, "Kill master m1").focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "kill_master")
    wait_for_state(page, "m1", "down")
    page.wait_for_function(
        "() => /Master r\\d takes/.test(document.querySelector('.picture-words')"
        ".textContent)",
        timeout=10_000,
    )
    # the mean lag chart carries the M/M/1 theory line
    page.wait_for_selector("#sim .chart-plot[data-theory~=line]", timeout=10_000)
    assert page.errors == []


def test_the_failover_picture_follows_the_run_and_its_balancers_take_faults(
    page, app_url
):
    start(page, app_url, "failover", speed="8")
    wait_for_state(page, "lb-a", "active")
    wait_for_state(page, "lb-b", "standby")
    first = picture_text(page)
    wait_for_change(page, first)
    assert "holds the virtual IP" in page.text_content(".picture-words")
    # the active balancer, clicked, dies; the standby takes over the virtual IP
    button(page, "Kill lb-a").click()
    wait_for_command(page, "kill_active")
    wait_for_state(page, "lb-a", "down")
    wait_for_state(page, "lb-b", "active")
    # the heartbeat link, clicked, is cut: the dead balancer's label now revives it
    button(page, "Cut the heartbeat link").click()
    wait_for_command(page, "partition")
    wait_for_state(page, "Heartbeats", "cut")
    assert button(page, "Revive lb-a").count() == 1
    # the failover chart carries the heartbeat theory line
    page.wait_for_selector("#sim .chart-plot[data-theory~=line]", timeout=10_000)
    assert page.errors == []
