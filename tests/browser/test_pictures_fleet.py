"""The live pictures of the fleet engines: deploy, provisioning and sessions.

Each picture follows the frames, takes a fault on a click (or Enter) on one of
its components, and the charts beside it draw their theory line.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import (
    STATE_OF,
    start_run,
    wait_for_command,
    wait_for_state,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def assert_theory_line(page):
    page.wait_for_selector(
        "#sim .chart-plot[data-theory~=line]", state="attached", timeout=10_000
    )


def test_the_deploy_picture_follows_a_rollout_and_a_server_crashes_on_enter(
    page, app_url
):
    start_run(page, app_url, "deploy")
    wait_for_state(page, "blue5", "serving")
    server = page.locator("#sim .picture [aria-label='Kill server blue5']")
    server.focus()
    page.keyboard.press("Enter")
    wait_for_command(page, "kill_server")
    wait_for_state(page, "blue5", "crashed")
    assert page.locator("#sim .picture [aria-label='Restart server blue5']").count()
    page.click("#sim button[data-command=deploy]")
    # The first rolling batch leaves service to update: the picture says so.
    wait_for_state(page, "blue1", "updating")
    page.wait_for_function(
        "() => document.querySelector('#sim .picture').textContent"
        ".includes('Rollout to v2')",
        timeout=10_000,
    )
    assert_theory_line(page)
    assert page.errors == []


def test_the_provisioning_picture_boots_a_replacement_for_a_killed_instance(
    page, app_url
):
    start_run(page, app_url, "provisioning")
    page.wait_for_function(
        f"() => ({STATE_OF})('CPU') && ({STATE_OF})('CPU').endsWith('% busy')",
        timeout=10_000,
    )
    wait_for_state(page, "i-0", "in service")
    page.click("#sim .picture [aria-label='Kill instance i-0']")
    wait_for_command(page, "kill_instance")
    # The killed instance is gone and the group boots its replacement.
    wait_for_state(page, "i-2", "booting")
    assert page.evaluate(f"() => ({STATE_OF})('i-0')") is None
    assert_theory_line(page)
    assert page.errors == []


def test_the_sessions_picture_shows_the_sessions_lost_with_a_killed_server(
    page, app_url
):
    start_run(page, app_url, "sessions")
    wait_for_state(page, "s2", "up")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .picture .pic-detail')]"
        ".some((t) => /^[1-9][\\d,]* sessions$/.test(t.textContent))",
        timeout=10_000,
    )
    page.click("#sim .picture [aria-label='Kill server 2']")
    wait_for_command(page, "kill")
    wait_for_state(page, "s2", "down")
    page.wait_for_function(
        "() => document.querySelector('#sim .picture').textContent"
        ".includes('Last loss: server 2')",
        timeout=10_000,
    )
    assert page.locator("#sim .picture [aria-label='Restart server 2']").count()
    assert_theory_line(page)
    assert page.errors == []
