"""Two instructors editing one lesson: no save silently undoes another."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.urls import reverse

from lessons.models import Lesson, LessonVersion, Module, Step, Term
from lessons.services import lesson_save, parse_lesson
from tests.lessons.test_admin import RICH, change_url, posted

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def terms():
    Term.objects.create(slug="cache", term="Cache", definition="Fast memory in front.")


def signed_in(name: str, *, superuser: bool = False) -> Client:
    """Return a browser signed in as a new instructor (or superuser) called ``name``."""
    if superuser:
        user = User.objects.create_superuser(name, password="pw-for-tests-only")
    else:
        user = User.objects.create_user(
            name, password="pw-for-tests-only", is_staff=True
        )
        user.groups.add(Group.objects.get(name="Instructors"))
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def ines():
    return signed_in("ines")


@pytest.fixture
def omar():
    return signed_in("omar")


@pytest.fixture
def lesson():
    return lesson_save(parse_lesson(RICH), note="loaded from file")


def opened(browser: Client, lesson: Lesson) -> dict[str, str]:
    """Open the lesson's change form and return what saving it would post."""
    return posted(browser.get(change_url(lesson)).content.decode())


def save(browser: Client, lesson: Lesson, form: dict[str, str]) -> str:
    """Post the form; return the page, or "saved" when the admin redirects."""
    page = browser.post(change_url(lesson), form)
    return "saved" if page.status_code == 302 else page.content.decode()


def edited(browser: Client, lesson: Lesson, **fields: str) -> str:
    """Open the form, change ``fields`` and save it at once."""
    return save(browser, lesson, opened(browser, lesson) | fields)


def test_a_save_based_on_an_out_of_date_version_is_refused_saying_who_and_what(
    lesson, ines, omar
):
    first, second = opened(ines, lesson), opened(omar, lesson)
    base = LessonVersion.objects.filter(lesson=lesson).first()
    first["body"] = first["body"].replace("Text with a table", "Ines's table")
    assert save(ines, lesson, first) == "saved"

    second["title"] = "Omar's title"
    html = save(omar, lesson, second)
    assert "Not saved: the lesson was saved again since you opened this form" in html
    assert "by ines at " in html and "(edited body)" in html
    assert "Changed since: body." in html
    history = reverse("admin:lessons_lesson_versions", args=[lesson.slug])
    assert f'href="{history}#version-{base.pk}"' in html
    assert "Omar&#x27;s title" in html  # the refused edit is still in the form
    lesson.refresh_from_db()
    assert lesson.title == "Caching, richly" and "Ines's table" in lesson.body

    assert edited(omar, lesson, title="Omar's title") == "saved"
    lesson.refresh_from_db()
    assert lesson.title == "Omar's title" and "Ines's table" in lesson.body


def test_a_save_from_the_same_instructors_other_tab_is_named_as_theirs(lesson, ines):
    first, second = opened(ines, lesson), opened(ines, lesson)
    assert save(ines, lesson, first | {"summary": "From the first tab."}) == "saved"
    html = save(ines, lesson, second | {"summary": "From the second tab."})
    assert "by you (in another tab or window) at " in html
    assert "Changed since: summary." in html
    assert Lesson.objects.get(pk=lesson.pk).summary == "From the first tab."


def test_publishing_since_the_form_was_opened_is_a_change_too(lesson, ines, omar):
    form = opened(omar, lesson)
    ines.post(
        reverse("admin:lessons_lesson_changelist"),
        {"action": "move_to_draft", "_selected_action": [lesson.pk]},
    )
    html = save(omar, lesson, form | {"summary": "Edited while unpublished."})
    assert "by ines at " in html and "(moved back to draft)" in html
    assert "Changed since: status." in html
    lesson.refresh_from_db()
    assert lesson.status == Lesson.Status.DRAFT
    assert lesson.summary == "Keep hot data in memory."


def test_renaming_the_lessons_module_does_not_block_saving_it(lesson, ines, omar):
    form = opened(omar, lesson)
    module = Module.objects.get(slug="caching")
    url = reverse("admin:lessons_module_change", args=[module.pk])
    renamed = ines.post(url, {"slug": "caching", "title": "Caches", "order": "3"})
    assert renamed.status_code == 302
    form["summary"] = "Still saved: the module's title is not the lesson's."
    assert save(omar, lesson, form) == "saved"


