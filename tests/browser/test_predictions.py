"""Predict, then see: a step plays only once its prediction is answered, and its
explanation opens after it ran, beside the figure measured in the student's run."""

from __future__ import annotations

import pytest

from tests.browser.conftest import answer_prediction

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SLUG = "caching-and-eviction"


def open_lesson(page, url):
    page.goto(f"{url}/lessons/{SLUG}/")
    page.wait_for_selector(".sim[data-ready=true]", timeout=20_000)


def test_a_step_plays_after_its_prediction_and_reveals_it_beside_the_run(page, app_url):
    open_lesson(page, app_url)
    page.select_option("#sim select[id$=speed]", "8")
    step = page.locator("li.step").nth(1)
    button = step.locator("[data-step-actions]")
    # Before predicting: the step cannot be played, it says why, and nothing of
    # "what happened" shows.
    assert button.is_disabled()
    assert "Make your prediction first" in step.locator(".step-gate").text_content()
    assert step.locator(".reveal").is_hidden()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    # The keyboard cannot get round it either: Enter leads to the prediction.
    page.keyboard.press("Enter")
    assert page.get_attribute("#sim", "data-status") in (None, "idle")
    assert page.evaluate(
        "() => document.activeElement.closest('form.prediction') !== null"
    )
    answer_prediction(page, step)
    said = step.locator(".prediction-state").text_content()
    assert said.startswith("You predicted: ")
    assert button.is_enabled()
    button.click()
    step.locator(".reveal").wait_for(state="visible", timeout=90_000)
    figures = step.locator(".reveal-figures").text_content()
    assert said.split(" Now play")[0] in figures
    assert "Your run measured: " in figures
    assert any(ch.isdigit() for ch in figures.split("Your run measured: ")[1])
    assert button.get_attribute("data-step-state") == "done"
    # The prediction is locked once the step has run.
    assert step.locator("form.prediction button[type=submit]").is_disabled()
    # It is kept with the visitor's progress: the next visit shows both again.
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)
    open_lesson(page, app_url)
    step = page.locator("li.step").nth(1)
    assert step.locator(".reveal").is_visible()
    assert step.locator(".reveal-figures").text_content() == figures
    assert step.locator("form.prediction").get_attribute("data-phase") == "revealed"
    assert page.errors == []


def test_an_empty_prediction_says_what_to_give(page, app_url):
    open_lesson(page, app_url)
    form = page.locator("li.step form.prediction").first
    form.locator("button[type=submit]").click()
    note = form.locator(".prediction-state").text_content()
    assert note.startswith(("Pick one of the choices first.", "Type a number first"))
    assert form.get_attribute("data-phase") == "unanswered"
    assert page.errors == []


def test_a_run_stopped_before_the_reading_leaves_the_step_to_play_again(page, app_url):
    open_lesson(page, app_url)
    step = page.locator("li.step").nth(1)
    answer_prediction(page, step)
    button = step.locator("[data-step-actions]")
    button.click()  # at 1x, the figure is read seconds from now
    page.wait_for_selector(".sim[data-status=running]", timeout=20_000)
    page.click("#sim button:text('Stop')")
    page.wait_for_function(
        "(b) => b.dataset.stepState === 'stopped'",
        arg=button.element_handle(),
        timeout=15_000,
    )
    state = step.locator(".step-state").text_content()
    assert state.startswith("Not finished: the run ended before the step's figure")
    assert step.locator(".reveal").is_hidden()
    assert button.is_enabled()
    assert page.errors == []


def test_a_step_whose_run_cannot_start_says_so_and_can_be_played_later(page, app_url):
    open_lesson(page, app_url)
    busy = '{"errors": {"run": "the site is at its limit of live runs"}}'
    page.route(
        "**/api/runs/",
        lambda route: route.fulfill(
            status=503,
            body=busy,
            headers={"Content-Type": "application/json", "Retry-After": "5"},
        ),
    )
    step = page.locator("li.step").nth(1)
    answer_prediction(page, step)
    button = step.locator("[data-step-actions]")
    button.click()
    page.wait_for_function(
        "(b) => b.dataset.stepState === 'stopped'",
        arg=button.element_handle(),
        timeout=15_000,
    )
    assert step.locator(".step-state").text_content() == (
        "Not finished: no run could be started."
    )
    assert "the site is at its limit" in page.text_content("#sim .sim-error")
    assert button.is_enabled() and step.locator(".reveal").is_hidden()
