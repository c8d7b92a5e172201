"""An instructor authors a lesson in the admin, in a real browser against a real server."""

from __future__ import annotations

import json
import re

import pytest

from tests.stack import manage

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

USERNAME = "ines"
PASSWORD = "instructor-pw-for-tests"
TITLE = "Made in a browser"
CREATE_INSTRUCTOR = f"""
from django.contrib.auth.models import Group, User
user, _ = User.objects.get_or_create(username={USERNAME!r}, defaults={{"is_staff": True}})
user.set_password({PASSWORD!r})
user.save()
user.groups.add(Group.objects.get(name="Instructors"))
"""


@pytest.fixture(scope="module")
def instructor(app_url, app_env):
    """A staff user in the Instructors group, in the database the server uses."""
    manage(app_env, "shell", "-c", CREATE_INSTRUCTOR)
    return USERNAME


def sign_in(page, app_url):
    page.goto(f"{app_url}/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def preview(page):
    """Return the preview frame on show."""
    name = page.get_attribute(".preview-frame.is-current", "name")
    return page.frame(name=name)


def wait_for_preview_text(page, text):
    page.wait_for_function(
        """(text) => {
            const frame = document.querySelector('.preview-frame.is-current');
            const doc = frame && frame.contentDocument;
            return doc && doc.body && doc.body.textContent.includes(text);
        }""",
        arg=text,
        timeout=20_000,
    )


def test_an_instructor_writes_previews_publishes_edits_and_reverts_a_lesson(
    page, app_url, instructor
):
    sign_in(page, app_url)
    page.goto(f"{app_url}/admin/lessons/lesson/add/")
    page.fill("#id_title", TITLE)
    page.select_option("#id_module", index=1)
    page.select_option("#id_engine", "cache")
    page.wait_for_selector("#id_preset_capacity")  # the engine's parameters appear

    # The preview follows the typing, simulation included.
    page.click("#id_body")
    page.keyboard.type("# Written here\n\nFirst words.", delay=10)
    wait_for_preview_text(page, "First words.")
    page.keyboard.type(" More words.", delay=10)
    wait_for_preview_text(page, "First words. More words.")
    frame = preview(page)
    frame.wait_for_selector(".sim[data-ready=true]", timeout=20_000)
    frame.click("#sim .btn-primary")
    frame.wait_for_function(
        "() => Number(document.querySelector('.sim').dataset.seq) > 3", timeout=20_000
    )
    frame.click("#sim button:text('Stop')")
    frame.wait_for_selector(".sim[data-status=stopped]", timeout=10_000)

    # An out-of-range preset value is refused, naming the field; nothing is saved.
    page.fill("#id_preset_capacity", "0")
    page.click("input[name=_continue]")
    error = page.text_content(".field-preset_capacity .errorlist")
    assert "capacity must be an integer from 1 to 1000000" in error
    assert page.url.endswith("/add/")
    page.fill("#id_preset_capacity", "500")
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r"/change/$"))
    change_url = page.url
    assert "Draft: students cannot see it" in page.text_content(".field-student_view")

    # Publish from the list.
    page.goto(f"{app_url}/admin/lessons/lesson/?q=browser")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "publish")
    page.click("button[name=index]")
    assert "Published 1 lesson(s)" in page.text_content(".messagelist")

    # Edit, then see the change in the history's diff.
    page.goto(change_url)
    page.fill("#id_body", "# Written here\n\nBetter words.\n")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    page.click("a.historylink")
    page.wait_for_selector(".version-list")
    assert "First words. More words." in page.text_content(".diff-del")
    assert "Better words." in page.text_content(".diff-add")

    # Revert to the published version (a confirmation first): the old text is back.
    published = page.locator(".version").filter(
        has=page.locator(".version-note", has_text=re.compile("^published$"))
    )
    page.once("dialog", lambda dialog: dialog.accept())
    published.locator("button:text('Revert to this version')").click()
    page.wait_for_url(change_url)
    assert "Reverted" in page.text_content(".messagelist")
    assert "First words. More words." in page.input_value("#id_body")

    # Back to draft: students no longer see it (nor do the other browser tests).
    student_url = page.get_attribute(".field-student_view a", "href")
    page.goto(f"{app_url}/admin/lessons/lesson/?q=browser")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "move_to_draft")
    page.click("button[name=index]")
    assert "back to draft" in page.text_content(".messagelist")
    assert page.errors == []
    assert page.goto(f"{app_url}{student_url}").status == 404


