"""The live pictures of replication and failover: they follow the frames, their
components inject faults when clicked or activated with Enter, theory is drawn."""

from __future__ import annotations

import pytest

from tests.browser.conftest import (
    button,
    start_run,
    wait_for_change,
    wait_for_command,
    wait_for_state,
    wait_for_words,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_the_replication_picture_follows_the_run_and_its_servers_take_faults(
    page, app_url
):
    start_run(page, app_url, "replication", "4")
    wait_for_state(page, "r1", "replica")
    wait_for_change(page)
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
    wait_for_words(page, "(t) => /Master r\\d takes/.test(t)")
    # the mean lag chart carries the M/M/1 theory line
    page.wait_for_selector("#sim .chart-plot[data-theory~=line]", timeout=10_000)
    assert page.errors == []


def test_the_failover_picture_follows_the_run_and_its_balancers_take_faults(
    page, app_url
):
    start_run(page, app_url, "failover")
    wait_for_state(page, "lb-a", "active")
    wait_for_state(page, "lb-b", "standby")
    wait_for_change(page)
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
