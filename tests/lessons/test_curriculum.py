"""The curriculum: every topic of the study notes has a published lesson, and every
lesson is complete and consistent with its engine."""

from __future__ import annotations

import re
import statistics

import pytest

from lessons.models import Lesson, Question
from lessons.services import (
    CONTENT_DIR,
    lesson_to_dict,
    lesson_to_text,
    load_directory,
    parse_lesson,
    question_draw,
)
from simulations.engines import get_engine

pytestmark = pytest.mark.django_db

# The topics of ../shared/notes/scalability-notes.md, in the order the notes build them up.
TOPICS = [
    "scaling up vs out",
    "DNS round robin",
    "load-balancing strategies",
    "sessions: sticky vs a central store",
    "app servers keep no user state",
    "local caches and routing users by id",
    "the balancer as a single point of failure",
    "deploying the same code everywhere",
    "machine images and auto-scaling",
    "RAID 1, 5, 6 and 10",
    "master-slave replication and lag",
    "master-master replication",
    "the two paths for scaling a database",
    "sharding",
    "denormalisation, joins in application code and documents",
    "NoSQL",
    "SQL tuning with indexes and EXPLAIN",
    "caching and LRU eviction",
    "cached queries vs cached objects",
    "write-through vs write-behind",
    "Memcached vs Redis",
    "pre-rendering",
    "job queues",
]
MODULES = ["app-servers", "databases", "caching", "asynchronism", "whole-stack"]
# A step's reveal comes to the point: each lesson's median, in words.
REVEAL_MEDIAN_WORDS = 60


@pytest.fixture
def lessons():
    load_directory()
    return list(
        Lesson.objects.filter(status=Lesson.Status.PUBLISHED).select_related("module")
    )


def test_every_topic_of_the_notes_has_a_published_lesson(lessons):
    covered = {topic for lesson in lessons for topic in lesson.topics}
    missing = [topic for topic in TOPICS if topic not in covered]
    assert not missing, f"topics without a published lesson: {missing}"


def test_modules_follow_the_order_of_the_notes(lessons):
    order = sorted({(lesson.module.order, lesson.module.slug) for lesson in lessons})
    assert [slug for _, slug in order] == MODULES


@pytest.mark.parametrize("path", sorted(CONTENT_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_each_lesson_is_complete(path):
    data = parse_lesson(path.read_text(encoding="utf-8"), path.name)
    assert 3 <= len(data["objectives"]) <= 6
    assert data["steps"] and data["questions"]
    assert re.search(r"<svg[^>]*role=\"img\"", data["body"]), "an accessible diagram"
    assert "<title" in data["body"] and "<figcaption>" in data["body"]
    assert "## Trade-offs" in data["body"] and "## In real systems" in data["body"]
    assert re.search(r"\n\|.*\|\n\|[-| :]+\|\n", data["body"]), "a trade-offs table"
    # The preset is valid for the engine and every scenario command is one it declares.
    engine = get_engine(data["engine"])
    engine.validate_params(data["preset"])
    for step in data["steps"]:
        # Every step asks the student to commit to a prediction before it plays.
        assert step["prediction"] and step["measure"], (
            f"step {step['title']!r} asks for no prediction"
        )
        assert step["explain"], f"step {step['title']!r} explains nothing"
        for action in step["actions"]:
            if "command" in action:
                engine.command(action["command"]).coerce_args(action["args"])
            else:
                for name, value in action["set"].items():
                    engine.param(name).coerce(value)


@pytest.mark.parametrize("path", sorted(CONTENT_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_every_question_has_exactly_one_right_answer_and_explains_each(path):
    data = parse_lesson(path.read_text(encoding="utf-8"), path.name)
    for question in data["questions"]:
        assert question["explain"]
        if question["kind"] == Question.Kind.CHOICE:
            assert sum(c["correct"] for c in question["choices"]) == 1
            assert all(c["why"] for c in question["choices"])
        else:
            # Whatever a student draws, the answer as the page shows it is graded
            # right, and the tolerance is narrow enough to refuse a wrong method
            # (a fifth off the answer).
            for seed in range(40) if question["params"] else [0]:
                met = question_draw(question, f"check:{seed}")
                shown = float(met["shown"].replace(",", ""))
                assert abs(shown - met["answer"]) <= met["tolerance"], (
                    f"{question['prompt'][:50]}: shown {met['shown']} is graded wrong"
                )
                assert met["tolerance"] < 0.2 * abs(met["answer"]) or not met["answer"]


@pytest.mark.parametrize("path", sorted(CONTENT_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_reveal_texts_come_to_the_point(path):
    data = parse_lesson(path.read_text(encoding="utf-8"), path.name)
    words = [len(step["explain"].split()) for step in data["steps"]]
    assert statistics.median(words) <= REVEAL_MEDIAN_WORDS, words


@pytest.mark.parametrize("path", sorted(CONTENT_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_every_lesson_asks_a_number_drawn_for_each_student(path):
    data = parse_lesson(path.read_text(encoding="utf-8"), path.name)
    assert any(q.get("params") for q in data["questions"])


@pytest.mark.parametrize("path", sorted(CONTENT_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_each_file_is_in_canonical_form(path):
    # What export writes is byte for byte the file in the repository.
    text = path.read_text(encoding="utf-8")
    assert lesson_to_text(parse_lesson(text, path.name)) == text


def test_every_lesson_renders_with_its_simulation(client, lessons):
    for lesson in lessons:
        response = client.get(lesson.get_absolute_url())
        assert response.status_code == 200, lesson.slug
        html = response.content.decode()
        assert 'data-engine-id="engine-decl"' in html
        assert "Check your understanding" in html


def test_export_then_import_gives_back_the_same_lessons(tmp_path, lessons):
    from lessons.services import export_directory

    before = {lesson.slug: lesson_to_dict(lesson) for lesson in lessons}
    export_directory(tmp_path)
    for path in tmp_path.glob("*.md"):
        assert path.read_text() == (CONTENT_DIR / path.name).read_text()
    Lesson.objects.all().delete()
    (tmp_path / "glossary").symlink_to(CONTENT_DIR / "glossary")
    load_directory(tmp_path)
    after = {
        lesson.slug: lesson_to_dict(lesson)
        for lesson in Lesson.objects.filter(status="published")
    }
    assert after == before
