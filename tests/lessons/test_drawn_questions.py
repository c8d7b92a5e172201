"""Drawn numeric questions: each student's own figures, graded with them."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from lessons import classes
from lessons.formulas import Formula, FormulaError, draw, figure
from lessons.models import Question
from lessons.services import (
    LessonFileError,
    lesson_save,
    lesson_to_dict,
    lesson_to_text,
    parse_lesson,
    question_draw,
    question_seed,
    validate_question,
)

pytestmark = pytest.mark.django_db

LESSON = """+++
slug = "drawn-capacity"
title = "Capacity, drawn"
module = "tests"
module_title = "Tests"
module_order = 9
order = 1
status = "published"
summary = "Peak requests from daily users."
engine = "cache"
topics = ["capacity"]
objectives = ["Estimate the peak.", "Size the servers.", "Check the estimate."]
glossary = []

[[steps]]
title = "Watch"
predict = "What is the hit ratio?"
text = "Watch."
explain = "About 0.8."
prediction = "number"
measure = "hit_ratio"
settle = 5.0

[[questions]]
kind = "number"
prompt = "A site has {users} daily users making {per_user} requests each; the peak is {peak} times the average. Requests a second at the peak?"
answer = "users * per_user / 86400 * peak"
tolerance = "5%"
unit = "requests/s"
explain = "{users * per_user} a day over 86,400 s is {users * per_user / 86400} a second; times {peak}: {answer}."

[questions.params]
users = { min = 100000, max = 9000000, step = 1000 }
per_user = { choices = [10, 20, 30] }
peak = { min = 2, max = 4, step = 1 }

