"""A class in Chromium: a teacher and three students (one on a phone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack import manage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

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
    desk = browser.new_context(viewport={"width": 1366, "height": 768})
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
        context = browser.new_context(viewport={"width": size[0], "height": size[1]})
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
    assert "student 0" not in teacher.text_content(
        "#classroom"
    )  # the projector names no one

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
    teacher.once("dialog", lambda d: d.accept())
    teacher.click("text=End the class")
    for page in students:
        page.wait_for_selector("[data-class=status]:has-text('ended')")
    assert errors == []
    desk.close()
    for page in students:
        page.context.close()
