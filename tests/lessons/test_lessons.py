"""Lesson files, their loading and their pages."""

from __future__ import annotations

import re

import pytest

from lessons.models import Lesson, LessonVersion
from lessons.services import (
    CONTENT_DIR,
    LessonFileError,
    lesson_to_dict,
    load_directory,
    parse_lesson,
    render_markdown,
)

pytestmark = pytest.mark.django_db

GOOD = """+++
slug = "x"
title = "X"
module = "m"
module_title = "M"
engine = "cache"
[preset]
capacity = 10
[[steps]]
title = "Crash it"
text = "Go."
[[steps.actions]]
command = "resize"
args = { capacity = "20" }
+++
Body **bold**.
"""


def test_loading_the_lessons_twice_changes_nothing():
    first = load_directory()
    assert Lesson.objects.count() == len(first) >= 1
    snapshot = [lesson_to_dict(lesson) for lesson in Lesson.objects.all()]
    versions = LessonVersion.objects.count()
    load_directory()
    assert [lesson_to_dict(lesson) for lesson in Lesson.objects.all()] == snapshot
    assert LessonVersion.objects.count() == versions  # nothing changed, no new version


def test_a_lesson_file_is_checked_against_its_engine():
    meta = parse_lesson(GOOD)
    assert meta["preset"]["capacity"] == 10
    assert meta["steps"][0]["actions"][0]["args"] == {"capacity": 20}
    with pytest.raises(
        LessonFileError, match="capacity must be an integer from 1 to 1000000"
    ):
        parse_lesson(GOOD.replace("capacity = 10", "capacity = 0"), "x.md")
    with pytest.raises(
        LessonFileError, match="no command 'explode'; its commands: flush"
    ):
        parse_lesson(GOOD.replace('command = "resize"', 'command = "explode"'), "x.md")
    with pytest.raises(LessonFileError, match="engine: is required"):
        parse_lesson(GOOD.replace('engine = "cache"', ""), "x.md")
    with pytest.raises(LessonFileError, match="must start with a \\+\\+\\+ line"):
        parse_lesson("no front matter", "x.md")


def test_a_setting_only_a_new_run_takes_cannot_wait_for_after():
    ok = (
        GOOD.replace('engine = "cache"', 'engine = "scaling"')
        .replace("capacity = 10", 'strategy = "vertical"')
        .replace(
            'command = "resize"\nargs = { capacity = "20" }',
            'set = { strategy = "horizontal" }',
        )
    )
    assert parse_lesson(ok)["steps"][0]["actions"] == [
        {"set": {"strategy": "horizontal"}}
    ]
    with pytest.raises(
        LessonFileError,
        match=r"steps\[0\]\.actions\[0\]\.set\.strategy: strategy cannot change "
        "in a running world",
    ):
        parse_lesson(ok.replace("set = {", "after = 5\nset = {"), "x.md")


def test_markdown_is_sanitised_but_keeps_accessible_diagrams():
    html = render_markdown(
        '<script>alert(1)</script><svg viewBox="0 0 10 10" role="img" aria-label="d"><rect x="1"/></svg>'
        '<a href="javascript:alert(1)" onclick="x()">link</a>'
    )
    assert "<script" not in html and "onclick" not in html and "javascript:" not in html
    assert 'viewBox="0 0 10 10"' in html and 'role="img"' in html


def test_the_caching_lesson_page_has_its_text_simulation_and_local_plotly(client):
    load_directory()
    page = client.get("/lessons/caching-and-eviction/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Caching and eviction" in html and "cache-aside" in html
    assert 'id="engine-decl"' in html and 'id="engine-preset"' in html
    # Its own copy of plotly, hashed once collected (a working tree may hold a
    # collection), never a CDN's.
    assert re.search(r'src="/static/plotly/plotly\.min(\.[0-9a-f]{12})?\.js"', html)
    assert "cdn" not in html.lower()
    assert client.get("/").status_code == 200
    assert "caching-and-eviction" in client.get("/").content.decode()


def test_plotly_is_served_from_the_installed_package(client):
    response = client.get("/static/plotly/plotly.min.js")
    assert response.status_code == 200
    assert int(response["Content-Length"]) > 1_000_000
    assert "javascript" in response["Content-Type"]


def test_drafts_are_not_shown_to_students(client):
    load_directory()
    Lesson.objects.filter(slug="caching-and-eviction").update(status="draft")
    assert client.get("/lessons/caching-and-eviction/").status_code == 404


def test_every_lesson_file_in_the_repository_is_valid():
    files = sorted(CONTENT_DIR.glob("*.md"))
    assert files
    for path in files:
        parse_lesson(path.read_text(), path.name)
