"""A draft's private link (it shows every correct answer) dies when it is published."""

from __future__ import annotations

import pytest

from lessons.models import Lesson, Term
from lessons.services import lesson_save, lesson_to_dict, parse_lesson
from tests.lessons.test_admin import RICH, change_url
from tests.lessons.test_concurrency import edited, signed_in

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/lessons/lesson/"


@pytest.fixture(autouse=True)
def terms():
    Term.objects.create(slug="cache", term="Cache", definition="Fast memory in front.")


@pytest.fixture
def draft():
    return lesson_save(parse_lesson(RICH.replace('"published"', '"draft"')))


@pytest.fixture
def ines():
    return signed_in("ines")


def answers_shown(client, url: str) -> bool:
    page = client.get(url)
    return page.status_code == 200 and 'id="question-answers"' in page.content.decode()


def act(browser, action: str, lesson: Lesson) -> None:
    browser.post(CHANGELIST, {"action": action, "_selected_action": [lesson.pk]})


# ``client`` is a student's browser: the one a preview link was passed to.


def test_publishing_with_the_action_ends_the_drafts_preview_link(client, ines, draft):
    old = draft.preview_url()
    assert answers_shown(client, old)
    act(ines, "publish", draft)
    draft.refresh_from_db()
    assert draft.published
    assert client.get(old).status_code == 404
    assert draft.preview_url() != old


def test_publishing_from_the_lessons_form_ends_the_drafts_preview_link(
    client, ines, draft
):
    old = draft.preview_url()
    assert edited(ines, draft, status="published") == "saved"
    assert client.get(old).status_code == 404


def test_publishing_by_import_or_revert_ends_the_drafts_preview_link(client, draft):
    old = draft.preview_url()
    data = lesson_to_dict(draft) | {"status": "published"}
    lesson_save(data, note="imported from caching-rich.md")
    assert client.get(old).status_code == 404


def test_editing_a_draft_or_moving_a_lesson_back_to_draft_keeps_its_link(
    client, ines, draft
):
    old = draft.preview_url()
    assert edited(ines, draft, summary="Still a draft.") == "saved"
    assert answers_shown(client, old)

    act(ines, "publish", draft)
    act(ines, "move_to_draft", draft)
    lesson = Lesson.objects.get(pk=draft.pk)
    assert not lesson.published
    assert client.get(old).status_code == 404  # the first draft's link stays dead
    assert answers_shown(client, lesson.preview_url())
    assert lesson.preview_url() in ines.get(change_url(lesson)).content.decode()
