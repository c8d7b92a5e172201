"""A student going from lesson to lesson, with the app's own quota of 3 live runs.

Run, next lesson, Run, next lesson...: the runs left behind stop making room; a
reloaded lesson carries on with its run; the speed chosen before Run is the run's.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import answer_prediction, own_server, serving

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LESSONS = [
    "caching-and-eviction",
    "job-queues",
    "raid",
    "master-slave-replication",
    "balancer-failover",
]


@pytest.fixture(scope="module")
def strict_url(app_env, tmp_path_factory):
    """A server of this module's own, with the default quota (3 live runs)."""
    tmp = tmp_path_factory.mktemp("strict")
    env = own_server(app_env, tmp, SCALELAB_RUNS_PER_VISITOR=None)
    with serving(env, tmp / "serve.log") as url:
        yield url


def open_lesson(page, url, slug):
    page.goto(f"{url}/lessons/{slug}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)


def run_and_wait(page):
    page.click("#sim .btn-primary")
    page.wait_for_function(
        "() => Number(document.querySelector('#sim').dataset.seq || 0) >= 5",
        timeout=20_000,
    )
    return page.get_attribute("#sim", "data-run-id")


def test_going_from_lesson_to_lesson_never_locks_the_student_out(page, strict_url):
    runs = []
    for slug in LESSONS:
        open_lesson(page, strict_url, slug)
        page.wait_for_timeout(4000)  # reading, before pressing Run
        runs.append(run_and_wait(page))
        assert page.is_hidden("#sim .sim-error"), page.text_content("#sim .sim-error")
    assert len(set(runs)) == 5
    # The runs of the lessons left behind stop: at most 3 live at the end.
    statuses = page.evaluate(
        """async (ids) => Promise.all(ids.map(async (id) =>
            (await (await fetch(`/api/runs/${id}/`)).json()).status))""",
        runs,
    )
    assert statuses[-1] == "running"
    assert statuses.count("running") <= 3
    assert page.errors == []


def test_a_reloaded_lesson_carries_on_with_its_run(page, strict_url):
    open_lesson(page, strict_url, "caching-and-eviction")
    first = run_and_wait(page)
    page.reload()
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    # The same run, its charts refilled from what was sent before the reload.
    page.wait_for_function(
        "() => Number(document.querySelector('#sim').dataset.seq || 0) >= 5",
        timeout=20_000,
    )
    assert page.get_attribute("#sim", "data-run-id") == first
    assert page.get_attribute("#sim", "data-status") == "running"
    assert page.text_content("#sim .btn-primary") == "Pause"
    refilled = page.evaluate(
        "() => { const p = document.querySelector('.chart-plot'); return p && p.data ? p.data[0].x.length : 0; }"
    )
    assert refilled >= 5
    assert page.errors == []


def test_the_speed_chosen_before_run_is_the_runs(page, strict_url):
    open_lesson(page, strict_url, "job-queues")
    page.select_option("#sim select[id$=speed]", "8")
    run_id = run_and_wait(page)
    page.wait_for_function(
        """async (id) => (await (await fetch(`/api/runs/${id}/`)).json()).speed === 8""",
        arg=run_id,
        timeout=10_000,
    )
    assert page.input_value("#sim select[id$=speed]") == "8"
    # Simulated time runs eight times faster than the wall clock.
    t0 = page.evaluate("() => performance.now()")
    s0 = float(page.get_attribute("#sim", "data-seq"))
    page.wait_for_timeout(2000)
    frames = float(page.get_attribute("#sim", "data-seq")) - s0
    wall = (page.evaluate("() => performance.now()") - t0) / 1000
    assert frames == pytest.approx(10 * wall, rel=0.4)  # frames stay at 10 a second
    assert page.errors == []


def test_a_paused_run_steps_one_frame_at_a_time(page, strict_url):
    open_lesson(page, strict_url, "raid")
    run_and_wait(page)
    assert page.is_disabled("#sim button:text-is('Step')")  # running: nothing to step
    page.click("#sim .btn-primary")  # Pause
    page.wait_for_selector(".sim[data-status=paused]", timeout=10_000)
    page.wait_for_timeout(500)
    seq = int(page.get_attribute("#sim", "data-seq"))
    for n in (1, 2):
        page.click("#sim button:text-is('Step')")
        page.wait_for_function(
            f"() => Number(document.querySelector('#sim').dataset.seq) === {seq + n}",
            timeout=10_000,
        )
    page.wait_for_timeout(700)  # and nothing more while paused
    assert int(page.get_attribute("#sim", "data-seq")) == seq + 2
    assert page.get_attribute("#sim", "data-status") == "paused"
    assert page.errors == []


def test_the_seed_is_shown_and_the_same_run_can_be_seen_again(page, strict_url):
    open_lesson(page, strict_url, "job-queues")
    first = run_and_wait(page)
    seed = page.text_content("#sim .sim-seed")
    assert seed.startswith("Seed ") and seed[5:].isdigit()
    assert page.is_hidden("#sim button:text-is('Run again with this seed')")
    page.click("#sim button:text-is('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    page.click("#sim button:text-is('Run again with this seed')")
    page.wait_for_function(
        "(first) => { const s = document.querySelector('#sim'); return s.dataset.runId !== first && Number(s.dataset.seq || 0) >= 3; }",
        arg=first,
        timeout=20_000,
    )
    second = page.get_attribute("#sim", "data-run-id")
    got = page.evaluate(
        "async (id) => (await (await fetch(`/api/runs/${id}/`)).json()).seed", second
    )
    assert f"Seed {got}" == seed
    assert page.errors == []


def test_a_skip_link_reaches_the_simulation_in_a_few_tabs(page, strict_url):
    open_lesson(page, strict_url, "caching-and-eviction")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == (
        "Skip to the simulation"
    )
    page.keyboard.press("Enter")
    for _ in range(3):
        page.keyboard.press("Tab")
        if page.evaluate(
            "() => document.activeElement === document.querySelector('#sim .btn-primary')"
        ):
            break
    else:
        raise AssertionError("Run is not within 3 Tabs of the skip link")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => Number(document.querySelector('#sim').dataset.seq || 0) >= 3",
        timeout=20_000,
    )


@pytest.mark.parametrize("slug", ["dns-round-robin", "deploying-the-same-code"])
def test_guided_steps_pressed_promptly_all_work(page, strict_url, slug):
    """Each step pressed the moment it can be (its prediction answered, the step before
    read): none is refused by the simulation."""
    open_lesson(page, strict_url, slug)
    page.select_option("#sim select[id$=speed]", "8")  # delays are simulated time
    steps = page.locator("[data-step-actions]")
    assert steps.count() >= 3
    for n in range(steps.count()):
        step = steps.nth(n)
        answer_prediction(page, step.locator("xpath=ancestor::li[1]"))
        page.wait_for_function(
            "(b) => !b.disabled", arg=step.element_handle(), timeout=60_000
        )
        step.click()
        # While it plays, it says so, and no other step can be pressed.
        assert page.evaluate(
            """(n) => {
                const all = [...document.querySelectorAll('[data-step-actions]')];
                const state = all[n].dataset.stepState;
                return state === 'done' || (state === 'running' && all.every((b) => b.disabled));
            }""",
            n,
        )
        page.wait_for_function(
            "(b) => b.dataset.stepState !== 'running'",
            arg=step.element_handle(),
            timeout=90_000,
        )
        assert step.get_attribute("data-step-state") == "done", page.text_content(
            "#sim .sim-error"
        )
        assert "Done." in step.locator("xpath=following-sibling::*[1]").text_content()
    assert page.is_hidden("#sim .sim-error"), page.text_content("#sim .sim-error")
    assert page.errors == []


def test_feedback_gives_its_verdict_once(page, strict_url):
    open_lesson(page, strict_url, "caching-and-eviction")
    form = page.locator("form.question").nth(1)  # Which entry does LRU evict?
    form.locator("label", has_text="The entry read least recently").click()
    form.locator("button").click()
    page.wait_for_function(
        "() => document.querySelectorAll('form.question')[1].dataset.result === 'right'"
    )
    text = form.locator(".feedback").text_content()
    assert text.startswith("Right: the one left untouched for longest goes first.")
    assert text.count("Right") == 1
    # A wrong choice with words of its own still gets the verdict first.
    form.locator("label", has_text="The entry read least often overall").click()
    form.locator("button").click()
    page.wait_for_function(
        "() => document.querySelectorAll('form.question')[1].dataset.result === 'wrong'"
    )
    assert form.locator(".feedback").text_content().startswith("Not quite.")
