"""A class in Chromium: a teacher and three students (one on a phone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lessons.services import CONTENT_DIR, parse_lesson
from tests.browser.conftest import answer_prediction
from tests.stack import manage

# A teacher and three students in four browsers: about two minutes on a quiet
# two-core machine, up to four when it is shared.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

LESSON = "caching-and-eviction"
PASSWORD = "pw-teacher-for-tests"


@pytest.fixture(scope="module")
def teacher_account(app_env):
    manage(
        app_env,
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User;"
        f"u, _ = User.objects.get_or_create(username='tess');u.set_password('{PASSWORD}');u.save();"
        "u.groups.add(Group.objects.get_or_create(name='Instructors')[0])",
    )
    return "tess"


def sign_in(page, app_url, username):
    page.goto(f"{app_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def test_a_class_follows_its_teacher_answers_a_poll_looks_up_and_forks(
    browser, app_url, teacher_account
):
    errors = []
    # Four pages drawing live charts share two cores: no animation to draw.
    desk = browser.new_context(
        viewport={"width": 1366, "height": 768}, reduced_motion="reduce"
    )
    teacher = desk.new_page()
    teacher.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(teacher, app_url, teacher_account)
    teacher.goto(f"{app_url}/lessons/{LESSON}/")
    teacher.click("text=Start a class on this lesson")
    teacher.wait_for_selector("#classroom[data-role=teacher]")
    code = teacher.text_content(".class-code").strip()
    assert len(code) == 6
    assert teacher.locator(".class-qr").evaluate(
        "(img) => img.complete && img.naturalWidth > 0"
    )

    # Three students: two by the join URL, one (a phone) typing the code.
    students = []
    for i, size in enumerate([(1366, 768), (1366, 768), (390, 844)]):
        context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, reduced_motion="reduce"
        )
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        if i < 2:
            page.goto(f"{app_url}/join/{code}/")
        else:
            page.goto(f"{app_url}/join/")
            page.fill("#join-code", code.lower())
        page.fill("#join-name", f"student {i}")
        page.click("form.stacked button[type=submit]")
        page.wait_for_selector("#classroom[data-role=student]")
        students.append(page)
    teacher.wait_for_function(
        "() => document.querySelector('[data-class=members]').textContent === '3'"
    )
    # What the room sees names no one (the dashboard of names starts closed).
    assert "student 0" not in teacher.inner_text("#classroom")

    # The teacher runs the simulation: every student watches that very run.
    teacher.click("#sim .btn-primary")
    teacher.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) > 5"
    )
    run = teacher.get_attribute(".sim", "data-run-id")
    for page in students:
        page.wait_for_function(
            "(run) => document.querySelector('.sim').dataset.runId === run",
            arg=run,
            timeout=15_000,
        )
        page.wait_for_function(
            "() => Number(document.querySelector('.sim').dataset.seq) > 5"
        )
        assert "watching" in page.text_content(".sim-status")

    # Steps: the students' pages follow the teacher's.
    teacher.select_option("#class-step", "0")
    teacher.click("text=Show it to the class")
    for page in students:
        page.wait_for_selector("#step-1.class-here")

    # A poll: open, three answers counted live, then revealed to the class.
    teacher.click("text=Open the poll")
    for i, page in enumerate(students):
        page.wait_for_selector(
            "[data-class=poll] .class-choices button, [data-class=poll] input"
        )
        if page.locator("[data-class=poll] .class-choices button").count():
            page.locator("[data-class=poll] .class-choices button").nth(i % 2).click()
        else:
            page.fill("#class-number", str(10 * (i + 1)))
            page.click("[data-class=poll] button[type=submit]")
        page.wait_for_selector(".class-sent:has-text('Your answer')")
    teacher.wait_for_selector(".class-poll-title[data-answers='3']")
    assert students[0].locator(".class-bars").count() == 0  # not before the reveal
    teacher.click("text=Close the poll")
    teacher.click("text=Reveal the answers")
    for page in students:
        page.wait_for_selector(".class-bars li")
    assert (
        sum(int(c) for c in students[2].locator(".class-bar-count").all_text_contents())
        == 3
    )
    assert "Once the step has run" in students[0].text_content("[data-class=poll]")

    # The teacher plays the step: the figure the class's run measured joins the
    # revealed answers on every screen.
    teacher.select_option("#sim select[id$=speed]", "8")
    first = teacher.locator("li.step").nth(0)
    answer_prediction(teacher, first)
    first.locator("[data-step-actions]").click()
    for page in students:
        page.wait_for_selector(
            "[data-class=poll] .class-measured[data-measured]", timeout=30_000
        )
    measured = float(
        students[1].get_attribute("[data-class=poll] .class-measured", "data-measured")
    )
    assert 0 < measured <= 1  # a hit ratio
    assert "The class's run measured" in students[1].text_content("[data-class=poll]")

    # A checkpoint question asked of the class: the count live, the results once closed.
    teacher.select_option("#class-question", "1")
    teacher.click("text=Ask the class")
    for i, page in enumerate(students):
        page.locator("[data-class=question] .class-choices button").nth(i % 2).click()
        page.wait_for_selector(
            "[data-class=question] .class-sent:has-text('Your answer')"
        )
    teacher.wait_for_selector(
        "[data-class=question] .class-poll-title[data-answers='3']"
    )
    assert students[0].locator("[data-class=question] .class-bars").count() == 0
    teacher.click("text=Close it and show the results")
    for page in students:
        page.wait_for_selector("[data-class=question] .class-bar-right")
    assert "The entry read least recently ✓ right" in students[2].text_content(
        "[data-class=question] .class-bar-right"
    )

    # Each at their own pace: the students get runs of their own, and what they
    # do reaches the teacher's dashboard, which the projector never shows.
    teacher.click("text=Let everyone work at their own pace")
    for page in students:
        page.wait_for_selector("[data-class=status]:has-text('at your own pace')")
    own = students[0]
    own.wait_for_function(
        "(run) => { const d = document.querySelector('.sim').dataset;"
        " return d.runId && d.runId !== run && d.status === 'running'; }",
        arg=run,
        timeout=20_000,
    )
    second = own.locator("li.step").nth(1)
    answer_prediction(own, second)
    second.locator("[data-step-actions]").click()
    dashboard = teacher.locator("[data-class=dashboard]")
    assert dashboard.get_attribute("open") is not None
    row = dashboard.locator("tr:has(th:text-is('student 0'))")
    row.locator("td:has-text('step 2, Shrink the cache')").wait_for(timeout=10_000)
    # The class poll's answer and this one, of every step that asks a prediction.
    steps = parse_lesson((CONTENT_DIR / "caching-and-eviction.md").read_text())["steps"]
    assert f"2 of {sum(1 for s in steps if s['prediction'])}" in row.text_content()
    teacher.click("#projector-toggle")
    assert dashboard.is_hidden() and "student 0" not in teacher.inner_text("body")
    teacher.click("#projector-toggle")
    teacher.click("text=Bring everyone back")
    for page in students:
        page.wait_for_selector("[data-class=status]:has-text('following the teacher')")
        page.wait_for_function(
            "(run) => document.querySelector('.sim').dataset.runId === run",
            arg=run,
            timeout=15_000,
        )

    # Pause all: every device says look up, until resumed.
    teacher.click("text=Pause all")
    for page in students:
        page.wait_for_selector("[data-class=lookup]:not([hidden])")
    teacher.click("text=Resume all")
    for page in students:
        page.wait_for_selector("[data-class=lookup]", state="hidden")

    # A fork: the phone experiments on its own run from the class's moment, then comes back.
    phone = students[2]
    phone.click("text=Experiment on my own")
    phone.wait_for_function(
        "(run) => { const d = document.querySelector('.sim').dataset;"
        " return d.runId && d.runId !== run && d.status === 'running'; }",
        arg=run,
        timeout=20_000,
    )
    assert "watching" not in phone.text_content(".sim-status")
    phone.click("text=Back to the class's run")
    phone.wait_for_function(
        "(run) => document.querySelector('.sim').dataset.runId === run", arg=run
    )

    # The results as CSV, then the end of the class.
    with teacher.expect_download() as download:
        teacher.click("text=Download the results (CSV)")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("student,") and "student 2" in text
    assert (
        "question 2: Which entry does LRU evict"
        in text.splitlines()[0].replace(
            "The cache is full and a new key must go in. ", ""
        )
        or "question 2: The cache is full" in text.splitlines()[0]
    )
    teacher.once("dialog", lambda d: d.accept())
    teacher.click("text=End the class")
    for page in students:
        page.wait_for_selector("[data-class=status]:has-text('ended')")
    assert errors == []
    desk.close()
    for page in students:
        page.context.close()