[[questions]]
kind = "number"
prompt = "Forty seconds of a sixty-second TTL have passed. How many are left?"
answer = 20.0
tolerance = 0.5
unit = "s"
explain = "60 minus 40."
+++
Text.
"""

PROMPT = re.compile(
    r"A site has ([\d,]+) daily users making (\d+) requests each; the peak is (\d) times"
)


@pytest.fixture
def lesson():
    return lesson_save(parse_lesson(LESSON, "drawn-capacity.md"))


def figures_on(client: Client) -> tuple[int, int, int]:
    """The figures the lesson page shows this visitor in question 1."""
    page = html.unescape(client.get("/lessons/drawn-capacity/").content.decode())
    users, per_user, peak = PROMPT.search(page).groups()
    return int(users.replace(",", "")), int(per_user), int(peak)


def answer(client: Client, index: int, value: float) -> dict:
    response = client.post(
        f"/lessons/drawn-capacity/questions/{index}/",
        {"value": value},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_each_student_sees_figures_of_their_own_and_the_same_on_every_visit(lesson):
    students = [Client() for _ in range(6)]
    seen = [figures_on(c) for c in students]
    assert len(set(seen)) > 1, "six students, one set of figures"
    assert [figures_on(c) for c in students] == seen, "figures change on reload"
    for users, per_user, peak in seen:
        assert 100000 <= users <= 9000000 and users % 1000 == 0
        assert per_user in (10, 20, 30) and peak in (2, 3, 4)


def test_an_answer_is_graded_with_the_students_own_figures(lesson):
    alice, bob = Client(), Client()
    mine = figures_on(alice)
    while figures_on(bob) == mine:  # pragma: no cover - one chance in millions
        bob = Client()
    users, per_user, peak = mine
    right = users * per_user / 86400 * peak
    result = answer(alice, 0, round(right))
    assert result["correct"] is True
    assert result["answer"] == pytest.approx(right)
    # Within 5 % of the answer is right, beyond it wrong.
    assert answer(alice, 0, right * 1.04)["correct"] is True
    assert answer(alice, 0, right * 1.06)["correct"] is False
    # Bob has other figures: Alice's answer is not his.
    figures_on(bob)
    assert answer(bob, 0, right)["correct"] is False


def test_a_wrong_answer_shows_the_working_with_the_students_figures(lesson):
    client = Client()
    users, per_user, peak = figures_on(client)
    right = users * per_user / 86400 * peak
    result = answer(client, 0, right / peak)  # forgot the peak
    assert result["correct"] is False
    assert result["shown"] == figure(right)
    assert f"{users * per_user:,}" in result["explain"]
    assert result["explain"].endswith(f"times {peak}: {figure(right)}.")
    assert "{" not in result["explain"]


def test_a_fixed_question_is_graded_as_written(lesson):
    client = Client()
    client.get("/lessons/drawn-capacity/")
    assert answer(client, 1, 20.4)["correct"] is True
    assert answer(client, 1, 21)["correct"] is False


def test_a_class_meets_one_set_of_figures_and_is_told_its_answer(lesson):
    teacher = User.objects.create_user("teacher", password="pw")
    teacher.groups.add(Group.objects.get_or_create(name=classes.INSTRUCTORS)[0])
    session = classes.class_create(teacher, {"lesson": lesson.slug})
    question = lesson.questions.get(order=0)
    drawn = classes.class_question(session, question)
    assert drawn == classes.class_question(session, question)
    seed = question_seed(f"class:{session.code}", lesson.slug, 0)
    values = draw(lesson_to_dict(lesson)["questions"][0]["params"], seed)
    assert drawn["prompt"].startswith(f"A site has {values['users']:,} daily users")
    right = values["users"] * values["per_user"] / 86400 * values["peak"]
    assert drawn["answer"] == pytest.approx(right)
    assert drawn["tolerance"] == pytest.approx(right * 0.05)


def test_the_file_keeps_a_drawn_question_through_saving_and_export(lesson):
    data = lesson_to_dict(lesson)
    question = data["questions"][0]
    assert question["answer"] == "users * per_user / 86400 * peak"
    assert question["tolerance"] == "5%"
    assert question["params"]["per_user"] == {"choices": [10, 20, 30]}
    assert lesson_to_text(data) == LESSON
    saved = Question.objects.get(lesson=lesson, order=0)
    assert saved.answer is None and saved.formula and saved.relative


def number(**fields) -> dict:
    base = {
        "kind": "number",
        "prompt": "Users {users}, peak {peak}?",
        "answer": "users * peak",
        "tolerance": "5%",
        "explain": "It is {answer}.",
        "params": {
            "users": {"min": 1, "max": 10, "step": 1},
            "peak": {"choices": [2, 3]},
        },
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"answer": "users * visits"}, "answer", "'visits', which is not one of"),
        ({"answer": "__import__('os')"}, "answer", "a formula has numbers"),
        ({"answer": "users.real"}, "answer", "a formula has numbers"),
        ({"answer": "users / (peak - 2)"}, "answer", "cannot be computed"),
        ({"answer": "users *"}, "answer", "is not a formula"),
        ({"tolerance": "five"}, "tolerance", 'like "5%"'),
        ({"tolerance": -1}, "tolerance", "0 or more"),
        ({"prompt": "Users {users}?"}, "params.peak", "never shows it"),
        ({"prompt": "Users {users}, peak {peak} {secret}?"}, "prompt", "'secret'"),
        ({"explain": "It is {answer + bonus}."}, "explain", "'bonus'"),
        (
            {"params": {"users": {"min": 5, "max": 1, "step": 1}}},
            "params.users",
            "max must be more than min",
        ),
        (
            {"params": {"users": {"min": 1, "max": 5}}},
            "params.users",
            "must have min, max and step, or only choices",
        ),
        (
            {"params": {"answer": {"choices": [1, 2]}}},
            "params.answer",
            "not answer",
        ),
    ],
)
def test_a_bad_drawn_question_is_refused_naming_its_field(fields, field, words):
    with pytest.raises(LessonFileError) as caught:
        validate_question(number(**fields), 0, "x.md")
    assert caught.value.field == f"questions[0].{field}"
    assert words in str(caught.value)


def test_formulas_compute_arithmetic_and_functions_and_nothing_else():
    assert Formula("ceil(users / 700) + 2 ** 3", {"users"})({"users": 1401}) == 11
    assert Formula("max(a, b) // 2 % 4", {"a", "b"})({"a": 9, "b": 3}) == 0
    for text in ("open('x')", "[1][0]", "a if a else 1", "lambda: 1", "'text'"):
        with pytest.raises(FormulaError):
            Formula(text, {"a"})
    with pytest.raises(FormulaError, match="cannot be computed"):
        Formula("10.0 ** 400", set())({})


def test_figures_read_as_a_student_writes_them():
    assert [figure(v) for v in (2314.8, 100, 12.345, 30.0, 0.01234)] == [
        "2,315",
        "100",
        "12.3",
        "30",
        "0.0123",
    ]


def test_a_question_without_params_is_met_as_written():
    fixed = validate_question(
        {"kind": "number", "prompt": "Half of {x}?", "answer": 1, "explain": "{x}"},
        0,
        "x.md",
    )
    met = question_draw(fixed, "anyone")
    assert met["prompt"] == "Half of {x}?" and met["answer"] == 1.0


def test_an_instructor_edits_a_drawn_question_in_the_admin_and_keeps_it(
    client, instructor, lesson
):
    from tests.lessons.test_admin import change_url, posted

    data = posted(client.get(change_url(lesson)).content.decode())
    assert data["questions-0-answer"] == "users * per_user / 86400 * peak"
    assert data["questions-0-tolerance"] == "5%"
    assert "per_user = { choices = [10, 20, 30] }" in data["questions-0-params"]
    # Saved untouched, nothing changes.
    assert client.post(change_url(lesson), data).status_code == 302
    assert lesson_to_text(lesson_to_dict(lesson)) == LESSON
    # A wider peak is kept; a formula naming an unknown figure is refused, named.
    data["questions-0-params"] = data["questions-0-params"].replace(
        "max = 4", "max = 6"
    )
    assert client.post(change_url(lesson), data).status_code == 302
    assert lesson_to_dict(lesson)["questions"][0]["params"]["peak"]["max"] == 6
    data["questions-0-answer"] = "users * visits"
    page = client.post(change_url(lesson), data).content.decode()
    assert "visits" in html.unescape(page) and "not one of its figures" in page
    assert lesson_to_dict(lesson)["questions"][0]["answer"].endswith("* peak")
