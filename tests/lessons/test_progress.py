"""Progress: kept in the session for visitors, in the database for students, merged on sign-in."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from lessons.models import Lesson, Progress
from lessons.services import (
    load_directory,
    question_as_dict,
    question_draw,
    question_seed,
)

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase-42"


@pytest.fixture
def lessons():
    load_directory()
    return list(
        Lesson.objects.filter(status="published").order_by("module__order", "order")
    )


def answer(client, lesson, index, body):
    return client.post(
        f"/lessons/{lesson.slug}/questions/{index}/",
        data=json.dumps(body),
        content_type="application/json",
    )


def as_met(client, lesson, index):
    """A question as this client's visitor meets it (a drawn one, with its figures)."""
    question = question_as_dict(lesson.questions.get(order=index))
    seed = question_seed(client.session["visitor"], lesson.slug, index)
    return question_draw(question, seed)


def right_answer(client, lesson, index):
    question = as_met(client, lesson, index)
    if question["kind"] == "choice":
        return {
            "choice": next(i for i, c in enumerate(question["choices"]) if c["correct"])
        }
    return {"value": question["answer"]}


def test_an_anonymous_visitor_keeps_lessons_seen_and_checkpoints_passed(
    client, lessons
):
    first, second = lessons[0], lessons[1]
    client.get(first.get_absolute_url())
    assert (
        answer(client, first, 0, right_answer(client, first, 0)).json()["correct"]
        is True
    )
    page = client.get("/progress/").content.decode()
    assert f"1 of {len(lessons)} lessons seen" in page
    assert f"Continue where you left off: {first.title}" in page
    # A lesson finished sends "continue" on to the next one not finished.
    for index in range(first.questions.count()):
        answer(client, first, index, right_answer(client, first, index))
    page = client.get("/progress/").content.decode()
    assert f"Continue where you left off: {second.title}" in page


def test_a_wrong_answer_is_explained_and_does_not_count(client, lessons):
    lesson = lessons[0]
    client.get(lesson.get_absolute_url())
    question = as_met(client, lesson, 0)
    if question["kind"] == "choice":
        wrong = next(i for i, c in enumerate(question["choices"]) if not c["correct"])
        result = answer(client, lesson, 0, {"choice": wrong}).json()
        assert result["correct"] is False and result["why"]
    else:
        wrong = question["answer"] + question["tolerance"] + 1
        result = answer(client, lesson, 0, {"value": wrong}).json()
        assert result["correct"] is False
        assert result["answer"] == pytest.approx(question["answer"])
    assert "0 with every checkpoint passed" in client.get("/progress/").content.decode()


def test_bad_answers_name_the_field(client, lessons):
    lesson = lessons[0]
    kinds = {q.order: q.kind for q in lesson.questions.all()}
    choice = next(i for i, k in kinds.items() if k == "choice")
    response = answer(client, lesson, choice, {"choice": 99})
    assert response.status_code == 400
    assert "choice must be one of 0, 1" in response.json()["errors"]["choice"]
    assert answer(client, lesson, 99, {"choice": 0}).status_code == 404


def test_progress_made_before_signing_in_is_merged_into_the_account(
    client, lessons, django_user_model
):
    user = django_user_model.objects.create_user("student", password=PASSWORD)
    first, second = lessons[0], lessons[1]
    # The account already knows one lesson from another device.
    Progress.objects.create(
        user=user, lesson=second, seen_at="2026-01-01T00:00:00Z", passed=[1]
    )
    client.get(first.get_absolute_url())
    answer(client, first, 0, right_answer(client, first, 0))
    response = client.post(
        "/accounts/login/", {"username": "student", "password": PASSWORD}
    )
    assert response.status_code == 302
    rows = {p.lesson.slug: p for p in Progress.objects.filter(user=user)}
    assert set(rows) == {first.slug, second.slug}
    assert rows[first.slug].passed == [0]
    assert rows[second.slug].passed == [1]
    assert "progress" not in client.session  # moved, not copied
    page = client.get("/progress/").content.decode()
    assert f"2 of {len(lessons)} lessons seen" in page


def test_signing_up_keeps_the_progress_too(client, lessons):
    client.get(lessons[2].get_absolute_url())
    response = client.post(
        "/accounts/signup/",
        {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert Progress.objects.filter(
        user__username="newcomer", lesson=lessons[2]
    ).exists()


def test_search_finds_lessons_by_words_and_ranks_titles_first(client, lessons):
    page = client.get("/search/?q=replication").content.decode()
    titles = re.findall(r"<strong>([^<]*)</strong>", page)
    assert len(titles) >= 3  # titles, summaries and bodies all count
    in_title = [t for t in titles if "replication" in t.lower()]
    assert len(in_title) >= 2 and titles[: len(in_title)] == in_title
    assert "0 lessons match" in client.get("/search/?q=zzzyx").content.decode()


def test_the_glossary_lists_terms_and_the_lessons_that_use_them(client, lessons):
    page = client.get("/glossary/").content.decode()
    assert 'id="hit-ratio"' in page
    assert "Caching and eviction" in page
    # A row of letters jumps to each letter's terms, which come in order under it.
    letters = re.findall(r'<a href="#letter-([A-Z#])"', page)
    assert letters == sorted(set(letters)) and {"C", "H", "L"} <= set(letters)
    after_h = page[page.index('id="letter-H"') : page.index('id="letter-I"')]
    assert 'id="hit-ratio"' in after_h and 'id="cache"' not in after_h


def test_signing_in_from_the_header_returns_to_the_page(
    client, lessons, django_user_model
):
    django_user_model.objects.create_user("student2", password=PASSWORD)
    lesson = lessons[3].get_absolute_url()
    page = client.get(lesson).content.decode()
    assert f'href="/accounts/login/?next={lesson}"' in page
    form = client.get(f"/accounts/login/?next={lesson}").content.decode()
    assert f'name="next" value="{lesson}"' in form
    assert f'/accounts/signup/?next={lesson}"' in form
    response = client.post(
        "/accounts/login/",
        {"username": "student2", "password": PASSWORD, "next": lesson},
    )
    assert response.status_code == 302
    assert response["Location"] == lesson


def test_with_no_page_to_return_to_sign_in_and_up_land_on_the_lessons(client, lessons):
    get_user_model().objects.create_user("student3", password=PASSWORD)
    signed_in = client.post(
        "/accounts/login/", {"username": "student3", "password": PASSWORD}
    )
    assert signed_in["Location"] == "/"  # not /accounts/profile/, which is no page
    client.post("/accounts/logout/")
    for target in ("https://evil.example/", "//evil.example/"):
        signed_up = Client().post(
            "/accounts/signup/",
            {
                "username": f"new{len(target)}",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "next": target,
            },
        )
        assert signed_up.status_code == 302
        assert signed_up["Location"] == "/"
    back = Client().post(
        "/accounts/signup/",
        {
            "username": "returning",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": lessons[1].get_absolute_url(),
        },
    )
    assert back["Location"] == lessons[1].get_absolute_url()