STORED_ACTIONS = """
import json
from lessons.models import Lesson
print(json.dumps(Lesson.objects.get(title={title!r}).steps.get().actions))
"""


def test_an_instructor_builds_a_step_from_the_engines_commands_and_settings(
    page, app_url, app_env, instructor
):
    sign_in(page, app_url)
    page.goto(f"{app_url}/admin/lessons/lesson/add/")
    page.fill("#id_title", "Steps picked from lists")
    page.select_option("#id_module", index=1)
    page.fill("#id_body", "# Picked\n\nNo JSON typed.\n")
    page.select_option("#id_engine", "cache")
    page.wait_for_selector("#id_preset_capacity")

    # A new step, from the keyboard: its actions editor is rows, not a textarea.
    page.focus("#steps-group .add-row a")
    page.keyboard.press("Enter")
    step = page.locator("#steps-group .inline-related:not(.empty-form)").last
    step.locator("input[name$='-title']").fill("Shrink, then flatten")
    assert not step.locator("textarea[name$='-actions']").is_visible()
    editor = step.locator(".actions-editor")
    add = editor.locator("button:text('Add an action')")

    add.focus()
    page.keyboard.press("Enter")
    first = editor.locator(".action-row").nth(0)
    assert page.evaluate("document.activeElement.dataset.part") == "kind"
    first.locator("select[data-part=command]").select_option("resize")
    first.locator("input[data-arg=capacity]").fill("0")  # out of range: refused

    add.focus()
    page.keyboard.press("Enter")
    second = editor.locator(".action-row").nth(1)
    second.locator("select[data-part=kind]").select_option("set")
    second.locator("select[data-part=setting-name]").select_option("zipf_s")
    second.locator("input[data-part=setting-value]").fill("0")
    second.locator("input[data-part=after]").fill("15")

    # A third action, removed again from the keyboard.
    add.focus()
    page.keyboard.press("Enter")
    assert editor.locator(".action-row").count() == 3
    editor.locator(".action-row").nth(2).locator("button:text('Remove action')").focus()
    page.keyboard.press("Enter")
    assert editor.locator(".action-row").count() == 2
    # Focus goes to the row before, not back to the top of the page.
    assert (
        page.evaluate(
            "document.activeElement.closest('.action-row').getAttribute('aria-label')"
        )
        == "Action 2 of 2"
    )

    # The refusal is shown beside the row and input at fault, naming what is allowed.
    page.click("input[name=_continue]")
    page.wait_for_selector(".action-row.has-error")
    row = page.locator("#steps-group .action-row.has-error")
    assert "capacity must be an integer from 1 to 1000000" in row.text_content()
    capacity = row.locator("input[data-arg=capacity]")
    assert capacity.get_attribute("aria-invalid") == "true"
    note = page.locator("#" + capacity.get_attribute("aria-describedby"))
    assert "capacity must be" in note.text_content()
    assert "Action 1, resize argument capacity" in page.text_content(
        "#steps-group .errorlist"
    )
    page.screenshot(path="/tmp/helperF-actions-error.png")

    capacity.fill("100")
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(r"/change/$"))
    stored = manage(
        app_env,
        "shell",
        "-c",
        STORED_ACTIONS.format(title="Steps picked from lists"),
        check=False,
    )
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout.strip().splitlines()[-1]) == [
        {"command": "resize", "args": {"capacity": 100}},
        {"set": {"zipf_s": 0.0}, "after": 15.0},
    ]
    # Opened again, the saved actions are the same rows.
    rows = page.locator("#steps-group .action-row")
    assert rows.count() == 2
    assert rows.nth(0).locator("select[data-part=command]").input_value() == "resize"
    assert rows.nth(1).locator("input[data-part=after]").input_value() == "15"
    assert page.errors == []
