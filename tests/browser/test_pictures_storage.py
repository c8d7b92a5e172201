"""The live pictures of the data tier: shards, RAID disks and the SQL lab's plans.

Each picture follows the frames, its components inject their faults (clicked, or
activated with the keyboard), and the charts draw theory where there is some.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import (
    start_run,
    wait_for_change,
    wait_for_command,
    wait_for_words,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def wait_command(page, name, before):
    """The shared wait, and the command went through without an error."""
    wait_for_command(page, name, before)
    assert page.get_attribute(".sim", "data-last-error") is None


def state_of(page, label):
    return page.text_content(f"#sim .pic-action[aria-label='{label}'] .pic-state")


def wait_state(page, label, state):
    page.wait_for_function(
        "([label, state]) => { const n = document.querySelector("
        "`#sim .pic-action[aria-label='${label}'] .pic-state`);"
        " return n && n.textContent === state; }",
        arg=[label, state],
        timeout=10_000,
    )


def chart_theories(page):
    return page.evaluate(
        """() => [...document.querySelectorAll('#sim .chart-plot[data-theory]')]
            .map((p) => p.dataset.theory)"""
    )


def test_the_shards_follow_the_load_and_a_keyboard_adds_one(page, app_url):
    start_run(page, app_url, "sharding", "4")
    shards = "#sim .pic-action[aria-label^='Remove shard']"
    assert page.locator(shards).count() == 4
    wait_for_change(page, ".picture-words")
    assert "4 shards on a hash ring" in page.text_content(".picture-words")
    # No resize yet: the moved-keys chart has no theory line, and says why.
    assert "none" in chart_theories(page)
    before = page.get_attribute(".sim", "data-last-command")
    page.focus("#sim .pic-action[aria-label='Add shard']")
    page.keyboard.press("Enter")
    wait_command(page, "add_shard", before)
    page.wait_for_function(
        f'() => document.querySelectorAll("{shards}").length === 5', timeout=10_000
    )
    wait_state(page, "Remove shard 4", "new")
    assert (
        page.locator("#sim .pic-node[data-state=new] .pic-detail")
        .first.text_content()
        .startswith("+")
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .chart-plot[data-theory]')]"
        ".some((p) => p.dataset.theory === 'line')",
        timeout=10_000,
    )
    wait_for_words(page, "(t) => /The last resize moved [0-9,]+ keys/.test(t)")
    # Clicking a shard removes it.
    before = page.get_attribute(".sim", "data-last-command")
    page.click("#sim .pic-action[aria-label='Remove shard 1']")
    wait_command(page, "remove_shard", before)
    page.wait_for_function(
        f'() => document.querySelectorAll("{shards}").length === 4', timeout=10_000
    )
    assert page.locator("#sim .pic-action[aria-label='Remove shard 1']").count() == 0
    assert page.errors == []


def test_a_clicked_disk_fails_and_a_replaced_one_rebuilds(page, app_url):
    # At 1x a rebuild of the default 4 TB disk takes 11 s: long enough to watch.
    start_run(page, app_url, "raid", "1")
    disks = page.locator("#sim .pic-action[aria-label^='Fail disk']")
    assert disks.count() == 4
    # The stripes write data and parity blocks: RAID 5 has one P per stripe.
    cells = page.locator("#sim .pic-stripes[data-disk='3'] text")
    assert cells.first.text_content() == "P"
    wait_for_change(page, "#sim .pic-action[aria-label='Fail disk 0'] .pic-detail")
    assert state_of(page, "Fail disk 1") == "ok"
    before = page.get_attribute(".sim", "data-last-command")
    page.click("#sim .pic-action[aria-label='Fail disk 1']")
    wait_command(page, "fail_disk", before)
    wait_state(page, "Replace disk 1", "failed")
    wait_for_words(page, "(t) => t.includes('Failed: disk 1')", timeout=5_000)
    failed = page.locator("#sim .pic-action[aria-label='Replace disk 1']")
    assert "is-down" in failed.get_attribute("class")
    before = page.get_attribute(".sim", "data-last-command")
    failed.click()
    wait_command(page, "replace_disk", before)
    wait_state(page, "Fail disk 1", "rebuild")
    # The rebuild sweeps down the new disk, and the sentence says how far.
    page.wait_for_function(
        "() => Number(document.querySelector("
        "\"#sim .pic-stripes[data-disk='1'] rect:last-child\")"
        ".getAttribute('height')) > 0",
        timeout=10_000,
    )
    wait_for_words(
        page, "(t) => /Rebuilding disk 1: [0-9]+% done/.test(t)", timeout=5_000
    )
    assert "line" in chart_theories(page)
    assert page.errors == []


def test_the_plan_tree_follows_the_queries_and_an_index_box_adds_it(page, app_url):
    start_run(page, app_url, "sqllab", "4")
    page.wait_for_selector("#sim .pic-plan-node[data-kind]", timeout=10_000)
    shown = page.locator("#sim .pic-node[data-query]").get_attribute("data-query")
    page.wait_for_function(
        "(shown) => document.querySelector('#sim .pic-node[data-query]')"
        ".dataset.query !== shown",
        arg=shown,
        timeout=10_000,
    )
    label = "Add index orders_user_id"
    assert state_of(page, label) == "absent"
    before = page.get_attribute(".sim", "data-last-command")
    page.click(f"#sim .pic-action[aria-label='{label}']")
    wait_command(page, "add_index", before)
    wait_state(page, "Drop index orders_user_id", "present")
    # With the index, user_orders seeks orders instead of scanning them.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sim .pic-plan-node .pic-state')]"
        ".some((t) => t.textContent === 'seek orders via index orders_user_id')",
        timeout=15_000,
    )
    # The SQL lab has no closed-form theory: none of its charts claims a line.
    assert chart_theories(page) == []
    assert page.errors == []


def test_the_app_servers_show_their_own_caches_and_one_added_starts_cold(page, app_url):
    start_run(page, app_url, "localcache", "4", selects={"routing": "by_id"})
    servers = "#sim .pic-action[aria-label^='Remove server']"
    count = page.locator(servers).count()
    assert count >= 2
    assert page.locator("#sim .pic-action[aria-label^='Remove shard']").count() == 0
    # Each box says its own cache's hit ratio, and the words speak of servers.
    page.wait_for_function(
        f"""() => [...document.querySelectorAll("{servers} .pic-detail")]
            .every((d) => /^hit (0|1)\\.\\d\\d$/.test(d.textContent))""",
        timeout=10_000,
    )
    wait_for_words(page, f"(t) => t.startsWith('{count} servers ')")
    before = page.get_attribute(".sim", "data-last-command")
    page.focus("#sim .pic-action[aria-label='Add server']")
    page.keyboard.press("Enter")
    wait_command(page, "add_shard", before)
    page.wait_for_function(
        f'() => document.querySelectorAll("{servers}").length === {count + 1}',
        timeout=10_000,
    )
    wait_for_words(page, "(t) => /The last resize moved [0-9,]+ users/.test(t)")
    assert page.errors == []