@pytest.mark.parametrize("version", [None, "", "latest", "-1"])
def test_a_form_that_does_not_say_which_version_it_was_opened_on_is_refused(
    lesson, ines, version
):
    form = opened(ines, lesson) | {"summary": "No version."}
    if version is None:
        del form["base_version"]
    else:
        form["base_version"] = version
    html = save(ines, lesson, form)
    assert "does not say which version of the lesson it was opened on" in html
    assert Lesson.objects.get(pk=lesson.pk).summary == "Keep hot data in memory."


def test_the_live_preview_of_an_out_of_date_form_says_it_cannot_be_saved(
    lesson, ines, omar
):
    form = opened(omar, lesson)
    assert edited(ines, lesson, title="Renamed by Ines") == "saved"
    url = reverse("admin:lessons_lesson_preview_change", args=[lesson.pk])
    html = omar.post(url, form).content.decode()
    assert 'class="preview-errors"' in html
    assert "by ines at " in html and "Changed since: title." in html


def test_a_step_deleted_by_someone_else_since_the_form_was_opened_says_so(
    lesson, ines, omar
):
    form = opened(omar, lesson)
    assert edited(ines, lesson, **{"steps-0-DELETE": "on"}) == "saved"
    html = save(omar, lesson, form | {"steps-0-title": "Shrink the cache a lot"})
    assert (
        "The step #1 “Shrink the cache a lot” was deleted by someone else since you "
        "opened the form" in html
    )
    assert "your edits to it are not saved. Reload the lesson to see its current " in (
        html
    )
    assert "by ines at " in html and "Changed since: steps." in html
    assert not lesson.steps.exists()


def test_a_question_deleted_without_a_trace_in_history_still_says_so(lesson, omar):
    # Only the part is gone (no version records it): the part's own error says why.
    form = opened(omar, lesson)
    lesson.questions.filter(order=0).delete()
    prompt = "How many reads reach the database, per second?"
    html = save(omar, lesson, form | {"questions-0-prompt": prompt})
    assert "Please correct the errors below." in html
    assert (
        f"The question #1 “{prompt}” was deleted by someone else since you opened "
        "the form" in html
    )
    assert "saved again since you opened" not in html
    assert lesson.questions.count() == 1


def test_the_form_of_a_deleted_step_stays_beside_it_and_later_steps_keep_their_edits(
    omar,
):
    data = parse_lesson(RICH)
    data["steps"].append({**data["steps"][0], "title": "Then grow it"})
    lesson = lesson_save(data)
    form = opened(omar, lesson)
    lesson.steps.get(order=0).delete()
    form |= {"steps-0-title": "Shrink it more", "steps-1-title": "Then grow it back"}
    html = save(omar, lesson, form)
    deleted = html.index("This step was deleted by someone else since you opened")
    typed = html.index('value="Shrink it more"')
    assert deleted < typed < html.index('value="Then grow it back"')
    assert [s.title for s in lesson.steps.all()] == ["Then grow it"]


def test_deleting_a_step_that_someone_else_already_deleted_just_saves(lesson, omar):
    form = opened(omar, lesson)
    Step.objects.filter(lesson=lesson).delete()
    form |= {"steps-0-DELETE": "on", "summary": "Without its step."}
    assert save(omar, lesson, form) == "saved"
    assert Lesson.objects.get(pk=lesson.pk).summary == "Without its step."


@pytest.mark.django_db(transaction=True)
def test_of_two_saves_of_one_version_at_the_same_moment_one_is_refused():
    # Each request in its own thread and connection, as two web workers would run
    # them. Superusers: a transactional test cannot count on the Instructors group.
    lesson = lesson_save(parse_lesson(RICH), note="loaded from file")
    saves = []
    for name in ("ines", "omar"):
        browser = signed_in(name, superuser=True)
        saves.append((name, browser, opened(browser, lesson)))
    together = threading.Barrier(2)

    def attempt(name, browser, form):
        together.wait()
        try:
            return name, save(browser, lesson, form | {"summary": f"By {name}."})
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        outcomes = dict(pool.map(lambda args: attempt(*args), saves))
    winners = [name for name, page in outcomes.items() if page == "saved"]
    assert len(winners) == 1
    (loser,) = set(outcomes) - set(winners)
    assert "Changed since: summary." in outcomes[loser]
    assert Lesson.objects.get(pk=lesson.pk).summary == f"By {winners[0]}."
